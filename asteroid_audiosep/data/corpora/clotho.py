"""Clotho v2: caption CSVs -> training datafiles, and the paper's evaluation protocol (each
caption of an evaluation clip mixed at 0 dB with two other clips concatenated and cut).

Published layout (https://zenodo.org/record/4783391, archives extracted in place)::

    <root>/clotho_captions_development.csv   # file_name, caption_1 ... caption_5
    <root>/clotho_captions_validation.csv
    <root>/clotho_captions_evaluation.csv
    <root>/development/*.wav  validation/*.wav  evaluation/*.wav
"""
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from ...errors import AudioSepError
from ..evallist import read_csv_rows
from ..evalmix import Excerpt, MixtureSpec, build_eval_mixtures
from ..textfile import warn_blank_captions
from .common import attach_audio, require_dir, require_file, write_corpus_datafiles

PathLike = Union[str, os.PathLike]

SPLITS = ("development", "validation", "evaluation")


def read_clotho(root: PathLike, split: str, skip_missing: bool = True) -> List[Dict]:
    """Clips of one split: ``file_name``, ``captions`` (5), ``wav``."""
    if split not in SPLITS:
        raise AudioSepError(f"unknown Clotho split {split!r}; choose among {SPLITS}")
    root = Path(root)
    path = require_file(root / f"clotho_captions_{split}.csv", f"Clotho {split} captions")
    rows = read_csv_rows(path)
    if rows and "file_name" not in rows[0]:
        raise AudioSepError(f"clotho_captions_{split}.csv needs a 'file_name' column")
    clips, blank, total = [], [], 0
    for row in rows:
        columns = sorted(k for k in row if k.startswith("caption_"))
        total += len(columns)
        blank += [f"{row['file_name']} {k}" for k in columns if not row[k].strip()]
        captions = [row[k].strip() for k in columns if row[k].strip()]
        if captions:  # a clip whose every caption is blank is left out (counted above)
            clips.append({"file_name": row["file_name"], "captions": captions})
    warn_blank_captions(path, blank, total)
    folder = require_dir(root / split, f"Clotho {split} audio folder")
    index = {c["file_name"]: folder / c["file_name"] for c in clips if (folder / c["file_name"]).is_file()}
    return attach_audio(clips, index, "file_name", f"Clotho {split}", skip_missing)


def clotho_eval_clips(root: PathLike) -> Tuple[Path, List[str]]:
    """The evaluation split's caption list and its file names (what the protocol evaluates on)."""
    path = require_file(Path(root) / "clotho_captions_evaluation.csv", "Clotho evaluation captions")
    return path, [r["file_name"] for r in read_csv_rows(path) if "file_name" in r]


def prepare_clotho(root: PathLike, out_dir: PathLike, splits: Sequence[str] = ("development", "validation"),
                   skip_missing: bool = True) -> Dict[str, Path]:
    """Write ``clotho_<split>.json`` per split (one entry per clip, its 5 captions).

    Every split's captions and audio folder are checked before any datafile is written.
    """
    root = Path(root)
    for split in splits:
        if split in SPLITS:
            require_file(root / f"clotho_captions_{split}.csv", f"Clotho {split} captions")
            require_dir(root / split, f"Clotho {split} audio folder")
    planned = {split: dict(path=Path(out_dir) / f"clotho_{split}.json", corpus="clotho",
                           clips=read_clotho(root, split, skip_missing)) for split in splits}
    return write_corpus_datafiles(planned)


def clotho_eval_specs(clips: List[Dict], seed: int = 0, backgrounds_per_mixture: int = 2) -> List[MixtureSpec]:
    """One mixture per (clip, caption): background = ``backgrounds_per_mixture`` other random
    clips end to end, cut to the clip's length."""
    if len(clips) <= backgrounds_per_mixture:
        raise AudioSepError(f"Clotho evaluation needs more than {backgrounds_per_mixture} clips")
    rng = np.random.default_rng(seed)
    specs = []
    for i, clip in enumerate(clips):
        for caption in clip["captions"]:
            others = rng.choice(len(clips) - 1, size=backgrounds_per_mixture, replace=False)
            others = [clips[j + (j >= i)] for j in others]  # skip the clip itself
            specs.append(MixtureSpec(Excerpt(Path(clip["wav"])), [Excerpt(Path(o["wav"])) for o in others],
                                     {"caption": caption}))
    return specs


def build_clotho_eval(root: PathLike, out_dir: PathLike, sample_rate: int = 32000, seed: int = 0) -> Path:
    """Build the Clotho evaluation mixtures (evaluation split, 0 dB). Returns the CSV path."""
    specs = clotho_eval_specs(read_clotho(root, "evaluation"), seed)
    return build_eval_mixtures(specs, out_dir, sample_rate=sample_rate, level="snr", snr_db=0.0, seed=seed)
