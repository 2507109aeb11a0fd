#!/usr/bin/env python
"""Training speed: steps/s with and without the query-embedding cache, and the share of a step
spent encoding queries.

One run, one model, one fixed batch; the two query paths alternate step by step (so that both
see the same machine load) over the same number of optimiser steps:

- ``cache``: captions looked up in a :class:`~asteroid_audiosep.encoders.PrecomputedQueryEncoder`
  (what ``egs/audiosep/train.py`` does by default);
- ``live``: the frozen text encoder embeds the captions at every step (the released code).

CPU section: a reduced model (16 kHz, n_fft 256, 4 levels of 8-32 channels) with the offline
``sentence`` encoder.
GPU section (when CUDA is available): the released architecture at batch 12 x 5 s, 32 kHz, in
fp32 and bf16-mixed, with peak GPU memory; the live encoder is CLAP when ``laion_clap`` and its
weights load, otherwise the sentence encoder (then the separator takes 384-d conditions; the
separator's cost does not depend on that size).

Usage::

    python benchmarks/bench_training.py [--steps 20] [--batch 8] [--seconds 1.0]
"""
import argparse
import contextlib
import os
import statistics
import sys
import time
from typing import Dict, List

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from asteroid_audiosep.data import SegmentMixer  # noqa: E402
from asteroid_audiosep.data.mini import CLASSES  # noqa: E402
from asteroid_audiosep.encoders import PrecomputedQueryEncoder, build_query_encoder  # noqa: E402
from asteroid_audiosep.engine import AudioSepSystem, make_optimizer  # noqa: E402
from asteroid_audiosep.losses import l1_waveform_loss  # noqa: E402
from asteroid_audiosep.models import RELEASED_ARGS, AudioSep  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REDUCED_ARGS  # noqa: E402  (the reduced model of the CPU section)


class TimedQueries:
    """Wraps ``system.text_conditions`` to add up the time spent in it (synchronised on GPU)."""

    def __init__(self, system: AudioSepSystem):
        self.system, self.inner, self.seconds = system, system.text_conditions, 0.0

    def __call__(self, texts):
        sync()
        start = time.perf_counter()
        out = self.inner(texts)
        sync()
        self.seconds += time.perf_counter() - start
        return out


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def captions(batch: int) -> List[str]:
    """``batch`` distinct captions of the mini corpus (real text lengths)."""
    texts = [c for sound in CLASSES for c in sound.captions]
    return [texts[(7 * i) % len(texts)] for i in range(batch)]


def make_system(model_args: dict, encoder, texts: List[str], device: str) -> AudioSepSystem:
    """One model with its live encoder attached, and the cache of ``texts`` (switched per step)."""
    model = AudioSep(condition_dim=encoder.embed_dim, **model_args)
    model.set_query_encoder(encoder, update_spec=False)
    cache = PrecomputedQueryEncoder.from_encoder(encoder, sorted(set(texts)))
    model.to(device)
    return AudioSepSystem(model, make_optimizer(model.parameters()), l1_waveform_loss, train_loader=None,
                          mixer=SegmentMixer(seed=0), query_cache=cache)


def time_steps(system: AudioSepSystem, batch: Dict, steps: int, warmup: int, precision: str) -> Dict[str, Dict]:
    """Per mode, mean seconds per optimiser step and seconds in query encoding, the two modes
    alternating step by step (so that both see the same machine load), after ``warmup`` rounds."""
    cache = system.query_cache
    timer = TimedQueries(system)
    system.__dict__["text_conditions"] = timer
    device_type = "cuda" if batch["waveform"].is_cuda else "cpu"
    autocast = (torch.autocast(device_type, dtype=torch.bfloat16) if precision == "bf16-mixed"
                else contextlib.nullcontext())
    times: Dict[str, Dict[str, List[float]]] = {m: {"step": [], "query": []} for m in ("cache", "live")}
    for i in range(warmup + steps):
        for mode in ("cache", "live"):
            system.__dict__["query_cache"] = cache if mode == "cache" else None
            timer.seconds = 0.0
            sync()
            start = time.perf_counter()
            with autocast:
                loss = system.common_step(batch, i, train=True)
            system.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            system.optimizer.step()
            sync()
            if i >= warmup:
                times[mode]["step"].append(time.perf_counter() - start)
                times[mode]["query"].append(timer.seconds)
    del system.__dict__["text_conditions"]
    system.__dict__["query_cache"] = cache
    return {m: {k: statistics.mean(v) for k, v in t.items()} for m, t in times.items()}


def compare(name: str, model_args: dict, encoder, batch_size: int, seconds: float, steps: int, warmup: int,
            device: str, precision: str = "32-true") -> None:
    texts = captions(batch_size)
    sample_rate = model_args["sample_rate"]
    torch.manual_seed(0)
    batch = {"waveform": (0.1 * torch.randn(batch_size, 1, int(seconds * sample_rate))).to(device),
             "caption": texts, "position": torch.zeros(batch_size, dtype=torch.long)}
    system = make_system(model_args, encoder, texts, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    results = time_steps(system, batch, steps, warmup, precision)
    memory = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if device == "cuda" else ""
    del system
    print(f"\n{name}: batch {batch_size} x {seconds:g} s at {sample_rate} Hz, {precision}, {steps} steps per mode, "
          f"alternating (after {warmup} warm-up rounds){memory}")
    for mode, label in (("cache", "with the embedding cache"), ("live", "live text encoder       ")):
        r = results[mode]
        share = 100.0 * r["query"] / r["step"]
        print(f"  {label}: {1.0 / r['step']:7.3f} steps/s ({1000 * r['step']:8.1f} ms/step), query encoding "
              f"{1000 * r['query']:7.2f} ms/step = {share:5.2f} % of the step")
    gain = results["live"]["step"] / results["cache"]["step"]
    share = 100.0 * results["cache"]["query"] / results["cache"]["step"]
    print(f"  speed-up from the cache: x{gain:.3f}; query share with the cache {share:.3f} % "
          f"(goal < 2 %: {'met' if share < 2.0 else 'NOT met'})")


def gpu_encoder():
    """CLAP when it can be built offline, else the sentence encoder (with a note)."""
    try:
        return build_query_encoder({"type": "clap"}), "clap"
    except Exception as err:  # laion_clap missing, or no weights offline
        print(f"  (CLAP unavailable: {type(err).__name__}: {str(err)[:120]}; the live encoder is 'sentence')")
        return build_query_encoder("sentence"), "sentence"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--batch", type=int, default=8, help="CPU section batch size")
    parser.add_argument("--seconds", type=float, default=1.0, help="CPU section segment length")
    parser.add_argument("--gpu_steps", type=int, default=20, help="timed steps per mode on the GPU")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    sentence = build_query_encoder("sentence")
    compare("CPU, reduced model (n_fft 512, channels 8-16-16-32), sentence encoder", REDUCED_ARGS, sentence,
            args.batch, args.seconds, args.steps, args.warmup, "cpu")
    print("\nGPU, released architecture, batch 12 x 5 s:")
    if not torch.cuda.is_available():
        print("  no GPU: CUDA is not available on this machine, section skipped")
        return
    print(f"  device: {torch.cuda.get_device_name(0)}")
    encoder, kind = gpu_encoder()
    encoder.to("cuda")
    released = {k: v for k, v in RELEASED_ARGS.items() if k != "condition_dim"}
    for precision in ("32-true", "bf16-mixed"):
        compare(f"GPU, released architecture, {kind} encoder", released, encoder, 12, 5.0, args.gpu_steps,
                args.warmup, "cuda", precision)


if __name__ == "__main__":
    main()
