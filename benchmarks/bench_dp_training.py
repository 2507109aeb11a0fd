#!/usr/bin/env python
"""Training step time of the mini AudioSep vs the mini AudioSep-DP, side by side.

Both models of conf/mini.yaml / conf/mini_dp.yaml (8 kHz, n_fft 256, 8-32 channels; the DP one
adds the dual-path block, 2 layers, hidden 32) take optimiser steps on the same fixed batch
(16 x 1 s, as the mini recipe), alternating step by step so that both see the same machine load.
Prints the median seconds per step of each and their ratio.

Usage::

    python benchmarks/bench_dp_training.py [--steps 10] [--threads 1]
"""
import argparse
import statistics
import time

import torch

from asteroid_audiosep import AudioSep, AudioSepDP

MINI = dict(sample_rate=8000, n_fft=256, hop_length=128, channels=[8, 16, 32, 32], bottleneck_channels=32,
            pool_sizes=[[2, 2], [2, 2], [2, 2], [1, 2]], film_mode="gamma_beta", film_hidden_dim=64,
            bn_momentum=0.1, condition_dim=384)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {"AudioSep": AudioSep(**MINI), "AudioSepDP": AudioSepDP(dprnn=dict(layers=2, hidden=32), **MINI)}
    optims = {k: torch.optim.AdamW(m.parameters(), lr=5e-3, amsgrad=True) for k, m in models.items()}
    mix, target, cond = torch.randn(16, 8000), torch.randn(16, 1, 8000), torch.randn(16, 384)
    times = {k: [] for k in models}
    for step in range(args.warmup + args.steps):
        for name, model in models.items():
            start = time.perf_counter()
            loss = (model(mix, cond) - target).abs().mean()
            loss.backward()
            optims[name].step()
            optims[name].zero_grad()
            if step >= args.warmup:
                times[name].append(time.perf_counter() - start)
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, value in med.items():
        params = sum(p.numel() for p in models[name].parameters())
        print(f"{name}: {value:.3f} s/step (median of {args.steps}), {params} parameters")
    print(f"AudioSepDP / AudioSep: {med['AudioSepDP'] / med['AudioSep']:.2f}x")


if __name__ == "__main__":
    main()
