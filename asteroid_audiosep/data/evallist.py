"""The common evaluation-list format: a folder of ``mixture-{idx}.wav`` / ``segment-{idx}.wav``
files with a CSV of their queries.

Every evaluation set this project generates (mini corpus, protocol mixtures built from the raw
corpora, noisy speech) is written in this layout, which is the layout of the released
benchmark's ESC-50 / AudioCaps / Clotho / MUSIC data. The CSV has at least the columns
``idx`` and ``caption``; other text columns (``label``, ``paraphrase``, ``labels``, ...) are
alternative queries; an optional ``class`` column names the group used for per-class
aggregation; columns ending in ``wav`` (source files) or ``ytid`` (their YouTube ids) and a few bookkeeping columns (see
:data:`NON_QUERY_COLUMNS`) record provenance.
"""
import csv
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Union

from ..errors import AudioSepError
from ..fileio import atomic_write
from .textfile import read_csv_lines

PathLike = Union[str, os.PathLike]

#: Columns that never hold a text query.
NON_QUERY_COLUMNS = frozenset(
    {"idx", "id", "file_id", "class", "class_id", "dataset", "snr_db", "scale", "target_lufs",
     "background_lufs", "start", "duration", "split", "index", "noise_class"}
)
#: Provenance columns: source files (``src_wav``, ``noise_wav1``...) and their YouTube ids
#: (``src_ytid``, ``noise_ytid1``...).
_WAV_COLUMN = re.compile(r".*(wav|ytid)\d*(\.\d+)?$")


def is_query_column(name: str) -> bool:
    """Whether a CSV column holds a text query (not an index, a path or a level)."""
    return name not in NON_QUERY_COLUMNS and not _WAV_COLUMN.fullmatch(name)


@dataclass(frozen=True)
class EvalItem:
    """One evaluation example: where its files are and what it can be queried with.

    Attributes:
        id: unique name of the example.
        mixture: path of the mixture file.
        target: path of the target source file.
        queries: query column -> text.
        group: the class used for per-class aggregation ("" when none).
    """

    id: str
    mixture: Path
    target: Path
    queries: Dict[str, str] = field(default_factory=dict)
    group: str = ""


def read_csv_rows(path: PathLike) -> List[Dict[str, str]]:
    """Rows of a CSV file as dicts of strings (no type guessing: "None", "NA" stay text).

    A repeated column name gets a ``.1``, ``.2`` ... suffix for its later occurrences (the
    released ``clotho_eval.csv`` names two columns ``noise_wav1``).

    The file must be UTF-8, with or without a byte-order mark (:mod:`.textfile`).

    Raises:
        AudioSepError: the file is missing, empty, not UTF-8 (naming the line), or a row has
            the wrong number of fields.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioSepError(f"CSV file not found: {path}")
    lines = read_csv_lines(path)
    if not lines:
        raise AudioSepError(f"CSV file {path} is empty")
    names: List[str] = []
    for name in (h.strip() for h in lines[0][1]):
        unique, k = name, 0
        while unique in names:
            k += 1
            unique = f"{name}.{k}"
        names.append(unique)
    rows = []
    for line, values in lines[1:]:
        if len(values) != len(names):
            raise AudioSepError(f"{path}, line {line}: {len(values)} fields, expected {len(names)}")
        rows.append(dict(zip(names, values)))
    return rows


def read_eval_list(csv_path: PathLike) -> List[EvalItem]:
    """Items of an evaluation list in the common format.

    Args:
        csv_path: the CSV; the audio files are in the same folder.

    Returns:
        One :class:`EvalItem` per row, queried by every query column of the CSV.

    Raises:
        AudioSepError: the CSV lacks the ``idx`` or ``caption`` column or repeats an ``idx``.
    """
    csv_path = Path(csv_path)
    rows = read_csv_rows(csv_path)
    folder = csv_path.resolve().parent
    if rows and not {"idx", "caption"} <= set(rows[0]):
        raise AudioSepError(f"{csv_path} needs the columns 'idx' and 'caption', has {sorted(rows[0])}")
    items, seen = [], set()
    for row in rows:
        idx = row["idx"].strip()
        if idx in seen:
            raise AudioSepError(f"{csv_path}: idx {idx} appears twice")
        seen.add(idx)
        items.append(
            EvalItem(
                id=row.get("id") or idx,
                mixture=folder / f"mixture-{idx}.wav",
                target=folder / f"segment-{idx}.wav",
                queries={k: v for k, v in row.items() if is_query_column(k)},
                group=row.get("class", ""),
            )
        )
    return items


def write_csv_atomic(path: PathLike, rows: Sequence[Dict[str, object]], columns: Sequence[str]) -> Path:
    """Write rows (dicts) under the given columns to a CSV, through a temporary file."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n", extrasaction="raise")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(buffer.getvalue())
    return path


def write_eval_list(csv_path: PathLike, rows: Sequence[Dict[str, object]]) -> Path:
    """Write the CSV of an evaluation list (the wav files are written by the caller).

    Columns: ``idx``, ``caption``, then the other columns in order of first appearance.

    Raises:
        AudioSepError: a row lacks ``idx`` or ``caption``.
    """
    columns: List[str] = ["idx", "caption"]
    for row in rows:
        if "idx" not in row or "caption" not in row:
            raise AudioSepError(f"evaluation-list row without 'idx' or 'caption': {row}")
        columns += [k for k in row if k not in columns]
    return write_csv_atomic(csv_path, rows, columns)
