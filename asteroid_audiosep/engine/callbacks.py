"""Lightning callbacks of step-based training: a step progress bar, a steps/s logger, a
validation log line, the best-model checkpoint that keeps last.ckpt current, and a per-step
batch trace (for checking resumption and sharding)."""
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional, Union

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.trainer.states import TrainerFn


class StepProgressBar(TQDMProgressBar):
    """A training bar counted in optimiser steps up to ``max_steps`` (the epoch is endless),
    starting at the restored step on resume, showing the loss and the rate in steps/s."""

    def init_train_tqdm(self):
        bar = super().init_train_tqdm()
        bar.unit = "step"
        return bar

    def on_train_epoch_start(self, trainer: "pl.Trainer", *_: Any) -> None:
        super().on_train_epoch_start(trainer)
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None)
        bar.initial = bar.n = trainer.global_step
        bar.set_description("train")
        bar.refresh()

    def on_train_batch_end(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        bar = self.train_progress_bar
        if bar is not None and not bar.total and trainer.max_steps and trainer.max_steps > 0:
            bar.total = trainer.max_steps  # a resumed run keeps its total
        if bar is not None and not bar.disable and trainer.global_step % self.refresh_rate == 0:
            bar.n = trainer.global_step
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            bar.refresh()


class StepLineProgress(Callback):
    """Training progress as plain timestamped lines (for log files): one line every 10 % of
    ``max_steps`` or every minute, with the step, its total, the loss and the rate, counted from
    the restored step on resume."""

    def __init__(self, percent: float = 10, seconds: float = 60.0):
        self.percent, self.seconds = percent, seconds
        self.progress = None

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        from ..progress import LineProgress

        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        self.progress = LineProgress(total=total, desc="train", unit="step", initial=trainer.global_step,
                                     percent=self.percent, seconds=self.seconds,
                                     disable=not trainer.is_global_zero)

    def on_train_batch_end(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.progress is None or trainer.global_step == self.progress.n:
            return
        loss = trainer.callback_metrics.get("loss", trainer.callback_metrics.get("train_loss"))
        if loss is not None:
            self.progress.set_postfix(loss=f"{float(loss):.4g}")
        self.progress.update(trainer.global_step - self.progress.n)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.progress is not None:
            self.progress.close()


class StepRateLogger(Callback):
    """Logs ``steps_per_sec`` (optimiser steps per second of wall time, validation excluded)
    every ``trainer.log_every_n_steps`` steps, and keeps the rate over the whole run
    (:meth:`steps_per_sec`)."""

    def __init__(self):
        self._t0: Optional[float] = None
        self._step0 = 0
        self._paused = 0.0
        self._val_t0: Optional[float] = None
        self.total_steps = 0
        self.total_seconds = 0.0

    def steps_per_sec(self) -> Optional[float]:
        """Steps per second over every step this callback saw (None before any)."""
        return self.total_steps / self.total_seconds if self.total_seconds > 0 else None

    def _restart(self, trainer: "pl.Trainer") -> None:
        self._t0, self._step0, self._paused = time.perf_counter(), trainer.global_step, 0.0

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._restart(trainer)

    def on_validation_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._val_t0 = time.perf_counter()

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._val_t0 is not None:
            self._paused += time.perf_counter() - self._val_t0
            self._val_t0 = None

    def _account(self, trainer: "pl.Trainer") -> float:
        steps = trainer.global_step - self._step0
        elapsed = time.perf_counter() - self._t0 - self._paused
        self.total_steps += steps
        self.total_seconds += elapsed
        self._restart(trainer)
        return steps / elapsed if elapsed > 0 else 0.0

    def on_train_batch_end(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._t0 is None:
            self._restart(trainer)
            return
        if trainer.global_step - self._step0 < max(1, trainer.log_every_n_steps):
            return
        rate = self._account(trainer)
        if trainer.logger is not None and trainer.is_global_zero:
            trainer.logger.log_metrics({"steps_per_sec": rate}, step=trainer.global_step)

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._t0 is not None and trainer.global_step > self._step0:
            self._account(trainer)


class BatchTrace(Callback):
    """Appends one JSON line per training step and rank: the step, the stream positions and
    clip indices of the batch, and the loss (debugging aid: shows that a resumed run neither
    repeats nor skips data and that ranks do not share items).

    Each rank writes its own ``rank{r}.jsonl`` in ``dirpath``; lines are flushed at once, so
    they survive a killed process.

    Args:
        dirpath: folder of the trace files.
    """

    def __init__(self, dirpath: Union[str, Path]):
        self.dirpath = Path(dirpath)
        self._file = None

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        self._file = open(self.dirpath / f"rank{trainer.global_rank}.jsonl", "a", encoding="utf-8")

    def on_train_batch_end(
        self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._file is None or not isinstance(batch, dict):
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        record = dict(
            step=trainer.global_step - 1,
            rank=trainer.global_rank,
            positions=[int(p) for p in batch.get("position", [])],
            indices=[int(i) for i in batch.get("index", [])],
            loss=float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss),
            pid=os.getpid(),
        )
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class ValidationLog(Callback):
    """Writes each validation's figures as one log line on rank 0 (readable in batch-job logs,
    where progress bars are off), e.g. ``step 2000: val_sdri 7.41 dB, val_si_sdr 5.02 dB``."""

    def __init__(self, log: Optional[logging.Logger] = None):
        self._logger = log or logging.getLogger(__name__)

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        history = getattr(pl_module, "history", None)
        if trainer.is_global_zero and history and history[-1].get("step") == trainer.global_step:
            row = history[-1]
            figures = ", ".join(f"{k} {v:.2f}" + (" dB" if k != "val_loss" else "")
                                for k, v in row.items() if k.startswith("val_"))
            self._logger.info("step %d: %s (%d examples)", row["step"], figures, row.get("num_examples", 0))


class ValidatedCheckpoint(ModelCheckpoint):
    """Keeps the best checkpoint by a validation metric, and rewrites ``last.ckpt`` after every
    validation of a fit, so that the latest checkpoint carries that validation's results
    (history, best-model state): a run resumed from it neither loses nor repeats them.

    Takes :class:`~pytorch_lightning.callbacks.ModelCheckpoint`'s arguments (``monitor``,
    ``mode``, ``save_top_k`` ...); ``save_last`` is handled here and must not be given.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        if kwargs.get("save_last"):
            raise ValueError("ValidatedCheckpoint writes last.ckpt itself: do not pass save_last")
        kwargs.setdefault("save_on_train_epoch_end", False)
        kwargs.setdefault("enable_version_counter", False)
        super().__init__(*args, **kwargs)

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        super().on_validation_end(trainer, pl_module)
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING or self.dirpath is None:
            return
        # Every rank calls it (it synchronises); only rank 0 writes.
        last = os.path.join(self.dirpath, self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
        trainer.save_checkpoint(last, weights_only=False)
