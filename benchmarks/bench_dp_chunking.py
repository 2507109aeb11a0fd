#!/usr/bin/env python
"""AudioSep-DP: chunked inference vs one forward over the whole file, per chunk/context setting.

The dual-path block runs bidirectional GRUs over the whole bottleneck map and normalises over
all its frames, so a chunk's output depends on the whole chunk: the project's chunked path
(:func:`asteroid_audiosep.separate_waveform`, context dropped at the seams) cannot equal one
forward over a long file, as it does for plain AudioSep. This prints, for 30 s and 120 s inputs
and each (chunk, context) setting, the SNR of the chunked output against the whole-file output
(dB; higher is closer) and the max abs difference, with the time of each.

Model: a package (default ``exp/mini_dp/best_model.pth``, the mini AudioSep-DP that
``./run.sh --conf conf/mini_dp.yaml`` trains), or ``--checkpoint`` one of that run's training
checkpoints (``exp/mini_dp/checkpoints/step*.ckpt``); ``--untrained`` builds the same architecture with
random weights instead (a stand-in when no trained model exists; its figures say less).
Input: mixtures of the mini corpus's test split (``data/mini/eval/test``) laid end to end, else
noise with tones.

Usage::

    python benchmarks/bench_dp_chunking.py [--package P | --untrained] [--lengths 30 120]
"""
import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from asteroid_audiosep import AudioSep, AudioSepDP, separate_waveform  # noqa: E402

SETTINGS = [(5.0, 0.64), (10.0, 0.64), (10.0, 2.56), (20.0, 2.56), (30.0, 2.56), (30.0, 5.12), (60.0, 5.12)]
MINI_ARGS = dict(sample_rate=8000, n_fft=256, hop_length=128, channels=[8, 16, 32, 32], bottleneck_channels=32,
                 pool_sizes=[[2, 2], [2, 2], [2, 2], [1, 2]], film_mode="gamma_beta", film_hidden_dim=64,
                 bn_momentum=0.1, condition_dim=384, dprnn=dict(layers=2, hidden=32))


def load(args):
    if args.checkpoint:  # a training checkpoint of the mini_dp recipe run (exp/mini_dp/checkpoints/*.ckpt)
        from asteroid_audiosep.checkpoints import load_checkpoint
        from asteroid_audiosep.encoders import PrecomputedQueryEncoder

        model = AudioSepDP(**MINI_ARGS)
        state = load_checkpoint(args.checkpoint, what="training checkpoint")["state_dict"]
        model.load_state_dict({k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
        table = PrecomputedQueryEncoder(path=Path(args.checkpoint).parents[1] / "query_embeddings.pt")
        query = sorted(table.index)[0]
        return model.eval(), table.encode_text([query]), f"{args.checkpoint}, query {query!r}"
    if args.untrained:
        torch.manual_seed(0)
        model = AudioSepDP(**MINI_ARGS)
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.running_var.uniform_(0.5, 1.5)
        return model.eval(), torch.nn.functional.normalize(torch.randn(1, 384), dim=-1), "untrained stand-in"
    model = AudioSep.from_pretrained(args.package).eval()
    query = "dog barking"
    csv = Path(args.data) / "eval.csv"
    if csv.is_file():
        import pandas as pd

        query = str(pd.read_csv(csv)["caption"].iloc[0])
    return model, model.embed_queries([query]), f"{args.package}, query {query!r}"


def signal(rate: int, seconds: float, data: Path) -> torch.Tensor:
    from asteroid_audiosep.audio import load_audio

    need = int(seconds * rate)
    files = sorted(data.glob("mixture-*.wav"))
    parts, total = [], 0
    while files and total < need:
        for f in files:
            wav, _ = load_audio(f, sample_rate=rate, mono=True)
            parts.append(wav[0])
            total += wav.shape[-1]
            if total >= need:
                break
    if not parts:
        g = torch.Generator().manual_seed(0)
        t = torch.arange(need) / rate
        return 0.1 * torch.randn(need, generator=g) + 0.2 * torch.sin(2 * torch.pi * 440 * t) * (t % 3 < 1)
    return torch.cat(parts)[:need]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", default="exp/mini_dp/best_model.pth")
    parser.add_argument("--untrained", action="store_true")
    parser.add_argument("--checkpoint", help="a training checkpoint of the mini_dp run instead of a package")
    parser.add_argument("--data", default="data/mini/eval/test")
    parser.add_argument("--lengths", type=float, nargs="+", default=[30.0, 120.0])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, cond, what = load(args)
    rate = int(model.sample_rate)
    print(f"model: {type(model).__name__} ({what}), {rate} Hz, {args.threads} thread(s)")
    print("| input | chunk s | context s | SNR vs whole (dB) | max abs diff | time chunked / whole |")
    print("|---|---|---|---|---|---|")
    for seconds in args.lengths:
        wav = signal(rate, seconds, Path(args.data))
        start = time.perf_counter()
        with torch.no_grad():
            whole = model(wav[None, None], cond)[0, 0]
        t_whole = time.perf_counter() - start
        for chunk, context in SETTINGS:
            if chunk >= seconds:
                continue
            start = time.perf_counter()
            out = separate_waveform(model, wav[None], rate, ["q"], condition=cond, chunk_seconds=chunk,
                                    context_seconds=context)[0, 0]
            elapsed = time.perf_counter() - start
            err = out - whole
            snr = 10 * torch.log10(whole.pow(2).sum() / err.pow(2).sum().clamp_min(1e-20))
            print(f"| {seconds:.0f} s | {chunk:g} | {context:g} | {snr:.1f} | {err.abs().max():.2e} | "
                  f"{elapsed / t_whole:.2f} |")


if __name__ == "__main__":
    main()
