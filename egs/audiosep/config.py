#!/usr/bin/env python
"""Recipe configuration: one YAML per setup, command-line overrides, required-value checks.

As a script (called by run.sh):
    config.py resolve --conf conf/mini.yaml --out exp/mini/config.yaml [--section.key value ...]
    config.py check --config exp/mini/config.yaml --stages 0-5
    config.py get --config exp/mini/config.yaml section.key
As a module (the recipe steps): ``load_config(path)``, ``apply_overrides(cfg, argv)``.

A value ``???`` in a YAML file is a required setting: ``check`` names every one left unset and
the option that sets it. ``resolve`` writes the experiment's resolved config once; later calls
reuse it and apply new overrides on top, so ``./run.sh --stage 3`` evaluates what was trained.
"""
import argparse
import copy
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence

import yaml

REQUIRED = "???"


class ConfigError(SystemExit):
    """A configuration problem: printed as one message, exit status 1."""

    def __init__(self, message: str):
        super().__init__(f"config error: {message}")


def merge(base: Dict[str, Any], child: Dict[str, Any]) -> Dict[str, Any]:
    """``child`` deep-merged over ``base`` (mappings merge key by key; other values replace)."""
    out = copy.deepcopy(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path) -> Dict[str, Any]:
    """Read a YAML config (a mapping). A top-level ``base: other.yaml`` (relative to this file)
    is read first and this file's values are merged over it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found")
    try:
        with open(path) as f:
            cfg = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    if "base" in cfg:
        base = Path(str(cfg.pop("base")))
        cfg = merge(load_config(base if base.is_absolute() else path.parent / base), cfg)
    return cfg


def save_config(cfg: Dict[str, Any], path) -> None:
    """Write a config atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(cfg, f, sort_keys=False, default_flow_style=None)
    os.replace(tmp, path)


def get_value(cfg: Dict[str, Any], dotted: str, default: Any = None) -> Any:
    """``cfg["a"]["b"]`` for ``"a.b"``, or ``default`` when absent."""
    node: Any = cfg
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def set_value(cfg: Dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``cfg["a"]["b"] = value`` for ``"a.b"``, creating sections as needed."""
    keys = dotted.split(".")
    node = cfg
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[keys[-1]] = value


def parse_overrides(argv: Sequence[str]) -> List[tuple]:
    """``["--a.b", "3", "--c=x"]`` -> ``[("a.b", 3), ("c", "x")]`` (values parsed as YAML)."""
    pairs, items, i = [], list(argv), 0
    while i < len(items):
        arg = items[i]
        if not arg.startswith("--"):
            raise ConfigError(f"expected --section.key value, got {arg!r}")
        if "=" in arg:
            key, raw = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(items):
                raise ConfigError(f"option {arg} needs a value")
            key, raw = arg[2:], items[i + 1]
            i += 2
        pairs.append((key, yaml.safe_load(raw) if raw != "" else ""))
    return pairs


def apply_overrides(cfg: Dict[str, Any], argv: Sequence[str]) -> Dict[str, Any]:
    """A copy of ``cfg`` with the command-line overrides applied."""
    cfg = copy.deepcopy(cfg)
    for key, value in parse_overrides(argv):
        set_value(cfg, key, value)
    return cfg


def expand_path(cfg: Dict[str, Any], value: Any) -> Any:
    """Replace ``{name}`` in a path value (or a list of them) by ``paths.<name>``
    (``{data_dir}``, ``{exp_dir}``, ``{benchmark_dir}``, ...)."""
    if isinstance(value, list):
        return [expand_path(cfg, v) for v in value]
    if not isinstance(value, str):
        return value
    for name, path in (get_value(cfg, "paths") or {}).items():
        value = value.replace("{" + name + "}", str(path))
    return value


#: The first stage that reads each part of the config (the longest matching prefix wins).
STAGE_OF = {"data.corpora": 0, "data.mini": 0, "data.eval_mixtures": 1, "data": 2, "model": 2,
            "training": 2, "import": 2, "evaluation": 3, "paths.benchmark_dir": 3,
            "enhancement": 4, "report": 5}


def stage_of(dotted: str) -> int:
    """The stage that needs the value ``dotted`` (0 when unknown: needed from the start)."""
    best = ""
    for prefix in STAGE_OF:
        if (dotted == prefix or dotted.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return STAGE_OF.get(best, 0)


def missing_values(cfg: Any, prefix: str = "") -> List[str]:
    """Dotted names of every required (``???``) value still unset."""
    if isinstance(cfg, dict):
        out = []
        for key, value in cfg.items():
            out += missing_values(value, f"{prefix}{key}.")
        return out
    return [prefix[:-1]] if cfg == REQUIRED else []


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
    missing = [k for k in missing_values(cfg) if stage_of(k) in stages]
    if missing:
        lines = "\n".join(f"  {k}: set it with --{k} VALUE (or in the YAML file)" for k in missing)
        raise ConfigError(f"required settings are not set in {args.config}:\n{lines}")
    for stage in stages:
        for path, producer, what in stage_prerequisites(cfg, stage):
            if producer not in stages and not Path(path).exists():
                raise ConfigError(
                    f"stage {stage} needs {path}, which is missing: run {what} first, e.g. "
                    f"./run.sh --stage {producer} --stop_stage {stage} (same --conf/--tag)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
