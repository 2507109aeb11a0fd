"""Voicebank-DEMAND: noisy/clean speech pairs -> an evaluation list (query "speech").

Published layout (https://doi.org/10.7488/ds/2117, zips extracted in place)::

    <root>/clean_testset_wav/p232_001.wav ...     <root>/noisy_testset_wav/p232_001.wav ...
    <root>/clean_trainset_28spk_wav/...           <root>/noisy_trainset_28spk_wav/...
"""
import logging
import os
from pathlib import Path
from typing import Union

from ...audio import load_audio, save_audio
from ...errors import AudioSepError
from ...progress import progress
from ..evallist import write_eval_list
from .common import index_audio, require_dir

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

SPLITS = {"test": "testset", "train": "trainset_28spk", "train56": "trainset_56spk"}


def build_voicebank_eval(root: PathLike, out_dir: PathLike, split: str = "test", sample_rate: int = 16000,
                         query: str = "speech") -> Path:
    """Write the pairs of a split in the common evaluation-list format: ``mixture-{idx}.wav``
    = noisy, ``segment-{idx}.wav`` = clean, resampled to ``sample_rate`` (the paper's
    enhancement metrics use 16 kHz), caption ``query``, id = utterance name.

    Returns:
        Path of the CSV.
    """
    if split not in SPLITS:
        raise AudioSepError(f"unknown Voicebank-DEMAND split {split!r}; choose among {sorted(SPLITS)}")
    root, out_dir = Path(root), Path(out_dir)
    clean = index_audio(require_dir(root / f"clean_{SPLITS[split]}_wav", "Voicebank-DEMAND clean speech folder"))
    noisy = index_audio(require_dir(root / f"noisy_{SPLITS[split]}_wav", "Voicebank-DEMAND noisy speech folder"))
    names = sorted(set(clean) & set(noisy))
    unpaired = len(set(clean) ^ set(noisy))
    if unpaired:
        logger.warning("Voicebank-DEMAND %s: %d files have no counterpart; leaving them out", split, unpaired)
    if not names:
        raise AudioSepError(f"no clean/noisy pair in {root} ({split})")
    rows = []
    for name in progress(names, desc=f"Voicebank-DEMAND {split}", unit="pair"):
        idx = len(rows)
        mixture, _ = load_audio(noisy[name], sample_rate=sample_rate, mono=True)
        target, _ = load_audio(clean[name], sample_rate=sample_rate, mono=True)
        length = min(mixture.shape[-1], target.shape[-1])
        save_audio(out_dir / f"mixture-{idx}.wav", mixture[:, :length], sample_rate)
        save_audio(out_dir / f"segment-{idx}.wav", target[:, :length], sample_rate)
        rows.append({"idx": idx, "caption": query, "id": name, "src_wav": clean[name].name,
                     "noise_wav": noisy[name].name})
    return write_eval_list(out_dir / "eval.csv", rows)
