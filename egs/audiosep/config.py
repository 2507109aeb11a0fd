#!/usr/bin/env python
"""Recipe configuration: one YAML per setup, command-line overrides, required-value checks.

As a script (called by run.sh):
    config.py resolve --conf conf/mini.yaml --out exp/mini/config.yaml [--section.key value ...]
    config.py check --config exp/mini/config.yaml --stages 0-5
    config.py get --config exp/mini/config.yaml section.key
The YAML mechanics (``base:`` inheritance, overrides, ``???``) are
:mod:`asteroid_audiosep.config`'s; this script adds what belongs to the recipe's stages.

A value ``???`` in a YAML file is a required setting: ``check`` names every one left unset and
the option that sets it. ``resolve`` writes the experiment's resolved config once; later calls
reuse it and apply new overrides on top, so ``./run.sh --stage 3`` evaluates what was trained.
"""
import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List

import yaml

from asteroid_audiosep.config import ConfigError, apply_overrides, check_required, get_value, load_config, save_config
from asteroid_audiosep.errors import AudioSepError


def stage_prerequisites(cfg: Dict[str, Any], stage: int) -> List[tuple]:
    """(path, producing stage, what to run) for what must exist before ``stage`` runs.

    Importing a model (``import.model``) needs no prepared data; the released benchmark's sets
    (``released:``) are read from ``paths.benchmark_dir``, not from stage 1's mixtures.
    """
    exp = Path(get_value(cfg, "paths.exp_dir", "exp"))
    model = (exp / "best_model.pth", 2, "stage 2 (training, or the import of the released checkpoint)")
    data = (exp / "done" / "stage0", 0, "stage 0 (data preparation)")
    sets = get_value(cfg, "evaluation.sets") or []
    eval_needs_mixtures = any(isinstance(e, dict) and "released" not in e for e in sets)
    need = {
        1: [data],
        2: [] if get_value(cfg, "import.model") else [data],
        3: [model] + ([(exp / "done" / "stage1", 1, "stage 1 (evaluation mixtures)")] if eval_needs_mixtures else []),
        4: [model] + ([(exp / "done" / "stage1", 1, "stage 1 (enhancement set)")]
                      if get_value(cfg, "enhancement.list") else []),
        5: [(exp / "done" / "stage3", 3, "stage 3 (evaluation)")],
    }
    return need.get(stage, [])


def _parse_stages(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("resolve", help="write the experiment's resolved config")
    p.add_argument("--conf", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("check", help="check required values and stage prerequisites")
    p.add_argument("--config", required=True)
    p.add_argument("--stages", default="0-5")
    p = sub.add_parser("get", help="print one value")
    p.add_argument("--config", required=True)
    p.add_argument("key")
    args, rest = parser.parse_known_args(argv)
    if args.command == "resolve":
        out = Path(args.out)
        base = load_config(out if out.is_file() else args.conf)
        cfg = apply_overrides(base, rest)
        if cfg != base or not out.is_file():
            save_config(cfg, out)
        return 0
    if rest:
        parser.error(f"unexpected arguments {rest}")
    cfg = load_config(args.config)
    if args.command == "get":
        value = get_value(cfg, args.key)
        print("" if value is None else (yaml.safe_dump(value).strip() if isinstance(value, (dict, list)) else value))
        return 0
    stages = _parse_stages(args.stages)
    check_required(cfg, stages, args.config)
    for stage in stages:
        for path, producer, what in stage_prerequisites(cfg, stage):
            if producer not in stages and not Path(path).exists():
                raise ConfigError(
                    f"stage {stage} needs {path}, which is missing: run {what} first, e.g. "
                    f"./run.sh --stage {producer} --stop_stage {stage} (same --conf/--tag)"
                )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AudioSepError as err:
        print(err, file=sys.stderr)
        sys.exit(1)
