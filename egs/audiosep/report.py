#!/usr/bin/env python
"""Recipe stage 5: the report: tables beside the paper's numbers, spectrogram and per-class
figures, written to ``<exp>/report/`` with ``report.md`` linking everything. Sets without
references (recordings scored by CLAPScore) get their own table.

Usage: report.py --config exp/<name>/config.yaml
"""
import argparse
import sys
from pathlib import Path
from typing import Optional

from asteroid_audiosep import AudioSepError
from asteroid_audiosep.config import check_required, expand_path, get_value, load_config
from asteroid_audiosep.data.overlap import dropped_summary
from asteroid_audiosep.report import SpectrogramExample, write_report
from asteroid_audiosep.resources import PAPER_RESULTS


def examples(exp: Path, per_set: int):
    """Spectrogram examples from the audio that stage 3 kept (``eval/<set>/examples/<qt>/<id>``)."""
    found = []
    for set_dir in sorted((exp / "eval").glob("*/examples")):
        for qt_dir in sorted(set_dir.iterdir()):
            for item in sorted(qt_dir.iterdir())[:per_set]:
                found.append(SpectrogramExample(
                    dataset=set_dir.parent.name, item_id=f"{item.name} ({qt_dir.name} query)",
                    mixture=item / "mixture.wav", target=item / "target.wav",
                    estimate=item / "estimate.wav"))
            break  # one query type per set is enough for figures
    return found


def result_files(exp: Path):
    """Stage 3's per-item CSVs split by kind: ``(with references, without references, failed)``;
    ``failed`` maps ``(set, query type)`` to the number of items listed in ``<qt>.failed.tsv``."""
    from asteroid_audiosep.reference_free import read_failures

    separation, free = [], []
    for csv in sorted((exp / "eval").glob("*/*.csv")):
        with open(csv, encoding="utf-8") as f:
            header = f.readline().strip().split(",")
        (separation if "sdr" in header else free).append(csv)
    failed = {(p.parent.name, p.name[: -len(".failed.tsv")]): len(read_failures(p))
              for p in sorted((exp / "eval").glob("*/*.failed.tsv"))}
    return separation, free, failed


def _supervision(cfg):
    """(encoder, text ratio) for Table V when the run's encoder is one of the paper's (CLIP, CLAP)."""
    spec = get_value(cfg, "model.query_encoder") or {}
    encoder = spec.get("type") if isinstance(spec, dict) else spec
    if encoder not in ("clip", "clap"):
        return None
    return str(encoder), float(get_value(cfg, "training.use_text_ratio", 1.0))


def seconds_per_step(exp: Path) -> Optional[float]:
    """Training wall time per step, from ``<exp>/train_report.json`` (written by stage 2), or None."""
    import json

    path = exp / "train_report.json"
    try:
        rate = float(json.loads(path.read_text())["train_steps_per_sec"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return 1.0 / rate if rate > 0 else None


def model_name(exp: Path) -> str:
    """The model class of ``<exp>/best_model.pth`` ("" when there is none)."""
    import torch

    package = exp / "best_model.pth"
    if not package.is_file():
        return ""
    return str(torch.load(package, map_location="cpu", weights_only=True).get("model_name", ""))


def other_runs(cfg):
    """``report.compare``: other experiments shown beside this one in the mini table."""
    runs = []
    for folder in get_value(cfg, "report.compare") or []:
        exp = Path(expand_path(cfg, str(folder)))
        if not exp.is_dir():
            print(f"report.compare: {exp} not found, not shown (train it first, e.g. ./run.sh for exp/mini)")
            continue
        csvs = result_files(exp)[0]
        if not csvs:
            raise AudioSepError(f"report.compare: {exp} has no evaluation results (run its stage 3 first)")
        other = load_config(exp / "config.yaml") if (exp / "config.yaml").is_file() else {}
        name = str(get_value(other, "report.system_name", exp.name)).replace(" (this run)", "")
        runs.append((name, model_name(exp), seconds_per_step(exp), csvs))
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        check_required(cfg, [5], args.config)
        exp = Path(get_value(cfg, "paths.exp_dir"))
        separation, free, failed = result_files(exp)
        enhancement = sorted((exp / "enhance").glob("*/scores.csv"))
        if not separation and not free and not failed and not enhancement:
            raise AudioSepError(f"no evaluation results under {exp}/eval or {exp}/enhance: run stages 3-4 first")
        enh_name = get_value(cfg, "enhancement.dataset", "speech")
        report = write_report(
            exp / "report",
            separation_results=separation or None,
            enhancement_results=enhancement or None,
            paper_results=get_value(cfg, "report.paper_results") or PAPER_RESULTS,
            examples=examples(exp, int(get_value(cfg, "report.examples_per_set", 2))),
            system_name=str(get_value(cfg, "report.system_name", f"This run ({exp.name})")),
            mini_datasets=tuple(get_value(cfg, "report.mini_datasets") or ("mini",)),
            enhancement_dataset=str(enh_name),
            title=f"AudioSep evaluation report: {exp.name}",
            notes=[dropped_summary(expand_path(cfg, get_value(cfg, "data.train_datafiles") or []))],
            supervision=_supervision(cfg),
            model_name=model_name(exp),
            seconds_per_step=seconds_per_step(exp),
            other_runs=other_runs(cfg),
            reference_free_results=free or None,
            failed=failed,
        )
    except AudioSepError as err:
        print(f"report.py: error: {err}", file=sys.stderr)
        return 1
    print(report.read_text())
    print(f"report written to {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
