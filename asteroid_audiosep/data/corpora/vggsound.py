"""VGGSound: the label list -> training datafile, and the paper's evaluation protocol
(pairs of test clips of different classes, each loudness-normalised, peak-limited).

Published layout (https://www.robots.ox.ac.uk/~vgg/data/vggsound/)::

    <root>/vggsound.csv           # no header: YouTube ID, start seconds, label, train|test
    <root>/audio/...              # clips as <YTID>_<start:06d>.wav (audio extracted from the
                                  # videos; any sub-folders)
    <root>/video/...              # optional: the videos <YTID>_<start:06d>.mp4 (.mkv, ...):
                                  # recorded as `video`; --extract-audio writes their audio
"""
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ...errors import AudioSepError
from ..clipnames import youtube_segment_keys
from ..evalmix import Excerpt, MixtureSpec, build_eval_mixtures
from ..textfile import warn_blank_captions
from .common import (
    attach_audio,
    index_audio,
    read_numbered_table,
    require_file,
    write_corpus_datafiles,
)
from .videos import attach_videos, video_inputs

PathLike = Union[str, os.PathLike]


def read_vggsound_rows(root: PathLike) -> List[Dict]:
    """Rows of ``vggsound.csv`` without audio: ``key`` (``<YTID>_<start:06d>``), ``label``,
    ``split``, ``captions``, ``labels``."""
    clips, blank = [], []
    path = require_file(Path(root) / "vggsound.csv", "VGGSound list vggsound.csv")
    rows = read_numbered_table(path, header=False)
    for line, row in rows:
        if len(row) < 4:
            raise AudioSepError(f"{path}, line {line}: expected 'YTID, start, label, split', got {row}")
        ytid, start, label, split = row[0], row[1], ",".join(row[2:-1]).strip(), row[-1]
        if not label:
            blank.append(f"line {line}")
            continue
        clips.append({"key": f"{ytid}_{int(float(start)):06d}", "ytid": ytid, "label": label, "split": split,
                      "captions": [label], "labels": [label]})
    warn_blank_captions(path, blank, len(rows))
    return clips


def _vggsound_keys(stem: str) -> List[str]:
    return youtube_segment_keys(stem)  # the stem, and <YTID>_<start:06d> from any YouTube naming


def read_vggsound(root: PathLike, audio_dir: Optional[PathLike] = None, skip_missing: bool = True,
                  split: Optional[str] = None, audio_roots: Optional[List[Path]] = None) -> List[Dict]:
    """Clips of ``vggsound.csv`` (of one ``split`` when given) that have audio: the fields of
    :func:`read_vggsound_rows` and ``wav``. Missing audio is counted over those clips only.
    ``audio_roots`` (folders searched for audio) replaces ``audio_dir`` when given."""
    root = Path(root)
    clips = [c for c in read_vggsound_rows(root) if split is None or c["split"] == split]
    if not clips:
        raise AudioSepError(f"VGGSound: no {split} clip in vggsound.csv")

    index = index_audio(audio_roots or (Path(audio_dir) if audio_dir else root / "audio"), _vggsound_keys)
    return attach_audio(clips, index, "key", f"VGGSound {split or 'all'}", skip_missing)


def vggsound_eval_clips(root: PathLike) -> Tuple[Path, List[str]]:
    """``vggsound.csv`` and the keys of its test clips (what the protocol evaluates on)."""
    keys = [c["key"] for c in read_vggsound_rows(root) if c["split"] == "test"]
    return Path(root) / "vggsound.csv", keys


def prepare_vggsound(root: PathLike, out_dir: PathLike, audio_dir: Optional[PathLike] = None,
                     skip_missing: bool = True, video_dir: Optional[PathLike] = None,
                     extract_audio: bool = False) -> Dict[str, Path]:
    """Write ``vggsound_train.json`` (caption = class label) from the train split; a clip's video
    (``video_dir``, default ``<root>/video``) is recorded as ``video``, and ``extract_audio``
    first writes the videos' audio tracks to ``<out_dir>/audio``."""
    videos, audio_roots = video_inputs(root, out_dir, _vggsound_keys, audio_dir, video_dir, extract_audio)
    clips = attach_videos(read_vggsound(root, audio_dir, skip_missing, split="train", audio_roots=audio_roots),
                          videos, "key")
    return write_corpus_datafiles(
        {"train": dict(path=Path(out_dir) / "vggsound_train.json", clips=clips, corpus="vggsound")})


def vggsound_eval_specs(clips: List[Dict], num_mixtures: int = 1000, seed: int = 0) -> List[MixtureSpec]:
    """Pairs (target, background) of clips with different labels, drawn with ``seed``."""
    if len({c["label"] for c in clips}) < 2:
        raise AudioSepError("VGGSound evaluation needs test clips of at least 2 classes")
    rng = np.random.default_rng(seed)
    specs = []
    targets = rng.permutation(len(clips))
    for k in range(num_mixtures):
        target = clips[targets[k % len(clips)]]
        others = [c for c in clips if c["label"] != target["label"]]
        background = others[int(rng.integers(len(others)))]
        columns = {"caption": target["label"], "class": target["label"],
                   "file_id": f"{target['key']}+++{background['key']}"}
        specs.append(MixtureSpec(Excerpt(Path(target["wav"]), ytid=target["ytid"]),
                                 [Excerpt(Path(background["wav"]), ytid=background["ytid"])], columns))
    return specs


def build_vggsound_eval(
    root: PathLike, out_dir: PathLike, sample_rate: int = 32000, num_mixtures: int = 1000, seed: int = 0,
    audio_dir: Optional[PathLike] = None, lufs_range=(-35.0, -25.0),
) -> Path:
    """Build the VGGSound evaluation mixtures: each source normalised to a loudness drawn in
    ``lufs_range`` (pyloudnorm), the mixture peak-limited to 0.9. Returns the CSV path."""
    clips = read_vggsound(root, audio_dir, split="test")
    specs = vggsound_eval_specs(clips, num_mixtures, seed)
    return build_eval_mixtures(specs, out_dir, sample_rate=sample_rate, level="loudness",
                               lufs_range=lufs_range, seed=seed)
