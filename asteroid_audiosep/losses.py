"""Training losses between separated and target waveforms: L1 (as released) and negative SI-SDR."""
from typing import Callable, Dict

import torch

from .errors import AudioSepError


def _flat(est: torch.Tensor, target: torch.Tensor):
    if est.shape != target.shape:
        raise AudioSepError(f"estimate {tuple(est.shape)} and target {tuple(target.shape)} differ in shape")
    return est.reshape(est.shape[0], -1), target.reshape(target.shape[0], -1)


def l1_waveform_loss(est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the waveforms, the released AudioSep training loss.

    Args:
        est: separated waveforms, (batch, ..., time).
        target: target waveforms, same shape.

    Returns:
        A scalar: ``mean(|est - target|)`` over every sample of the batch.
    """
    est, target = _flat(est, target)
    return torch.mean(torch.abs(est.float() - target.float()))


def neg_si_sdr_loss(est: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative scale-invariant SDR (Asteroid's ``singlesrc_neg_sisdr``, zero-mean), batch mean.

    Args:
        est: separated waveforms, (batch, ..., time); channels are pooled per item.
        target: target waveforms, same shape.

    Returns:
        A scalar, in dB (lower is better).
    """
    from asteroid.losses import singlesrc_neg_sisdr

    est, target = _flat(est, target)
    return singlesrc_neg_sisdr(est.float(), target.float()).mean()


#: Loss names accepted in configurations.
LOSSES: Dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": l1_waveform_loss,
    "si_sdr": neg_si_sdr_loss,
}


def get_loss_func(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss function called ``name`` (``"l1"`` or ``"si_sdr"``).

    Raises:
        AudioSepError: unknown name (the message lists the known ones).
    """
    if name not in LOSSES:
        raise AudioSepError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]
