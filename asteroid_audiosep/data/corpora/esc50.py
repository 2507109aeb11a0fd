"""ESC-50: metadata -> datafile, and the paper's evaluation protocol (40 clips per class,
each mixed at 0 dB with a clip of another class).

Published layout (https://github.com/karolpiczak/ESC-50)::

    <root>/meta/esc50.csv     # filename, fold, target, category, esc10, src_file, take
    <root>/audio/*.wav
"""
import os
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from ...errors import AudioSepError
from ..evallist import read_csv_rows
from ..evalmix import Excerpt, MixtureSpec, build_eval_mixtures
from .common import (
    attach_audio,
    caption_from_label,
    require_dir,
    require_file,
    write_corpus_datafile,
)

PathLike = Union[str, os.PathLike]


def read_esc50(root: PathLike, skip_missing: bool = True) -> List[Dict]:
    """Clips: ``filename``, ``category`` (as text), ``fold``, ``captions``, ``labels``, ``wav``."""
    root = Path(root)
    rows = read_csv_rows(require_file(root / "meta" / "esc50.csv", "ESC-50 metadata meta/esc50.csv"))
    if rows and not {"filename", "category"} <= set(rows[0]):
        raise AudioSepError("meta/esc50.csv needs the columns 'filename' and 'category'")
    folder = require_dir(root / "audio", "ESC-50 audio folder")
    clips = [{"filename": r["filename"], "category": caption_from_label(r["category"]), "fold": r.get("fold", ""),
              "captions": [caption_from_label(r["category"])], "labels": [caption_from_label(r["category"])]}
             for r in rows]
    index = {c["filename"]: folder / c["filename"] for c in clips if (folder / c["filename"]).is_file()}
    return attach_audio(clips, index, "filename", "ESC-50", skip_missing)


def esc50_eval_clips(root: PathLike) -> Tuple[Path, List[str]]:
    """``meta/esc50.csv`` and every clip's file name (the protocol draws from all clips)."""
    path = require_file(Path(root) / "meta" / "esc50.csv", "ESC-50 metadata meta/esc50.csv")
    return path, [r["filename"] for r in read_csv_rows(path) if "filename" in r]


def prepare_esc50(root: PathLike, out_dir: PathLike, skip_missing: bool = True) -> Dict[str, Path]:
    """Write ``esc50.json`` (every clip, caption = class name)."""
    return {"all": write_corpus_datafile(Path(out_dir) / "esc50.json", read_esc50(root, skip_missing), "esc50")}


def esc50_eval_specs(clips: List[Dict], pairs_per_class: int = 40, seed: int = 0) -> List[MixtureSpec]:
    """Up to ``pairs_per_class`` clips of each class (classes in sorted order), each with a
    random clip of a different class."""
    categories = sorted({c["category"] for c in clips})
    if len(categories) < 2:
        raise AudioSepError("ESC-50 evaluation needs clips of at least 2 classes")
    rng = np.random.default_rng(seed)
    specs = []
    for category in categories:
        own = [c for c in clips if c["category"] == category]
        others = [c for c in clips if c["category"] != category]
        for t in rng.permutation(len(own))[:pairs_per_class]:
            background = others[int(rng.integers(len(others)))]
            specs.append(MixtureSpec(Excerpt(Path(own[t]["wav"])), [Excerpt(Path(background["wav"]))],
                                     {"caption": category, "class": category}))
    return specs


def build_esc50_eval(root: PathLike, out_dir: PathLike, sample_rate: int = 32000, pairs_per_class: int = 40,
                     seed: int = 0) -> Path:
    """Build the ESC-50 evaluation mixtures (0 dB). Returns the CSV path."""
    specs = esc50_eval_specs(read_esc50(root), pairs_per_class, seed)
    return build_eval_mixtures(specs, out_dir, sample_rate=sample_rate, level="snr", snr_db=0.0, seed=seed)
