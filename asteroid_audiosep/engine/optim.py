"""The released optimiser (AdamW with amsgrad) and learning-rate schedule (linear warm-up, then
constant or step decay)."""
from typing import Iterable, Optional

import torch

from ..errors import AudioSepError


class WarmupSchedule:
    """Learning-rate factor per optimiser step: linear warm-up, then constant (or step decay).

    ``factor(step) = min(1, (step + 1) / warmup_steps) * decay_factor ** (step // decay_every)``.
    The released schedule is ``warmup_steps=10000`` with no decay; the ``+ 1`` makes the very
    first update use a small non-zero rate (the released code spends it at rate 0).

    A class rather than a lambda so that schedulers pickle (spawned workers, checkpoints).

    Args:
        warmup_steps: length of the linear warm-up (0: none).
        decay_factor: multiplicative decay applied every ``decay_every`` steps.
        decay_every: decay period in steps (None: no decay).
    """

    def __init__(self, warmup_steps: int = 10000, decay_factor: float = 1.0, decay_every: Optional[int] = None):
        if warmup_steps < 0:
            raise AudioSepError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if decay_every is not None and decay_every <= 0:
            raise AudioSepError(f"lr_decay_every must be a positive number of steps or null, got {decay_every}")
        self.warmup_steps = int(warmup_steps)
        self.decay_factor = float(decay_factor)
        self.decay_every = None if decay_every is None else int(decay_every)

    def __call__(self, step: int) -> float:
        factor = 1.0 if self.warmup_steps == 0 else min(1.0, (step + 1) / self.warmup_steps)
        if self.decay_every:
            factor *= self.decay_factor ** (step // self.decay_every)
        return factor


def make_optimizer(
    params: Iterable[torch.nn.Parameter],
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    amsgrad: bool = True,
    betas=(0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.Optimizer:
    """AdamW as released (lr 1e-3, amsgrad, no weight decay), over the trainable parameters.

    Args:
        params: parameters; those with ``requires_grad=False`` are left out.
        lr: peak learning rate.
        weight_decay: decoupled weight decay.
        amsgrad: use the AMSGrad variant.
        betas: Adam's moment coefficients.
        eps: Adam's epsilon.
    """
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise AudioSepError("the model has no trainable parameter")
    if lr <= 0:
        raise AudioSepError(f"the learning rate must be positive, got {lr}")
    return torch.optim.AdamW(trainable, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: WarmupSchedule) -> dict:
    """A per-step ``LambdaLR`` in the form Asteroid's ``System`` and Lightning expect."""
    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step", "frequency": 1}
