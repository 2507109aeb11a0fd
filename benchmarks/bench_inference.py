#!/usr/bin/env python
"""Inference benchmarks: CPU speed against matmul throughput, memory on long files (plain and --auto), seams.

Prints figures and asserts nothing. Every measurement runs in its own subprocess, so that one
variant's allocator state or compiled code does not leak into another's figure.

- Speed: a 10 s, 32 kHz clip through the released architecture (AudioSep(**RELEASED_ARGS), the
  stand-in released weights when the reference material is found), one query, on the CPU. The
  model's FLOPs are counted once (torch.utils.flop_counter); each variant's achieved GFLOP/s is
  set against an fp32 matmul measured in the same process, between its runs (best of each).
  Variants: ``reference`` (module by module, channels-first: what training runs),
  ``reference+channels_last``, ``fused, allocator untouched`` (ASTEROID_AUDIOSEP_RETAIN_MEMORY=0),
  ``fused`` (the default eval-mode forward under inference mode: the figure that counts), and
  the opt-in ``torch.compile`` of the reference and of the fused path (inductor, freezing).
- Memory: peak RSS of ``asteroid_audiosep.separate`` on a 1-minute and a 60-minute file.
- Seams: SNR between chunked and whole-clip output on a 30 s file (released architecture).
- Auto: peak RSS of ``Separator.separate_files(auto=2)`` (``separate --auto 2``: each file tagged
  window by window, then separated for its two labels) against plain ``separate`` with two text
  queries on the same 60-minute file, reduced model and a stand-in encoder with an audio tower;
  prints the ratio (the goal: within 1.1x). GPU figures: ``benchmarks/bench_gpu.py``.
- Precision (``bench_precision.py``): fp32 against the ``auto`` precision on this CPU, forward
  and ``separate`` times and the output SNR between them, the detected CPU capability.
- User level: ``separate_waveform`` against one plain forward of the same clip (the network's
  own work), side by side in one process, for 2, 5, 10, 10.5, 20, 30 s and 3 min, with the
  output's SNR against the whole-clip forward; and ``asteroid-audiosep separate`` on a folder of
  40 x 10 s 44.1 kHz stereo FLAC files against the summed plain forwards of those files (the
  reduced model below stands in for the released one there, to keep the run short).

Usage::

    python benchmarks/bench_inference.py                 # everything (about 15 min on 2 cores)
    python benchmarks/bench_inference.py --skip-compile --minutes 1 10
    python benchmarks/bench_inference.py --sections user      # the user-level figures only
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REDUCED_ARGS,
    REPO,
    band_encoder,
    stand_in_package,
    test_signal,  # noqa: E402
    write_noise_file,
)
from common import conditions as _conditions  # noqa: E402

RATE = 32000


# ---------------------------------------------------------------------------- workers
def _peak_rss_mb() -> float:
    """This process's own peak RSS (MB): ``VmHWM`` of its address space. ``ru_maxrss`` is not
    it: Linux carries the parent's peak over into a spawned worker (at exec), so every worker
    would report at least the driver's RSS (e.g. after it converted the stand-in package)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _model(weights: str, reduced: bool = False):
    from common import reduced_model

    from asteroid_audiosep import AudioSep

    if reduced:
        return reduced_model()
    if weights:
        return AudioSep.from_pretrained(weights).eval()
    import torch

    from asteroid_audiosep.models import RELEASED_ARGS

    torch.manual_seed(0)
    return AudioSep(**RELEASED_ARGS).eval()


def _clip(seconds: float, channels: int = 1, seed: int = 0):
    return test_signal(seconds, RATE, channels, seed)


def _condition():
    return _conditions(1, 512)


def _matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def worker_flops(args) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = _model(args.weights)
    model.separator.fused_inference = False
    wav = _clip(args.seconds)[None]
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(wav, _condition())
    return {"gflop": counter.get_total_flops() / 1e9}


def worker_speed(args) -> dict:
    import torch

    model = _model(args.weights)
    wav, cond = _clip(args.seconds)[None], _condition()
    variant = args.variant
    separator = model.separator
    if variant.startswith("reference"):
        separator.fused_inference = False
    if variant == "reference+channels_last":
        model.to(memory_format=torch.channels_last)
        # The 1-channel spectrogram is channels-first; make pre_conv's output channels-last so
        # that every later layer runs channels-last.
        separator.pre_conv.register_forward_hook(
            lambda mod, inp, out: out.contiguous(memory_format=torch.channels_last)
        )
    compile_seconds = None
    with torch.inference_mode():
        if variant.startswith("compile"):
            import torch._inductor.config as inductor_config

            inductor_config.freezing = True
            target = (
                separator.reference_forward
                if variant == "compile (reference)"
                else separator.forward
            )
            separator.forward = torch.compile(target)
        t0 = time.perf_counter()
        out = model(wav, cond)  # warm-up (and compilation)
        if variant.startswith("compile"):
            compile_seconds = time.perf_counter() - t0
        times, matmuls = [], [_matmul_gflops()]
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = model(wav, cond)
            times.append(time.perf_counter() - t0)
            matmuls.append(_matmul_gflops())
    torch.save(out, args.output)
    # Each run against the matmul throughput measured just before and after it: other jobs on
    # the machine slow both alike.
    pairs = [(t, (matmuls[i] + matmuls[i + 1]) / 2) for i, t in enumerate(times)]
    return {
        "seconds": min(times),
        "all_seconds": times,
        "pairs": pairs,
        "matmul_gflops": max(matmuls),
        "compile_seconds": compile_seconds,
        "peak_rss_mb": _peak_rss_mb(),
    }


def worker_memory(args) -> dict:
    import torch

    from asteroid_audiosep import separate

    model = _model(args.weights, reduced=args.reduced)
    with open("/proc/self/statm") as f:
        loaded_mb = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    t0 = time.perf_counter()
    report = separate(
        args.input,
        ["query"],
        model,
        args.output,
        query_embeddings=_condition(),
        overwrite=True,
        progress=False,
        chunk_seconds=args.chunk_seconds,
    )
    seconds = time.perf_counter() - t0
    return {
        "ok": report.ok,
        "seconds": seconds,
        "audio_seconds": sum(f.duration for f in report.files),
        "peak_rss_mb": _peak_rss_mb(),
        "loaded_rss_mb": loaded_mb,
        "threads": torch.get_num_threads(),
    }


def worker_seams(args) -> dict:
    import torch

    from asteroid_audiosep.api import separate_waveform

    model = _model(args.weights)
    wav, cond = _clip(args.seconds), _condition()
    with torch.inference_mode():
        whole = model(wav[None], cond)[0]
    chunked = separate_waveform(
        model, wav, RATE, ["q"], condition=cond, chunk_seconds=args.chunk_seconds
    )[0]
    err = (chunked - whole).pow(2).sum().item()
    return {
        "snr_db": 10 * math.log10(whole.pow(2).sum().item() / max(err, 1e-30)),
        "max_abs_diff": (chunked - whole).abs().max().item(),
    }


def worker_auto(args) -> dict:
    """Peak RSS of one separation of a long file: ``--auto 2``, or plain with two text queries."""
    from asteroid_audiosep import Separator

    model = _model("", reduced=True)
    model.set_query_encoder(band_encoder(model.condition_dim), update_spec=False)
    separator = Separator(model, "cpu", progress=False)
    t0 = time.perf_counter()
    if args.variant == "auto":
        report = separator.separate_files(args.input, [], args.output, overwrite=True, auto=2,
                                          labels=["tone", "noise", "hum", "speech"])
    else:
        report = separator.separate_files(args.input, ["tone", "noise"], args.output, overwrite=True)
    error = None if report.ok else report.failed[0].error
    return {"ok": report.ok, "seconds": time.perf_counter() - t0, "error": error,
            "outputs": sum(len(f.outputs) for f in report.files),
            "peak_rss_mb": _peak_rss_mb()}


def worker_user_clip(args) -> dict:
    """separate_waveform against one plain forward of the same clip, interleaved, best of each."""
    import torch

    from asteroid_audiosep.api import separate_waveform

    model = _model(args.weights)
    wav, cond = _clip(args.seconds), _condition()
    with torch.inference_mode():
        model(wav[None, :, : 2 * RATE], cond)  # warm-up (folded weights, allocator)
    def plain_forward():
        with torch.inference_mode():
            return model(wav[None], cond)[0]

    def separate():
        return separate_waveform(model, wav, RATE, ["q"], condition=cond)[0]

    # Alternate which runs first; wall and CPU time (the latter less sensitive to other jobs).
    times = {plain_forward: [], separate: []}
    results = {}
    for k in range(args.repeats):
        for fn in (plain_forward, separate) if k % 2 == 0 else (separate, plain_forward):
            t0, c0 = time.perf_counter(), time.process_time()
            results[fn] = fn()
            times[fn].append((time.perf_counter() - t0, time.process_time() - c0))
    whole, out = results[plain_forward], results[separate]
    err = (out - whole).pow(2).sum().item()
    return {
        "plain": min(t for t, _ in times[plain_forward]),
        "separate": min(t for t, _ in times[separate]),
        "plain_cpu": min(c for _, c in times[plain_forward]),
        "separate_cpu": min(c for _, c in times[separate]),
        "snr_db": 10 * math.log10(whole.pow(2).sum().item() / err) if err > 0 else math.inf,
        "peak_rss_mb": _peak_rss_mb(),
    }


def worker_user_folder(args) -> dict:
    """The CLI on a folder (its own process, wall time) against the summed plain forwards."""
    import torch

    from asteroid_audiosep.audio import load_audio
    from asteroid_audiosep.encoders import PrecomputedQueryEncoder

    model = _model(args.weights, reduced=args.reduced)
    workdir = Path(args.output)
    package, table = workdir / "folder_model.pth", workdir / "folder_queries.pt"
    torch.save(model.serialize(), package)
    PrecomputedQueryEncoder(table={"query": _condition()[0]}).save(table)
    files = sorted(Path(args.input).glob("*.flac"))
    mixtures = [load_audio(f, sample_rate=RATE)[0] for f in files]  # decoding is not timed here
    cond = _condition()

    def plain_forwards() -> float:
        total = 0.0
        with torch.inference_mode():
            for x in mixtures:  # a stereo file: its two channels as a batch of two mono items
                t0 = time.perf_counter()
                model(x[:, None], cond.expand(x.shape[0], -1))
                total += time.perf_counter() - t0
        return total

    plain_forwards()  # warm-up
    cli = [
        sys.executable, "-m", "asteroid_audiosep", "separate", "--model", str(package),
        "--query-embeddings", str(table), "-q", "query", "--quiet", "--overwrite",
        "-o", str(workdir / "folder_out"), args.input,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    plain, wall = [], []
    for _ in range(args.repeats):
        plain.append(plain_forwards())
        t0 = time.perf_counter()
        subprocess.run(cli, check=True, capture_output=True, env=env)
        wall.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    imports = [sys.executable, "-c", "import asteroid_audiosep.cli, torch"]
    subprocess.run(imports, check=True, env=env)
    startup = time.perf_counter() - t0
    return {"files": len(files), "plain": min(plain), "cli": min(wall), "startup": startup}


WORKERS = {
    "user_clip": worker_user_clip,
    "auto": worker_auto,
    "user_folder": worker_user_folder,
    "flops": worker_flops,
    "speed": worker_speed,
    "memory": worker_memory,
    "seams": worker_seams,
}


# ---------------------------------------------------------------------------- driver
def run_worker(name: str, env: dict = None, timeout: float = 3600, **kwargs) -> dict:
    cmd = [sys.executable, __file__, "--worker", name]
    for key, value in kwargs.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    full_env = {**os.environ, **(env or {})}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stand_in_weights(workdir: Path) -> str:
    """The stand-in released package when the reference material is available, else ``""``."""
    package = stand_in_package(workdir, required=False)
    return str(package) if package else ""


def main_driver(args) -> None:
    import torch

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_inference_"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared machine)"
    )
    weights = stand_in_weights(workdir) if not args.random_weights else ""
    source = "stand-in released weights" if weights else "random weights"
    print(f"released architecture with {source}; working files in {workdir}\n", flush=True)

    if "speed" in args.sections:
        speed_section(args, workdir, weights)
    if "memory" in args.sections:
        memory_section(args, workdir, weights)
    if "seams" in args.sections:
        seams_section(args, weights)
    if "auto" in args.sections:
        auto_section(args, workdir)
    if "user" in args.sections:
        user_section(args, workdir, weights)
    if "precision" in args.sections:
        from bench_precision import precision_section  # fp32 against auto on this CPU

        precision_section(args, workdir, weights)


def speed_section(args, workdir: Path, weights: str) -> None:
    import torch

    flops = run_worker("flops", weights=weights, seconds=args.seconds)
    gflop = flops.get("gflop", float("nan"))
    print(
        f"== CPU speed: {args.seconds:g} s at 32 kHz, one query, batch 1 "
        f"({gflop:.1f} GFLOP counted)"
    )
    variants = [
        ("reference", {}),
        ("reference+channels_last", {}),
        ("fused, allocator untouched", {"ASTEROID_AUDIOSEP_RETAIN_MEMORY": "0"}),
        ("fused", {}),
    ]
    if not args.skip_compile:
        variants += [("compile (reference)", {}), ("compile (fused)", {})]
    rows, outputs = [], {}
    for variant, env in variants:
        out = workdir / f"out_{len(outputs)}.pt"
        res = run_worker(
            "speed",
            env=env,
            weights=weights,
            seconds=args.seconds,
            repeats=args.repeats,
            variant=variant,
            output=out,
        )
        outputs[variant] = out
        rows.append((variant, res))
    ref = torch.load(outputs["reference"]) if "error" not in rows[0][1] else None
    print(
        f"{'variant':28s} {'s/clip':>7s} {'GFLOP/s':>8s} {'matmul':>7s} {'ratio':>6s} "
        f"{'x rt':>5s} {'max|diff|':>9s} {'RSS MB':>6s}"
    )
    for variant, res in rows:
        if "error" in res:
            print(f"{variant:28s} failed: {res['error']}")
            continue
        # The best run, against the matmul throughput measured around that run.
        seconds, matmul = min(res["pairs"])
        achieved = gflop / seconds
        diff = (
            (torch.load(outputs[variant]) - ref).abs().max().item() if ref is not None else math.nan
        )
        note = (
            f"  (compiled in {res['compile_seconds']:.0f} s)" if res.get("compile_seconds") else ""
        )
        print(
            f"{variant:28s} {seconds:7.2f} {achieved:8.1f} {matmul:7.1f} {achieved / matmul:6.2f} "
            f"{args.seconds / seconds:5.2f} {diff:9.1e} {res['peak_rss_mb']:6.0f}{note}",
            flush=True,
        )
    print("GFLOP/s: counted FLOPs / best wall time; matmul: fp32 2048^3 sgemm GFLOP/s in the same")
    print(
        "process just before and after that run; ratio = GFLOP/s / matmul; x rt: times real time;"
    )
    print("max|diff|: output waveform against the reference path. 'fused' is the default eval-mode")
    print("forward (under torch.inference_mode); the compile variants are opt-in.\n", flush=True)


def memory_section(args, workdir: Path, weights: str) -> None:
    print(
        "== Peak RSS of asteroid_audiosep.separate (32 kHz mono file, one query, "
        f"{args.chunk_seconds:g} s chunks)"
    )
    for minutes in args.minutes:
        path = workdir / f"noise_{minutes:g}min.wav"
        write_noise_file(path, minutes)
        for reduced in [True, False] if minutes <= 1 else [True]:
            res = run_worker(
                "memory",
                weights=weights,
                input=path,
                output=workdir / "separated",
                chunk_seconds=args.chunk_seconds,
                reduced=int(reduced),
            )
            label = "reduced model" if reduced else "released model"
            if "error" in res:
                print(f"{minutes:5g} min, {label:14s}: failed: {res['error']}")
                continue
            print(
                f"{minutes:5g} min, {label:14s}: peak RSS {res['peak_rss_mb']:6.0f} MB "
                f"({res['loaded_rss_mb']:.0f} MB before separating), {res['seconds']:6.1f} s "
                f"({res['audio_seconds'] / res['seconds']:.1f}x real time)",
                flush=True,
            )
    print(
        "(reduced model: the released STFT, rate and pooling grid, "
        f"channels {REDUCED_ARGS['channels']})\n"
    )


def seams_section(args, weights: str) -> None:
    res = run_worker(
        "seams", weights=weights, seconds=args.seam_seconds, chunk_seconds=args.chunk_seconds
    )
    if "error" in res:
        print(f"== Seams: failed: {res['error']}\n")
    else:
        print(
            f"== Seams: {args.seam_seconds:g} s clip, {args.chunk_seconds:g} s chunks, "
            f"0.64 s context: chunked vs whole-clip SNR {res['snr_db']:.1f} dB "
            f"(max |diff| {res['max_abs_diff']:.1e})\n"
        )


def auto_section(args, workdir: Path) -> None:
    minutes = max(args.minutes)
    path = workdir / f"noise_{minutes:g}min.wav"
    write_noise_file(path, minutes, RATE)
    print(f"== Peak RSS, separate --auto 2 vs plain separate (2 text queries), {minutes:g} min file, reduced model:")
    peaks = {}
    for variant in ("plain", "auto"):
        res = run_worker("auto", input=path, output=workdir / f"auto_{variant}", variant=variant)
        if "error" in res and not res.get("ok"):
            print(f"  {variant}: failed: {res['error']}")
            return
        peaks[variant] = res["peak_rss_mb"]
        print(f"  {variant:5s}: peak RSS {res['peak_rss_mb']:6.0f} MB, {res['outputs']} outputs, "
              f"{res['seconds']:.1f} s", flush=True)
    print(f"  ratio auto / plain: {peaks['auto'] / peaks['plain']:.3f} (goal: <= 1.1)\n")


def write_folder(folder: Path, files: int = 40, seconds: float = 10.0, rate: int = 44100) -> None:
    """``files`` stereo FLAC files of noise and tones, ``seconds`` long at ``rate``."""
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    for k in range(files):
        path = folder / f"clip{k:02d}.flac"
        if path.is_file():
            continue
        rng = np.random.default_rng(k)
        t = np.arange(int(seconds * rate)) / rate
        tone = 0.2 * np.sin(2 * np.pi * (220 + 20 * k) * t)
        wav = 0.1 * rng.standard_normal((t.size, 2)) + tone[:, None]
        sf.write(path, wav.astype("float32"), rate, subtype="PCM_16")


def user_section(args, workdir: Path, weights: str) -> None:
    print(
        "== User level: separate_waveform / one plain forward of the same clip (released "
        "architecture, one query, 32 kHz mono, default 10 s chunks; best of "
        f"{args.repeats} interleaved runs, 1 for 3 min; CPU time: process CPU seconds)"
    )
    print(f"{'clip':>7s} {'separate_waveform':>17s} {'plain forward':>13s} {'ratio':>6s} "
          f"{'CPU-time ratio':>14s} {'SNR vs whole':>12s}")
    for seconds in args.user_seconds:
        res = run_worker(
            "user_clip", weights=weights, seconds=seconds,
            repeats=args.repeats if seconds <= 60 else 1,
        )
        label = f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
        if "error" in res:
            print(f"{label:>7s} failed: {res['error']}", flush=True)
            continue
        snr = "identical" if math.isinf(res["snr_db"]) else f"{res['snr_db']:.1f} dB"
        print(
            f"{label:>7s} {res['separate']:15.2f} s {res['plain']:11.2f} s "
            f"{res['separate'] / res['plain']:6.3f} "
            f"{res['separate_cpu'] / res['plain_cpu']:14.3f} {snr:>12s}",
            flush=True,
        )
    folder = workdir / "folder_44k_stereo"
    write_folder(folder)
    reduced = args.folder_model == "reduced"
    res = run_worker(
        "user_folder", weights=weights, reduced=int(reduced), input=folder, output=workdir,
        repeats=args.repeats,
    )
    if "error" in res:
        print(f"folder: failed: {res['error']}\n")
        return
    print(
        f"folder of {res['files']} x 10 s 44.1 kHz stereo FLAC, "
        f"{'reduced model (channels ' + str(REDUCED_ARGS['channels']) + ')' if reduced else 'released architecture'}: "
        f"asteroid-audiosep separate {res['cli']:.1f} s wall "
        f"(of which {res['startup']:.1f} s starting Python and importing torch), summed plain "
        f"forwards {res['plain']:.1f} s: ratio {res['cli'] / res['plain']:.3f} "
        f"({(res['cli'] - res['startup']) / res['plain']:.3f} without the start-up)\n",
        flush=True,
    )


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--reduced", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--weights", default="", help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=10.0, help="clip length for the speed runs")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per variant (best counts)")
    p.add_argument(
        "--minutes", type=float, nargs="+", default=[1, 60], help="memory-run file lengths"
    )
    p.add_argument("--chunk-seconds", type=float, default=10.0, help="chunk length of separate()")
    p.add_argument("--seam-seconds", type=float, default=30.0, help="clip length of the seam test")
    p.add_argument("--skip-compile", action="store_true", help="skip the torch.compile variants")
    p.add_argument("--random-weights", action="store_true", help="do not use the stand-in weights")
    p.add_argument(
        "--user-seconds",
        type=float,
        nargs="+",
        default=[2, 5, 10, 10.5, 20, 30, 180],
        help="clip lengths of the user-level section",
    )
    p.add_argument(
        "--sections",
        nargs="+",
        default=["speed", "memory", "seams", "auto", "user", "precision"],
        choices=["speed", "memory", "seams", "auto", "user", "precision"],
        help="what to measure (default: everything)",
    )
    p.add_argument("--folder-model", choices=["released", "reduced"], default="released",
                   help="the model of the folder run: the released architecture (default: the network's "
                   "share of a real run) or the reduced one (a shorter run, where I/O weighs more)")
    p.add_argument("--workdir", help="folder for the generated files (default: a new temp folder)")
    return p.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.worker:
        sys.path.insert(0, str(REPO))
        from asteroid_audiosep.cpu_memory import retain_freed_memory

        retain_freed_memory()  # as the CLI does: the entry point makes the allocator choice
        print(json.dumps(WORKERS[arguments.worker](arguments)))
    else:
        main_driver(arguments)
