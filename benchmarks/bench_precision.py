#!/usr/bin/env python
"""Precision benchmark: fp32 against the ``auto`` precision on this CPU, side by side in one run.

Prints figures and asserts nothing (the ``precision`` section of ``bench_inference.py``; also
runnable alone). One worker process, one thread, pinned to one core with ``taskset`` when it
is available (``--no-pin``: not), measures interleaved, fp32 then auto, best of ``--repeats``:

- the detected CPU capability and what ``auto`` resolves to;
- the released architecture's forward (stand-in released weights) on a 10 s, 32 kHz clip;
- ``asteroid_audiosep.separate`` wall time on a 10 s, 44.1 kHz stereo file, and (once each,
  not repeated) on a ``--long-minutes`` file (10 minutes, 44.1 kHz, ``--long-channels``);
- the SNR of the auto output against the fp32 output for each of those, and for a trained mini
  model (``--mini PACKAGE``, with ``--mini-embeddings TABLE`` and ``--mini-list EVAL.csv``) on
  its evaluation mixtures (minimum and mean over the items);
- with ``--training``: seconds per training step, fp32 against ``bf16-mixed``;
- the load average before and after (the machine may be shared).

Usage::

    python benchmarks/bench_precision.py [--repeats 3] [--long-minutes 10] [--mini exp/mini/best_model.pth ...]
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- worker
def _snr(ref, est) -> float:
    import torch

    ref, est = torch.as_tensor(ref).double(), torch.as_tensor(est).double()
    noise = (ref - est).pow(2).sum()
    return math.inf if noise == 0 else float(10 * torch.log10(ref.pow(2).sum() / noise))


def _write(path: Path, seconds: float, rate: int, channels: int) -> None:
    """A noise-and-tone test file, written block by block."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    total, block = int(seconds * rate), 60 * rate
    with sf.SoundFile(path, "w", samplerate=rate, channels=channels, subtype="PCM_16") as f:
        for start in range(0, total, block):
            t = (start + np.arange(min(block, total - start))) / rate
            tone = 0.2 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
            f.write(0.1 * rng.standard_normal((t.size, channels)) * (1 + np.sin(0.3 * t))[:, None]
                    + tone[:, None])


def _interleaved(runs: dict, repeats: int) -> dict:
    """Best wall time of each callable over ``repeats`` rounds, alternating; plus its last output."""
    best = {name: math.inf for name in runs}
    outs = {name: fn() for name, fn in runs.items()}  # warm-up (folding, allocator)
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            outs[name] = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {"time": best, "out": outs}


def _mini_snr(args, auto_dtype) -> dict:
    import pandas as pd

    from asteroid_audiosep.api import load_separator
    from asteroid_audiosep.apply import separate_segment
    from asteroid_audiosep.audio import load_audio, resample

    model = load_separator(args.mini, "cpu", args.mini_embeddings or None)
    table = pd.read_csv(args.mini_list)
    folder = Path(args.mini_list).parent
    snrs, audible, energy, error = [], [], 0.0, 0.0
    for idx, caption in zip(table["idx"], table["caption"]):
        wav, rate = load_audio(folder / f"mixture-{idx}.wav")
        wav = resample(wav, rate, int(model.sample_rate))
        cond = model.embed_queries([caption])
        ref = separate_segment(model, wav, cond)
        est = separate_segment(model, wav, cond, autocast_dtype=auto_dtype)
        snrs.append(_snr(ref, est))
        energy, error = energy + ref.pow(2).sum().item(), error + (ref - est).pow(2).sum().item()
        # Outputs within 20 dB of their mixture: not a near-silent "nothing found" output.
        if ref.pow(2).sum() > 0.01 * wav.pow(2).sum():
            audible.append(snrs[-1])
    snrs.sort()
    return {"items": len(snrs), "min_db": snrs[0], "median_db": snrs[len(snrs) // 2],
            "pooled_db": 10 * math.log10(energy / error), "audible": len(audible),
            "audible_min_db": min(audible), "sample_rate": int(model.sample_rate)}


def _training_steps(args) -> dict:
    """Seconds per training step (forward, L1 loss, backward, AdamW), fp32 vs bf16-mixed
    (CPU autocast, as Lightning's ``bf16-mixed``), interleaved; released and mini-sized models."""
    import torch

    from asteroid_audiosep import AudioSep
    from asteroid_audiosep.models import RELEASED_ARGS

    sizes = {
        "released architecture, batch 2 x 2 s at 32 kHz": (RELEASED_ARGS, 2, 2.0),
        "mini model (conf/mini.yaml), batch 16 x 1 s at 8 kHz": (dict(
            sample_rate=8000, n_fft=256, hop_length=128, channels=[8, 16, 32, 32],
            bottleneck_channels=32, pool_sizes=[[2, 2], [2, 2], [2, 2], [1, 2]],
            film_mode="gamma_beta", film_hidden_dim=64, condition_dim=384), 16, 1.0),
    }
    out = {}
    for name, (model_args, batch, seconds) in sizes.items():
        torch.manual_seed(0)
        model = AudioSep(**{**RELEASED_ARGS, **model_args}).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        wav = 0.1 * torch.randn(batch, 1, int(seconds * model.sample_rate))
        target = 0.5 * wav
        cond = torch.nn.functional.normalize(torch.randn(batch, model.condition_dim), dim=-1)

        def step(dtype):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
                loss = (model(wav, cond) - target).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

        r = _interleaved({"fp32": lambda: step(None), "bf16-mixed": lambda: step(torch.bfloat16)},
                         args.repeats)
        out[name] = r["time"]
    return out


def worker(args) -> dict:
    import torch

    from asteroid_audiosep import AudioSep
    from asteroid_audiosep.precision import cpu_capability, resolve_precision

    torch.set_num_threads(1)
    res = {"capability": cpu_capability(), "load_before": os.getloadavg()[0]}
    auto = resolve_precision("auto", "cpu")
    res["auto"] = "fp32" if auto is None else str(auto).replace("torch.", "")
    model = AudioSep.from_pretrained(args.weights).eval() if args.weights else AudioSep().eval()
    g = torch.Generator().manual_seed(1)
    cond = torch.nn.functional.normalize(torch.randn(1, 512, generator=g), dim=-1)

    if not args.no_inference:
        _inference(args, res, model, cond, auto, g)
    if args.training:
        res["training"] = _training_steps(args)
    if args.mini:
        res["mini"] = _mini_snr(args, auto if auto is not None else torch.bfloat16)
    res["load_after"] = os.getloadavg()[0]
    return res


def _inference(args, res: dict, model, cond, auto, g) -> None:
    """Forward and ``separate`` times, fp32 against auto, and their output SNR, into ``res``."""
    import soundfile as sf
    import torch

    from asteroid_audiosep import separate
    from asteroid_audiosep.apply import _autocast

    precisions = {"fp32": "fp32", "auto": "auto"}
    # The network's forward on 10 s at 32 kHz (mono).
    t = torch.arange(int(args.seconds * 32000)) / 32000
    wav = (0.1 * torch.randn(1, 1, t.numel(), generator=g) * (1 + torch.sin(0.3 * t))
           + 0.2 * torch.sin(2 * math.pi * 440 * t))

    def forward(dtype):
        with torch.inference_mode(), _autocast(wav.device, dtype):
            return model(wav, cond)

    r = _interleaved({"fp32": lambda: forward(None), "auto": lambda: forward(auto)}, args.repeats)
    res["forward"] = {**r["time"], "snr_db": _snr(r["out"]["fp32"], r["out"]["auto"])}

    # separate() on files: wall time of the whole call (reading, resampling, writing included).
    work = Path(args.workdir)

    def run_separate(path: Path, name: str):
        out = work / f"out_{name}"
        report = separate(path, ["query"], model=model, outdir=out, precision=precisions[name],
                          query_embeddings=cond, progress=False, overwrite=True)
        if not report.ok:
            raise RuntimeError(report.summary())
        return sf.read(str(out / f"{path.stem}__query{path.suffix}"), dtype="float32")[0]

    short = work / "clip10s.wav"
    _write(short, 10.0, 44100, 2)
    r = _interleaved({n: (lambda n=n: run_separate(short, n)) for n in precisions}, args.repeats)
    res["separate_10s"] = {**r["time"], "snr_db": _snr(r["out"]["fp32"], r["out"]["auto"])}
    if args.long_minutes > 0:
        long = work / f"long{args.long_minutes:g}min.wav"
        _write(long, args.long_minutes * 60, 44100, args.long_channels)
        times, outs = {}, {}
        for name in precisions:
            t0 = time.perf_counter()
            outs[name] = run_separate(long, name)
            times[name] = time.perf_counter() - t0
        res["separate_long"] = {**times, "snr_db": _snr(outs["fp32"], outs["auto"])}


# ---------------------------------------------------------------------------- driver
def _pin_prefix(pin: bool) -> list:
    if not pin or shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        return []
    return ["taskset", "-c", str(max(os.sched_getaffinity(0)))]


def precision_section(args, workdir: Path, weights: str) -> None:
    """fp32 against auto on this CPU: forward, separate (10 s, long file), SNR (see module doc)."""
    work = Path(workdir) / "precision"
    work.mkdir(parents=True, exist_ok=True)
    cmd = _pin_prefix(not getattr(args, "no_pin", False)) + [
        sys.executable, str(Path(__file__).resolve()), "--worker", "--workdir", str(work),
        "--weights", weights or "", "--repeats", str(args.repeats), "--seconds", str(args.seconds),
        "--long-minutes", str(getattr(args, "long_minutes", 10.0)),
        "--long-channels", str(getattr(args, "long_channels", 1)),
    ]
    if getattr(args, "training", False):
        cmd.append("--training")
    if getattr(args, "no_inference", False):
        cmd.append("--no-inference")
    for key in ("mini", "mini_embeddings", "mini_list"):
        if getattr(args, key, None):
            cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"== precision: failed: {proc.stderr.strip()[-2000:]}\n", flush=True)
        return
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    pinned = " ".join(cmd[:3]) if cmd[0] == "taskset" else "not pinned"
    print(f"== Precision: fp32 against auto ({r['auto']}) on this CPU, 1 thread ({pinned}), "
          f"best of {args.repeats}, interleaved")
    print(f"  CPU: {r['capability']}; load average {r['load_before']:.1f} before, "
          f"{r['load_after']:.1f} after")

    def line(label, d):
        print(f"  {label:44s} fp32 {d['fp32']:7.2f} s, auto {d['auto']:7.2f} s: "
              f"{d['fp32'] / d['auto']:.2f}x; output SNR auto vs fp32 {d['snr_db']:.1f} dB")

    if "forward" in r:
        line(f"forward, released architecture, {args.seconds:g} s 32 kHz", r["forward"])
        line("separate, 10 s 44.1 kHz stereo file", r["separate_10s"])
    if "separate_long" in r:
        line(f"separate, {getattr(args, 'long_minutes', 10):g} min 44.1 kHz file (once each)",
             r["separate_long"])
    if "mini" in r:
        m = r["mini"]
        print(f"  trained mini model ({m['items']} evaluation mixtures, {m['sample_rate']} Hz), bf16 vs fp32 "
              f"output SNR: pooled {m['pooled_db']:.1f} dB, median {m['median_db']:.1f} dB, min "
              f"{m['min_db']:.1f} dB; min {m['audible_min_db']:.1f} dB over the {m['audible']} outputs "
              "within 20 dB of their mixture")
    for name, t in r.get("training", {}).items():
        print(f"  training step, {name}: fp32 {t['fp32']:.2f} s, bf16-mixed {t['bf16-mixed']:.2f} s: "
              f"{t['fp32'] / t['bf16-mixed']:.2f}x")
    print(flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--weights", default="", help=argparse.SUPPRESS)
    p.add_argument("--workdir", help="folder for the generated files (default: a new temp folder)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved rounds (best counts)")
    p.add_argument("--seconds", type=float, default=10.0, help="clip length of the forward")
    p.add_argument("--long-minutes", type=float, default=10.0, help="long file length (0: skip)")
    p.add_argument("--long-channels", type=int, default=1, help="long file channels")
    p.add_argument("--no-pin", action="store_true", help="do not pin the worker to one core")
    p.add_argument("--random-weights", action="store_true", help="do not use the stand-in weights")
    p.add_argument("--no-inference", action="store_true", help="skip the forward and separate runs")
    p.add_argument("--training", action="store_true",
                   help="also time training steps, fp32 against bf16-mixed (CPU autocast)")
    p.add_argument("--mini", help="a trained mini model package (SNR on its evaluation mixtures)")
    p.add_argument("--mini-embeddings", help="its query-embedding table")
    p.add_argument("--mini-list", help="its evaluation list (eval.csv beside mixture-<idx>.wav)")
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.worker:
        sys.path.insert(0, str(REPO))
        from asteroid_audiosep.cpu_memory import retain_freed_memory

        retain_freed_memory()  # as the CLI does
        print(json.dumps(worker(arguments)))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_inference import stand_in_weights

        workdir = Path(arguments.workdir or tempfile.mkdtemp(prefix="bench_precision_"))
        workdir.mkdir(parents=True, exist_ok=True)
        precision_section(arguments, workdir,
                          "" if arguments.random_weights else stand_in_weights(workdir))
