#!/usr/bin/env python
"""GPU readiness: fp32/bf16/fp16 parity, inference speed and memory, training throughput.

One command that exercises every GPU path of the package and measures it, written to fit in
one call of a few minutes on one GPU (about 8 minutes, most of it the torch.compile run):

- ``parity``: the released architecture with the stand-in released weights (made from
  ``$AUDIOSEP_REFERENCE_DIR``, default ``../shared/reference``) on the reference vectors, in
  fp32 (TF32 off): max |output - reference| for the fused eval path and the module-by-module
  path (goal <= 1e-4); then the SI-SDR of the bf16 and fp16 autocast outputs (the ``--half``
  path, :func:`~asteroid_audiosep.apply.separate_segment`) against fp32 (goal >= 40 dB).
- ``inference``: seconds of input audio per second for 10 s, 1 min and 10 min inputs through
  the chunked path (:class:`~asteroid_audiosep.apply.ChunkRunner`, what
  ``separate_waveform`` and ``separate`` run) with 1 and 8 queries at once, in fp32, bf16 and
  fp16; peak GPU memory per run, and its ratio 10 min / 1 min (goal <= 1.1: chunking bounds it).
- ``training``: steps/s, peak GPU memory and the share of the time the GPU waits for data at
  the released configuration (batch 12 x 5 s at 32 kHz, bf16-mixed, the query-embedding cache,
  data read from a datafile of generated 10 s FLAC clips at 44.1 kHz, resampled by the loader)
  with 0, 4 and 8 loader workers (the configs use 8; goal: waiting < 10 %), then with the
  separator compiled by ``torch.compile``. Built from the package's classes
  (:class:`~asteroid_audiosep.engine.AudioSepSystem`, a Lightning Trainer), as
  ``egs/audiosep/train.py`` builds them.

``--dry-run`` runs every section at tiny sizes (a reduced model for inference and training, short
inputs, a few steps), on the GPU when there is one, else on the CPU, where the half-precision
paths run under ``torch.autocast('cpu')``; on the CPU it takes under a minute and skips
``torch.compile`` (its C++ build alone takes minutes). It checks that every path runs; its
figures mean nothing.

The results go to a JSON file (``--json``, written after every measurement, so a run cut short
keeps what it measured) and to a table on stdout. A failing measurement is recorded with its
error and the others still run; the exit status is 1 when any measurement failed.

Usage::

    python benchmarks/bench_gpu.py --json bench_gpu.json          # on a GPU machine
    python benchmarks/bench_gpu.py --dry-run --json /tmp/dry.json  # anywhere, < 2 min on 2 cores
    python benchmarks/bench_gpu.py --sections parity inference
"""

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
REFERENCE = Path(os.environ.get("AUDIOSEP_REFERENCE_DIR", REPO.parent / "shared" / "reference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REDUCED_ARGS, conditions, reduced_model, stand_in_package  # noqa: E402
from common import test_signal as _signal  # noqa: E402


def test_signal(seconds: float, rate: int, seed: int = 0) -> torch.Tensor:
    """(1, samples): the common test signal, mono."""
    return _signal(seconds, rate, 1, seed)

SECTIONS = ("parity", "inference", "training")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: Sizes of a real run and of the dry run.
SIZES = {
    "full": dict(
        model="released",
        half_seconds=None,  # the whole 2 s reference clip
        input_seconds=[10.0, 60.0, 600.0],
        memory_pair=(60.0, 600.0),
        queries=[1, 8],
        train_model="released",
        train_batch=12,
        train_seconds=5.0,
        clips=96,
        clip_seconds=10.0,
        workers=[0, 4, 8],
        warmup_steps=5,
        steps=30,
        compile=True,
    ),
    "dry": dict(
        model="reduced",
        half_seconds=0.25,  # fp16 convolutions are emulated (slow) on most CPUs
        input_seconds=[1.0, 3.0],
        memory_pair=(1.0, 3.0),
        queries=[1, 2],
        train_model="reduced",
        train_batch=4,
        train_seconds=0.5,
        clips=8,
        clip_seconds=2.0,
        workers=[0, 2],
        warmup_steps=1,
        steps=3,
        compile=False,  # on the GPU the dry run compiles too (see main)
    ),
}
CLIP_RATE = 44100
#: The loader worker count of the configs (conf/audiosep_base.yaml: training.num_workers).
CONFIG_WORKERS = 8


# ---------------------------------------------------------------------------- helpers
def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> Optional[float]:
    """Peak GPU memory allocated since :func:`reset_peak`, GiB (None on the CPU)."""
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def si_sdr_db(ref: torch.Tensor, est: torch.Tensor) -> float:
    from asteroid_audiosep.metrics.separation import si_sdr

    return float(si_sdr(ref.double().flatten(), est.double().flatten()))


def build_model(kind: str, workdir: Path, device: torch.device):
    """The released architecture with the stand-in weights, or the reduced model (seeded)."""
    from asteroid_audiosep import AudioSep

    if kind == "released":
        return AudioSep.from_pretrained(str(stand_in_package(workdir))).eval().to(device)
    return reduced_model().to(device)


class Results:
    """The JSON document, rewritten after every measurement."""

    def __init__(self, path: Path, header: Dict[str, Any]):
        self.path = path
        self.doc: Dict[str, Any] = dict(header, errors=[])
        self.write()

    def record(self, section: str, key: str, value: Any) -> None:
        self.doc.setdefault(section, {})[key] = value
        self.write()

    def measure(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run one measurement; on failure, record the error and return None."""
        try:
            return fn()
        except Exception as err:  # one failure must not cost the other figures
            traceback.print_exc()
            self.doc["errors"].append(f"{what}: {type(err).__name__}: {err}")
            self.write()
            return None

    def write(self) -> None:
        from asteroid_audiosep.fileio import write_text_atomic

        write_text_atomic(self.path, json.dumps(self.doc, indent=1, default=str) + "\n")


# ---------------------------------------------------------------------------- parity
def parity_section(res: Results, sizes: dict, device: torch.device, workdir: Path) -> None:
    from asteroid_audiosep.apply import separate_segment

    vectors = np.load(REFERENCE / "official_forward_vectors.npz")
    mixture = torch.from_numpy(vectors["mixture"]).float().to(device)
    condition = torch.from_numpy(vectors["condition"]).float().reshape(1, -1).to(device)
    expected = torch.from_numpy(vectors["output"]).float().flatten()
    model = build_model("released", workdir, device)
    # TF32 would change fp32 convolutions and matmuls on Ampere and later: off for parity.
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.inference_mode():
            for path, fused in (("fused", True), ("reference", False)):
                model.separator.fused_inference = fused
                out = model(mixture[None, None], condition).flatten().cpu()
                err = float((out - expected).abs().max())
                res.record("parity", f"fp32_{path}_max_abs_err", err)
            model.separator.fused_inference = True
        n = mixture.numel() if not sizes["half_seconds"] else int(sizes["half_seconds"] * 32000)
        wav = mixture[None, :n]
        res.record("parity", "half_seconds", n / 32000)
        fp32 = separate_segment(model, wav, condition).cpu()
        for name in ("bf16", "fp16"):

            def half(name=name):
                out = separate_segment(model, wav, condition, autocast_dtype=PRECISIONS[name])
                if not bool(torch.isfinite(out).all()):
                    raise FloatingPointError(f"{name} output holds NaN or infinite values")
                out = out.cpu()
                return si_sdr_db(fp32, out)

            res.record("parity", f"{name}_si_sdr_db", res.measure(f"parity {name}", half))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


# ---------------------------------------------------------------------------- inference
def chunked_run(model, wav: torch.Tensor, conds: torch.Tensor, dtype) -> torch.Tensor:
    """The chunked path of ``separate_waveform`` with an explicit autocast dtype (so that the
    half-precision path also runs on the CPU, where the public API falls back to fp32)."""
    from asteroid_audiosep.apply import ChunkRunner
    from asteroid_audiosep.stream import TensorSignal

    separator = ChunkRunner(model, conds, autocast_dtype=dtype)
    signal = TensorSignal(wav, int(model.sample_rate), int(model.sample_rate))
    return torch.cat([block.targets for block in separator.run(signal)], dim=-1)


def inference_section(res: Results, sizes: dict, device: torch.device, workdir: Path) -> None:
    model = build_model(sizes["model"], workdir, device)
    rate = int(model.sample_rate)
    res.record("inference", "model", sizes["model"])
    runs: List[dict] = []
    res.record("inference", "runs", runs)
    warm = test_signal(2.0, rate)
    for seconds in sizes["input_seconds"]:
        wav = test_signal(seconds, rate, seed=2)
        for queries in sizes["queries"]:
            conds = conditions(queries, model.condition_dim)
            for name, dtype in PRECISIONS.items():

                def one(wav=wav, conds=conds, dtype=dtype):
                    chunked_run(model, warm, conds, dtype)  # kernels, allocator, autotuning
                    reset_peak()
                    sync()
                    start = time.perf_counter()
                    out = chunked_run(model, wav, conds, dtype)
                    sync()
                    elapsed = time.perf_counter() - start
                    if not bool(torch.isfinite(out).all()):
                        raise FloatingPointError("the output holds NaN or infinite values")
                    return elapsed

                what = f"inference {seconds:g} s x {queries} queries {name}"
                elapsed = res.measure(what, one)
                runs.append(
                    dict(
                        seconds=seconds,
                        queries=queries,
                        precision=name,
                        x_realtime=None if elapsed is None else seconds / elapsed,
                        peak_gib=peak_gib() if elapsed is not None else None,
                    )
                )
                res.write()
    short, long = sizes["memory_pair"]
    for name in PRECISIONS:
        peaks = {
            r["seconds"]: r["peak_gib"]
            for r in runs
            if r["precision"] == name and r["queries"] == 1 and r["peak_gib"]
        }
        if short in peaks and long in peaks:
            res.record("inference", f"memory_ratio_{name}", peaks[long] / peaks[short])


# ---------------------------------------------------------------------------- training
def write_clips(folder: Path, count: int, seconds: float) -> Path:
    """``count`` FLAC clips at 44.1 kHz (noise bursts and tones) and their datafile."""
    import soundfile as sf

    from asteroid_audiosep.data import write_datafile

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * CLIP_RATE)) / CLIP_RATE
    entries = []
    for i in range(count):
        path = folder / f"clip{i:04d}.flac"
        if not path.is_file():
            tone = (
                0.3
                * np.sin(2 * np.pi * (110 + 40 * i) * t)
                * (np.sin(2 * np.pi * t * (i % 5 + 1)) > 0)
            )
            noise = 0.05 * rng.standard_normal(t.size) * (1 + np.sin(2 * np.pi * 0.2 * (i + 1) * t))
            sf.write(path, (tone + noise).astype("float32"), CLIP_RATE, format="FLAC")
        entries.append({"wav": str(path), "caption": f"sound number {i % 12}"})
    return write_datafile(folder / "train.json", entries)


class StepClock:
    """A Lightning callback timing each step and the gap before it (data loading, transfer)."""

    def __init__(self, warmup: int):
        import pytorch_lightning as pl

        outer = self

        class _Callback(pl.Callback):
            def on_train_batch_start(self, trainer, module, batch, batch_idx):
                outer.start(trainer.global_step)

            def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
                outer.end(trainer.global_step, outputs)

        self.callback = _Callback()
        self.warmup = warmup
        self.waits: List[float] = []
        self.steps: List[float] = []
        self.losses: List[float] = []
        self.first_step: Optional[float] = None
        self._t_end: Optional[float] = None
        self._t_start = 0.0

    def start(self, step: int) -> None:
        sync()
        now = time.perf_counter()
        if self._t_end is not None and step >= self.warmup:
            self.waits.append(now - self._t_end)
        self._t_start = now

    def end(self, step: int, outputs) -> None:
        sync()
        now = time.perf_counter()
        if step == 1:
            self.first_step = now - self._t_start
        if step > self.warmup:
            self.steps.append(now - self._t_start)
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach().float()))
        self._t_end = now


def train_run(
    datafile: Path, sizes: dict, device: torch.device, workers: int, compiled: bool
) -> dict:
    """A short bf16-mixed training run; timing, memory and losses."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from asteroid_audiosep import AudioSep
    from asteroid_audiosep.data import LASSTrainDataset, SegmentMixer
    from asteroid_audiosep.encoders import PrecomputedQueryEncoder
    from asteroid_audiosep.engine import (
        AudioSepSystem,
        StepBatchSampler,
        StreamDataset,
        make_optimizer,
    )
    from asteroid_audiosep.losses import l1_waveform_loss
    from asteroid_audiosep.models import RELEASED_ARGS

    args = (
        dict(RELEASED_ARGS)
        if sizes["train_model"] == "released"
        else {**RELEASED_ARGS, **REDUCED_ARGS}
    )
    rate = args["sample_rate"]
    dataset = LASSTrainDataset([datafile], rate, sizes["train_seconds"], seed=0)
    texts = dataset.captions()
    cache = PrecomputedQueryEncoder(
        table=dict(zip(texts, conditions(len(texts), args["condition_dim"])))
    )
    loader = DataLoader(
        StreamDataset(dataset),
        batch_sampler=StepBatchSampler(len(dataset), sizes["train_batch"], rank=0, world_size=1),
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )
    torch.manual_seed(0)
    model = AudioSep(**args)
    if compiled:
        model.separator.compile()
    system = AudioSepSystem(
        model,
        make_optimizer(model.parameters()),
        l1_waveform_loss,
        loader,
        mixer=SegmentMixer(seed=0),
        query_cache=cache,
    )
    clock = StepClock(sizes["warmup_steps"])
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed",
        max_steps=sizes["warmup_steps"] + sizes["steps"],
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[clock.callback],
    )
    reset_peak()
    trainer.fit(system)
    busy, wait = sum(clock.steps), sum(clock.waits)
    if not all(math.isfinite(v) for v in clock.losses):
        raise FloatingPointError(f"non-finite training loss: {clock.losses}")
    return dict(
        workers=workers,
        compiled=compiled,
        batch=sizes["train_batch"],
        segment_seconds=sizes["train_seconds"],
        sample_rate=rate,
        steps_per_s=len(clock.steps) / (busy + wait) if clock.steps else None,
        data_wait_share=wait / (busy + wait) if clock.steps else None,
        first_step_s=clock.first_step,
        peak_gib=peak_gib(),
        losses=clock.losses,
    )


def training_section(res: Results, sizes: dict, device: torch.device, workdir: Path) -> None:
    datafile = write_clips(workdir / "clips", sizes["clips"], sizes["clip_seconds"])
    res.record("training", "model", sizes["train_model"])
    runs: List[dict] = []
    res.record("training", "runs", runs)
    variants = [(w, False) for w in sizes["workers"]]
    if sizes["compile"]:
        variants.append((max(sizes["workers"]), True))
    else:
        res.record("training", "compile", "skipped (CPU dry run)")
    for workers, compiled in variants:
        what = f"training workers={workers}" + (" compiled" if compiled else "")
        run = res.measure(
            what, lambda w=workers, c=compiled: train_run(datafile, sizes, device, w, c)
        )
        runs.append(run or dict(workers=workers, compiled=compiled, steps_per_s=None))
        res.write()


# ---------------------------------------------------------------------------- table
def _fmt(value, spec: str = ".1f", none: str = "-") -> str:
    return none if value is None else format(value, spec)


def table(doc: Dict[str, Any]) -> str:
    """The results as a plain-text table."""
    lines = [
        f"bench_gpu ({'dry run' if doc['dry_run'] else 'full'}) on {doc['device_name']}, "
        f"torch {doc['torch']}, {doc['seconds']:.0f} s"
    ]
    parity = doc.get("parity")
    if parity:
        lines += [
            "",
            "parity (released architecture, stand-in weights, reference vectors; goals: fp32 "
            "<= 1e-4, half >= 40 dB)",
            f"  fp32 max |err|: fused {_fmt(parity.get('fp32_fused_max_abs_err'), '.1e')}, "
            f"reference {_fmt(parity.get('fp32_reference_max_abs_err'), '.1e')}",
            f"  SI-SDR vs fp32 ({_fmt(parity.get('half_seconds'), 'g')} s): "
            f"bf16 {_fmt(parity.get('bf16_si_sdr_db'))} dB, "
            f"fp16 {_fmt(parity.get('fp16_si_sdr_db'))} dB",
        ]
    inference = doc.get("inference")
    if inference:
        lines += [
            "",
            f"inference ({inference['model']} model, chunked): x real time (peak GPU GiB)",
            f"  {'input':>8s} {'queries':>7s} " + " ".join(f"{p:>15s}" for p in PRECISIONS),
        ]
        keys = sorted({(r["seconds"], r["queries"]) for r in inference["runs"]})
        for seconds, queries in keys:
            cells = []
            for name in PRECISIONS:
                run = next(
                    (
                        r
                        for r in inference["runs"]
                        if (r["seconds"], r["queries"], r["precision"]) == (seconds, queries, name)
                    ),
                    {},
                )
                cell = _fmt(run.get("x_realtime"), ".1f", "failed")
                if run.get("peak_gib") is not None:
                    cell += f" ({run['peak_gib']:.2f})"
                cells.append(f"{cell:>15s}")
            lines.append(f"  {seconds:>7g}s {queries:>7d} " + " ".join(cells))
        ratios = [
            f"{p} {inference[f'memory_ratio_{p}']:.2f}"
            for p in PRECISIONS
            if f"memory_ratio_{p}" in inference
        ]
        lines.append(
            "  peak memory long/short input: "
            + (", ".join(ratios) if ratios else "not measured (no GPU)")
            + " (goal <= 1.1)"
        )
    training = doc.get("training")
    if training:
        lines += [
            "",
            f"training ({training['model']} model, bf16-mixed, embedding cache)",
            f"  {'workers':>7s} {'compiled':>8s} {'steps/s':>8s} {'data wait':>9s} "
            f"{'peak GiB':>8s} {'loss first -> last':>19s}",
        ]
        for run in training["runs"]:
            losses = run.get("losses") or []
            trend = f"{losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "failed"
            wait = run.get("data_wait_share")
            lines.append(
                f"  {run['workers']:>7d} {run['compiled']!s:>8s} "
                f"{_fmt(run.get('steps_per_s'), '.2f'):>8s} "
                f"{_fmt(None if wait is None else 100 * wait, '.1f') + ' %':>9s} "
                f"{_fmt(run.get('peak_gib'), '.2f'):>8s} {trend:>19s}"
            )
        if "compile" in training:
            lines.append(f"  torch.compile: {training['compile']}")
        if training["runs"]:
            first = training["runs"][0]
            lines.append(
                f"  (batch {first.get('batch')} x {first.get('segment_seconds')} s at "
                f"{first.get('sample_rate')} Hz; data wait goal < 10 % at {CONFIG_WORKERS} workers)"
            )
    if doc["errors"]:
        lines += ["", "errors:"] + [f"  {e}" for e in doc["errors"]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--dry-run", action="store_true", help="every section at tiny sizes (CI, no GPU)"
    )
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--json", help="results file (default: bench_gpu.json in the working folder)")
    p.add_argument("--workdir", help="folder for generated files (default: a new temporary folder)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile training run")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from asteroid_audiosep.cpu_memory import retain_freed_memory

    retain_freed_memory()  # as the CLI does: the entry point makes the allocator choice
    start = time.perf_counter()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_gpu_"))
    workdir.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    sizes = dict(SIZES["dry" if args.dry_run else "full"])
    sizes["compile"] = (sizes["compile"] or cuda) and not args.no_compile
    header = dict(
        dry_run=args.dry_run,
        device=device.type,
        device_name=torch.cuda.get_device_name() if cuda else f"CPU ({os.cpu_count()} cores)",
        torch=torch.__version__,
        cuda=torch.version.cuda,
        python=platform.python_version(),
        cpu_threads=torch.get_num_threads(),
        sizes=sizes,
        seconds=0.0,
    )
    res = Results(Path(args.json or workdir / "bench_gpu.json"), header)
    print(
        f"bench_gpu: {'dry run' if args.dry_run else 'full run'} on {header['device_name']}, "
        f"working files in {workdir}, results in {res.path}",
        flush=True,
    )
    sections = {
        "parity": parity_section,
        "inference": inference_section,
        "training": training_section,
    }
    for name in SECTIONS:
        if name in args.sections:
            t0 = time.perf_counter()
            res.measure(name, lambda fn=sections[name]: fn(res, sizes, device, workdir))
            print(f"  {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    res.doc["seconds"] = time.perf_counter() - start
    res.write()
    print()
    print(table(res.doc))
    return 1 if res.doc["errors"] else 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
