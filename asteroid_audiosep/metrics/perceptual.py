"""PESQ (ITU-T P.862) and STOI of one utterance, through the ``pesq`` and ``pystoi`` packages."""
import math
import warnings
from typing import Tuple, Union

import numpy as np
import torch

from ..audio import as_mono_array
from ..errors import AudioSepError

Signal = Union[np.ndarray, torch.Tensor]

#: PESQ mode per sample rate: wide-band (P.862.2) at 16 kHz, narrow-band (P.862.1) at 8 kHz.
PESQ_MODES = {16000: "wb", 8000: "nb"}


def utterance_pair(ref: Signal, est: Signal) -> Tuple[np.ndarray, np.ndarray]:
    """Two mono utterances of equal length as 1-D float64 arrays.

    Accepts ``(time,)`` or ``(1, time)`` numpy arrays or tensors.

    Raises:
        AudioSepError: not mono, empty, or of different lengths.
    """
    out = [as_mono_array(ref, "reference"), as_mono_array(est, "estimate")]
    if out[0].shape != out[1].shape:
        raise AudioSepError(
            f"reference and estimate lengths differ ({out[0].size} vs {out[1].size} samples); "
            "trim the longer one first"
        )
    return out[0], out[1]


def pesq(ref: Signal, est: Signal, sample_rate: int, on_error: str = "raise") -> float:
    """PESQ MOS-LQO: wide-band at 16 kHz, narrow-band at 8 kHz (the ``pesq`` package).

    Args:
        ref: clean reference utterance, ``(time,)`` or ``(1, time)``.
        est: degraded or enhanced utterance, same length.
        sample_rate: 16000 or 8000 (PESQ is defined at these rates only; resample first).
        on_error: ``"raise"`` (default) or ``"nan"``: what to do when PESQ cannot score the
            pair (e.g. no speech detected in the reference). ``"nan"`` warns and returns NaN.

    Returns:
        The MOS-LQO score (about -0.5 to 4.64 in wide-band, 4.55 in narrow-band).

    Raises:
        AudioSepError: unsupported rate, bad shapes, or (``on_error="raise"``) a pair that
            PESQ cannot score.
    """
    if on_error not in ("raise", "nan"):
        raise AudioSepError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
    if int(sample_rate) not in PESQ_MODES:
        raise AudioSepError(
            f"PESQ is defined at 16000 Hz (wide-band) or 8000 Hz (narrow-band), got "
            f"{sample_rate} Hz; resample the signals first"
        )
    ref, est = utterance_pair(ref, est)
    from pesq import PesqError
    from pesq import pesq as _pesq

    try:
        return float(_pesq(int(sample_rate), ref, est, PESQ_MODES[int(sample_rate)]))
    except PesqError as err:
        message = f"PESQ cannot score this pair ({type(err).__name__}: {err})"
        if on_error == "raise":
            raise AudioSepError(message + "; is the reference silent or too short?") from err
        warnings.warn(message + "; returning NaN", RuntimeWarning)
        return math.nan


def stoi(ref: Signal, est: Signal, sample_rate: int, extended: bool = False) -> float:
    """Short-time objective intelligibility (Taal et al., 2011) through ``pystoi``.

    ``pystoi`` resamples to 10 kHz and removes silent frames itself, so any rate works.

    Args:
        ref: clean reference utterance, ``(time,)`` or ``(1, time)``.
        est: processed utterance, same length.
        sample_rate: rate of both signals in Hz.
        extended: compute extended STOI (Jensen & Taal, 2016) instead.

    Returns:
        STOI, about 0 to 1.

    Raises:
        AudioSepError: bad shapes or a non-positive rate.
    """
    if int(sample_rate) <= 0:
        raise AudioSepError(f"sample_rate must be positive, got {sample_rate}")
    ref, est = utterance_pair(ref, est)
    from pystoi import stoi as _stoi

    return float(_stoi(ref, est, int(sample_rate), extended=extended))
