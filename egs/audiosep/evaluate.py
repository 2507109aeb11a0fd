#!/usr/bin/env python
"""Recipe stage 3: SI-SDR / SDRi of the experiment's model on every evaluation set.

Reads ``evaluation`` from a resolved recipe config; each entry of ``evaluation.sets`` is either
an evaluation list in the common format (``list: <csv>``) or
the released benchmark (``released: <dataset>``, ``csv: <its metadata CSV>``,
``data_dir: <evaluation/data/<dataset>>``), evaluated with each of its ``query_types``. Paths may
hold ``{data_dir}`` / ``{exp_dir}``. Queries are embedded once per set with the model's query
encoder, or looked up in ``evaluation.query_embeddings`` (a table file written by
``PrecomputedQueryEncoder.save``: embeddings computed elsewhere, e.g. on a machine with
the encoder's weights, for an offline cluster).
Per-item scores go to ``<exp>/eval/<set>/<query_type>.csv`` as they are computed (a rerun
resumes), the aggregated table (the released rules) to ``<exp>/eval/summary.csv``.
``<exp>/eval/model.sha256`` records which model the scores belong to: when the model package
changes (retrained, another ``--model``), the old ``eval/`` is moved aside to ``eval.<time>/``
and the evaluation starts afresh instead of mixing scores of two models.

Usage: evaluate.py --config exp/<name>/config.yaml [--model PACKAGE]
"""
import argparse
import hashlib
import logging
import sys
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from config import get_value, load_config  # noqa: E402
from make_mixtures import data_path  # noqa: E402

from asteroid_audiosep import AudioSep, AudioSepError  # noqa: E402
from asteroid_audiosep.data import LASSEvalDataset  # noqa: E402
from asteroid_audiosep.data.benchmark import released_benchmark_dataset  # noqa: E402
from asteroid_audiosep.encoders import PrecomputedQueryEncoder  # noqa: E402
from asteroid_audiosep.evaluation import evaluate_separation  # noqa: E402
from asteroid_audiosep.metrics import aggregate_results  # noqa: E402

log = logging.getLogger("evaluate")


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise AudioSepError(f"device {name!r} asked for but CUDA is not available: set evaluation.device cpu")
    return torch.device(name)


def open_set(cfg, entry: dict, query_column: str, sample_rate: int):
    """The dataset of one ``evaluation.sets`` entry for one query type."""
    if "released" in entry:
        for key in ("csv", "data_dir"):
            if not entry.get(key) or entry[key] == "???":
                raise AudioSepError(f"evaluation set {entry.get('name')}: set its {key} (released benchmark)")
        return released_benchmark_dataset(
            entry["released"], data_path(cfg, entry["csv"]), data_path(cfg, entry["data_dir"]),
            query_column=query_column, sample_rate=sample_rate,
            class_labels_csv=data_path(cfg, entry["class_labels_csv"]) if entry.get("class_labels_csv") else None,
            skip_missing=bool(entry.get("skip_missing", False)),
        )
    if "list" not in entry:
        raise AudioSepError(f"evaluation set {entry.get('name')}: give `list` or `released`")
    return LASSEvalDataset(data_path(cfg, entry["list"]), query_column=query_column, sample_rate=sample_rate)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def claim_eval_dir(eval_dir: Path, package: Path) -> None:
    """Make ``eval_dir`` hold the scores of ``package`` only (see the module docstring)."""
    stamp = eval_dir / "model.sha256"
    digest = file_sha256(package)
    if eval_dir.is_dir() and any(eval_dir.iterdir()):
        previous = stamp.read_text().strip() if stamp.is_file() else None
        if previous == digest:
            return  # same model: resume
        aside = eval_dir.with_name(f"{eval_dir.name}.{time.strftime('%Y%m%d-%H%M%S')}")
        eval_dir.rename(aside)
        log.warning("%s held scores of another model: moved to %s; evaluating %s afresh", eval_dir, aside, package)
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / ".model.sha256.tmp").write_text(digest + "\n")
    (eval_dir / ".model.sha256.tmp").replace(stamp)


def query_table(cfg, model, queries) -> PrecomputedQueryEncoder:
    """The embeddings of ``queries``: from ``evaluation.query_embeddings`` or the model's encoder."""
    path = get_value(cfg, "evaluation.query_embeddings")
    if not path:
        return PrecomputedQueryEncoder.from_encoder(model.query_encoder, queries)
    table = PrecomputedQueryEncoder(data_path(cfg, path))
    if table.embed_dim != model.condition_dim:
        raise AudioSepError(f"evaluation.query_embeddings {path}: {table.embed_dim}-d embeddings, "
                            f"the model takes {model.condition_dim}-d conditions")
    missing = sorted({q for q in queries if q not in table})
    if missing:
        raise AudioSepError(f"evaluation.query_embeddings {path} lacks {len(missing)} queries "
                            f"({', '.join(map(repr, missing[:5]))}...): add them, or unset it")
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", help="model package (default: <exp>/best_model.pth)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (evaluate) %(message)s")
    cfg = load_config(args.config)
    exp = Path(get_value(cfg, "paths.exp_dir"))
    try:
        package = Path(args.model or exp / "best_model.pth")
        if not package.is_file():
            raise AudioSepError(f"no model package at {package}: run stage 2 first")
        device = pick_device(get_value(cfg, "evaluation.device", "auto"))
        claim_eval_dir(exp / "eval", package)
        model = AudioSep.from_pretrained(str(package)).eval().to(device)
        log.info("model %s on %s (%d parameters)", package, device, sum(p.numel() for p in model.parameters()))
        sets = get_value(cfg, "evaluation.sets") or []
        if not sets:
            raise AudioSepError("evaluation.sets is empty: nothing to evaluate")
        tables = []
        for entry in sets:
            name = entry.get("name") or entry.get("released")
            for query_type in entry.get("query_types") or ["caption"]:
                dataset = open_set(cfg, entry, query_type, int(model.sample_rate))
                table = query_table(cfg, model, dataset.queries())
                out_dir = exp / "eval" / str(name)
                csv = evaluate_separation(
                    model, dataset, out_dir / f"{query_type}.csv", dataset_name=str(name),
                    query_type=query_type, embed=table.encode_text,
                    batch_size=int(get_value(cfg, "evaluation.batch_size", 1)),
                    extra_metrics=tuple(get_value(cfg, "evaluation.extra_metrics") or ()),
                    estimates_dir=out_dir / "examples" / query_type,
                    num_estimates=int(get_value(cfg, "evaluation.num_examples", 2)),
                )
                tables.append(pd.read_csv(csv, keep_default_na=False, na_values=["nan"]))
        summary = aggregate_results(pd.concat(tables, ignore_index=True))
        summary.to_csv(exp / "eval" / ".summary.csv.tmp", index=False)
        (exp / "eval" / ".summary.csv.tmp").replace(exp / "eval" / "summary.csv")
        with pd.option_context("display.width", 120, "display.precision", 2):
            print(summary.to_string(index=False))
    except AudioSepError as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
