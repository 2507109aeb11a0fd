"""The one rule that reads a YouTube id out of a downloaded clip's file name, shared by the corpus
preparations (finding a listed clip's audio) and the train/evaluation overlap check.

Every naming the documented downloaders produce (docs/data.md)::

    Y--PJHxphWEs.wav                  PANNs / the released benchmark: Y<id>
    --PJHxphWEs.wav                   <id>
    --PJHxphWEs_30.0-40.0.ogg         audioset-download: <id>_<start>-<end>
    --PJHxphWEs_30.000_40.000.flac    audiosetdl: <id>_<start>_<end>
    --PJHxphWEs_30.flac               aac-datasets (AudioCaps): <id>_<start>
    --PJHxphWEs_000030.mp4            VGGSound: <id>_<start, 6 digits>

A YouTube id is 11 characters of ``A-Z a-z 0-9 _ -`` (it may start with ``-`` or ``_``). A name
can be read two ways when it starts with ``Y`` (``Y`` + id, or an id starting with ``Y``): both
are candidates. Names that are not YouTube-named (``Santa Motor.wav``, ``1-100032-A-0.wav``,
audiocaps-download's ``103549.ogg``) give none.
"""
import re
from pathlib import Path
from typing import List, Optional, Set, Tuple

#: Extensions removed before reading a name (audio and video files).
MEDIA_SUFFIXES = frozenset(
    {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aac", ".mp4", ".mkv", ".webm", ".avi", ".mov"}
)
_TIME = r"\d+(?:\.\d+)?"
_NAME = re.compile(rf"(?P<id>[A-Za-z0-9_-]{{11}})(?:_(?P<start>{_TIME})(?:[_-]{_TIME})?)?")


def media_stem(name: str) -> str:
    """The file name without its folder and its audio/video extension (other dots kept:
    ``x_30.0-40.0`` stays whole)."""
    name = Path(str(name)).name
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix.lower() in MEDIA_SUFFIXES else name


def parse_youtube_name(name: str) -> List[Tuple[str, Optional[float]]]:
    """Every ``(YouTube id, start seconds or None)`` a file name can stand for.

    Args:
        name: a file name or path (with or without extension).

    Returns:
        The candidates (usually one; two for some names starting with ``Y``; none for a name
        that is not YouTube-named).
    """
    stem = media_stem(name)
    found = []
    for prefix in ("Y", ""):
        if stem.startswith(prefix):
            match = _NAME.fullmatch(stem[len(prefix):])
            if match:
                start = match.group("start")
                found.append((match.group("id"), float(start) if start is not None else None))
    return found


def youtube_ids(name: str) -> Set[str]:
    """The YouTube ids a file name can stand for (empty when it is not YouTube-named).

    ``Y--PJHxphWEs.wav``, ``--PJHxphWEs_30.0-40.0.ogg`` and ``--PJHxphWEs_000030`` give
    ``{"--PJHxphWEs"}``; ``Santa Motor.wav`` or ``1-100032-A-0.wav`` give nothing.
    """
    return {ytid for ytid, _ in parse_youtube_name(name)}


def youtube_id_keys(stem: str) -> List[str]:
    """Keys a downloaded file can be looked up by: its stem, then its YouTube ids."""
    return list(dict.fromkeys([stem, *sorted(youtube_ids(stem))]))


def youtube_segment_keys(stem: str) -> List[str]:
    """Keys of a file named after a YouTube segment: its stem, then ``<id>_<start:06d>`` (the
    key of VGGSound's list) for each reading with a start time."""
    keys = [stem] + [f"{ytid}_{int(start):06d}" for ytid, start in parse_youtube_name(stem) if start is not None]
    return list(dict.fromkeys(keys))
