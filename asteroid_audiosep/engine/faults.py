"""Training faults that must not lose finished work: checkpoints written atomically (a full disk
leaves the previous one intact), never with non-finite weights, and steps whose loss or gradient
is NaN/Inf skipped (stopping after too many in a row).

See ``docs/reliability.md`` for the table of faults, what happens and which test injects each.
"""
import errno
import io
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Callback

from ..errors import AudioSepError
from ..fileio import atomic_write, free_bytes

logger = logging.getLogger("train")


def nonfinite_tensors(state: Dict[str, Any], limit: int = 5) -> List[str]:
    """Names of the floating-point tensors of ``state`` that hold a NaN or an Inf (at most ``limit``)."""
    bad = []
    for name, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad.append(name)
            if len(bad) >= limit:
                break
    return bad


def _free_space(folder: Path) -> str:
    free = free_bytes(folder)
    return f"{free / 2 ** 20:.1f} MiB free" if free is not None else "free space unknown"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, made safe for long runs on shared filesystems.

    Lightning's own writer goes through a temporary file in the system's temporary folder and a
    ``shutil.move``: when that folder is on another filesystem than the checkpoint (the usual
    case on clusters), the move is a copy into the target itself, so a full disk or a kill
    during it leaves a truncated ``last.ckpt``. This writer instead:

    * refuses a checkpoint whose weights (``state_dict``) hold a NaN or an Inf, before writing
      anything (the previous checkpoint stays the newest);
    * serialises in memory, writes a temporary file in the checkpoint's own folder, flushes it
      to the disk (``fsync``) and renames it over the target (:func:`~asteroid_audiosep.fileio.
      atomic_write`): a reader sees the old file or the new one, never half of one;
    * turns "no space left on device" (and a quota) into an :class:`AudioSepError` naming the
      path, after removing the temporary file: the previous checkpoint is left as it was.
    """

    def save_checkpoint(self, checkpoint: Dict[str, Any], path: Any, storage_options: Optional[Any] = None) -> None:
        path = Path(path)
        bad = nonfinite_tensors(checkpoint.get("state_dict", {}))
        if bad:
            raise AudioSepError(
                f"refusing to write the checkpoint {path}: its weights are not finite (NaN/Inf in "
                f"{', '.join(bad)}); the previous checkpoint is kept: resume from it with a lower "
                "training.lr or a training.gradient_clip_val"
            )
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            with atomic_write(path, "wb") as handle:
                handle.write(buffer.getbuffer())
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise AudioSepError(
                    f"cannot write the checkpoint {path}: no space left on device ({_free_space(path.parent)}, "
                    f"{buffer.getbuffer().nbytes / 2 ** 20:.1f} MiB needed); nothing was replaced and the "
                    "previous checkpoints are intact: free space (or lower training.keep_checkpoints) and "
                    "rerun the same command to resume"
                ) from err
            raise


class NonFiniteGuard(Callback):
    """Skips optimiser steps whose loss or gradients are not finite, and stops training after
    ``max_consecutive`` such steps in a row.

    After the backward pass and before the optimiser step (before gradient clipping), the loss
    of every micro-batch of the step and the gradients are checked (on every rank, the decision
    shared: DDP has already averaged the gradients, and one NaN loss on any rank counts). A bad
    step is skipped: the gradients are dropped, so the optimiser changes neither the weights nor
    its state, and the buffers that the forward pass updated (BatchNorm running statistics) are
    put back. The step counter, the data stream and the learning-rate schedule still advance,
    so a resumed run reads the same data at the same step. Each skip is logged (with its step);
    the counts are saved in checkpoints (they survive a resume) and :attr:`report` goes to
    ``train_report.json``.

    Args:
        max_consecutive: stop (with an :class:`AudioSepError`) after this many skipped steps in
            a row (``training.max_nonfinite_steps``); 0 or None: never stop.
    """

    def __init__(self, max_consecutive: Optional[int] = 10):
        self.max_consecutive = int(max_consecutive or 0)
        self.skipped = 0
        self.consecutive = 0
        self.skipped_steps: List[int] = []
        self._loss_bad = False
        self._buffers: Optional[Dict[str, torch.Tensor]] = None

    @property
    def report(self) -> Dict[str, Any]:
        """``{"skipped": total, "steps": first 100 skipped steps, "max_consecutive": limit}``."""
        return dict(skipped=self.skipped, steps=list(self.skipped_steps), max_consecutive=self.max_consecutive)

    def on_train_batch_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", batch: Any,
                             batch_idx: int) -> None:
        if self._buffers is None:  # the first micro-batch of a step: keep the buffers (small)
            self._buffers = {k: v.detach().clone() for k, v in pl_module.named_buffers()}

    def on_before_backward(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", loss: torch.Tensor) -> None:
        self._loss_bad = self._loss_bad or not bool(torch.isfinite(loss.detach()).all())

    def on_before_optimizer_step(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", optimizer) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        bad = self._loss_bad
        if grads and not bad:
            bad = not bool(torch.isfinite(torch.stack(torch._foreach_norm(grads, float("inf")))).all())
        if trainer.world_size > 1:
            bad = bool(trainer.strategy.reduce_boolean_decision(bad, all=False))
        buffers, self._buffers, self._loss_bad = self._buffers, None, False
        if not bad:
            self.consecutive = 0
            return
        for param in pl_module.parameters():
            param.grad = None
        if buffers is not None:
            with torch.no_grad():
                for name, value in pl_module.named_buffers():
                    if name in buffers:
                        value.copy_(buffers[name])
        step = int(trainer.global_step)
        self.skipped += 1
        self.consecutive += 1
        if len(self.skipped_steps) < 100:
            self.skipped_steps.append(step)
        logger.warning("step %d: non-finite loss or gradient: step skipped, weights unchanged (%d in a row, "
                       "%d in total)", step, self.consecutive, self.skipped)
        if trainer.logger is not None and trainer.is_global_zero:
            trainer.logger.log_metrics({"nonfinite_steps": float(self.skipped)}, step=step)
        if self.max_consecutive and self.consecutive >= self.max_consecutive:
            raise AudioSepError(
                f"training stopped at step {step}: {self.consecutive} steps in a row had a non-finite loss or "
                f"gradient (training.max_nonfinite_steps={self.max_consecutive}); the weights were not changed "
                "by them and the last checkpoint is intact: look for bad data or lower training.lr / set "
                "training.gradient_clip_val, then rerun to resume"
            )

    def state_dict(self) -> Dict[str, Any]:
        return dict(skipped=self.skipped, consecutive=self.consecutive, skipped_steps=list(self.skipped_steps))

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self.skipped = int(state_dict.get("skipped", 0))
        self.consecutive = int(state_dict.get("consecutive", 0))
        self.skipped_steps = [int(s) for s in state_dict.get("skipped_steps", [])]


# gloo's errors: "[.../gloo/transport/tcp/pair.cc:545] Read error ...: Connection reset by peer",
# "[.../unbound_buffer.cc:78] Timed out waiting 3000ms for recv ...", "Application timeout caused pair
# closure"; NCCL's are torch.distributed.DistError (DistBackendError).
_COLLECTIVE_MARKERS = ("gloo", "nccl", "pair closure", "timed out waiting", "connection reset by peer",
                       "connection closed by peer")
_COLLECTIVE_SOURCES = ("torch/distributed/", "torch/nn/parallel/distributed.py")


def _raised_in_collective(err: BaseException) -> bool:
    """Whether ``err`` was raised inside torch.distributed or DDP (from its traceback)."""
    tb = err.__traceback__
    while tb is not None:
        if any(source in tb.tb_frame.f_code.co_filename.replace("\\", "/") for source in _COLLECTIVE_SOURCES):
            return True
        tb = tb.tb_next
    return False


def collective_failure(err: BaseException, world_size: int, timeout_s: float,
                       ckpt_dir: Path) -> Optional[AudioSepError]:
    """The error to raise when a multi-process run failed in a collective operation (another rank
    died, hangs or its node is gone), or None when ``err`` is something else.

    The message names the timeout, this rank and the newest checkpoint a rerun resumes from.
    """
    dist_error = getattr(torch.distributed, "DistError", ())
    text = str(err).lower()
    if world_size <= 1 or isinstance(err, AudioSepError):
        return None
    if not (isinstance(err, dist_error) or (isinstance(err, RuntimeError) and (
            any(m in text for m in _COLLECTIVE_MARKERS) or _raised_in_collective(err)))):
        return None
    from .hardware import process_rank
    from .setup import find_resume_checkpoint

    last = find_resume_checkpoint(Path(ckpt_dir))
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return AudioSepError(
        f"rank {process_rank()} of {world_size}: a collective operation with the other training processes "
        f"failed or waited longer than training.collective_timeout_s={timeout_s:g} s: another rank died or "
        f"hangs (read its log). The last checkpoint is {last or 'none yet'}: rerun the same command to "
        f"resume. ({first_line[:300]})"
    )
