"""WavCaps: its JSON caption files -> one training datafile per source.

Published layout (https://huggingface.co/datasets/cvssp/WavCaps, zip archives extracted)::

    <root>/json_files/AudioSet_SL/as_final.json         # {"data": [{"id", "caption", ...}]}
    <root>/json_files/BBC_Sound_Effects/bbc_final.json
    <root>/json_files/FreeSound/fsd_final.json
    <root>/json_files/SoundBible/sb_final.json
    <root>/<Source>*/.../<id>.flac                      # audio, in a folder whose name starts
                                                        # with the source's name (any depth)
"""
import json
import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from ...errors import AudioSepError
from .common import attach_audio, index_audio, require_dir, write_corpus_datafile

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

SOURCES = ("AudioSet_SL", "BBC_Sound_Effects", "FreeSound", "SoundBible")


def _audio_folders(audio_root: Path, source: str) -> List[Path]:
    folders = []
    for path in sorted(audio_root.rglob(f"{source}*")):
        if path.is_dir() and "json_files" not in path.parts and not any(p in folders for p in path.parents):
            folders.append(path)
    return folders


def read_wavcaps(root: PathLike, source: str, audio_root: Optional[PathLike] = None,
                 skip_missing: bool = True) -> List[Dict]:
    """Clips of one WavCaps source: ``id``, ``captions``, ``wav``."""
    if source not in SOURCES:
        raise AudioSepError(f"unknown WavCaps source {source!r}; choose among {SOURCES}")
    root = Path(root)
    folder = require_dir(root / "json_files" / source, f"WavCaps json_files/{source}")
    clips = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))["data"]
        except (ValueError, KeyError, TypeError) as err:
            raise AudioSepError(f"cannot read WavCaps file {path}: {err}") from err
        for item in data:
            if "id" not in item or not str(item.get("caption", "")).strip():
                raise AudioSepError(f"{path}: entry without 'id' or 'caption': {item}")
            clips.append({"id": Path(str(item["id"])).stem, "captions": [str(item["caption"]).strip()]})
    if not clips:
        raise AudioSepError(f"no WavCaps entry in {folder}")
    audio_root = Path(audio_root) if audio_root else root
    folders = _audio_folders(audio_root, source)
    if not folders:
        raise AudioSepError(f"no WavCaps audio folder named {source}* under {audio_root} (see docs/data.md)")
    return attach_audio(clips, index_audio(folders), "id", f"WavCaps {source}", skip_missing)


def prepare_wavcaps(root: PathLike, out_dir: PathLike, sources: Sequence[str] = SOURCES,
                    audio_root: Optional[PathLike] = None, skip_missing: bool = True) -> Dict[str, Path]:
    """Write ``wavcaps_<source>.json`` for each source (caption = the WavCaps caption)."""
    return {source: write_corpus_datafile(Path(out_dir) / f"wavcaps_{source}.json",
                                          read_wavcaps(root, source, audio_root, skip_missing), "wavcaps")
            for source in sources}
