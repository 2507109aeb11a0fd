"""The DCASE 2024 Task 9 (LASS) synthetic validation set, mixed as the released evaluator does.

The challenge distributes ``lass_synthetic_validation.csv`` (a header row, then ``source,
noise, snr, caption``: file stems of the audio folder, ``<stem>.wav``, and the SNR in dB) with
a folder of 10 s clips. The released ``dcase_evaluator.py`` builds each mixture on the fly:

1. both files loaded with ``librosa.load(path, sr=16000, mono=True)`` (a file at another rate is
   resampled by librosa's default resampler, soxr "high quality"; so it is here);
2. the noise scaled so that ``mean(source**2) / mean(noise**2) = 10 ** (snr / 10)``;
3. ``mixture = source + noise``; when ``max|mixture| > 1``, source and mixture are multiplied by
   ``0.9 / max|mixture|``;
4. SDR / SDRi / SI-SDR of one forward over the whole mixture (the released ``calculate_sdr``
   and ``calculate_sisdr``, :mod:`asteroid_audiosep.metrics`), plain means over rows.

:class:`DCASEValidationDataset` yields those (mixture, source, caption) items, so that the
recipe's evaluation loop scores them exactly as released.
"""
import csv
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import AudioSepError
from .evallist import EvalItem

PathLike = Union[str, os.PathLike]

#: The index file of the challenge's validation set.
VALIDATION_CSV = "lass_synthetic_validation.csv"
#: The rate the released evaluator loads, separates and scores at.
DCASE_SAMPLE_RATE = 16000
#: The published DCASE 2024 Task 9 baseline on this set (dB; task description page).
BASELINE_RESULTS = {"SDR": 5.708, "SDRi": 5.673, "SI-SDR": 3.862}


def dcase_mixture(source: np.ndarray, noise: np.ndarray, snr: float):
    """``(source, mixture)`` as the released evaluator makes them (float32 arithmetic).

    The noise is scaled to the row's SNR against the source, added, and both signals are
    multiplied by ``0.9 / max|mixture|`` when the mixture would clip.
    """
    source = np.array(source, dtype=np.float32)
    noise = np.asarray(noise, dtype=np.float32)
    if noise.shape != source.shape:
        raise AudioSepError(f"source and noise lengths differ ({source.shape[-1]} vs {noise.shape[-1]} samples)")
    source_power = np.mean(source ** 2)
    noise_power = np.mean(noise ** 2)
    desired_noise_power = source_power / (10 ** (snr / 10))
    noise = noise * np.sqrt(desired_noise_power / noise_power)
    mixture = source + noise
    max_value = np.max(np.abs(mixture))
    if max_value > 1:
        source *= 0.9 / max_value
        mixture *= 0.9 / max_value
    return source, mixture


class DCASEValidationDataset(Dataset):
    """The DCASE 2024 Task 9 synthetic validation mixtures (see the module docstring).

    Args:
        folder: the downloaded validation folder: ``lass_synthetic_validation.csv`` and the
            ``<stem>.wav`` clips (or give ``csv_path`` / ``audio_dir``).
        csv_path: the index CSV (default: ``folder / lass_synthetic_validation.csv``).
        audio_dir: the clips' folder (default: ``folder``, or ``folder/lass_validation`` when
            the clips are there).
        sample_rate: must be 16000, the rate the challenge scores at (the model's rate is
            checked against it by the evaluation loop).

    Raises:
        AudioSepError: a missing index, a malformed row, or a row naming a missing file
            (checked for every row before any audio is read).
    """

    def __init__(self, folder: Optional[PathLike] = None, csv_path: Optional[PathLike] = None,
                 audio_dir: Optional[PathLike] = None, sample_rate: int = DCASE_SAMPLE_RATE):
        super().__init__()
        if int(sample_rate) != DCASE_SAMPLE_RATE:
            raise AudioSepError(
                f"the DCASE 2024 Task 9 validation is scored at {DCASE_SAMPLE_RATE} Hz; this model runs "
                f"at {sample_rate} Hz: evaluate a 16 kHz model (dcase2024-baseline, audiosep-dp-16k)"
            )
        if folder is None and (csv_path is None or audio_dir is None):
            raise AudioSepError("give the validation folder (or both its csv_path and audio_dir)")
        folder = Path(folder) if folder is not None else None
        self.csv_path = Path(csv_path) if csv_path is not None else folder / VALIDATION_CSV
        if audio_dir is None:
            nested = folder / "lass_validation"
            audio_dir = nested if nested.is_dir() else folder
        self.audio_dir = Path(audio_dir)
        self.sample_rate = DCASE_SAMPLE_RATE
        self.query_column = "caption"
        self.aggregation = "mean"
        self.rows = self._read_rows()
        self.items = [
            EvalItem(id=f"{k:05d}-{r['source']}-{r['noise']}", mixture=self._path(r["noise"]),
                     target=self._path(r["source"]), queries={"caption": r["caption"]})
            for k, r in enumerate(self.rows)
        ]

    def _path(self, stem: str) -> Path:
        return self.audio_dir / f"{stem}.wav"

    def _read_rows(self) -> List[Dict[str, Any]]:
        if not self.csv_path.is_file():
            raise AudioSepError(
                f"DCASE validation index not found: {self.csv_path} (download the DCASE 2024 Task 9 "
                f"validation set and point evaluation.sets[].dcase2024_validation at its folder)"
            )
        with open(self.csv_path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))[1:]  # the released evaluator skips the header row
        rows, missing = [], []
        for number, line in enumerate(lines, start=2):
            if not line or not any(cell.strip() for cell in line):
                continue
            if len(line) < 4:
                raise AudioSepError(f"{self.csv_path} line {number}: expected source, noise, snr, caption; got {line}")
            source, noise, snr, caption = (cell.strip() for cell in line[:4])
            try:
                snr = float(snr)
            except ValueError:
                raise AudioSepError(f"{self.csv_path} line {number}: snr {snr!r} is not a number") from None
            for stem in (source, noise):
                if not self._path(stem).is_file():
                    missing.append(f"line {number}: {self._path(stem)}")
            rows.append(dict(source=source, noise=noise, snr=snr, caption=caption))
        if missing:
            raise AudioSepError(
                f"{len(missing)} audio files named by {self.csv_path} are missing, first: {missing[0]} "
                f"(is the audio folder {self.audio_dir}?)"
            )
        if not rows:
            raise AudioSepError(f"{self.csv_path} has no row")
        return rows

    def __len__(self) -> int:
        return len(self.rows)

    def _load(self, stem: str) -> np.ndarray:
        import librosa

        wav, _ = librosa.load(self._path(stem), sr=DCASE_SAMPLE_RATE, mono=True)
        return wav

    def __getitem__(self, i: int) -> Dict[str, Any]:
        """Row ``i``: ``mixture``, ``target`` ((time,) float32 at 16 kHz), ``query``, ``id``."""
        row = self.rows[i]
        source, mixture = dcase_mixture(self._load(row["source"]), self._load(row["noise"]), row["snr"])
        return {"mixture": torch.from_numpy(mixture), "target": torch.from_numpy(source),
                "query": row["caption"], "id": self.items[i].id, "class": ""}

    def queries(self) -> List[str]:
        """Every distinct caption, sorted (to pre-compute embeddings)."""
        return sorted({r["caption"] for r in self.rows})

    def get_infos(self) -> Dict[str, Any]:
        """Name, task, size and aggregation rule."""
        return dict(dataset="DCASE 2024 Task 9 synthetic validation", task="language-queried audio source separation",
                    licenses=[], num_examples=len(self), query_column="caption", aggregation="mean")
