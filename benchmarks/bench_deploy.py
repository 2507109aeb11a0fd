#!/usr/bin/env python
"""Deployment benchmark: ONNX Runtime against PyTorch on this CPU, export time and file size,
then the streaming table of ``bench_streaming.py`` (latency against real-time factor).

Prints figures and asserts nothing. The released architecture with the stand-in released
weights (``official_checkpoint.py`` of the reference material; ``--reduced``: the small model of
``common.py``) is exported with both exporters (``torch.onnx.export`` with ``dynamo=True``, the
default of ``asteroid-audiosep export``, and the TorchScript one, ``dynamo=False``); for each
the export time, the graph's file size and its max abs error against the PyTorch forward.
Then, for each input length (10 s and 60 s by default, one 32 kHz mono query), the same
``Separator.separate_waveform`` call (the chunk planner of ``separate``: 10 s chunks with 0.64 s
of context) with the PyTorch backend (fp32, the fused eval path) and with the ONNX Runtime
backend (the exported fp32 graph), alternated in one process at the same thread count; best of
``--repeats``. The ratio ORT time / PyTorch time is what to read (below 1: ONNX Runtime faster).
A 10 s single forward (no chunking) of the network alone is timed the same way.

Usage::

    python benchmarks/bench_deploy.py                        # about 10 min on 2 loaded cores
    python benchmarks/bench_deploy.py --threads 2 --seconds 10 --repeats 3
    python benchmarks/bench_deploy.py --reduced --seconds 1 --repeats 1 --no-streaming   # smoke run
"""
import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REDUCED_ARGS, conditions, reduced_model, stand_in_package, test_signal  # noqa: E402


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn):
    """``(result, wall seconds, CPU seconds of this process)`` of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def row(label: str, seconds: float, pt, ort) -> str:
    """A table row from the best (wall, CPU) of each engine."""
    return (f"| {label} | {pt[0]:.2f} / {pt[1]:.2f} | {ort[0]:.2f} / {ort[1]:.2f} | {ort[0] / pt[0]:.2f} | "
            f"{ort[1] / pt[1]:.2f} | {seconds / pt[0]:.2f} | {seconds / ort[0]:.2f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 60.0], help="input lengths")
    parser.add_argument("--threads", type=int, default=1, help="threads of both engines (default: 1)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per measurement, best kept")
    parser.add_argument("--reduced", action="store_true", help="the small model instead of the released one")
    parser.add_argument("--exporters", nargs="+", default=["dynamo", "legacy"], choices=["dynamo", "legacy"])
    parser.add_argument("--no-streaming", action="store_true", help="skip bench_streaming's table")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from asteroid_audiosep import AudioSep, Separator
    from asteroid_audiosep.onnx_export import export_onnx
    from asteroid_audiosep.onnx_runtime import OnnxNetwork

    os.environ.setdefault("AUDIOSEP_CPU_BF16", "0")
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench_deploy_"))
    if args.reduced:
        model, what = reduced_model(), f"reduced model ({REDUCED_ARGS['sample_rate']} Hz)"
    else:
        model = AudioSep.from_pretrained(str(stand_in_package(work))).eval()
        what = "released architecture (stand-in weights)"
    rate = int(model.sample_rate)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    import onnxruntime

    print(f"# bench_deploy: {what}, {params:.2f} M parameters; CPU: {cpu_name()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; {args.threads} thread(s) for both engines; torch "
          f"{torch.__version__}, onnxruntime {onnxruntime.__version__}")
    cond = conditions(1, model.condition_dim)
    torch_pkg = work / "model.pth"
    torch.save(model.serialize(), torch_pkg)

    print("\n## Export (dynamic length, opset 18)\n")
    print("| exporter | export time (s) | file size (MiB) | max abs error vs PyTorch (2 s) |")
    print("|---|---|---|---|")
    probe = test_signal(2.0, rate)[None]
    with torch.inference_mode():
        expected = model(probe, cond).numpy()
    graphs = {}
    for exporter in args.exporters:
        result = export_onnx(model, work / f"{exporter}.onnx", cond, ["bench"], dynamic_length=True, exporter=exporter)
        torch.set_num_threads(args.threads)  # the exporter may change it
        error = float(np.abs(OnnxNetwork(result.path, threads=args.threads)(probe, cond).numpy() - expected).max())
        size = result.path.stat().st_size / 2**20
        print(f"| {exporter} | {result.seconds:.1f} | {size:.1f} | {error:.2e} |", flush=True)
        graphs[exporter] = result.path
    print(f"\n(the PyTorch package: {torch_pkg.stat().st_size / 2**20:.1f} MiB)")

    exporter = args.exporters[0]
    pt = Separator(str(torch_pkg), "cpu", precision="fp32", progress=False)
    ort = Separator(str(graphs[exporter]), "cpu", progress=False)
    net = OnnxNetwork(graphs[exporter], threads=args.threads)
    print(f"\n## Speed, {exporter} graph, fp32 both, {args.threads} thread(s), best of {args.repeats}, "
          "alternated\n")
    print("Wall and CPU seconds of this process (CPU time is what a loaded machine disturbs least).\n")
    print("| input | PyTorch wall / CPU (s) | ONNX Runtime wall / CPU (s) | ORT / PyTorch, wall | ORT / PyTorch, CPU "
          "| PyTorch x real time | ORT x real time |")
    print("|---|---|---|---|---|---|---|")

    def compare(label, seconds, run_pt, run_ort):
        best = {"pt": [], "ort": []}
        outs = {}
        for _ in range(args.repeats):  # alternated, so that a change of load hits both
            for key, run in (("pt", run_pt), ("ort", run_ort)):
                outs[key], wall, cpu = timed(run)
                best[key].append((wall, cpu))
        diff = float((torch.as_tensor(outs["ort"]) - torch.as_tensor(outs["pt"])).abs().max())
        pt_best = (min(w for w, _ in best["pt"]), min(c for _, c in best["pt"]))
        ort_best = (min(w for w, _ in best["ort"]), min(c for _, c in best["ort"]))
        print(row(f"{label} (max diff {diff:.1e})", seconds, pt_best, ort_best), flush=True)

    one = test_signal(10.0, rate)[None]
    with torch.inference_mode():
        compare("10 s, one forward (network only)", 10.0, lambda: model(one, cond), lambda: net(one, cond))
    for seconds in args.seconds:
        wav = test_signal(seconds, rate)
        compare(f"{seconds:g} s, separate_waveform", seconds,
                lambda: pt.separate_waveform(wav, rate, ["bench"], conditions=cond),
                lambda: ort.separate_waveform(wav, rate, ["bench"], conditions=cond))

    if not args.no_streaming:
        print("\n## Streaming (benchmarks/bench_streaming.py)\n")
        from bench_streaming import streaming_table

        print(streaming_table(threads=args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
