#!/usr/bin/env python
"""Recipe stage 2: train AudioSep from the experiment's YAML config.

Usage (run.sh calls the first form)::

    python egs/audiosep/train.py --config exp/mini/config.yaml
    python egs/audiosep/train.py --config conf/mini.yaml --exp_dir exp/mini --ngpu 0 \
        --training.max_steps 100            # any YAML value: --section.key value

Rerunning the same command resumes from the experiment's last checkpoint (same step,
optimiser, scheduler and data order). Under SLURM, start one task per GPU with ``srun``:
Lightning reads the SLURM environment (``--ntasks-per-node`` = GPUs per node).

Config sections read here (``paths``, ``data``, ``model``, ``training``; other sections are left
to the other steps). Path values may contain ``{data_dir}`` and ``{exp_dir}``, replaced by
``paths.data_dir`` and the experiment directory.

``paths``: ``data_dir``, ``exp_dir`` (the experiment directory; ``--exp_dir`` overrides it).

``data``:
    train_datafiles     list of training datafiles (released JSON format)       [required]
    valid_list          CSV of fixed validation mixtures (evaluation-list format), or null
    valid_query_column  CSV column used as the validation query                   [caption]
    sample_rate         rate the model runs at; audio is resampled to it          [32000]
    segment_seconds     training segment length                                   [5.0]
    max_mix_num, lower_db, higher_db, mix_mode   on-the-fly mixing (SegmentMixer) [2, -10, 10, released]
    skip_missing        drop datafile entries whose audio is missing              [false]

``model``: the :class:`~asteroid_audiosep.models.AudioSep` arguments (``n_fft``, ``hop_length``,
``channels``, ``bottleneck_channels``, ``pool_sizes``, ``film_mode``, ...; default: the released
architecture) and ``query_encoder`` (a spec such as ``{type: sentence}`` or ``{type: clap,
checkpoint: ...}``). ``condition_dim`` defaults to the encoder's embedding size.

``training`` (defaults: the released recipe where it has one):
    seed 0, batch_size 12 (per process), num_workers 4, max_steps 1000000,
    lr 1e-3, weight_decay 0.0, amsgrad true, warmup_steps 10000, lr_decay_factor 1.0,
    lr_decay_every null, loss l1 (or si_sdr), use_text_ratio 1.0 (hybrid queries below 1,
    needs a clap encoder), gradient_clip_val null, accumulate_grad_batches 1,
    val_check_interval 10000 (steps), val_batch_size 1, validate_at_start true,
    limit_val_batches 1.0, checkpoint_every_n_steps 10000, keep_checkpoints null (all),
    log_every_n_steps 50, progress_bar true, embedding_cache true, cache_batch_size 256,
    init_from null (fine-tune from a model package, a released checkpoint, or a known name
    such as audiosep-base), accelerator auto, devices 0 (GPUs per node, 0: CPU; with
    accelerator cpu: CPU processes), num_nodes 1, strategy auto (ddp when more than one
    process), precision auto (bf16-mixed on GPU, 32-true on CPU), sync_batchnorm auto (on
    multi-GPU), trace_batches false (debug: per-step data trace).

Writes to the experiment directory (only rank 0): ``train_config.yaml`` (the resolved
training config), ``query_embeddings.pt`` (the caption embedding cache), ``checkpoints/``
(``step*.ckpt`` every N steps, ``last.ckpt``, ``best-*.ckpt`` by validation SDRi), ``tb/``
(TensorBoard), ``best_model.pth`` (Asteroid package), ``train_report.json``.
"""
import argparse
import copy
import difflib
import inspect
import json
import logging
import os
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import config as recipe_config  # noqa: E402  (egs/audiosep/config.py)
import torch  # noqa: E402

from asteroid_audiosep.errors import AudioSepError  # noqa: E402
from asteroid_audiosep.models import RELEASED_ARGS, AudioSep  # noqa: E402

logger = logging.getLogger("train")

DATA_DEFAULTS: Dict[str, Any] = dict(
    train_datafiles=None,
    valid_list=None,
    valid_query_column="caption",
    sample_rate=32000,
    segment_seconds=5.0,
    max_mix_num=2,
    lower_db=-10,
    higher_db=10,
    mix_mode="released",
    skip_missing=False,
)
MODEL_DEFAULTS: Dict[str, Any] = dict(
    {k: v for k, v in RELEASED_ARGS.items() if k not in ("sample_rate", "condition_dim")},
    sample_rate=None,  # the model runs at data.sample_rate; when given, it must agree
    condition_dim=None,
    query_encoder={"type": "clap"},
)
TRAINING_DEFAULTS: Dict[str, Any] = dict(
    seed=0,
    batch_size=12,
    num_workers=4,
    max_steps=1_000_000,
    lr=1e-3,
    weight_decay=0.0,
    amsgrad=True,
    warmup_steps=10_000,
    lr_decay_factor=1.0,
    lr_decay_every=None,
    loss="l1",
    use_text_ratio=1.0,
    gradient_clip_val=None,
    accumulate_grad_batches=1,
    val_check_interval=10_000,
    val_batch_size=1,
    validate_at_start=True,
    limit_val_batches=1.0,
    checkpoint_every_n_steps=10_000,
    keep_checkpoints=None,
    log_every_n_steps=50,
    progress_bar=True,
    embedding_cache=True,
    cache_batch_size=256,
    init_from=None,
    accelerator="auto",
    devices=0,
    num_nodes=1,
    strategy="auto",
    precision="auto",
    sync_batchnorm="auto",
    trace_batches=False,
    num_threads=None,
)
PRECISIONS = ("auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
CACHE_FILE = "query_embeddings.pt"
PACKAGE_FILE = "best_model.pth"


# ---------------------------------------------------------------------- configuration
def process_rank() -> int:
    """0 for the process that writes (global rank 0), 1 for any other, read from the launcher's
    environment before the process group exists (torchrun's RANK, SLURM's SLURM_PROCID,
    Lightning's own launcher's NODE_RANK and LOCAL_RANK)."""
    for var in ("RANK", "SLURM_PROCID", "NODE_RANK", "LOCAL_RANK"):
        try:
            if int(os.environ.get(var, "0") or 0) != 0:
                return 1
        except ValueError:
            continue
    return 0


def _merge_section(name: str, given: Any, defaults: Dict[str, Any], strict: bool) -> Dict[str, Any]:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise AudioSepError(f"config section '{name}' must be a mapping, got {given!r}")
    unknown = [k for k in given if k not in defaults]
    if strict and unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hints.append(f"{name}.{key}" + (f" (did you mean {name}.{close[0]}?)" if close else ""))
        raise AudioSepError(
            f"unknown config keys {', '.join(hints)}; the {name} section accepts: {', '.join(sorted(defaults))}"
        )
    merged = copy.deepcopy(defaults)
    merged.update(copy.deepcopy(given))
    return merged


def resolve_train_config(cfg: Dict[str, Any], exp_dir: Optional[str] = None) -> Dict[str, Any]:
    """The config with training defaults filled in, unknown model/training keys rejected and
    ``{data_dir}`` / ``{exp_dir}`` expanded in path values.

    Raises:
        AudioSepError: an unknown key (with the closest known one), or no experiment directory.
    """
    cfg = copy.deepcopy(cfg)
    paths = dict(cfg.get("paths") or {})
    if exp_dir is not None:
        paths["exp_dir"] = str(exp_dir)
    if not paths.get("exp_dir"):
        raise AudioSepError("no experiment directory: set paths.exp_dir in the config or pass --exp_dir DIR")
    paths.setdefault("data_dir", "data")
    cfg["paths"] = paths
    cfg["data"] = _merge_section("data", cfg.get("data"), DATA_DEFAULTS, strict=False)
    cfg["model"] = _merge_section("model", cfg.get("model"), MODEL_DEFAULTS, strict=True)
    cfg["training"] = _merge_section("training", cfg.get("training"), TRAINING_DEFAULTS, strict=True)

    def expand(value):
        if isinstance(value, str):
            return value.replace("{data_dir}", str(paths["data_dir"])).replace("{exp_dir}", str(paths["exp_dir"]))
        if isinstance(value, list):
            return [expand(v) for v in value]
        return value

    for section, key in (("data", "train_datafiles"), ("data", "valid_list"), ("training", "init_from")):
        cfg[section][key] = expand(cfg[section][key])
    if isinstance(cfg["data"]["train_datafiles"], str):
        cfg["data"]["train_datafiles"] = [cfg["data"]["train_datafiles"]]
    return cfg


class Hardware(dict):
    """Resolved ``accelerator``, ``devices``, ``num_nodes``, ``strategy``, ``precision``,
    ``sync_batchnorm`` and ``world_size`` (a dict with attribute access)."""

    __getattr__ = dict.__getitem__


def resolve_hardware(training: Dict[str, Any]) -> Hardware:
    """Turn the training section's hardware keys into Trainer arguments.

    Raises:
        AudioSepError: GPUs asked for but none is visible, or an impossible combination.
    """
    accelerator = str(training["accelerator"]).lower()
    devices, num_nodes = training["devices"], int(training["num_nodes"])
    if not isinstance(devices, int) or devices < 0:
        raise AudioSepError(f"training.devices must be a number of GPUs per node (0: CPU), got {devices!r}")
    if num_nodes < 1:
        raise AudioSepError(f"training.num_nodes must be >= 1, got {num_nodes}")
    cuda = torch.cuda.is_available()
    if accelerator == "auto":
        accelerator = "gpu" if devices > 0 else "cpu"
    if accelerator in ("gpu", "cuda"):
        accelerator = "gpu"
        if not cuda:
            raise AudioSepError(
                f"training.devices={devices} asks for GPUs but no GPU is visible: use --ngpu 0 to train on "
                "the CPU (or training.accelerator: cpu with training.devices: N for N CPU processes)"
            )
        devices = max(devices, 1)
        if devices > torch.cuda.device_count():
            raise AudioSepError(
                f"training.devices={devices} but only {torch.cuda.device_count()} GPU(s) are visible: lower --ngpu"
            )
    elif accelerator == "cpu":
        devices = max(devices, 1)
    else:
        raise AudioSepError(f"training.accelerator must be auto, gpu or cpu, got {training['accelerator']!r}")
    world_size = devices * num_nodes
    strategy = training["strategy"]
    if strategy == "auto" and world_size > 1:
        strategy = "ddp"
    sync = training["sync_batchnorm"]
    if sync == "auto":
        sync = accelerator == "gpu" and world_size > 1
    elif sync and accelerator != "gpu":
        raise AudioSepError(
            "training.sync_batchnorm: true needs GPUs (PyTorch's SyncBatchNorm has no CPU kernel): "
            "set it to auto or false"
        )
    precision = str(training["precision"])
    if precision not in PRECISIONS:
        raise AudioSepError(f"training.precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        precision = "bf16-mixed" if accelerator == "gpu" and torch.cuda.is_bf16_supported() else (
            "16-mixed" if accelerator == "gpu" else "32-true")
    elif accelerator == "cpu" and precision in ("16-mixed", "16-true"):
        raise AudioSepError(f"training.precision {precision} needs a GPU: use 32-true or bf16-mixed on the CPU")
    return Hardware(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                    precision=precision, sync_batchnorm=bool(sync), world_size=world_size)


def _audio_rate(path: str) -> int:
    from asteroid_audiosep.audio import audio_info

    return int(audio_info(path).samplerate)


def _check_rates(paths: Sequence[str], sample_rate: int, source: str, what: str) -> None:
    """Fail when the audio is at a lower rate than the model (upsampling would train on an
    empty band); a higher rate is resampled down, as the released recipe does."""
    if not paths:
        return
    count = min(len(paths), 8)
    picks = [paths[i * (len(paths) - 1) // max(count - 1, 1)] for i in range(count)]
    for path in picks:
        try:
            rate = _audio_rate(path)
        except Exception:  # unreadable files are reported by the datasets
            continue
        if rate < sample_rate:
            raise AudioSepError(
                f"sample-rate mismatch: data.sample_rate is {sample_rate} Hz but the {what} of {source} is at "
                f"{rate} Hz (e.g. {path}): set data.sample_rate to {rate} (and build the data at the rate you "
                "want the model to run at); audio is only resampled down"
            )


def check_encoder_spec(spec: Any, use_text_ratio: float) -> Dict[str, Any]:
    """Validate ``model.query_encoder`` without building it."""
    from asteroid_audiosep.encoders import available_query_encoders

    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise AudioSepError(f"model.query_encoder must be a mapping with a 'type', got {spec!r}")
    if spec["type"] not in available_query_encoders():
        raise AudioSepError(
            f"unknown query encoder model.query_encoder.type={spec['type']!r}: set it to one of "
            f"{available_query_encoders()}"
        )
    if use_text_ratio < 1.0 and spec["type"] != "clap":
        raise AudioSepError(
            f"training.use_text_ratio={use_text_ratio} (hybrid text/audio queries) needs an encoder with an "
            f"audio tower: set model.query_encoder.type: clap, or training.use_text_ratio: 1.0"
        )
    return dict(spec)


def check_config(cfg: Dict[str, Any]):
    """Every check that can fail before training, cheapest first; builds the training set.

    Returns:
        ``(hardware, train_set)``.

    Raises:
        AudioSepError: with a message naming the setting to change.
    """
    from asteroid_audiosep.data import LASSTrainDataset
    from asteroid_audiosep.losses import get_loss_func

    data, model, training = cfg["data"], cfg["model"], cfg["training"]
    datafiles = data["train_datafiles"]
    if not datafiles or datafiles == [recipe_config.REQUIRED]:
        raise AudioSepError(
            "data.train_datafiles is not set: list the training datafiles (run stage 0 to prepare them)"
        )
    for datafile in datafiles:
        if not Path(datafile).is_file():
            raise AudioSepError(
                f"data.train_datafiles: {datafile} not found: run stage 0 (data preparation) or fix the path"
            )
    if data["valid_list"] and not Path(data["valid_list"]).is_file():
        raise AudioSepError(
            f"data.valid_list: {data['valid_list']} not found: run stage 1 (validation mixtures), fix the path, "
            "or set it to null to train without validation"
        )
    sample_rate = data["sample_rate"]
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise AudioSepError(f"data.sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if model["sample_rate"] not in (None, sample_rate):
        raise AudioSepError(
            f"sample-rate mismatch: model.sample_rate={model['sample_rate']} but data.sample_rate={sample_rate}: "
            "remove model.sample_rate (the model runs at data.sample_rate)"
        )
    check_encoder_spec(model["query_encoder"], float(training["use_text_ratio"]))
    get_loss_func(training["loss"])
    for key in ("batch_size", "max_steps", "val_check_interval", "checkpoint_every_n_steps", "val_batch_size"):
        if not isinstance(training[key], int) or training[key] < 1:
            raise AudioSepError(f"training.{key} must be a positive integer, got {training[key]!r}")
    hardware = resolve_hardware(training)
    train_set = LASSTrainDataset(
        datafiles, sample_rate, data["segment_seconds"], seed=training["seed"], skip_missing=data["skip_missing"]
    )
    per_step = training["batch_size"] * hardware.world_size
    if per_step > len(train_set):
        raise AudioSepError(
            f"training.batch_size={training['batch_size']} on {hardware.world_size} process(es) takes "
            f"{per_step} clips per step but data.train_datafiles list only {len(train_set)}: lower "
            f"training.batch_size to at most {max(len(train_set) // hardware.world_size, 1)}, or add data"
        )
    if per_step < 2:
        raise AudioSepError("mixtures are made within a batch: training.batch_size must be at least 2")
    for datafile in datafiles:
        from asteroid_audiosep.data import read_datafile

        _check_rates([e["wav"] for e in read_datafile(datafile)], sample_rate, datafile, "training audio")
    if data["valid_list"]:
        from asteroid_audiosep.data.evallist import read_eval_list

        items = read_eval_list(data["valid_list"])
        _check_rates([str(it.mixture) for it in items], sample_rate, data["valid_list"], "validation audio")
    return hardware, train_set


# ---------------------------------------------------------------------- building blocks
def spec_matches(source: Optional[dict], wanted: dict) -> bool:
    """Whether an encoder spec (full, as stored) agrees with every key of a config spec."""
    return isinstance(source, dict) and all(source.get(k) == v for k, v in wanted.items())


def load_initial_model(init_from: str, exp_dir: Path, sample_rate: int) -> AudioSep:
    """The model to fine-tune: a package (``serialize()`` format), a released Lightning
    checkpoint (converted with :func:`asteroid_audiosep.official.convert_official`), or a
    known name (``audiosep-base``, downloaded and converted).

    Raises:
        AudioSepError: unreadable file, or a model at another sample rate than the data.
    """
    from asteroid_audiosep.official import KNOWN_MODELS, convert_official

    path = Path(init_from)
    if init_from in KNOWN_MODELS:
        model = AudioSep.from_pretrained(init_from)
    elif not path.is_file():
        raise AudioSepError(
            f"training.init_from: {init_from} not found: give a model package (.pth), a released checkpoint "
            f"(.ckpt) or one of {sorted(KNOWN_MODELS)}"
        )
    else:
        try:
            content = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:
            raise AudioSepError(f"training.init_from: cannot read {path}: {err}") from err
        if isinstance(content, dict) and "model_args" in content:
            model = AudioSep.from_pretrained(str(path))
        else:
            converted = exp_dir / "init" / (path.stem + ".pth")
            if process_rank() == 0:
                if not converted.is_file():
                    convert_official(path, converted)
            else:
                deadline = time.time() + 600
                while not converted.is_file() and time.time() < deadline:
                    time.sleep(2)
            model = AudioSep.from_pretrained(str(converted))
    if model.sample_rate != sample_rate:
        raise AudioSepError(
            f"sample-rate mismatch: training.init_from is a {int(model.sample_rate)} Hz model but "
            f"data.sample_rate is {sample_rate}: set data.sample_rate to {int(model.sample_rate)}"
        )
    return model


def build_query_cache(encoder_spec: dict, texts: List[str], exp_dir: Path, batch_size: int, write: bool):
    """The caption embedding cache: ``exp_dir/query_embeddings.pt`` when it matches the encoder
    and covers ``texts``, otherwise computed once (batched) and saved (by rank 0 only).

    Returns:
        ``(cache, full_encoder_spec)``.
    """
    from asteroid_audiosep.encoders import PrecomputedQueryEncoder, build_query_encoder

    path = exp_dir / CACHE_FILE
    if path.is_file():
        try:
            cache = PrecomputedQueryEncoder(path=path)
        except Exception as err:  # a foreign or damaged file is recomputed
            logger.warning("ignoring the embedding cache %s: %s", path, err)
        else:
            if spec_matches(cache.source, encoder_spec) and all(t in cache for t in texts):
                logger.info("query embeddings: %d texts from %s", len(cache), path)
                return cache, dict(cache.source)
    encoder = build_query_encoder(encoder_spec)
    start = time.perf_counter()
    cache = PrecomputedQueryEncoder.from_encoder(encoder, texts, batch_size=batch_size, progress=write)
    logger.info("query embeddings: %d texts embedded in %.1f s", len(cache), time.perf_counter() - start)
    if write:
        cache.save(path)
    return cache, encoder.spec()


def build_model(
    cfg: Dict[str, Any], encoder_spec: dict, embed_dim: int, initial: Optional[AudioSep] = None
) -> AudioSep:
    """The AudioSep model of the config, or ``initial`` (the model of ``training.init_from``)
    checked against the query encoder."""
    model_conf, sample_rate = dict(cfg["model"]), cfg["data"]["sample_rate"]
    if initial is not None:
        model = initial
        if model.condition_dim != embed_dim:
            raise AudioSepError(
                f"the model of training.init_from expects {model.condition_dim}-d queries but the "
                f"{encoder_spec['type']} encoder gives {embed_dim}-d embeddings"
            )
        model.query_encoder_spec = encoder_spec
        return model
    model_conf.pop("query_encoder")
    model_conf.pop("sample_rate", None)
    if model_conf["condition_dim"] is None:
        model_conf["condition_dim"] = embed_dim
    elif model_conf["condition_dim"] != embed_dim:
        raise AudioSepError(
            f"model.condition_dim={model_conf['condition_dim']} but the {encoder_spec['type']} query encoder "
            f"gives {embed_dim}-d embeddings: set model.condition_dim: {embed_dim} (or remove it)"
        )
    accepted = set(inspect.signature(AudioSep.__init__).parameters) - {"self"}
    unknown = set(model_conf) - accepted
    if unknown:
        raise AudioSepError(f"unknown model arguments {sorted(unknown)}; AudioSep accepts {sorted(accepted)}")
    try:
        return AudioSep(sample_rate=sample_rate, query_encoder=encoder_spec, **model_conf)
    except (ValueError, TypeError) as err:
        raise AudioSepError(f"the model section is not a valid AudioSep: {err}") from err


def find_resume_checkpoint(ckpt_dir: Path) -> Optional[Path]:
    """The newest complete checkpoint of a run: ``last.ckpt``, else the periodic one with the
    highest step (a checkpoint torn by a kill is skipped)."""
    if not ckpt_dir.is_dir():
        return None
    candidates = [ckpt_dir / "last.ckpt"] + sorted(ckpt_dir.glob("step*.ckpt"), reverse=True)
    for path in candidates:
        if path.is_file() and zipfile.is_zipfile(path):
            return path
        if path.is_file():
            logger.warning("skipping the unreadable checkpoint %s", path)
    return None


# ---------------------------------------------------------------------- the run
def train(cfg: Dict[str, Any], extra_callbacks: Sequence[Any] = ()) -> Dict[str, Any]:
    """Check the config, build everything, train (or resume), write the package.

    Args:
        cfg: the config (``paths``, ``data``, ``model``, ``training`` sections).
        extra_callbacks: more Lightning callbacks (tests, custom logging).

    Returns:
        The training report (also written to ``train_report.json`` by rank 0).
    """
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
    from pytorch_lightning.loggers import TensorBoardLogger
    from torch.utils.data import DataLoader

    from asteroid_audiosep.data import LASSEvalDataset, SegmentMixer
    from asteroid_audiosep.engine import (
        AudioSepSystem,
        BatchTrace,
        ShardSampler,
        StepBatchSampler,
        StepProgressBar,
        StepRateLogger,
        StreamDataset,
        ValidatedCheckpoint,
        ValidationLog,
        WarmupSchedule,
        collate_eval,
        export_model_package,
        make_optimizer,
        make_scheduler,
    )
    from asteroid_audiosep.losses import get_loss_func

    cfg = resolve_train_config(cfg)
    data, training = cfg["data"], cfg["training"]
    exp_dir = Path(cfg["paths"]["exp_dir"])
    hardware, train_set = check_config(cfg)
    threads = training["num_threads"]
    if threads is None and hardware.accelerator == "cpu" and hardware.devices > 1:
        threads = max(1, (os.cpu_count() or 1) // hardware.devices)  # no oversubscription
    if threads:
        torch.set_num_threads(int(threads))
    rank0 = process_rank() == 0
    ckpt_dir = exp_dir / "checkpoints"
    resume = find_resume_checkpoint(ckpt_dir)
    if resume is not None:
        previous = exp_dir / "train_config.yaml"
        if previous.is_file():
            old = recipe_config.load_config(previous)
            if old.get("model") != cfg["model"] or old["data"].get("sample_rate") != data["sample_rate"]:
                raise AudioSepError(
                    f"{exp_dir} holds a run with another model or sample rate (see {previous}): use another "
                    "experiment directory (--tag / --exp_dir), or delete its checkpoints/ to start over"
                )
    if rank0:
        exp_dir.mkdir(parents=True, exist_ok=True)
        recipe_config.save_config(cfg, exp_dir / "train_config.yaml")
    pl.seed_everything(training["seed"], workers=True, verbose=False)

    valid_set = None
    if data["valid_list"]:
        valid_set = LASSEvalDataset(data["valid_list"], query_column=data["valid_query_column"],
                                    sample_rate=data["sample_rate"])
    encoder_spec = check_encoder_spec(cfg["model"]["query_encoder"], float(training["use_text_ratio"]))
    texts = train_set.captions() + (valid_set.queries() if valid_set is not None else [])
    texts = sorted(set(texts))
    initial = None
    if training["init_from"]:
        # Fine-tuning keeps the query encoder the model was trained with.
        initial = load_initial_model(training["init_from"], exp_dir, data["sample_rate"])
        if initial.query_encoder_spec:
            encoder_spec = dict(initial.query_encoder_spec)
    live_encoder = None
    if training["embedding_cache"]:
        cache, encoder_spec = build_query_cache(encoder_spec, texts, exp_dir, training["cache_batch_size"], rank0)
        embed_dim = cache.embed_dim
    else:
        from asteroid_audiosep.encoders import build_query_encoder

        cache, live_encoder = None, build_query_encoder(encoder_spec)
        encoder_spec, embed_dim = live_encoder.spec(), live_encoder.embed_dim
    model = build_model(cfg, encoder_spec, embed_dim, initial)
    if live_encoder is not None:
        model.set_query_encoder(live_encoder)

    sampler = StepBatchSampler(len(train_set), training["batch_size"])
    workers = int(training["num_workers"])
    train_loader = DataLoader(StreamDataset(train_set), batch_sampler=sampler, num_workers=workers,
                              pin_memory=hardware.accelerator == "gpu", persistent_workers=False)
    val_loader = None
    if valid_set is not None:
        val_loader = DataLoader(valid_set, batch_size=training["val_batch_size"], sampler=ShardSampler(len(valid_set)),
                                collate_fn=collate_eval, num_workers=min(workers, 2),
                                persistent_workers=min(workers, 2) > 0)
    optimizer = make_optimizer(model.parameters(), lr=training["lr"], weight_decay=training["weight_decay"],
                               amsgrad=training["amsgrad"])
    schedule = WarmupSchedule(training["warmup_steps"], training["lr_decay_factor"], training["lr_decay_every"])
    mixer = SegmentMixer(max_mix_num=data["max_mix_num"], lower_db=data["lower_db"], higher_db=data["higher_db"],
                         mode=data["mix_mode"], seed=training["seed"])
    system = AudioSepSystem(model, optimizer, get_loss_func(training["loss"]), train_loader, val_loader,
                            scheduler=make_scheduler(optimizer, schedule), config=cfg, mixer=mixer,
                            query_cache=cache, use_text_ratio=training["use_text_ratio"], seed=training["seed"])

    every = training["checkpoint_every_n_steps"]
    keep = training["keep_checkpoints"]
    periodic = ModelCheckpoint(dirpath=ckpt_dir, filename="step{step:07d}", auto_insert_metric_name=False,
                               every_n_train_steps=every, save_last=True, enable_version_counter=False,
                               save_top_k=-1 if keep is None else int(keep),
                               monitor=None if keep is None else "step", mode="max")
    callbacks: List[Any] = [periodic, LearningRateMonitor(logging_interval="step"), StepRateLogger(),
                            ValidationLog(logger)]
    best = None
    if valid_set is not None:
        # Also rewrites last.ckpt after each validation (the periodic save comes before it).
        best = ValidatedCheckpoint(dirpath=ckpt_dir, filename="best-step{step:07d}", auto_insert_metric_name=False,
                                   monitor="val_sdri", mode="max", save_top_k=1)
        callbacks.append(best)
    if training["progress_bar"]:
        callbacks.append(StepProgressBar(refresh_rate=1))
    if training["trace_batches"]:
        callbacks.append(BatchTrace(exp_dir / "trace"))
    callbacks += list(extra_callbacks)
    strategy = hardware.strategy
    if strategy == "ddp":
        from pytorch_lightning.strategies import DDPStrategy

        strategy = DDPStrategy(find_unused_parameters=False)
    trainer = pl.Trainer(
        accelerator=hardware.accelerator, devices=hardware.devices, num_nodes=hardware.num_nodes,
        strategy=strategy, precision=hardware.precision, sync_batchnorm=hardware.sync_batchnorm,
        max_steps=training["max_steps"], max_epochs=-1,
        val_check_interval=training["val_check_interval"] if valid_set is not None else None,
        check_val_every_n_epoch=None, limit_val_batches=training["limit_val_batches"] if valid_set is not None else 0,
        num_sanity_val_steps=0, gradient_clip_val=training["gradient_clip_val"],
        accumulate_grad_batches=training["accumulate_grad_batches"], use_distributed_sampler=False,
        logger=TensorBoardLogger(str(exp_dir), name="tb", version="", default_hp_metric=False),
        callbacks=callbacks, log_every_n_steps=training["log_every_n_steps"],
        enable_progress_bar=bool(training["progress_bar"]), enable_model_summary=False,
        default_root_dir=str(exp_dir),
    )
    rate = next(c for c in callbacks if isinstance(c, StepRateLogger))
    start = time.perf_counter()
    if resume is None and valid_set is not None and training["validate_at_start"]:
        trainer.validate(system, verbose=False)
    if resume is not None:
        logger.info("resuming from %s", resume)
    trainer.fit(system, ckpt_path=str(resume) if resume is not None else None)
    if trainer.global_step % every != 0 or not (ckpt_dir / "last.ckpt").is_file():
        trainer.save_checkpoint(str(ckpt_dir / "last.ckpt"), weights_only=False)  # every rank takes part; rank 0 writes
    report = dict(
        steps=int(trainer.global_step), max_steps=int(training["max_steps"]), world_size=hardware.world_size,
        accelerator=hardware.accelerator, precision=hardware.precision,
        resumed_from=str(resume) if resume is not None else None,
        wall_seconds=time.perf_counter() - start, train_steps_per_sec=rate.steps_per_sec(),
        validation=list(system.history), best_checkpoint=None, best_step=None, best_val_sdri=None,
    )
    if not trainer.is_global_zero:
        return report
    if best is not None and best.best_model_path:
        report["best_checkpoint"] = str(best.best_model_path)
        report["best_val_sdri"] = float(best.best_model_score)
        best_ckpt = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
        report["best_step"] = int(best_ckpt["global_step"])
        del best_ckpt
    source = report["best_checkpoint"] or str(ckpt_dir / "last.ckpt")
    infos = dict(steps=report["steps"], checkpoint=Path(source).name, best_step=report["best_step"],
                 best_val_sdri=report["best_val_sdri"], validation=report["validation"],
                 config={k: cfg[k] for k in ("data", "model", "training")})
    export_model_package(model.cpu(), exp_dir / PACKAGE_FILE, checkpoint=source,
                         dataset_infos=train_set.get_infos(), training_infos=json.loads(json.dumps(infos)))
    _write_json(exp_dir / "train_report.json", report)
    print(f"model package: {exp_dir / PACKAGE_FILE}")
    return report


def _write_json(path: Path, content: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=1) + "\n")
    os.replace(tmp, path)


def parse_args(argv: Optional[Sequence[str]] = None):
    """``(args, overrides)``: the named options and the ``--section.key value`` pairs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", "--conf", dest="config", required=True, help="the YAML config")
    parser.add_argument("--exp_dir", default=None, help="experiment directory (default: paths.exp_dir)")
    parser.add_argument("--ngpu", type=int, default=None, help="GPUs per node (training.devices; 0: CPU)")
    parser.add_argument("--num_nodes", type=int, default=None, help="nodes (training.num_nodes)")
    return parser.parse_known_args(argv)


def main(argv: Optional[Sequence[str]] = None, extra_callbacks: Sequence[Any] = ()) -> int:
    """Command-line entry point; returns the exit status (1 with a message on bad configuration)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (train) %(message)s")
    args, rest = parse_args(argv)
    try:
        cfg = recipe_config.apply_overrides(recipe_config.load_config(args.config), rest)
        if args.ngpu is not None:
            recipe_config.set_value(cfg, "training.devices", args.ngpu)
        if args.num_nodes is not None:
            recipe_config.set_value(cfg, "training.num_nodes", args.num_nodes)
        if args.exp_dir is not None:
            recipe_config.set_value(cfg, "paths.exp_dir", args.exp_dir)
        train(cfg, extra_callbacks)
    except (AudioSepError, recipe_config.ConfigError) as err:
        message = err.code if isinstance(err, SystemExit) else err
        print(f"train.py: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
