"""Train/evaluation overlap: find training clips that are also evaluation clips, and drop them.

A clip is identified across corpora the way the corpora share sources: by YouTube id for
AudioSet, AudioCaps, VGGSound, MUSIC and WavCaps-AudioSet_SL (``Y<id>.wav``, ``<id>_30.000.flac``
and ``<id>_000030`` all name the video ``<id>``), by file name for Clotho, ESC-50 and the other
WavCaps sources. A training datafile says which in its ``infos.clip_id`` (written by the corpus
preparations; older files are recognised by ``infos.dataset``); entries of YouTube corpora also
carry the clip's ``ytid``. The mini corpus (``infos.dataset: "mini (synthetic)"``) is
``synthetic``: every split is synthesised separately, so none of its clips can be an evaluation
clip. Datafiles without a known identity (a user's own list) cannot be checked (logged).

Every checked datafile records the check in ``infos.overlap_check`` (:func:`record_overlap_check`)
and training refuses a corpus datafile whose check never ran (:func:`check_overlap_recorded`).
"""

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Union

from ..errors import AudioSepError
from .clipnames import youtube_ids
from .datafile import datafile_infos, read_datafile, write_datafile
from .evallist import read_csv_rows

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

YOUTUBE, FILE_NAME, SYNTHETIC = "youtube", "file_name", "synthetic"
#: Statuses of a recorded check that training accepts.
PASSED = ("clean", "dropped")

_DATASET_CLIP_ID = {
    "AudioSet": YOUTUBE,
    "VGGSound": YOUTUBE,
    "AudioCaps": YOUTUBE,
    "MUSIC": YOUTUBE,
    "Clotho v2": FILE_NAME,
    "ESC-50": FILE_NAME,
    "mini (synthetic)": SYNTHETIC,
}
_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
_SOURCE_COLUMNS = re.compile(r".*(wav|ytid)\d*(\.\d+)?|file_id")


def clip_keys(name: str, kind: str) -> Set[str]:
    """Identity keys of a clip name: YouTube ids (``kind="youtube"``, the one rule of
    :mod:`.clipnames`) or the file name."""
    if kind == YOUTUBE:
        return {f"yt:{i}" for i in youtube_ids(name)}
    return {f"name:{Path(name).name}"}


def entry_keys(entry: Dict, kind: str) -> Set[str]:
    """Identity keys of a datafile entry: those of its file name, and for YouTube corpora the
    ``ytid`` the preparation recorded (which names the clip whatever its file is called)."""
    keys = clip_keys(Path(entry["wav"]).name, kind)
    if kind == YOUTUBE and entry.get("ytid"):
        keys |= clip_keys(str(entry["ytid"]), kind)
    return keys


def datafile_clip_id(path: PathLike) -> Optional[str]:
    """How the clips of a training datafile are identified (None: unknown, not checked)."""
    infos = datafile_infos(path)
    if infos.get("clip_id") in (YOUTUBE, FILE_NAME, SYNTHETIC):
        return infos["clip_id"]
    if infos.get("dataset") == "WavCaps":
        return YOUTUBE if "AudioSet_SL" in Path(path).name else FILE_NAME
    return _DATASET_CLIP_ID.get(infos.get("dataset"))


def eval_list_clips(csv_path: PathLike) -> List[str]:
    """Names of every source clip an evaluation list was made of (targets and backgrounds).

    Reads the columns ending in ``wav`` (``src_wav``, ``noise_wav1``, ``s0_wav``...), in
    ``ytid`` (``src_ytid``, ``noise_ytid1``...: the YouTube ids our lists record) and
    ``file_id`` of the common format and of the released benchmark's metadata; a value like
    VGGSound's ``<a>+++<b>`` names two clips.
    """
    names = []
    for row in read_csv_rows(csv_path):
        for column, value in row.items():
            if _SOURCE_COLUMNS.fullmatch(column) and value.strip():
                base = Path(value.strip()).name
                if "+++" in base:  # VGGSound's "<a>+++<b>" (a file id, or a file named after it)
                    audio = Path(base).suffix.lower() in _AUDIO_SUFFIXES
                    names += (Path(base).stem if audio else base).split("+++")
                else:
                    names.append(base)
    return names


@dataclass
class Overlap:
    """Training clips of one datafile that are also clips of one evaluation set.

    Attributes:
        datafile: the training datafile.
        eval_set: the evaluation list (or corpus list) they were found in.
        wavs: the overlapping training entries' audio paths.
        name: how messages name the datafile (default: its path).
    """

    datafile: Path
    eval_set: str
    wavs: List[str] = field(default_factory=list)
    name: str = ""

    def __str__(self) -> str:
        examples = ", ".join(Path(w).name for w in self.wavs[:3])
        return (
            f"{len(self.wavs)} clips of {self.name or self.datafile} are in the evaluation set {self.eval_set} "
            f"(e.g. {examples})"
        )


def _eval_keys(eval_sets: Mapping[str, Iterable[str]]) -> Dict[str, Dict[str, Set[str]]]:
    return {
        name: {
            kind: set().union(*(clip_keys(n, kind) for n in names)) if names else set()
            for kind in (YOUTUBE, FILE_NAME)
        }
        for name, names in ((k, list(v)) for k, v in eval_sets.items())
    }


def find_eval_overlap(
    train_datafiles: Iterable[PathLike], eval_sets: Mapping[str, Iterable[str]],
    names: Optional[Callable[[Path], str]] = None,
) -> List[Overlap]:
    """Every (training datafile, evaluation set) pair that shares clips.

    Args:
        train_datafiles: training datafiles; those without a known clip identity (and the
            synthetic mini corpus, which cannot share clips) are skipped.
        eval_sets: evaluation set name (its file) -> clip names (:func:`eval_list_clips`).
        names: how messages name a datafile (default: its path).

    Returns:
        One :class:`Overlap` per pair that shares at least one clip.
    """
    eval_keys = _eval_keys(eval_sets)
    found = []
    for path in map(Path, train_datafiles):
        name = names(path) if names else str(path)
        kind = datafile_clip_id(path)
        if kind is None:
            logger.warning("overlap check: %s has no known clip identity (not a prepared corpus), not checked", name)
            continue
        if kind == SYNTHETIC:
            logger.info("overlap check: %s is synthetic (each split synthesised apart), nothing to check", name)
            continue
        entries = read_datafile(path)
        for eval_set, keys in eval_keys.items():
            wavs = [e["wav"] for e in entries if entry_keys(e, kind) & keys[kind]]
            if wavs:
                found.append(Overlap(path, eval_set, wavs, name if names else ""))
    return found


def record_overlap_check(path: PathLike, checked: Sequence[str], not_checked: Sequence[str] = (),
                         dropped: int = 0, entries: Optional[List[Dict[str, Any]]] = None,
                         infos: Optional[Dict[str, Any]] = None) -> None:
    """Write the result of the overlap check into a datafile's ``infos.overlap_check``:
    ``{"status": "clean" | "dropped", "clip_id", "eval_sets": [...], "not_checked": [...],
    "dropped": n}`` (evaluation sets as absolute paths, or corpus lists).

    Args:
        path: the datafile (rewritten atomically, with ``entries`` when given).
        checked: the evaluation sets it was compared with.
        not_checked: configured evaluation lists that did not exist yet.
        dropped: clips dropped from it.
        entries: the entries to write (default: the file's own).
        infos: the other infos to write (default: the file's own).
    """
    infos = dict(datafile_infos(path) if infos is None else infos)
    infos["overlap_check"] = {
        "status": "dropped" if dropped else "clean",
        "clip_id": datafile_clip_id(path),
        "eval_sets": [_set_name(s) for s in checked],
        "not_checked": [_set_name(s) for s in not_checked],
        "dropped": int(dropped),
    }
    write_datafile(path, read_datafile(path) if entries is None else entries, infos=infos)


def _set_name(name: str) -> str:
    """An evaluation set (its file) as recorded: its absolute path."""
    return os.path.abspath(name)


def remove_eval_overlap(
    train_datafiles: Sequence[PathLike],
    eval_sets: Mapping[str, Iterable[str]],
    strict: bool = False,
    not_checked: Sequence[str] = (),
    names: Optional[Callable[[Path], str]] = None,
) -> List[Overlap]:
    """Drop from the training datafiles every clip that is also an evaluation clip, and record
    the check in each checked datafile (:func:`record_overlap_check`).

    Nothing is written before every datafile has been checked: with ``strict``, or when every
    clip of a datafile would go, no file is changed. ``infos.dropped_clips.eval_overlap`` adds
    up how many were dropped (and ``infos.dropped_clips["overlap with <set>"]`` per set). One
    warning per (datafile, evaluation set) pair names both files.

    Args:
        train_datafiles: the prepared training datafiles.
        eval_sets: evaluation set name -> clip names.
        strict: raise instead of dropping.
        not_checked: configured evaluation lists that are not there yet (recorded as such).
        names: how messages name a datafile (stage 0 checks them in a staging folder).

    Returns:
        The overlaps found (before dropping).

    Raises:
        AudioSepError: overlap found and ``strict``; or every clip of a datafile overlaps.
    """
    overlaps = find_eval_overlap(train_datafiles, eval_sets, names)
    if overlaps and strict:
        raise AudioSepError(
            "training clips are also evaluation clips (strict: nothing written):\n  "
            + "\n  ".join(map(str, overlaps))
        )
    by_file: Dict[Path, List[Overlap]] = {}
    for overlap in overlaps:
        by_file.setdefault(overlap.datafile, []).append(overlap)
    planned = {}
    for path, items in by_file.items():
        drop = set().union(*(o.wavs for o in items))
        entries = read_datafile(path)
        kept = [e for e in entries if e["wav"] not in drop]
        if not kept:
            raise AudioSepError(f"every clip of {items[0].name or path} is an evaluation clip ({items[0].eval_set})")
        planned[path] = (entries, kept, items)
    for overlap in overlaps:
        logger.warning("%s; dropping them from the training data", overlap)
    for path in map(Path, train_datafiles):
        if datafile_clip_id(path) in (None, SYNTHETIC):
            continue  # not checked: nothing to record (and a user's own file is left as it is)
        if path not in planned:
            record_overlap_check(path, list(eval_sets), not_checked)
            continue
        entries, kept, items = planned[path]
        infos = datafile_infos(path)
        dropped = dict(infos.get("dropped_clips") or {})
        dropped["eval_overlap"] = int(dropped.get("eval_overlap", 0)) + len(entries) - len(kept)
        for o in items:
            key = f"overlap with {o.eval_set}"
            dropped[key] = int(dropped.get(key, 0)) + len(o.wavs)
        record_overlap_check(path, list(eval_sets), not_checked, len(entries) - len(kept), kept,
                             dict(infos, dropped_clips=dropped))
        logger.info("%s: %d of %d clips dropped (evaluation overlap)",
                    names(path) if names else path, len(entries) - len(kept), len(entries))
    return overlaps


def check_overlap_recorded(train_datafiles: Sequence[PathLike], eval_lists: Sequence[PathLike]) -> None:
    """Training's guard: refuse a corpus datafile whose overlap check failed or never ran while
    evaluation lists are configured.

    A datafile of a known corpus must carry a passed ``infos.overlap_check``; a configured list
    that exists now but was not among the checked sets (made later, or the configuration
    changed) is compared with it here. The synthetic mini corpus needs no check; a datafile of
    unknown origin cannot be checked (one warning).

    Args:
        train_datafiles: ``data.train_datafiles``.
        eval_lists: the configured evaluation lists (``data.valid_list``, ``evaluation.sets``,
            ``enhancement.list``), existing or not.

    Raises:
        AudioSepError: naming the datafile and how to run the check.
    """
    eval_lists = [str(p) for p in eval_lists if p]
    if not eval_lists:
        return
    how = ("run stage 0 (./run.sh --stage 0 --stop_stage 0) or: python egs/audiosep/prepare_data.py "
           "check-overlap --train {datafile} --eval " + " ".join(eval_lists))
    for path in map(Path, train_datafiles):
        kind = datafile_clip_id(path)
        if kind is None:
            logger.warning("%s has no known clip identity: its clips cannot be checked against the "
                           "evaluation sets", path)
            continue
        if kind == SYNTHETIC:
            continue
        record = datafile_infos(path).get("overlap_check")
        if not isinstance(record, dict):
            raise AudioSepError(
                f"data.train_datafiles: {path} was never checked for clips that are also evaluation clips: "
                + how.format(datafile=path))
        if record.get("status") not in PASSED:
            raise AudioSepError(
                f"data.train_datafiles: the overlap check of {path} failed ({record.get('status')}): "
                + how.format(datafile=path))
        checked = set(record.get("eval_sets") or [])
        late = [p for p in eval_lists if os.path.isfile(p) and os.path.abspath(p) not in checked]
        if late:
            overlaps = find_eval_overlap([path], {p: eval_list_clips(p) for p in late})
            if overlaps:
                raise AudioSepError(
                    f"data.train_datafiles: {path} was checked before these evaluation lists existed, and "
                    f"shares clips with them: {'; '.join(map(str, overlaps))}: " + how.format(datafile=path))


def dropped_summary(train_datafiles: Iterable[PathLike]) -> str:
    """One line: training clips left out on purpose (blacklists, evaluation overlap) over the
    datafiles that exist, from their ``infos.dropped_clips`` ("" when none)."""
    totals: Dict[str, int] = {}
    for path in map(Path, train_datafiles):
        if not path.is_file():
            continue
        try:
            dropped = datafile_infos(path).get("dropped_clips") or {}
        except AudioSepError:
            continue
        for reason in ("blacklist", "eval_overlap"):
            totals[reason] = totals.get(reason, 0) + int(dropped.get(reason, 0))
    if not any(totals.values()):
        return ""
    return (
        f"Training data: {totals.get('eval_overlap', 0)} clips dropped for overlap with the "
        f"evaluation sets, {totals.get('blacklist', 0)} by the WavCaps blacklists."
    )
