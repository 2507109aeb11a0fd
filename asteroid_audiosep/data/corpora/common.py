"""What the corpus preparations share: finding downloaded audio by clip id, metadata
readers, provenance, and writing datafiles that keep only clips whose audio exists."""
import logging
import os
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ...audio import AUDIO_EXTENSIONS
from ...errors import AudioSepError
from ...progress import progress
from ..clipnames import parse_youtube_name, youtube_id_keys  # noqa: F401 (the one YouTube-id rule)
from ..datafile import write_datafile
from ..textfile import read_csv_lines

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

#: Provenance of each corpus, stored in the datafiles it produces (``get_infos``).
CORPUS_INFOS: Dict[str, Dict] = {
    "audioset": {"dataset": "AudioSet", "url": "https://research.google.com/audioset/",
                 "licenses": [{"title": "AudioSet labels", "license": "CC BY 4.0"},
                              {"title": "audio", "license": "YouTube videos, their uploaders' terms"}]},
    "vggsound": {"dataset": "VGGSound", "url": "https://www.robots.ox.ac.uk/~vgg/data/vggsound/",
                 "licenses": [{"title": "VGGSound annotations", "license": "CC BY 4.0"},
                              {"title": "audio", "license": "YouTube videos, their uploaders' terms"}]},
    "audiocaps": {"dataset": "AudioCaps", "url": "https://audiocaps.github.io/",
                  "licenses": [{"title": "AudioCaps captions", "license": "MIT"},
                               {"title": "audio", "license": "YouTube videos (AudioSet), their uploaders' terms"}]},
    "clotho": {"dataset": "Clotho v2", "url": "https://zenodo.org/record/4783391",
               "licenses": [{"title": "Clotho",
                             "license": "see the Zenodo record (Freesound audio under CC licences)"}]},
    "wavcaps": {"dataset": "WavCaps", "url": "https://huggingface.co/datasets/cvssp/WavCaps",
                "licenses": [{"title": "WavCaps", "license": "academic use only; each source's own licence"}]},
    "esc50": {"dataset": "ESC-50", "url": "https://github.com/karolpiczak/ESC-50",
              "licenses": [{"title": "ESC-50", "license": "CC BY-NC 3.0"}]},
    "music": {"dataset": "MUSIC", "url": "https://github.com/roudimit/MUSIC_dataset",
              "licenses": [{"title": "audio", "license": "YouTube videos, their uploaders' terms"}]},
    "fsd50k": {"dataset": "FSD50K", "url": "https://zenodo.org/record/4060432",
               "licenses": [{"title": "FSD50K",
                             "license": "CC BY 4.0 (clips: CC0, CC BY or CC BY-NC, see its LICENSE)"}]},
    "voicebank_demand": {"dataset": "Voicebank-DEMAND", "url": "https://doi.org/10.7488/ds/2117",
                         "licenses": [{"title": "Voicebank-DEMAND", "license": "CC BY 4.0"}]},
}


#: How clips of each corpus are identified when checking train/evaluation overlap:
#: ``youtube`` (the YouTube id in the file name) or ``file_name``.
CLIP_ID: Dict[str, str] = {"audioset": "youtube", "vggsound": "youtube", "audiocaps": "youtube",
                           "music": "youtube", "clotho": "file_name", "esc50": "file_name",
                           "fsd50k": "file_name"}


def caption_from_label(label: str) -> str:
    """A class label as text: ``"chirping_birds"`` -> ``"chirping birds"``."""
    return " ".join(label.replace("_", " ").split())


def index_audio(
    roots: Union[PathLike, Sequence[PathLike]],
    keys: Callable[[str], Iterable[str]] = lambda stem: [stem],
) -> Dict[str, Path]:
    """Map keys derived from file names to the audio files under some folders.

    Args:
        roots: folders searched recursively.
        keys: file stem -> the keys it can be found by (default: the stem itself).

    Returns:
        key -> path; when two files give the same key the first (sorted) wins.

    Raises:
        AudioSepError: a root folder does not exist.
    """
    roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
    index: Dict[str, Path] = {}
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise AudioSepError(f"audio folder not found: {root}")
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        for path in progress(files, desc=f"indexing {root.name}", unit="file", leave=False):
            for key in keys(path.stem):
                index.setdefault(key, path)
    return index


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a clear error naming the corpus file expected."""
    if not path.is_file():
        raise AudioSepError(f"{what} not found: {path} (see docs/data.md for the expected layout)")
    return path


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a clear error naming the corpus folder expected."""
    if not path.is_dir():
        raise AudioSepError(f"{what} not found: {path} (see docs/data.md for the expected layout)")
    return path


def read_table(path: PathLike, header: bool = True, comment: Optional[str] = None) -> List[List[str]]:
    """Rows of a UTF-8 CSV file as lists of stripped strings (comment lines and blank lines
    skipped); :func:`read_numbered_table` also gives each row's line number."""
    return [row for _, row in read_numbered_table(path, header, comment)]


def read_numbered_table(path: PathLike, header: bool = True,
                        comment: Optional[str] = None) -> List[Tuple[int, List[str]]]:
    """``(line, row)`` pairs of a UTF-8 CSV file (with or without BOM), cells stripped.

    Raises:
        AudioSepError: the file is not UTF-8 (naming its line) or not CSV.
    """
    rows = [(line, [cell.strip() for cell in row])
            for line, row in read_csv_lines(path, comment or "", skipinitialspace=True)
            if any(cell.strip() for cell in row)]
    return rows[1:] if header else rows


def attach_audio(
    clips: List[Dict], index: Dict[str, Path], key: str, corpus: str, skip_missing: bool = True
) -> List[Dict]:
    """Set each clip's ``wav`` from an audio index; report clips whose audio is missing.

    Args:
        clips: metadata dicts, each with the lookup key under ``key`` (or a list of keys,
            tried in order: a clip may be found by several names).
        index: lookup key -> audio path (see :func:`index_audio`).
        key: the clip field to look up.
        corpus: corpus name for messages.
        skip_missing: drop clips without audio with one warning (downloads of YouTube-based
            corpora always miss some videos); otherwise raise.

    Returns:
        The clips that have audio, with ``wav`` set.

    Raises:
        AudioSepError: no clip has audio, or some are missing and ``skip_missing`` is false.
    """
    found, missing = [], []
    for clip in clips:
        keys = clip[key] if isinstance(clip[key], list) else [clip[key]]
        path = next((index[k] for k in keys if k in index), None)
        if path is None:
            missing.append(keys[0])
        else:
            found.append(dict(clip, wav=str(path)))
    if missing:
        message = (f"{corpus}: no audio file for {len(missing)} of {len(clips)} clips "
                   f"(e.g. {', '.join(map(str, missing[:5]))})")
        if not skip_missing:
            raise AudioSepError(message)
        logger.warning("%s; leaving them out", message)
    if not found:
        raise AudioSepError(f"{corpus}: no clip has an audio file; check the audio folder (see docs/data.md)")
    return found


def entry_youtube_id(name: str) -> str:
    """The YouTube id recorded in a datafile entry for a clip listed as ``name`` (a bare id or a
    YouTube-named file stem; "" when it is neither)."""
    found = parse_youtube_name(name)
    return found[0][0] if found else ""


def write_corpus_datafile(
    path: PathLike, clips: List[Dict], corpus: str, clip_id: Optional[str] = None,
    dropped: Optional[Dict[str, int]] = None,
) -> Path:
    """Write clips (``wav``, ``captions``, optional ``labels``) as a datafile with provenance.

    A clip's ``ytid`` (its YouTube id, when the corpus lists it) is written in the entry, so
    that the overlap check knows the clip whatever its file is called (audiocaps-download
    names files by caption row, ``103549.ogg``).

    Args:
        path: the datafile.
        clips: the clips.
        corpus: a key of :data:`CORPUS_INFOS`.
        clip_id: how a clip is identified across corpora (default: the corpus's
            :data:`CLIP_ID`), recorded in ``infos`` for the train/evaluation overlap check.
        dropped: reason -> number of clips left out on purpose, recorded in ``infos``.
    """
    entries = [{"wav": c["wav"], "captions": c["captions"], "labels": c.get("labels", []),
                **({"ytid": entry_youtube_id(c["ytid"])} if c.get("ytid") and entry_youtube_id(c["ytid"]) else {}),
                **{k: c[k] for k in ("video", "image") if c.get(k)}} for c in clips]
    infos = dict(CORPUS_INFOS.get(corpus, {}))
    if clip_id or CLIP_ID.get(corpus):
        infos["clip_id"] = clip_id or CLIP_ID[corpus]
    if dropped:
        infos["dropped_clips"] = dict(dropped)
    path = write_datafile(path, entries, infos=infos or None)
    logger.info("wrote %s (%d clips)", path, len(entries))
    return path


def write_corpus_datafiles(planned: Dict[str, Dict]) -> Dict[str, Path]:
    """Write several datafiles of one corpus once all of them have been read.

    Preparations read every requested split first and call this last, so that a missing
    input leaves no datafile of the invocation behind.

    Args:
        planned: name -> keyword arguments of :func:`write_corpus_datafile`.

    Returns:
        name -> written path.
    """
    return {name: write_corpus_datafile(**kwargs) for name, kwargs in planned.items()}
