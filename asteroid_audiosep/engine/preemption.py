"""Preemption and time limits: on SIGUSR1 (SLURM's warning before the time limit, requested by
``utils/slurm.sh``) or SIGTERM, finish the current step, write ``last.ckpt`` and stop; on
SIGUSR1 under SLURM also requeue the job (``scontrol requeue``), which resumes from that
checkpoint.

This replaces Lightning's own SLURM auto-requeue (``SLURMEnvironment(auto_requeue=True)``),
whose handler saves a separate ``hpc_ckpt_N.ckpt`` from inside the signal handler, at any point
of a step (possibly half-way through an optimiser step), and keeps training until SLURM kills
the job. Here the handler only records the signal; the work is done between two steps, where a
checkpoint equals the periodic ones, so the resumed run ends with the uninterrupted run's weights.
"""
import logging
import os
import re
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, Optional

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from ..errors import AudioSepError

logger = logging.getLogger("train")

#: The signals that stop training at the next step boundary, with a checkpoint.
STOP_SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


class TrainingInterrupted(AudioSepError):
    """Training stopped on a signal after writing its checkpoint (the run is resumable)."""


def slurm_job_id() -> Optional[str]:
    """The id that ``scontrol requeue`` takes for this job (``JOBID`` or ``ARRAYJOBID_TASKID``),
    or None outside a SLURM batch job."""
    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{task}" if array_job and task else os.environ.get("SLURM_JOB_ID")
    return job if job and re.fullmatch(r"[0-9_]+", job) else None


def requeue_slurm_job(job_id: str) -> bool:
    """Run ``scontrol requeue JOB_ID``; True when it succeeded (failures are logged)."""
    try:
        result = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        logger.error("could not requeue SLURM job %s: %s", job_id, err)
        return False
    if result.returncode != 0:
        logger.error("scontrol requeue %s failed (%d): %s", job_id, result.returncode, result.stderr.strip())
        return False
    logger.info("requeued SLURM job %s: it resumes from the checkpoint when it starts again", job_id)
    return True


class StopSignals:
    """Records the stop signals received by this process (the handler does nothing else).

    :meth:`install` (main thread only) replaces the current handlers of :data:`STOP_SIGNALS`;
    :meth:`restore` puts the previous ones back.
    """

    def __init__(self):
        self.received: Optional[int] = None
        self._previous: Dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if self.received is None or signum == signal.SIGUSR1:
            self.received = signum

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            previous = signal.signal(signum, self._handler)
            self._previous.setdefault(signum, previous)

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        self._previous = {}


class PreemptionCheckpoint(Callback):
    """At the first step boundary after a stop signal: write ``last.ckpt``, requeue the SLURM
    job (SIGUSR1 only) and stop training; :meth:`check` then raises :class:`TrainingInterrupted`.

    The ranks agree on stopping (a one-number all-reduce per step when there are several), so
    they stop at the same step even when only one received the signal. SIGTERM does not
    requeue: it is also what ``scancel`` and the time limit itself send, and a preempted job
    submitted with ``--requeue`` is requeued by SLURM itself.

    Args:
        checkpoint: the ``last.ckpt`` path.
        signals: the signal recorder (installed by the caller before training, so a signal that
            comes during preparation is not lost, and restored by it at the end; re-installed
            here at the start of the fit, over Lightning's SIGTERM handler, which would stop
            without a checkpoint).
        requeue: call ``scontrol requeue`` on SIGUSR1 when running as a SLURM job
            (``training.slurm_requeue``).
    """

    def __init__(self, checkpoint: Path, signals: StopSignals, requeue: bool = True):
        self.checkpoint = Path(checkpoint)
        self.signals = signals
        self.requeue = requeue
        self.stopped: Optional[Dict[str, Any]] = None
        self._step: Optional[int] = None

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        self._step = int(trainer.global_step)
        self.signals.install()
        # A SIGTERM caught by Lightning's handler while the fit was being set up: handled here
        # (Lightning would exit with status 0 and no checkpoint).
        connector = getattr(trainer, "_signal_connector", None)
        if connector is not None and getattr(connector, "received_sigterm", False):
            connector.received_sigterm = False
            self.signals.received = self.signals.received or signal.SIGTERM

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if int(trainer.global_step) == self._step:
            return  # within a step (gradient accumulation): no checkpoint there
        self._step = int(trainer.global_step)
        received = self.signals.received
        # 2: SIGUSR1 (requeue), 1: SIGTERM, 0: none; the ranks agree on the largest.
        code = {signal.SIGUSR1: 2, signal.SIGTERM: 1}.get(received, 0)
        if trainer.world_size > 1:
            code = int(trainer.strategy.reduce(torch.tensor([code], device=pl_module.device), reduce_op="max"))
        stop = code > 0
        if not stop or self.stopped is not None or 0 < trainer.max_steps <= trainer.global_step:
            return  # (at the last step the run finishes anyway)
        name = "SIGUSR1" if code == 2 else "SIGTERM"
        step = int(trainer.global_step)
        logger.info("%s received: writing %s at step %d and stopping", name, self.checkpoint, step)
        trainer.save_checkpoint(str(self.checkpoint), weights_only=False)  # every rank takes part
        requeued = None
        job = slurm_job_id()
        if code == 2 and self.requeue and job is not None and trainer.is_global_zero:
            requeued = requeue_slurm_job(job)
        self.stopped = dict(signal=name, step=step, checkpoint=str(self.checkpoint), slurm_job=job, requeued=requeued)
        trainer.should_stop = True

    def check(self) -> None:
        """Raise :class:`TrainingInterrupted` when training stopped on a signal."""
        if self.stopped is None:
            return
        info = self.stopped
        then = ("the SLURM job was requeued and resumes from it" if info["requeued"]
                else "rerun the same command to resume from it")
        raise TrainingInterrupted(
            f"training stopped by {info['signal']} at step {info['step']}: checkpoint {info['checkpoint']} "
            f"written; {then}"
        )
