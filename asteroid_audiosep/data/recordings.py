"""Recording lists: real recordings without references, each with the text query to separate.

The format is that of the CLAPScore tool (Xiao et al. 2024, ``text_queries.csv``): a CSV with the
columns ``audio_file, text_query`` (spaces after the commas allowed), one row per recording and
query; ``audio_file`` is relative to the audio folder (by default the CSV's folder) or absolute::

    audio_file, text_query
    street-01.wav, a car horn honking
    street-01.wav, a dog barking
    kitchen.flac, water running from a tap

Other text columns are alternative queries (query types), as in the evaluation-list format.
Nothing is read when the list is opened: a missing or unreadable file fails only its own items
when they are evaluated (the error names the file), so the rest of the list is still scored.

:func:`recordings_from_eval_list` lists the mixtures of an evaluation list as if they were
recordings (their references are left out), which demonstrates the reference-free table on data
whose SDR is also known.
"""
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from torch.utils.data import Dataset

from ..errors import AudioSepError
from .evallist import is_query_column, read_csv_rows, read_eval_list, write_csv_atomic

PathLike = Union[str, os.PathLike]

log = logging.getLogger(__name__)

#: The columns of a recording list (the CLAPScore tool's ``text_queries.csv``).
AUDIO_COLUMN, QUERY_COLUMN = "audio_file", "text_query"


@dataclass(frozen=True)
class RecordingItem:
    """One recording to separate with one query.

    Attributes:
        id: unique name: ``audio_file`` as written in the list, followed by ``" [<query>]"``
            when the list names that file more than once.
        audio: path of the recording.
        queries: query column -> text.
    """

    id: str
    audio: Path
    queries: Dict[str, str] = field(default_factory=dict)


def read_recording_list(csv_path: PathLike, audio_dir: Optional[PathLike] = None) -> List[RecordingItem]:
    """Items of a recording list (see the module docstring); no audio file is opened.

    Args:
        csv_path: the list.
        audio_dir: the folder ``audio_file`` is relative to (default: the list's folder).

    Raises:
        AudioSepError: the CSV is missing or malformed, lacks ``audio_file`` or ``text_query``,
            has an empty cell in them, or repeats a (file, query) pair.
    """
    csv_path = Path(csv_path)
    rows = [{k: v.strip() for k, v in row.items()} for row in read_csv_rows(csv_path)]
    if not rows:
        raise AudioSepError(f"the recording list {csv_path} has no row")
    if not {AUDIO_COLUMN, QUERY_COLUMN} <= set(rows[0]):
        raise AudioSepError(f"{csv_path} needs the columns '{AUDIO_COLUMN}' and '{QUERY_COLUMN}' "
                            f"(the CLAPScore text_queries.csv format), has {sorted(rows[0])}")
    folder = Path(audio_dir) if audio_dir is not None else csv_path.resolve().parent
    counts: Dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        for column in (AUDIO_COLUMN, QUERY_COLUMN):
            if not row[column]:
                raise AudioSepError(f"{csv_path}, line {line}: empty {column}")
        counts[row[AUDIO_COLUMN]] = counts.get(row[AUDIO_COLUMN], 0) + 1
    items, seen = [], set()
    for line, row in enumerate(rows, start=2):
        name, query = row[AUDIO_COLUMN], row[QUERY_COLUMN]
        item_id = name if counts[name] == 1 else f"{name} [{query}]"
        if item_id in seen:
            raise AudioSepError(f"{csv_path}, line {line}: {name} with the query {query!r} is listed twice")
        seen.add(item_id)
        path = Path(name) if Path(name).is_absolute() else folder / name
        queries = {k: v for k, v in row.items() if k != AUDIO_COLUMN and is_query_column(k)}
        items.append(RecordingItem(id=item_id, audio=path, queries=queries))
    return items


class RecordingSet(Dataset):
    """Recordings without references, for reference-free evaluation (CLAPScore).

    Each item is the recording (the "mixture": the unprocessed input) and its query. The files
    are read when an item is taken, so a missing or unreadable recording raises for that item
    only (:class:`~asteroid_audiosep.errors.AudioSepError` naming the file).

    Args:
        csv_path: the recording list (see :func:`read_recording_list`).
        query_column: the column used as the query (default ``text_query``).
        sample_rate: resample to this rate (None: keep each file's rate).
        audio_dir: the folder the list's files are relative to (default: the list's folder).

    Attributes:
        items: the :class:`RecordingItem` entries.
        query_columns: the text columns available as queries.
    """

    def __init__(self, csv_path: PathLike, query_column: str = QUERY_COLUMN,
                 sample_rate: Optional[int] = None, audio_dir: Optional[PathLike] = None):
        super().__init__()
        self.name = str(csv_path)
        self.items = read_recording_list(csv_path, audio_dir)
        self.query_columns = list(self.items[0].queries)
        if query_column not in self.query_columns:
            raise AudioSepError(f"{csv_path} has no query column {query_column!r}; available: {self.query_columns}")
        self.query_column = query_column
        self.sample_rate = sample_rate
        self.aggregation = "mean"
        missing = sorted({str(it.audio) for it in self.items if not it.audio.is_file()})
        if missing:
            log.warning("%d recordings listed in %s are missing (first: %s): their items will fail, "
                        "the others are scored", len(missing), csv_path, missing[0])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        """Item ``i``: ``mixture`` ((time,) float32 mono: the recording), ``query``, ``id``,
        ``class`` ("") and ``file`` (the recording's path).

        Raises:
            AudioSepError: the recording is missing or unreadable (the message names it).
        """
        from ..audio import load_audio

        item = self.items[i]
        wav, _ = load_audio(item.audio, sample_rate=self.sample_rate, mono=True)
        return {"mixture": wav[0], "query": item.queries[self.query_column], "id": item.id,
                "class": "", "file": str(item.audio)}

    def queries(self) -> List[str]:
        """Every distinct query of the chosen column, sorted (to pre-compute embeddings)."""
        return sorted({it.queries[self.query_column] for it in self.items})

    def get_infos(self) -> Dict[str, Any]:
        """Name, task, size, query column and aggregation rule."""
        return dict(dataset=self.name, task="reference-free evaluation of language-queried separation",
                    licenses=[], num_examples=len(self), query_column=self.query_column, aggregation="mean")


def recordings_from_eval_list(eval_csv: PathLike, out_csv: PathLike, query_column: str = "caption",
                              items: Optional[int] = None) -> Path:
    """Write a recording list naming the mixtures of an evaluation list (references left out).

    The items are taken one class at a time (the first item of each class, then the second, ...)
    so that a few items cover the classes; without a ``class`` column, in list order.

    Args:
        eval_csv: an evaluation list in the common format (:mod:`.evallist`).
        out_csv: the recording list to write (atomically); its ``audio_file`` column holds
            absolute paths of the mixtures.
        query_column: the list's column that becomes ``text_query``.
        items: how many rows to write (default: every item).

    Returns:
        ``out_csv``.

    Raises:
        AudioSepError: the evaluation list is malformed or lacks ``query_column``.
    """
    entries = read_eval_list(eval_csv)
    if entries and query_column not in entries[0].queries:
        raise AudioSepError(f"{eval_csv} has no query column {query_column!r}; available: {list(entries[0].queries)}")
    by_class: Dict[str, list] = {}
    for entry in entries:
        by_class.setdefault(entry.group, []).append(entry)
    ordered: List = []
    for rank in range(max((len(v) for v in by_class.values()), default=0)):
        ordered += [group[rank] for group in by_class.values() if rank < len(group)]
    chosen = ordered if items is None else ordered[: int(items)]
    rows = [{AUDIO_COLUMN: str(e.mixture), QUERY_COLUMN: e.queries[query_column]} for e in chosen]
    return write_csv_atomic(out_csv, rows, [AUDIO_COLUMN, QUERY_COLUMN])

