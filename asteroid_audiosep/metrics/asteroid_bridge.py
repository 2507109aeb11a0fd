"""Asteroid's own metrics (``asteroid.metrics.get_metrics``) as extra per-item columns."""
from typing import Dict, Optional, Sequence

import numpy as np

from ..audio import as_mono_array
from ..errors import AudioSepError
from .perceptual import PESQ_MODES, Signal

#: What ``get_metrics`` computes: BSS-eval SDR/SIR/SAR (Vincent et al., 2006, via
#: ``pb_bss_eval``/``mir_eval``), SI-SDR, STOI and PESQ.
ASTEROID_METRICS = ("si_sdr", "sdr", "sir", "sar", "stoi", "pesq")


def _mono(name: str, x: Signal) -> np.ndarray:
    return as_mono_array(x, f"`{name}`")


def asteroid_metrics(
    mix: Signal,
    ref: Signal,
    est: Signal,
    sample_rate: int,
    metrics: Optional[Sequence[str]] = None,
    prefix: str = "asteroid_",
    with_input: bool = True,
) -> Dict[str, float]:
    """Asteroid's metrics of one separated item, named so they sit beside the released ones.

    The numbers are those of other Asteroid recipes: ``sdr`` here is BSS-eval SDR (which forgives
    a 512-tap filter of the reference), not the released plain SNR of
    :func:`asteroid_audiosep.metrics.sdr`; its ``si_sdr`` removes the signals' means first, the
    released one does not.
    With the single reference of text-queried separation, BSS-eval has no interfering source, so
    ``sir`` is +inf and ``sar`` equals ``sdr``; ``sir`` is therefore only computed on request.

    Args:
        mix: mixture, ``(time,)`` or ``(1, time)``.
        ref: target source, same length.
        est: estimate of the target, same length.
        sample_rate: rate in Hz (PESQ only at 8000 or 16000).
        metrics: names among :data:`ASTEROID_METRICS`. Default: ``si_sdr, sdr, sar, stoi`` and
            ``pesq`` when the rate allows it.
        prefix: put before every column name (``asteroid_sdr``, ``asteroid_input_sdr``, ...).
        with_input: also return the scores of the mixture itself (``<prefix>input_<name>``).

    Returns:
        ``{column: value}``.

    Raises:
        AudioSepError: unknown metric, PESQ at an unsupported rate, bad shapes, or a metric
            that cannot be computed on these signals.
    """
    rate_has_pesq = int(sample_rate) in PESQ_MODES
    if metrics is None:
        metrics = ["si_sdr", "sdr", "sar", "stoi"] + (["pesq"] if rate_has_pesq else [])
    metrics = list(metrics)
    unknown = sorted(set(metrics) - set(ASTEROID_METRICS))
    if unknown or not metrics:
        raise AudioSepError(
            f"unknown Asteroid metric(s) {unknown or metrics}; choose among {ASTEROID_METRICS}"
        )
    if "pesq" in metrics and not rate_has_pesq:
        raise AudioSepError(
            f"Asteroid's PESQ needs 8000 or 16000 Hz, got {sample_rate} Hz; drop 'pesq' or "
            "resample first"
        )
    mix, ref, est = _mono("mix", mix), _mono("ref", ref), _mono("est", est)
    if not (mix.shape == ref.shape == est.shape):
        raise AudioSepError(
            f"mix, ref and est must have the same length, got {mix.size}, {ref.size}, {est.size}"
        )
    from asteroid.metrics import get_metrics  # heavy import (pb_bss_eval, pesq, pystoi)

    try:
        scores = get_metrics(
            mix[None], ref[None], est[None], sample_rate=int(sample_rate), metrics_list=metrics
        )
    except RuntimeError as err:
        raise AudioSepError(f"Asteroid metrics failed: {err} ({err.__cause__})") from err
    return {
        f"{prefix}{key}": float(value)
        for key, value in scores.items()
        if with_input or not key.startswith("input_")
    }
