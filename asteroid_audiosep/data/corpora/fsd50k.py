"""FSD50K: ground-truth label lists -> captioned training datafiles (the DCASE 2024 Task 9 data).

Published layout (https://zenodo.org/record/4060432, the unpacked archives)::

    <root>/FSD50K.dev_audio/<fname>.wav       # 40,966 development clips
    <root>/FSD50K.eval_audio/<fname>.wav      # 10,231 evaluation clips
    <root>/FSD50K.ground_truth/dev.csv        # fname, labels, mids, split (train / val)
    <root>/FSD50K.ground_truth/eval.csv       # fname, labels, mids

``labels`` is a comma-separated list of AudioSet-ontology class names written with
underscores (``Electric_guitar,Guitar,Music``); as in the AudioSet reader, a clip's caption is
its labels as text joined by ", " (``"Electric guitar, Guitar, Music"``), also stored as
``labels``.
"""
import os
from pathlib import Path
from typing import Dict, List, Sequence, Union

from ...errors import AudioSepError
from ..evallist import read_csv_rows
from .common import attach_audio, caption_from_label, require_dir, require_file, write_corpus_datafiles

PathLike = Union[str, os.PathLike]

#: Splits: ``dev`` (all development clips), its ``train`` / ``val`` parts, and ``eval``.
SPLITS = ("dev", "train", "val", "eval")


def read_fsd50k(root: PathLike, split: str) -> List[Dict]:
    """Clips of one split: ``fname``, ``labels`` (as text), ``captions`` (files not looked up).

    Raises:
        AudioSepError: an unknown split, or a missing or malformed ground-truth CSV.
    """
    if split not in SPLITS:
        raise AudioSepError(f"unknown FSD50K split {split!r}; choose among {SPLITS}")
    part = "eval" if split == "eval" else "dev"
    path = require_file(Path(root) / "FSD50K.ground_truth" / f"{part}.csv", f"FSD50K {part} ground truth")
    rows = read_csv_rows(path)
    needed = {"fname", "labels"} | ({"split"} if split in ("train", "val") else set())
    if rows and not needed <= set(rows[0]):
        raise AudioSepError(f"{path} needs the columns {sorted(needed)}; it has {sorted(rows[0])}")
    clips = []
    for row in rows:
        if split in ("train", "val") and row["split"].strip() != split:
            continue
        labels = [caption_from_label(x) for x in row["labels"].split(",") if x.strip()]
        clips.append({"fname": row["fname"].strip(), "labels": labels, "captions": [", ".join(labels)]})
    return clips


def prepare_fsd50k(root: PathLike, out_dir: PathLike, splits: Sequence[str] = ("dev",),
                   skip_missing: bool = True) -> Dict[str, Path]:
    """Write ``fsd50k_<split>.json`` per split (caption = the clip's labels joined by ", ").

    Args:
        root: the unpacked FSD50K (see the module docstring).
        out_dir: where the datafiles go.
        splits: among ``dev``, ``train``, ``val``, ``eval``.
        skip_missing: leave out clips whose audio file is missing (with a warning).

    Returns:
        split -> datafile path.
    """
    root, out_dir = Path(root), Path(out_dir)
    clips = {split: read_fsd50k(root, split) for split in splits}  # every list read before writing
    planned = {}
    for split, listed in clips.items():
        folder = require_dir(root / ("FSD50K.eval_audio" if split == "eval" else "FSD50K.dev_audio"),
                             f"FSD50K {split} audio folder")
        index = {c["fname"]: folder / f"{c['fname']}.wav" for c in listed if (folder / f"{c['fname']}.wav").is_file()}
        planned[split] = dict(path=out_dir / f"fsd50k_{split}.json",
                              clips=attach_audio(listed, index, "fname", f"FSD50K {split}", skip_missing),
                              corpus="fsd50k")
    return write_corpus_datafiles(planned)
