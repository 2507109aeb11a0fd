"""Check a corpus's inputs (its lists and folders) without reading or writing anything, so that
stage 0 can refuse a missing list of the last corpus before spending hours on the first."""
import inspect
import os
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Union

from ...errors import AudioSepError
from .audiocaps import SPLITS as AUDIOCAPS_SPLITS
from .audiocaps import default_audio_dir, find_audiocaps_list
from .audioset import SPLITS as AUDIOSET_SPLITS
from .clotho import SPLITS as CLOTHO_SPLITS
from .common import require_dir, require_file
from .wavcaps import SOURCES as WAVCAPS_SOURCES

PathLike = Union[str, os.PathLike]


def _splits(given, known, corpus: str, what: str = "splits"):
    unknown = [s for s in given if s not in known]
    if unknown:
        raise AudioSepError(f"unknown {corpus} {what} {unknown}; choose among {tuple(known)}")
    return list(given)


def _audio_folder(root: Path, args: Dict[str, Any], corpus: str) -> None:
    """The audio folder of a video corpus (not needed when the audio is extracted from videos)."""
    if args.get("video_dir"):
        require_dir(Path(args["video_dir"]), f"{corpus} video folder")
    if args.get("extract_audio"):
        require_dir(Path(args["video_dir"]) if args.get("video_dir") else root / "video", f"{corpus} video folder")
    else:
        require_dir(Path(args["audio_dir"]) if args.get("audio_dir") else root / "audio", f"{corpus} audio folder")


def _audioset(root: Path, args: Dict[str, Any]) -> None:
    for split in _splits(args["splits"], AUDIOSET_SPLITS, "AudioSet"):
        require_file(root / f"{split}_segments.csv", f"AudioSet {split} list")
    if not (root / "class_labels_indices.csv").is_file():
        require_file(root / "ontology.json", "AudioSet class names (class_labels_indices.csv or ontology.json)")
    _audio_folder(root, args, "AudioSet")


def _vggsound(root: Path, args: Dict[str, Any]) -> None:
    require_file(root / "vggsound.csv", "VGGSound list vggsound.csv")
    _audio_folder(root, args, "VGGSound")


def _audiocaps(root: Path, args: Dict[str, Any]) -> None:
    for split in _splits(args["splits"], AUDIOCAPS_SPLITS, "AudioCaps"):
        find_audiocaps_list(root, split)
    audio = Path(args["audio_dir"]) if args.get("audio_dir") else default_audio_dir(root)
    require_dir(audio, "AudioCaps audio folder")


def _clotho(root: Path, args: Dict[str, Any]) -> None:
    for split in _splits(args["splits"], CLOTHO_SPLITS, "Clotho"):
        require_file(root / f"clotho_captions_{split}.csv", f"Clotho {split} captions")
        require_dir(root / split, f"Clotho {split} audio folder")


def _wavcaps(root: Path, args: Dict[str, Any]) -> None:
    for source in _splits(args["sources"], WAVCAPS_SOURCES, "WavCaps", "sources"):
        require_dir(root / "json_files" / source, f"WavCaps json_files/{source}")
    for path in args.get("blacklist") or []:
        if not Path(path).exists():
            raise AudioSepError(f"WavCaps blacklist not found: {path}")
    require_dir(Path(args["audio_root"]) if args.get("audio_root") else root, "WavCaps audio root")


def _esc50(root: Path, args: Dict[str, Any]) -> None:
    require_file(root / "meta" / "esc50.csv", "ESC-50 metadata meta/esc50.csv")
    require_dir(root / "audio", "ESC-50 audio folder")


def _music(root: Path, args: Dict[str, Any]) -> None:
    require_dir(root, "MUSIC folder")
    if args.get("videos_json"):
        require_file(Path(args["videos_json"]), "MUSIC list MUSIC_solo_videos.json")


#: Corpus name -> check of its inputs, given the root and the preparation's bound arguments.
INPUT_CHECKS: Dict[str, Callable[[Path, Dict[str, Any]], None]] = {
    "audioset": _audioset,
    "vggsound": _vggsound,
    "audiocaps": _audiocaps,
    "clotho": _clotho,
    "wavcaps": _wavcaps,
    "esc50": _esc50,
    "music": _music,
}


def check_corpus_inputs(preparer: Callable, name: str, options: Mapping[str, Any]) -> None:
    """Check that the lists and folders a preparation will read exist (nothing is read).

    Args:
        preparer: the corpus's ``prepare_<name>`` (for its defaults).
        name: the corpus.
        options: ``root`` and the other arguments of the preparation (checked already).

    Raises:
        AudioSepError: a list or folder is missing (named, with the layout to look up).
    """
    given = {k: v for k, v in options.items() if v is not None}
    bound = inspect.signature(preparer).bind_partial(**given, out_dir=None)
    bound.apply_defaults()
    root = Path(bound.arguments["root"])
    require_dir(root, f"{name} root folder")
    INPUT_CHECKS[name](root, dict(bound.arguments))
