#!/usr/bin/env python
"""Recipe stage 5: the report: tables beside the paper's numbers, spectrogram and per-class
figures, written to ``<exp>/report/`` with ``report.md`` linking everything.

Usage: report.py --config exp/<name>/config.yaml
"""
import argparse
import sys
from pathlib import Path

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


def _supervision(cfg):
    """(encoder, text ratio) for Table V when the run's encoder is one of the paper's (CLIP, CLAP)."""
    spec = get_value(cfg, "model.query_encoder") or {}
    encoder = spec.get("type") if isinstance(spec, dict) else spec
    if encoder not in ("clip", "clap"):
        return None
    return str(encoder), float(get_value(cfg, "training.use_text_ratio", 1.0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        check_required(cfg, [5], args.config)
        exp = Path(get_value(cfg, "paths.exp_dir"))
        separation = sorted(p for p in (exp / "eval").glob("*/*.csv"))
        enhancement = sorted((exp / "enhance").glob("*/scores.csv"))
        if not separation and not enhancement:
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
        )
    except AudioSepError as err:
        print(f"report.py: error: {err}", file=sys.stderr)
        return 1
    print(report.read_text())
    print(f"report written to {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
