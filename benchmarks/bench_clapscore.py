"""Does CLAPScore order separated outputs? A trained mini_clap model on the mini test mixtures.

For every test item (mixture of a target clip and a noise clip of another class) the model
separates twice: with the item's own query (its ``label``, or another query type) and with a
**wrong query**: the same query type's text of the first test item of another class, namely the
next class in alphabetical order (cyclically) that is neither the item's class nor a class of its
noise clip(s), so the wrong query names a sound absent from the mixture. The CLAP encoder that
scores is the model's own (random seeded HTSAT-tiny/RoBERTa towers, standardised on the training
set: the only CLAP available offline), through
:class:`~asteroid_audiosep.metrics.clap_score.ClapScorer`.

Query types: ``label`` and ``caption`` are text queries, scored as the paper defines CLAPScore
(audio embedding against text embedding). Random towers are not trained to align text with audio
(their cosines are near noise), so ``audio`` is measured as well: the list's held-out example clip
of the class is the query, both for separation and for the score, which is then CLAPScore's cosine
with the example's audio embedding in place of the text embedding: the audio tower's own space,
which random towers do organise by class. It shows whether the ordering works when query and
output share an embedding space, as contrastive training makes real CLAP's text and audio do.
A silent output (no embedding: NaN) ranks below any scored one.

Printed per query type:

- **right > wrong (own query)**: the fraction of items whose target-query output has a higher
  CLAPScore-i (against the target query) than the wrong-query output has against the wrong
  query: does the score tell a found sound from an absent one ("did the query find its sound")?
- **right > wrong (own, CLAPScore)**: the same with the plain CLAPScore (no subtraction of the
  mixture's score);
- **right > wrong (target query)**: the fraction where the target-query output beats the
  wrong-query output when both are scored against the target query (ranking candidates for one
  query, as ``--auto`` and best-of-N do);
- **Pearson / Spearman r**: the correlation of the target-query output's CLAPScore-i with its
  SDRi across items (with the two-sided p-values), and over the pooled right and wrong outputs
  (both scored against the target query and the target reference);
- means of SDRi and CLAPScore-i.

Fractions come with a 95 % Wilson interval. Real CLAP weights would separate the classes' text and
audio embeddings far better than random towers do; these figures are a floor, not the metric's
quality. Threads: 1 (``--threads``).

Usage: python benchmarks/bench_clapscore.py --exp EXP_DIR --list DATA/mini/eval/test/eval.csv
           [--query-types label caption audio] [--limit N] [--out per_item.csv]
"""
import argparse
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import pandas as pd
import torch

from asteroid_audiosep import AudioSep
from asteroid_audiosep.data import LASSEvalDataset
from asteroid_audiosep.data.evallist import read_csv_rows
from asteroid_audiosep.experiment import FILE_QUERY_TYPES, file_query_table
from asteroid_audiosep.metrics import sdr


def source_class(file_name: str) -> str:
    """The class of a mini corpus clip from its file name (``clock_ticking-004.wav``)."""
    return Path(file_name).stem.rsplit("-", 1)[0]


def wrong_queries(eval_csv: Path, query_type: str) -> Dict[str, str]:
    """Item id -> its wrong query (see the module docstring)."""
    rows = read_csv_rows(eval_csv)
    first: Dict[str, str] = {}
    for row in rows:
        first.setdefault(row["class"], row[query_type])
    classes = sorted(first)
    wrong = {}
    for row in rows:
        present = {row["class"]} | {source_class(v) for k, v in row.items() if k.startswith("noise_wav") and v}
        start = classes.index(row["class"])
        for step in range(1, len(classes)):
            candidate = classes[(start + step) % len(classes)]
            if candidate not in present:
                wrong[row.get("id") or row["idx"]] = first[candidate]
                break
    return wrong


def wilson(successes: int, total: int, z: float = 1.96):
    """The 95 % Wilson score interval of a binomial fraction."""
    if total == 0:
        return math.nan, math.nan
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


def reference_embeddings(model, scorer, eval_csv: Path, query_type: str):
    """``(condition, reference)``: functions of a list of queries giving the separator's conditions
    and the embeddings the outputs are scored against (text embeddings; for ``audio``, the column's
    example files, embedded by the audio tower for both)."""
    if query_type not in FILE_QUERY_TYPES:
        return model.embed_queries, scorer.text_embeddings
    names = sorted({row[query_type] for row in read_csv_rows(eval_csv)})
    table = file_query_table(model.query_encoder, names, query_type, base_dir=eval_csv.parent)
    files = {n: Path(n) if Path(n).is_absolute() else eval_csv.parent / n for n in names}
    return table.encode_text, lambda queries: scorer.audio_embeddings([files[q] for q in queries])


@torch.no_grad()
def score_items(model, scorer, eval_csv: Path, query_type: str, limit: int = 0) -> pd.DataFrame:
    """One row per item: SDRi and CLAPScore-i of the target-query and wrong-query outputs."""
    rate = int(model.sample_rate)
    dataset = LASSEvalDataset(eval_csv, query_column=query_type, sample_rate=rate)
    wrong = wrong_queries(eval_csv, query_type)
    condition, reference = reference_embeddings(model, scorer, eval_csv, query_type)
    rows = []
    for i in range(len(dataset) if not limit else min(limit, len(dataset))):
        item = dataset[i]
        right_q, wrong_q = item["query"], wrong[item["id"]]
        mix, ref = item["mixture"], item["target"]
        est = model(mix[None, None].repeat(2, 1, 1), condition([right_q, wrong_q]))[:, 0]
        audio = scorer.audio_embeddings([(est[0], rate), (est[1], rate), (mix, rate)]).double()
        s = audio @ reference([right_q, wrong_q]).double().T  # s[a, q]: a = right out, wrong out, mixture
        mix_sdr = float(sdr(ref.double(), mix.double()))
        rows.append({
            "id": item["id"], "class": item["class"], "query": right_q, "wrong_query": wrong_q,
            "sdri": float(sdr(ref.double(), est[0].double())) - mix_sdr,
            "wrong_sdri": float(sdr(ref.double(), est[1].double())) - mix_sdr,
            "clapscore": float(s[0, 0]), "clapscore_i": float(s[0, 0] - s[2, 0]),
            "wrong_clapscore_own": float(s[1, 1]), "wrong_clapscore_i_own": float(s[1, 1] - s[2, 1]),
            "wrong_clapscore_i_target": float(s[1, 0] - s[2, 0]),
        })
    return pd.DataFrame(rows)


def figures(df: pd.DataFrame) -> Dict[str, float]:
    """The printed figures of one query type (see the module docstring)."""
    from scipy import stats

    n = len(df)
    out: Dict[str, float] = {"items": n}
    for name, ours, column in (("own", "clapscore_i", "wrong_clapscore_i_own"),
                               ("target", "clapscore_i", "wrong_clapscore_i_target"),
                               ("own, CLAPScore", "clapscore", "wrong_clapscore_own")):
        right = df[ours].fillna(-np.inf)  # a silent output (NaN score: nothing came out) ranks last
        wins = int((right > df[column].fillna(-np.inf)).sum())
        low, high = wilson(wins, n)
        out.update({f"right>wrong ({name})": wins / n, f"ci_low ({name})": low, f"ci_high ({name})": high})
    out["silent right outputs"] = int(df["clapscore_i"].isna().sum())
    out["silent wrong outputs"] = int(df["wrong_clapscore_i_own"].isna().sum())
    scored = df.dropna(subset=["clapscore_i", "sdri"])  # correlations over outputs with a score
    pearson = stats.pearsonr(scored["clapscore_i"], scored["sdri"])
    spearman = stats.spearmanr(scored["clapscore_i"], scored["sdri"])
    pooled_x = np.concatenate([df["clapscore_i"], df["wrong_clapscore_i_target"]])
    pooled_y = np.concatenate([df["sdri"], df["wrong_sdri"]])
    keep = np.isfinite(pooled_x) & np.isfinite(pooled_y)
    out.update({
        "pearson r": float(pearson.statistic), "pearson p": float(pearson.pvalue),
        "spearman r": float(spearman.statistic), "spearman p": float(spearman.pvalue),
        "pooled pearson r": float(stats.pearsonr(pooled_x[keep], pooled_y[keep]).statistic),
        "pooled spearman r": float(stats.spearmanr(pooled_x[keep], pooled_y[keep]).statistic),
        "mean sdri": float(df["sdri"].mean()), "mean wrong sdri": float(df["wrong_sdri"].mean()),
        "mean clapscore_i": float(df["clapscore_i"].mean()),
        "mean wrong clapscore_i (own)": float(df["wrong_clapscore_i_own"].mean()),
    })
    return out


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="the mini_clap experiment (best_model.pth)")
    parser.add_argument("--list", type=Path, required=True, help="the mini test list (eval.csv)")
    parser.add_argument("--query-types", nargs="+", default=["label", "caption", "audio"])
    parser.add_argument("--limit", type=int, default=0, help="first N items only (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="per-item CSV (all query types)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from asteroid_audiosep.metrics.clap_score import ClapScorer

    model = AudioSep.from_pretrained(str(args.exp / "best_model.pth")).eval()
    scorer = ClapScorer(model=model)
    tables: List[pd.DataFrame] = []
    summary = []
    for query_type in args.query_types:
        start = time.perf_counter()
        df = score_items(model, scorer, args.list, query_type, args.limit)
        tables.append(df.assign(query_type=query_type))
        summary.append({"query type": query_type, **figures(df), "seconds": time.perf_counter() - start})
    table = pd.DataFrame(summary).set_index("query type").T
    print(f"CLAPScore-i on {args.list} with {args.exp / 'best_model.pth'} ({args.threads} thread(s))")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    if args.out:
        from asteroid_audiosep.fileio import atomic_write

        with atomic_write(args.out, mode=None) as tmp:
            pd.concat(tables, ignore_index=True).to_csv(tmp, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
