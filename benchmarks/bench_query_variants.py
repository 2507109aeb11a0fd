"""Query ensembling on the mini corpus: does choosing among caption variants beat one caption?

For every item of a mini test list (``eval.csv``: ``idx, caption, paraphrase, class``, with
``mixture-{idx}.wav`` and ``segment-{idx}.wav`` beside it), a trained CLAP model separates the
mixture with every phrasing of three variant sets, in one call:

- ``caption+paraphrase``: the item's caption and its paraphrase (N = 2);
- ``templates``: the caption in the first 4 templates of ``query_variants.TEMPLATES``;
- ``class``: every caption and paraphrase of the item's class in the list (N = 4 to 6).

Per set it prints the mean SDRi (released definition) of: the single caption; best-of-N chosen
by CLAPScore against the common reference (the normalised mean of the phrasings' text
embeddings: what ``separate --query-variants`` keeps); best-of-N chosen by each output's
CLAPScore against its own phrasing; one condition on the mean embedding (``Query.mix``); a
phrasing drawn at random (the mean over candidates); the oracle (the best candidate by SDRi).
With paired differences to the single caption (mean, standard error, items improved), and how
often the CLAPScore choice is the oracle's. Scores use the model's own CLAP encoder.

Usage: python benchmarks/bench_query_variants.py EXP_DIR/best_model.pth --list data/mini/eval/test/eval.csv
           [--items N] [--threads 1]
"""
import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from asteroid_audiosep import Query, Separator
from asteroid_audiosep.metrics import ClapScorer, sdri
from asteroid_audiosep.query_variants import common_reference, phrasings


def variant_sets(row, table: pd.DataFrame) -> dict:
    """The phrasings of each variant set for one item (the caption first)."""
    same = table[table["class"] == row["class"]]
    everything = [row["caption"]] + list(same["caption"]) + list(same["paraphrase"])
    return {
        "caption+paraphrase": list(dict.fromkeys([row["caption"], row["paraphrase"]])),
        "templates": phrasings(row["caption"], 4),
        "class": list(dict.fromkeys(everything)),
    }


def evaluate_item(separator: Separator, scorer: ClapScorer, row, table, folder: Path) -> list:
    """One row per variant set: the SDRi of each chooser for this item."""
    mix, rate = sf.read(folder / f"mixture-{row['idx']}.wav", dtype="float32")
    ref, _ = sf.read(folder / f"segment-{row['idx']}.wav", dtype="float32")
    sets = variant_sets(row, table)
    texts = list(dict.fromkeys(t for ts in sets.values() for t in ts))
    queries = [Query.text(t, name=f"p{i}") for i, t in enumerate(texts)]
    queries += [Query.mix([Query.text(t) for t in ts], name=f"mean-{name}") for name, ts in sets.items()]
    outputs = separator.separate_waveform(torch.from_numpy(mix), rate, queries)[:, 0]  # (queries, time)
    gains = sdri(torch.from_numpy(ref).expand_as(outputs), outputs, torch.from_numpy(mix).expand_as(outputs)).tolist()
    emb = scorer.audio_embeddings([(o, rate) for o in outputs[: len(texts)]]).double()
    own = (emb * scorer.text_embeddings(texts).double()).sum(-1)
    rows = []
    for k, (name, ts) in enumerate(sets.items()):
        index = [texts.index(t) for t in ts]
        common = emb[index] @ common_reference(scorer, ts).double()
        pick = index[int(torch.nan_to_num(common, nan=-math.inf).argmax())]
        pick_own = index[int(torch.nan_to_num(own[index], nan=-math.inf).argmax())]
        oracle = max(index, key=lambda i: gains[i])
        rows.append({"idx": row["idx"], "set": name, "n": len(ts), "single": gains[texts.index(row["caption"])],
                     "best_of_n": gains[pick], "best_of_n_own": gains[pick_own],
                     "mean_embedding": gains[len(texts) + k], "random": float(np.mean([gains[i] for i in index])),
                     "oracle": gains[oracle], "picked_oracle": pick == oracle})
    return rows


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per set and chooser: mean SDRi, paired difference to the single caption (mean, standard
    error, fraction of items improved)."""
    out = []
    for name, part in frame.groupby("set", sort=False):
        for chooser in ("single", "best_of_n", "best_of_n_own", "mean_embedding", "random", "oracle"):
            diff = part[chooser] - part["single"]
            out.append({"set": name, "N": f"{part['n'].min()}-{part['n'].max()}", "chooser": chooser,
                        "SDRi": part[chooser].mean(), "vs single": diff.mean(),
                        "s.e.": diff.std(ddof=1) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan"),
                        "improved": (diff > 1e-6).mean(), "worse": (diff < -1e-6).mean()})
    return pd.DataFrame(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a trained CLAP model package (e.g. exp/mini_clap/best_model.pth)")
    parser.add_argument("--list", required=True, help="the mini test list (data/mini/eval/test/eval.csv)")
    parser.add_argument("--items", type=int, help="only the first N items (default: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write the per-item figures to this CSV")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    table = pd.read_csv(args.list)
    items = table if args.items is None else table.head(args.items)
    separator = Separator(args.model, "cpu", precision="fp32", progress=False)
    scorer = ClapScorer(model=separator.model)
    start = time.perf_counter()
    rows = [r for _, item in items.iterrows()
            for r in evaluate_item(separator, scorer, item, table, Path(args.list).parent)]
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_csv(args.out, index=False)
    print(f"{len(items)} items of {args.list}, {time.perf_counter() - start:.0f} s on {args.threads} thread(s)")
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        print(summary(frame).to_string(index=False))
        print("best-of-N (common reference) picked the oracle's candidate:",
              frame.groupby("set", sort=False)["picked_oracle"].mean().round(3).to_dict())


if __name__ == "__main__":
    main()
