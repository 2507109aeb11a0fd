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

from asteroid_audiosep.config import (
    ConfigError,
    apply_overrides,
    check_required,
    data_path,
    get_value,
    load_config,
    save_config,
)
from asteroid_audiosep.errors import AudioSepError


def _eval_list_producer(cfg: Dict[str, Any], path: Path) -> tuple:
    data_dir = Path(get_value(cfg, "paths.data_dir", "data"))
    if Path(path).is_relative_to(data_dir / "eval"):
        return 1, "stage 1 (evaluation mixtures)"
    return 0, "stage 0 (data preparation: this corpus writes its own evaluation lists)"


def stage_prerequisites(cfg: Dict[str, Any], stage: int) -> List[tuple]:
    """(path, producing stage, what to run) for each file ``stage`` reads that an earlier stage
    writes: the datafiles and evaluation lists of this config, the model package, the scores.

    What is checked is the files themselves, not another experiment's markers, so a second
    experiment (``--tag``) on data that is already prepared starts at stage 2. Importing a model
    (``import.model``) needs no prepared data; the released benchmark's sets (``released:``) are
    read from ``paths.benchmark_dir``, not from stage 1.
    """
    exp = Path(get_value(cfg, "paths.exp_dir", "exp"))
    need: List[tuple] = []
    if stage == 1:
        pass  # stage 1 reads the corpora's own folders (checked by the step itself)
    elif stage == 2 and not get_value(cfg, "import.model"):
        for datafile in data_path(cfg, get_value(cfg, "data.train_datafiles") or []):
            need.append((Path(datafile), 0, "stage 0 (data preparation)"))
        valid = get_value(cfg, "data.valid_list")
        if valid:
            need.append((data_path(cfg, valid), *_eval_list_producer(cfg, data_path(cfg, valid))))
    elif stage in (3, 4):
        need.append((exp / "best_model.pth", 2, "stage 2 (training, or the import of the released checkpoint)"))
        lists = [e.get("list") or e.get("recordings_of") for e in get_value(cfg, "evaluation.sets") or []
                 if isinstance(e, dict) and ("list" in e or "recordings_of" in e)]
        if stage == 4:
            lists = [get_value(cfg, "enhancement.list")] if get_value(cfg, "enhancement.list") else []
        for value in lists:
            path = data_path(cfg, value)
            need.append((path, *_eval_list_producer(cfg, path)))
    elif stage == 5:
        need.append((exp / "eval", 3, "stage 3 (evaluation)"))
    return need


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
