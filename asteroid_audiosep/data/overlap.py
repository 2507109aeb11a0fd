"""Train/evaluation overlap: find training clips that are also evaluation clips, and drop them.

A clip is identified across corpora the way the corpora share sources: by YouTube id for
AudioSet, AudioCaps, VGGSound, MUSIC and WavCaps-AudioSet_SL (``Y<id>.wav``, ``<id>_30.000.flac``
and ``<id>_000030`` all name the video ``<id>``), by file name for Clotho, ESC-50 and the other
WavCaps sources. A training datafile says which in its ``infos.clip_id`` (written by the corpus
preparations; older files are recognised by ``infos.dataset``); datafiles without a known
identity (the synthetic mini corpus, a user's own list) are not checked.
"""

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Union

from ..errors import AudioSepError
from .clipnames import youtube_ids
from .datafile import datafile_infos, read_datafile, write_datafile
from .evallist import read_csv_rows

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

YOUTUBE, FILE_NAME = "youtube", "file_name"

_DATASET_CLIP_ID = {
    "AudioSet": YOUTUBE,
    "VGGSound": YOUTUBE,
    "AudioCaps": YOUTUBE,
    "MUSIC": YOUTUBE,
    "Clotho v2": FILE_NAME,
    "ESC-50": FILE_NAME,
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
    if infos.get("clip_id") in (YOUTUBE, FILE_NAME):
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
    """

    datafile: Path
    eval_set: str
    wavs: List[str] = field(default_factory=list)

    def __str__(self) -> str:
        examples = ", ".join(Path(w).name for w in self.wavs[:3])
        return (
            f"{len(self.wavs)} clips of {self.datafile} are in the evaluation set {self.eval_set} "
            f"(e.g. {examples})"
        )


def find_eval_overlap(
    train_datafiles: Iterable[PathLike], eval_sets: Mapping[str, Iterable[str]]
) -> List[Overlap]:
    """Every (training datafile, evaluation set) pair that shares clips.

    Args:
        train_datafiles: training datafiles; those without a known clip identity are skipped.
        eval_sets: evaluation set name (its file) -> clip names (:func:`eval_list_clips`).

    Returns:
        One :class:`Overlap` per pair that shares at least one clip.
    """
    eval_keys = {
        name: {
            kind: set().union(*(clip_keys(n, kind) for n in names)) if names else set()
            for kind in (YOUTUBE, FILE_NAME)
        }
        for name, names in ((k, list(v)) for k, v in eval_sets.items())
    }
    found = []
    for path in map(Path, train_datafiles):
        kind = datafile_clip_id(path)
        if kind is None:
            logger.info("overlap check: %s has no known clip identity, not checked", path)
            continue
        entries = read_datafile(path)
        for name, keys in eval_keys.items():
            wavs = [e["wav"] for e in entries if entry_keys(e, kind) & keys[kind]]
            if wavs:
                found.append(Overlap(path, name, wavs))
    return found


def remove_eval_overlap(
    train_datafiles: Sequence[PathLike],
    eval_sets: Mapping[str, Iterable[str]],
    strict: bool = False,
) -> List[Overlap]:
    """Drop from the training datafiles every clip that is also an evaluation clip.

    Each affected datafile is rewritten without those clips; ``infos.dropped_clips.eval_overlap``
    adds up how many were dropped (and ``infos.dropped_clips["overlap with <set>"]`` per set).
    One warning per (datafile, evaluation set) pair names both files.

    Args:
        train_datafiles: the prepared training datafiles.
        eval_sets: evaluation set name -> clip names.
        strict: raise instead of dropping.

    Returns:
        The overlaps found (before dropping).

    Raises:
        AudioSepError: overlap found and ``strict``; or every clip of a datafile overlaps.
    """
    overlaps = find_eval_overlap(train_datafiles, eval_sets)
    if overlaps and strict:
        raise AudioSepError(
            "training clips are also evaluation clips (strict):\n  "
            + "\n  ".join(map(str, overlaps))
        )
    by_file: Dict[Path, List[Overlap]] = {}
    for overlap in overlaps:
        logger.warning("%s; dropping them from the training data", overlap)
        by_file.setdefault(overlap.datafile, []).append(overlap)
    for path, items in by_file.items():
        drop = set().union(*(o.wavs for o in items))
        entries = read_datafile(path)
        kept = [e for e in entries if e["wav"] not in drop]
        if not kept:
            raise AudioSepError(f"every clip of {path} is an evaluation clip ({items[0].eval_set})")
        infos = datafile_infos(path)
        dropped = dict(infos.get("dropped_clips") or {})
        dropped["eval_overlap"] = int(dropped.get("eval_overlap", 0)) + len(entries) - len(kept)
        for o in items:
            key = f"overlap with {o.eval_set}"
            dropped[key] = int(dropped.get(key, 0)) + len(o.wavs)
        write_datafile(path, kept, infos=dict(infos, dropped_clips=dropped))
        logger.info(
            "%s: %d of %d clips dropped (evaluation overlap)",
            path,
            len(entries) - len(kept),
            len(entries),
        )
    return overlaps


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
