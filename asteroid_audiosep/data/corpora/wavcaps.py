"""WavCaps: its JSON caption files -> one training datafile per source.

Published layout (https://huggingface.co/datasets/cvssp/WavCaps, zip archives extracted)::

    <root>/json_files/AudioSet_SL/as_final.json         # {"data": [{"id", "caption", ...}]}
    <root>/json_files/BBC_Sound_Effects/bbc_final.json
    <root>/json_files/FreeSound/fsd_final.json
    <root>/json_files/SoundBible/sb_final.json         # (older releases: a bare list)
    <root>/json_files/blacklist/blacklist_exclude_test_ac.json   # clips overlapping test sets:
    <root>/json_files/blacklist/blacklist_exclude_ub8k_esc50_vggsound.json  # {"AudioSet": [...],
                                                        #  "FreeSound": [...]}
    <root>/<Source>*/.../<id>.flac                      # audio, in a folder whose name starts
                                                        # with the source's name (any depth)
"""

import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Union

from ...errors import AudioSepError
from ..textfile import read_json, warn_blank_captions
from .common import (
    attach_audio,
    index_audio,
    require_dir,
    write_corpus_datafiles,
    youtube_id_keys,
)

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

SOURCES = ("AudioSet_SL", "BBC_Sound_Effects", "FreeSound", "SoundBible")

#: Key of each source in the blacklist files.
BLACKLIST_KEYS = {
    "AudioSet_SL": "AudioSet",
    "FreeSound": "FreeSound",
    "BBC_Sound_Effects": "BBC_Sound_Effects",
    "SoundBible": "SoundBible",
}


def default_blacklists(root: PathLike) -> List[Path]:
    """The published test-set blacklists under ``<root>/json_files/blacklist/``: every JSON
    file there except ``blacklist_exclude_all_*`` (which also removes the AudioCaps *training*
    clips, a de-duplication rather than a test-set exclusion; pass it explicitly to use it)."""
    folder = Path(root) / "json_files" / "blacklist"
    return (
        sorted(p for p in folder.glob("*.json") if "exclude_all" not in p.name)
        if folder.is_dir()
        else []
    )


def clip_keys(source: str, clip_id: str) -> List[str]:
    """Names a clip can be blacklisted by: its stem, and for AudioSet_SL its YouTube id."""
    stem = Path(str(clip_id)).stem
    return youtube_id_keys(stem) if source == "AudioSet_SL" else [stem]


def read_blacklists(paths: Sequence[PathLike]) -> Dict[Path, Dict[str, Set[str]]]:
    """Blacklist file -> source -> blacklisted clip keys (see :func:`clip_keys`).

    Args:
        paths: blacklist files, or folders (every ``*.json`` in them).

    Raises:
        AudioSepError: a path is missing or a file is not ``{"<Source>": [ids], ...}``.
    """
    files: List[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(path.glob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise AudioSepError(f"WavCaps blacklist not found: {path}")
    lists: Dict[Path, Dict[str, Set[str]]] = {}
    for path in files:
        try:
            content = read_json(path)
            if not isinstance(content, dict) or not all(
                isinstance(v, list) for v in content.values()
            ):
                raise TypeError('expected {"AudioSet": [ids], "FreeSound": [ids]}')
        except (ValueError, TypeError) as err:
            raise AudioSepError(f"cannot read WavCaps blacklist {path}: {err}") from err
        lists[path] = {}
        for source, key in BLACKLIST_KEYS.items():
            ids = content.get(key, [])
            lists[path][source] = {k for i in ids for k in clip_keys(source, i)}
    return lists


def apply_blacklists(
    clips: List[Dict], source: str, lists: Dict[Path, Dict[str, Set[str]]]
) -> tuple:
    """The clips on no blacklist, and the number each blacklist file removed."""
    kept, dropped = [], {path.name: 0 for path in lists}
    for clip in clips:
        keys = clip_keys(source, clip["id"])
        hit = next(
            (p for p, by_source in lists.items() if by_source[source].intersection(keys)), None
        )
        if hit is None:
            kept.append(clip)
        else:
            dropped[hit.name] += 1
    for name, count in dropped.items():
        if count:
            logger.info("WavCaps %s: %d clips on the blacklist %s left out", source, count, name)
    return kept, dropped


def _audio_folders(audio_root: Path, source: str) -> List[Path]:
    folders = []
    for path in sorted(audio_root.rglob(f"{source}*")):
        if (
            path.is_dir()
            and "json_files" not in path.parts
            and not any(p in folders for p in path.parents)
        ):
            folders.append(path)
    return folders


def read_wavcaps(
    root: PathLike,
    source: str,
    audio_root: Optional[PathLike] = None,
    skip_missing: bool = True,
    blacklists: Optional[Dict[Path, Dict[str, Set[str]]]] = None,
    dropped: Optional[Dict[str, int]] = None,
) -> List[Dict]:
    """Clips of one WavCaps source: ``id``, ``captions``, ``wav``.

    Clips on ``blacklists`` (:func:`read_blacklists`) are left out before the audio is looked
    up (so the missing-audio warning counts only clips that would be written); ``dropped``
    receives blacklist file name -> clips it removed.
    """
    if source not in SOURCES:
        raise AudioSepError(f"unknown WavCaps source {source!r}; choose among {SOURCES}")
    root = Path(root)
    folder = require_dir(root / "json_files" / source, f"WavCaps json_files/{source}")
    clips = []
    for path in sorted(folder.glob("*.json")):
        try:
            content = read_json(path)
            data = content if isinstance(content, list) else content["data"]  # older: a bare list
            if not isinstance(data, list):
                raise TypeError("'data' is not a list")
        except (ValueError, KeyError, TypeError) as err:
            raise AudioSepError(f"cannot read WavCaps file {path}: {err}") from err
        blank = []
        for item in data:
            if not isinstance(item, dict) or "id" not in item or item.get("caption") is None:
                raise AudioSepError(f"{path}: entry without 'id' or 'caption': {item}")
            caption = str(item["caption"]).strip()
            if not caption:
                blank.append(f"id {item['id']}")
                continue
            clip = {"id": Path(str(item["id"])).stem, "captions": [caption]}
            if source == "AudioSet_SL":  # ids are AudioSet file names, Y<YTID>.wav
                clip["ytid"] = clip["id"]
            clips.append(clip)
        warn_blank_captions(path, blank, len(data))
    if not clips:
        raise AudioSepError(f"no WavCaps entry in {folder}")
    if blacklists:
        clips, removed = apply_blacklists(clips, source, blacklists)
        if dropped is not None:
            dropped.update(removed)
        if not clips:
            raise AudioSepError(f"WavCaps {source}: every clip is blacklisted")
    audio_root = Path(audio_root) if audio_root else root
    folders = _audio_folders(audio_root, source)
    if not folders:
        raise AudioSepError(
            f"no WavCaps audio folder named {source}* under {audio_root} (see docs/data.md)"
        )
    return attach_audio(clips, index_audio(folders), "id", f"WavCaps {source}", skip_missing)


def prepare_wavcaps(
    root: PathLike,
    out_dir: PathLike,
    sources: Sequence[str] = SOURCES,
    audio_root: Optional[PathLike] = None,
    skip_missing: bool = True,
    blacklist: Optional[Sequence[PathLike]] = None,
    no_blacklist: bool = False,
) -> Dict[str, Path]:
    """Write ``wavcaps_<source>.json`` for each source (caption = the WavCaps caption), leaving
    out the clips on the published test-set blacklists.

    Args:
        root: the WavCaps folder.
        out_dir: where the datafiles go.
        sources: among :data:`SOURCES`.
        audio_root: where the audio folders are (default: the root).
        skip_missing: leave out clips without audio (with a warning).
        blacklist: blacklist files or folders (default: :func:`default_blacklists`).
        no_blacklist: apply no blacklist (warned: test clips of AudioCaps, Clotho, ESC-50 and
            VGGSound then stay in the training data).

    Returns:
        source -> datafile; its ``infos.dropped_clips`` counts the clips each blacklist removed.

    Raises:
        AudioSepError: a source's captions or audio are missing (nothing is written then), or
            a blacklist cannot be read.
    """
    root = Path(root)
    for source in sources:
        if source not in SOURCES:
            raise AudioSepError(f"unknown WavCaps source {source!r}; choose among {SOURCES}")
        require_dir(root / "json_files" / source, f"WavCaps json_files/{source}")
    if no_blacklist:
        logger.warning(
            "WavCaps: no blacklist applied (no_blacklist): clips of the AudioCaps, Clotho, "
            "ESC-50 and VGGSound test sets stay in the training data"
        )
        lists = {}
    else:
        paths = list(blacklist) if blacklist else default_blacklists(root)
        if not paths:
            logger.warning(
                "WavCaps: no blacklist found under %s/json_files/blacklist/; test-set clips "
                "are only caught by the stage-0 overlap check (see docs/data.md)",
                root,
            )
        lists = read_blacklists(paths)
    planned = {}
    for source in sources:
        dropped: Dict[str, int] = {}
        clips = read_wavcaps(root, source, audio_root, skip_missing, lists, dropped)
        planned[source] = dict(
            path=Path(out_dir) / f"wavcaps_{source}.json",
            clips=clips,
            corpus="wavcaps",
            clip_id="youtube" if source == "AudioSet_SL" else "file_name",
            dropped={"blacklist": sum(dropped.values()), **dropped} if lists else None,
        )
    return write_corpus_datafiles(planned)
