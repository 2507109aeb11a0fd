"""The mini Table V: text- and image-queried separation of mini_clip models trained at several
text ratios (conf/mini_clip.yaml), on the mini test list.

Text query types (label, caption, paraphrase) are embedded by the model's CLIP text tower; the
``image`` column (a held-out picture of the target's class, path relative to the list) by its
image tower through :func:`asteroid_audiosep.queries.embed_queries`. Per-item scores go to
``<exp>/eval_vision/<query_type>.csv`` (resumable), the table to stdout and ``--out``.

Usage: python benchmarks/bench_mini_clip.py exp/mini_clip_tr10 exp/mini_clip_tr05 exp/mini_clip_tr00
           [--list data/mini_clip/eval/test/eval.csv] [--out table.csv]
"""
import argparse
from pathlib import Path

import pandas as pd
import torch

from asteroid_audiosep import AudioSep
from asteroid_audiosep.config import load_config
from asteroid_audiosep.data import LASSEvalDataset
from asteroid_audiosep.evaluation import evaluate_separation
from asteroid_audiosep.metrics import aggregate_results
from asteroid_audiosep.queries import Query, embed_queries

QUERY_TYPES = ("label", "caption", "paraphrase", "image")


def evaluate_run(exp: Path, eval_list: Path) -> pd.DataFrame:
    model = AudioSep.from_pretrained(str(exp / "best_model.pth")).eval()
    encoder = model.query_encoder
    tables = []
    for query_type in QUERY_TYPES:
        dataset = LASSEvalDataset(eval_list, query_column=query_type, sample_rate=int(model.sample_rate))
        cache = {}

        def embed(queries, query_type=query_type, cache=cache):
            todo = [q for q in dict.fromkeys(queries) if q not in cache]
            if todo:
                if query_type == "image":
                    objs = [Query.image(eval_list.parent / q) for q in todo]
                else:
                    objs = todo
                cache.update(zip(todo, embed_queries(encoder, objs)))
            return torch.stack([cache[q] for q in queries])

        csv = evaluate_separation(model, dataset, exp / "eval_vision" / f"{query_type}.csv", dataset_name="mini",
                                  query_type=query_type, embed=embed, progress=False)
        tables.append(pd.read_csv(csv, keep_default_na=False, na_values=["nan"]))
    summary = aggregate_results(pd.concat(tables, ignore_index=True))
    training = load_config(exp / "train_config.yaml")["training"]
    summary.insert(0, "text_ratio", float(training["use_text_ratio"]))
    summary.insert(0, "run", exp.name)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exps", nargs="+", type=Path)
    parser.add_argument("--list", type=Path, default=Path("data/mini_clip/eval/test/eval.csv"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    summary = pd.concat([evaluate_run(exp, args.list) for exp in args.exps], ignore_index=True)
    table = summary.pivot_table(index=["run", "text_ratio"], columns="query_type", values="sdri")
    table = table[[q for q in QUERY_TYPES if q in table.columns]]
    with pd.option_context("display.width", 120, "display.precision", 2):
        print("test SDRi (dB) by query type")
        print(table.to_string())
    if args.out:
        summary.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
