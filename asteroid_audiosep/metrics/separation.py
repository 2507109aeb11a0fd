"""SDR, SI-SDR, SDRi and SI-SDRi exactly as the released AudioSep evaluation computes them.

The released benchmark reports two numbers per mixture: the *SDR improvement* (SDRi) and the
absolute *SI-SDR*. Both are simple energy ratios of the whole clip, not the BSS-eval measures
of Vincent et al. (2006) that ``mir_eval``/``museval`` and :func:`asteroid.metrics.get_metrics`
compute:

* BSS-eval SDR projects the estimate on the reference *and its delayed copies* (a 512-tap
  distortion filter) before measuring the error, so it forgives filtering and small delays.
  The released "SDR" is a plain SNR: no projection at all, so any gain or filtering error counts.
* SI-SDR (Le Roux et al., 2019) allows one scalar gain, nothing more.

All functions take numpy arrays or torch tensors of shape ``(..., time)``; every leading index is
a separate signal and the result has the leading shape. They compute in float64 and return numpy
(a numpy scalar for 1-D input) when every input is numpy, otherwise a tensor in the inputs'
floating dtype (gradients flow through). The released code pools all samples of a clip into one
vector; for a multi-channel clip pass ``x.reshape(-1)`` to get its number.
"""
from typing import Callable, Tuple, Union

import numpy as np
import torch

from ..errors import AudioSepError

Signal = Union[np.ndarray, torch.Tensor]

#: Both energies of the released SDR are clamped from below at this value (mean squares).
SDR_ENERGY_FLOOR = 1e-10
#: The released SI-SDR's regulariser: the machine epsilon of float32 (``np.finfo(np.float32).eps``).
SI_SDR_EPS = float(np.finfo(np.float32).eps)


def _as_float64(**signals: Signal) -> Tuple[Tuple[torch.Tensor, ...], Callable]:
    """Check that the named signals agree in shape; return them as float64 tensors.

    Also returns the function that converts a result back to the callers' kind of array.
    """
    tensors = []
    out_dtype = None
    all_numpy = True
    shape = None
    for name, x in signals.items():
        if isinstance(x, torch.Tensor):
            all_numpy = False
            dtype = x.dtype if x.is_floating_point() else torch.float64
            out_dtype = dtype if out_dtype is None else torch.promote_types(out_dtype, dtype)
            t = x.to(torch.float64)
        else:
            try:
                t = torch.from_numpy(np.asarray(x, dtype=np.float64))
            except (TypeError, ValueError) as err:
                raise AudioSepError(f"`{name}` is not a numeric array: {err}") from err
        if t.ndim == 0 or t.shape[-1] == 0:
            raise AudioSepError(
                f"`{name}` must have shape (..., time) with at least one sample, "
                f"got shape {tuple(t.shape)}"
            )
        if shape is None:
            shape = t.shape
        elif t.shape != shape:
            names = ", ".join(f"{n} {tuple(np.shape(s))}" for n, s in signals.items())
            raise AudioSepError(
                f"reference, estimate (and mixture) must have the same shape, got {names}; "
                "trim or pad the estimate to the reference's length first"
            )
        tensors.append(t)
    devices = [t.device for t in tensors if t.device.type != "cpu"]
    if devices:  # numpy inputs join the tensors' device
        tensors = [t.to(devices[0]) for t in tensors]

    def back(result: torch.Tensor) -> Signal:
        if all_numpy:
            arr = result.detach().cpu().numpy()
            return arr[()] if arr.ndim == 0 else arr
        return result.to(out_dtype)

    return tuple(tensors), back


def _sdr(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    signal = ref.pow(2).mean(-1).clamp_min(SDR_ENERGY_FLOOR)
    error = (est - ref).pow(2).mean(-1).clamp_min(SDR_ENERGY_FLOOR)
    return 10.0 * torch.log10(signal / error)


def _si_sdr(ref: torch.Tensor, est: torch.Tensor) -> torch.Tensor:
    eps = SI_SDR_EPS
    scale = (eps + (ref * est).sum(-1, keepdim=True)) / (eps + ref.pow(2).sum(-1, keepdim=True))
    target = scale * ref
    residual = est - target
    return 10.0 * torch.log10((eps + target.pow(2).sum(-1)) / (eps + residual.pow(2).sum(-1)))


def sdr(ref: Signal, est: Signal) -> Signal:
    """Signal-to-distortion ratio as released: a plain SNR of the whole clip, in dB.

    ``10 log10( max(mean(s^2), 1e-10) / max(mean((s_hat - s)^2), 1e-10) )``.

    Unlike BSS-eval SDR there is no projection on (filtered, delayed) copies of the reference:
    any scaling or filtering of the estimate is an error. The clamping bounds the result to
    about +-100 dB, so silent references or perfect estimates give finite numbers. Equals
    ``torchmetrics``' ``signal_noise_ratio(est, ref, zero_mean=False)`` whenever neither energy is
    clamped (torchmetrics adds an epsilon instead of clamping).

    Args:
        ref: reference (target source) ``s``, shape ``(..., time)``.
        est: estimate ``s_hat``, same shape.

    Returns:
        SDR in dB, shape ``(...)``.

    Raises:
        AudioSepError: shapes differ or the signals are empty.
    """
    (r, e), back = _as_float64(ref=ref, est=est)
    return back(_sdr(r, e))


def si_sdr(ref: Signal, est: Signal) -> Signal:
    """Scale-invariant SDR as released, in dB, with the float32 epsilon ``eps``.

    ``a = (eps + <s, s_hat>) / (eps + ||s||^2)``, then
    ``10 log10( (eps + ||a s||^2) / (eps + ||s_hat - a s||^2) )``. No mean removal.

    Only a scalar gain of the reference is forgiven (BSS-eval SDR also forgives a filter).
    Identical to ``torchmetrics``' ``scale_invariant_signal_distortion_ratio(est, ref,
    zero_mean=False)`` on float32 input (which uses the input dtype's epsilon).

    Args:
        ref: reference ``s``, shape ``(..., time)``.
        est: estimate ``s_hat``, same shape.

    Returns:
        SI-SDR in dB, shape ``(...)``.

    Raises:
        AudioSepError: shapes differ or the signals are empty.
    """
    (r, e), back = _as_float64(ref=ref, est=est)
    return back(_si_sdr(r, e))


def sdri(ref: Signal, est: Signal, mix: Signal) -> Signal:
    """SDR improvement: ``sdr(ref, est) - sdr(ref, mix)``, in dB (the paper's "SDRi").

    Args:
        ref: reference ``s``, shape ``(..., time)``.
        est: estimate, same shape.
        mix: the mixture the estimate was separated from, same shape.

    Returns:
        SDRi in dB, shape ``(...)``.

    Raises:
        AudioSepError: shapes differ or the signals are empty.
    """
    (r, e, m), back = _as_float64(ref=ref, est=est, mix=mix)
    return back(_sdr(r, e) - _sdr(r, m))


def si_sdri(ref: Signal, est: Signal, mix: Signal) -> Signal:
    """SI-SDR improvement: ``si_sdr(ref, est) - si_sdr(ref, mix)``, in dB.

    The paper's tables report the absolute SI-SDR, not this; it is kept as an extra column.

    Args:
        ref: reference ``s``, shape ``(..., time)``.
        est: estimate, same shape.
        mix: the mixture the estimate was separated from, same shape.

    Returns:
        SI-SDRi in dB, shape ``(...)``.

    Raises:
        AudioSepError: shapes differ or the signals are empty.
    """
    (r, e, m), back = _as_float64(ref=ref, est=est, mix=mix)
    return back(_si_sdr(r, e) - _si_sdr(r, m))
