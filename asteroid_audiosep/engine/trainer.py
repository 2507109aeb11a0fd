"""One training run from a config: check, build, train or resume, export the package.

:func:`train` is what ``egs/audiosep/train.py`` (recipe stage 2) calls; it can be called from
Python with the same config mapping. Writes to the experiment directory (rank 0 only):
``train_config.yaml`` (the resolved config), ``query_embeddings.pt`` (the caption embedding
cache), ``checkpoints/`` (``step*.ckpt`` every N steps, ``last.ckpt``, ``best-*.ckpt`` by
validation SDRi), ``tb/`` (TensorBoard), ``best_model.pth`` (the Asteroid package) and
``train_report.json``. Rerunning resumes from the newest complete checkpoint.

Faults (``docs/reliability.md``): checkpoints are written atomically and never with non-finite
weights; a step with a NaN/Inf loss or gradient is skipped; SIGUSR1/SIGTERM write ``last.ckpt``
at the current step and stop (SIGUSR1 under SLURM also requeues the job); with several
processes, a rank that waits longer than ``training.collective_timeout_s`` on the others fails
with an error naming the last checkpoint.
"""
import json
import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from ..config import save_config
from ..errors import AudioSepError
from ..fileio import write_text_atomic
from .faults import AtomicCheckpointIO, NonFiniteGuard, collective_failure
from .hardware import Hardware, is_main_process
from .hybrid import prepare_hybrid
from .preemption import PreemptionCheckpoint, StopSignals
from .setup import build_model, build_query_cache, check_resumable, find_resume_checkpoint, load_initial_model
from .train_config import check_config, check_encoder_spec, resolve_train_config

logger = logging.getLogger("train")

PACKAGE_FILE = "best_model.pth"


def _set_threads(training: Dict[str, Any], hardware: Hardware) -> None:
    threads = training["num_threads"]
    if threads is None and hardware.accelerator == "cpu" and hardware.devices > 1:
        threads = max(1, (os.cpu_count() or 1) // hardware.devices)  # no oversubscription
    if threads:
        torch.set_num_threads(int(threads))


def _loaders(training: Dict[str, Any], hardware: Hardware, train_set, valid_set):
    from torch.utils.data import DataLoader

    from .batching import ShardSampler, StepBatchSampler, StreamDataset, collate_eval

    sampler = StepBatchSampler(len(train_set), training["batch_size"])
    workers = int(training["num_workers"])
    train_loader = DataLoader(StreamDataset(train_set), batch_sampler=sampler, num_workers=workers,
                              pin_memory=hardware.accelerator == "gpu", persistent_workers=False)
    val_loader = None
    if valid_set is not None:
        val_loader = DataLoader(valid_set, batch_size=training["val_batch_size"],
                                sampler=ShardSampler(len(valid_set)), collate_fn=collate_eval,
                                num_workers=min(workers, 2), persistent_workers=min(workers, 2) > 0)
    return train_loader, val_loader


def _callbacks(training: Dict[str, Any], exp_dir: Path, validate: bool, extra: Sequence[Any]):
    """``(callbacks, best_checkpoint_callback_or_None, rate_logger, non_finite_guard)``."""
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

    from ..progress import progress_style
    from .callbacks import (
        BatchTrace,
        StepLineProgress,
        StepProgressBar,
        StepRateLogger,
        ValidatedCheckpoint,
        ValidationLog,
    )

    ckpt_dir = exp_dir / "checkpoints"
    keep = training["keep_checkpoints"]
    periodic = ModelCheckpoint(dirpath=ckpt_dir, filename="step{step:07d}", auto_insert_metric_name=False,
                               every_n_train_steps=training["checkpoint_every_n_steps"], save_last=True,
                               enable_version_counter=False, save_top_k=-1 if keep is None else int(keep),
                               monitor=None if keep is None else "step", mode="max")
    rate = StepRateLogger()
    guard = NonFiniteGuard(training["max_nonfinite_steps"])
    callbacks: List[Any] = [periodic, LearningRateMonitor(logging_interval="step"), rate,
                            ValidationLog(logger), guard]
    best = None
    if validate:
        # Also rewrites last.ckpt after each validation (the periodic save comes before it).
        best = ValidatedCheckpoint(dirpath=ckpt_dir, filename="best-step{step:07d}",
                                   auto_insert_metric_name=False, monitor="val_sdri", mode="max",
                                   save_top_k=1)
        callbacks.append(best)
    if training["progress_bar"]:
        style = progress_style()
        if style == "bars":
            callbacks.append(StepProgressBar(refresh_rate=1))
        elif style == "lines":
            callbacks.append(StepLineProgress())
    if training["trace_batches"]:
        callbacks.append(BatchTrace(exp_dir / "trace"))
    return callbacks + list(extra), best, rate, guard


def _trainer(training: Dict[str, Any], hardware: Hardware, exp_dir: Path, callbacks, validate: bool):
    import pytorch_lightning as pl
    from lightning_fabric.plugins.environments import SLURMEnvironment
    from pytorch_lightning.loggers import TensorBoardLogger

    from .callbacks import StepProgressBar

    strategy = hardware.strategy
    if strategy == "ddp":
        from pytorch_lightning.strategies import DDPStrategy

        # The process group's timeout bounds every collective: a dead or hung rank ends the
        # others with an error instead of a hang (gloo raises; NCCL's watchdog aborts).
        strategy = DDPStrategy(find_unused_parameters=False,
                               timeout=timedelta(seconds=float(training["collective_timeout_s"])))
    plugins: List[Any] = [AtomicCheckpointIO()]
    if SLURMEnvironment.detect():
        # Preemption is handled by PreemptionCheckpoint (checkpoint between steps, then requeue).
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return pl.Trainer(
        accelerator=hardware.accelerator, devices=hardware.devices, num_nodes=hardware.num_nodes,
        strategy=strategy, precision=hardware.precision, sync_batchnorm=hardware.sync_batchnorm,
        max_steps=training["max_steps"], max_epochs=-1,
        val_check_interval=training["val_check_interval"] if validate else None,
        check_val_every_n_epoch=None, limit_val_batches=training["limit_val_batches"] if validate else 0,
        num_sanity_val_steps=0, gradient_clip_val=training["gradient_clip_val"],
        accumulate_grad_batches=training["accumulate_grad_batches"], use_distributed_sampler=False,
        logger=TensorBoardLogger(str(exp_dir), name="tb", version="", default_hp_metric=False),
        callbacks=callbacks, log_every_n_steps=training["log_every_n_steps"],
        enable_progress_bar=any(isinstance(c, StepProgressBar) for c in callbacks),
        enable_model_summary=False, default_root_dir=str(exp_dir), plugins=plugins,
    )


def train(cfg: Dict[str, Any], extra_callbacks: Sequence[Any] = ()) -> Dict[str, Any]:
    """Check the config, build everything, train (or resume), write the package.

    Args:
        cfg: the config (``paths``, ``data``, ``model``, ``training`` sections; defaults from
            ``resources/train_defaults.yaml``).
        extra_callbacks: more Lightning callbacks (tests, custom logging).

    Returns:
        The training report (also written to ``train_report.json`` by rank 0).

    Raises:
        AudioSepError: a configuration or data problem found before training starts; a
            checkpoint that cannot be written (full disk) or would hold non-finite weights; too
            many non-finite steps in a row; a dead or hung rank (collective timeout).
        TrainingInterrupted: stopped by SIGUSR1/SIGTERM after writing ``last.ckpt``.
    """
    cfg = resolve_train_config(cfg)
    hardware, train_set = check_config(cfg)
    _set_threads(cfg["training"], hardware)
    rank0 = is_main_process()
    signals = StopSignals()  # from here on, SIGUSR1/SIGTERM stop at the first step boundary
    signals.install()
    try:
        return _train(cfg, hardware, train_set, rank0, signals, extra_callbacks)
    finally:
        signals.restore()


def _train(cfg: Dict[str, Any], hardware: Hardware, train_set, rank0: bool, signals: StopSignals,
           extra_callbacks: Sequence[Any]) -> Dict[str, Any]:
    import pytorch_lightning as pl

    from ..data import LASSEvalDataset, SegmentMixer
    from ..losses import get_loss_func
    from .bad_data import BadClipMonitor
    from .optim import WarmupSchedule, make_optimizer, make_scheduler
    from .system import AudioSepSystem

    data, training = cfg["data"], cfg["training"]
    exp_dir = Path(cfg["paths"]["exp_dir"])
    bad_clips = BadClipMonitor(len(train_set), data["max_bad_fraction"])  # skipped clips, budget
    resume = find_resume_checkpoint(exp_dir / "checkpoints")
    if resume is not None:
        check_resumable(exp_dir, cfg)
    if rank0:
        exp_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, exp_dir / "train_config.yaml")
    pl.seed_everything(training["seed"], workers=True, verbose=False)

    valid_set = None
    if data["valid_list"]:
        valid_set = LASSEvalDataset(data["valid_list"], query_column=data["valid_query_column"],
                                    sample_rate=data["sample_rate"])
    encoder_spec = check_encoder_spec(cfg["model"]["query_encoder"], float(training["use_text_ratio"]),
                                      training["query_modality"])
    texts = sorted(set(train_set.captions() + (valid_set.queries() if valid_set is not None else [])))
    initial = None
    if training["init_from"]:
        # Fine-tuning keeps the query encoder the model was trained with.
        initial = load_initial_model(training["init_from"], exp_dir, data["sample_rate"],
                                     trust=training["trust_init_from"])
        if initial.query_encoder_spec:
            encoder_spec = dict(initial.query_encoder_spec)
    live_encoder, clips = None, None
    standardized = encoder_spec.pop("standardize", None) is True  # statistics computed below
    if standardized and not training["embedding_cache"]:
        raise AudioSepError("model.query_encoder.standardize: true needs training.embedding_cache: true")
    if training["embedding_cache"]:
        cache, encoder_spec = build_query_cache(encoder_spec, texts, exp_dir,
                                                training["cache_batch_size"], rank0)
        # Clip (audio) embeddings only for audio-queried items; image-queried ones use the picture table.
        audio_hybrid = float(training["use_text_ratio"]) < 1.0 and training["query_modality"] == "audio"
        cache, clips, encoder_spec = prepare_hybrid(encoder_spec, cache, train_set, exp_dir, rank0,
                                                    audio_hybrid, standardized)
        embed_dim = cache.embed_dim
    else:
        from ..encoders import build_query_encoder

        cache, live_encoder = None, build_query_encoder(encoder_spec)
        encoder_spec, embed_dim = live_encoder.spec(), live_encoder.embed_dim
    model = build_model(cfg, encoder_spec, embed_dim, initial)
    if live_encoder is not None:
        model.set_query_encoder(live_encoder)

    picture_table = None
    if getattr(train_set, "picture_sources", None) is not None:
        from .pictures import build_picture_table

        picture_table = build_picture_table(encoder_spec, train_set.picture_sources, exp_dir, rank0,
                                            skip_missing=data["skip_missing"])
    train_loader, val_loader = _loaders(training, hardware, train_set, valid_set)
    optimizer = make_optimizer(model.parameters(), lr=training["lr"], weight_decay=training["weight_decay"],
                               amsgrad=training["amsgrad"])
    schedule = WarmupSchedule(training["warmup_steps"], training["lr_decay_factor"], training["lr_decay_every"])
    mixer = SegmentMixer(max_mix_num=data["max_mix_num"], lower_db=data["lower_db"], higher_db=data["higher_db"],
                         mode=data["mix_mode"], seed=training["seed"])
    system = AudioSepSystem(model, optimizer, get_loss_func(training["loss"]), train_loader, val_loader,
                            scheduler=make_scheduler(optimizer, schedule), config=cfg, mixer=mixer,
                            query_cache=cache, use_text_ratio=training["use_text_ratio"], seed=training["seed"],
                            query_modality=training["query_modality"], picture_table=picture_table,
                            clip_embeddings=clips)
    validate = valid_set is not None
    callbacks, best, rate, guard = _callbacks(training, exp_dir, validate, [bad_clips, *extra_callbacks])
    ckpt_dir = exp_dir / "checkpoints"
    preemption = PreemptionCheckpoint(ckpt_dir / "last.ckpt", signals, requeue=bool(training["slurm_requeue"]))
    trainer = _trainer(training, hardware, exp_dir, callbacks + [preemption], validate)
    start = time.perf_counter()
    if resume is None and validate and training["validate_at_start"]:
        trainer.validate(system, verbose=False)
    if resume is not None:
        logger.info("resuming from %s", resume)
    # Resuming reads last.ckpt with the weights-only unpickler (Lightning passes weights_only to
    # torch.load; explicit, so that TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn it off).
    try:
        trainer.fit(system, ckpt_path=str(resume) if resume is not None else None, weights_only=True)
    except Exception as err:
        failure = collective_failure(err, hardware.world_size, float(training["collective_timeout_s"]), ckpt_dir)
        if failure is None:
            raise
        raise failure from err
    preemption.check()  # stopped by a signal: the checkpoint is written, no package yet
    if trainer.global_step % training["checkpoint_every_n_steps"] != 0 or not (ckpt_dir / "last.ckpt").is_file():
        # Every rank takes part; rank 0 writes.
        trainer.save_checkpoint(str(ckpt_dir / "last.ckpt"), weights_only=False)
    report = dict(
        steps=int(trainer.global_step), max_steps=int(training["max_steps"]), world_size=hardware.world_size,
        accelerator=hardware.accelerator, precision=hardware.precision,
        resumed_from=str(resume) if resume is not None else None,
        wall_seconds=time.perf_counter() - start, train_steps_per_sec=rate.steps_per_sec(),
        validation=list(system.history), best_checkpoint=None, best_step=None, best_val_sdri=None,
    )
    report.update(_report_sections(guard, bad_clips))
    if trainer.is_global_zero:
        _export(report, best, model, train_set, cfg, exp_dir)
    return report


def _report_sections(guard: NonFiniteGuard, bad_clips) -> Dict[str, Any]:
    """The report's sections about faults met during training (one entry per kind). Every rank
    calls it: the bad-clip counts are added up over the ranks (a collective)."""
    return {"nonfinite_steps": guard.report, "bad_clips": bad_clips.report()}


def _export(report: Dict[str, Any], best, model, train_set, cfg: Dict[str, Any], exp_dir: Path) -> None:
    """Rank 0: the package from the best (else the last) checkpoint, and ``train_report.json``."""
    from .package import export_model_package, load_training_checkpoint

    if best is not None and best.best_model_path:
        report["best_checkpoint"] = str(best.best_model_path)
        report["best_val_sdri"] = float(best.best_model_score)
        best_ckpt = load_training_checkpoint(best.best_model_path)
        report["best_step"] = int(best_ckpt["global_step"])
        del best_ckpt
    source = report["best_checkpoint"] or str(exp_dir / "checkpoints" / "last.ckpt")
    infos = dict(steps=report["steps"], checkpoint=Path(source).name, best_step=report["best_step"],
                 best_val_sdri=report["best_val_sdri"], validation=report["validation"],
                 config={k: cfg[k] for k in ("data", "model", "training")})
    export_model_package(model.cpu(), exp_dir / PACKAGE_FILE, checkpoint=source,
                         dataset_infos=train_set.get_infos(), training_infos=json.loads(json.dumps(infos)))
    write_text_atomic(exp_dir / "train_report.json", json.dumps(report, indent=1) + "\n")
    print(f"model package: {exp_dir / PACKAGE_FILE}")


def run_from_files(config: str, overrides: Sequence[str] = (), exp_dir: Optional[str] = None,
                   ngpu: Optional[int] = None, num_nodes: Optional[int] = None,
                   extra_callbacks: Sequence[Any] = ()) -> Dict[str, Any]:
    """:func:`train` on a YAML config with ``--section.key value`` overrides (the recipe's CLI)."""
    from ..config import apply_overrides, load_config, set_value

    cfg = apply_overrides(load_config(config), overrides)
    for key, value in (("training.devices", ngpu), ("training.num_nodes", num_nodes), ("paths.exp_dir", exp_dir)):
        if value is not None:
            set_value(cfg, key, value)
    return train(cfg, extra_callbacks)
