#!/usr/bin/env python
"""Streaming separation: latency against real-time factor per block size (``Separator.stream``).

For the released architecture (the stand-in released weights of ``official_checkpoint.py`` in
``$AUDIOSEP_REFERENCE_DIR``, default ``../shared/reference``; seeded random weights when it is
missing), the mini model (``conf/mini.yaml``'s model section at its 8 kHz rate, seeded random
weights) and its AudioSep-DP variant (``conf/mini_dp.yaml``), one query, fp32 on the CPU: a 44.1 kHz
mono test signal is fed to a stream block by block (blocks of ``block_seconds``) for block sizes of
0.5, 1, 2 and 5 s. Per row:

- latency: the stream's stated delay (``stream.latency``, which tests/test_streaming.py checks
  against the measured one), in seconds;
- RTF: compute time over audio duration (below 1: keeps up with real time);
- slowest call: the longest ``process()`` or ``flush()`` call (a chunk through the network), which adds
  to the latency in a live pipe; worst delay = latency + slowest call;
- vs offline: stream compute time over ``separate_waveform``'s (10 s chunks) on the same signal,
  measured side by side in this run; SNR: the stream's output against that offline output (the
  seam figure: the two cut different chunks).

Usage::

    python benchmarks/bench_streaming.py [--seconds 20] [--blocks 0.5 1 2 5] [--threads 1]

:func:`streaming_table` returns the table (Markdown) for other scripts (``bench_deploy.py``).
"""
import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from common import REPO, conditions, stand_in_package, test_signal  # noqa: E402

BLOCKS = (0.5, 1.0, 2.0, 5.0)
RATE = 44100


def mini_model(conf_name: str = "mini"):
    """The model of conf/<conf_name>.yaml (its model section, at data.sample_rate), seeded weights:
    ``mini`` (AudioSep) or ``mini_dp`` (AudioSep-DP, a dual-path block at the bottleneck)."""
    from asteroid_audiosep import AudioSep, AudioSepDP
    from asteroid_audiosep.config import load_config

    conf = load_config(REPO / "conf" / f"{conf_name}.yaml")
    args = {k: v for k, v in conf["model"].items() if k != "query_encoder" and v is not None}
    torch.manual_seed(0)
    model_class = AudioSepDP if args.get("dprnn") else AudioSep
    return model_class(**args, sample_rate=conf["data"]["sample_rate"], condition_dim=384).eval()


def released_model(workdir: Path):
    """The released architecture with the stand-in released weights (seeded ones without them)."""
    from asteroid_audiosep import AudioSep
    from asteroid_audiosep.models import RELEASED_ARGS

    package = stand_in_package(workdir, required=False)
    if package is None:
        torch.manual_seed(0)
        return AudioSep(**RELEASED_ARGS).eval(), "released architecture, seeded weights"
    return AudioSep.from_pretrained(str(package)).eval(), "released architecture, stand-in weights"


def _snr(reference: torch.Tensor, estimate: torch.Tensor) -> float:
    noise = (estimate - reference).pow(2).sum().item()
    return math.inf if noise == 0 else 10 * math.log10(reference.pow(2).sum().item() / noise)


def measure(model, seconds: float, blocks: Sequence[float], rate: int = RATE) -> List[dict]:
    """One row per block size for ``model`` (see the module docstring)."""
    from asteroid_audiosep import Separator

    separator = Separator(model, "cpu", precision="fp32", progress=False)
    cond = conditions(1, model.condition_dim)
    wav = test_signal(seconds, rate)
    started = time.perf_counter()
    offline = separator.separate_waveform(wav, rate, ["q"], conditions=cond)
    offline_seconds = time.perf_counter() - started
    rows = []
    for block in blocks:
        stream = separator.stream(["q"], rate, 1, block, conditions=cond)
        step, slowest, outs = round(block * rate), 0.0, []
        for start in range(0, wav.shape[-1], step):
            before = stream.compute_seconds
            outs.append(stream.process(wav[:, start : start + step]))
            slowest = max(slowest, stream.compute_seconds - before)
        before = stream.compute_seconds
        outs.append(stream.flush())
        slowest = max(slowest, stream.compute_seconds - before)
        rows.append(dict(block=block, latency=stream.latency_seconds, rtf=stream.real_time_factor, slowest=slowest,
                         delay=stream.latency_seconds + slowest, vs_offline=stream.compute_seconds / offline_seconds,
                         snr=_snr(offline, torch.cat(outs, -1))))
    return rows


def format_table(results) -> str:
    lines = ["| model | block (s) | latency (s) | RTF | slowest call (s) | worst delay (s) | compute vs offline "
             "| SNR vs offline (dB) |", "|---|---|---|---|---|---|---|---|"]
    for name, rows in results:
        for r in rows:
            lines.append(f"| {name} | {r['block']:g} | {r['latency']:.2f} | {r['rtf']:.2f} | {r['slowest']:.2f} | "
                         f"{r['delay']:.2f} | {r['vs_offline']:.2f}x | {r['snr']:.1f} |")
    return "\n".join(lines)


def streaming_table(seconds: float = 20.0, blocks: Sequence[float] = BLOCKS, threads: int = 1,
                    models: Sequence[str] = ("released", "mini", "mini_dp")) -> str:
    """Latency against real-time factor per block size, as a Markdown table.

    Args:
        seconds: length of the test signal (44.1 kHz mono).
        blocks: the streams' ``block_seconds``.
        threads: torch CPU threads.
        models: ``"released"`` (the released architecture), ``"mini"`` (conf/mini.yaml), ``"mini_dp"``
            (conf/mini_dp.yaml: AudioSep-DP, whose output depends on the chunks: its SNR column is
            the dual-path seam figure for each block size).
    """
    torch.set_num_threads(int(threads))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for which in models:
            if which == "released":
                model, name = released_model(Path(tmp))
            else:
                model, name = mini_model(which), f"{which} (conf/{which}.yaml), seeded weights"
            results.append((f"{name}, {model.sample_rate // 1000} kHz", measure(model, seconds, blocks)))
    head = (f"Streaming, one query, fp32, {threads} thread(s), {seconds:g} s of 44.1 kHz mono fed in blocks of "
            "block_seconds; latency = stream.latency; worst delay = latency + slowest call")
    return head + "\n\n" + format_table(results)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--seconds", type=float, default=20.0, help="test signal length (default: %(default)s)")
    parser.add_argument("--blocks", type=float, nargs="+", default=list(BLOCKS), help="block sizes in seconds")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: %(default)s)")
    parser.add_argument("--models", nargs="+", choices=["released", "mini", "mini_dp"],
                        default=["released", "mini", "mini_dp"])
    args = parser.parse_args(argv)
    print(streaming_table(args.seconds, args.blocks, args.threads, args.models))


if __name__ == "__main__":
    main()
