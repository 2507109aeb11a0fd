#!/usr/bin/env python
"""Recipe stage 1: build the evaluation mixtures of the paper's protocols, check every list.

Reads the ``data.eval_mixtures`` section of a resolved recipe config:
``{<corpus>: {root: ..., <arguments of build_<corpus>_eval>}}`` -> ``<data_dir>/eval/<corpus>``.
The mini corpus writes its fixed validation/test mixtures in stage 0 already. Then every
evaluation list the later stages use (validation set, evaluation sets, enhancement set) is
checked to exist and parse.

Usage: make_mixtures.py --config exp/<name>/config.yaml
"""
import argparse
import inspect
import logging
import sys
from pathlib import Path

from asteroid_audiosep import AudioSepError
from asteroid_audiosep.config import check_required, data_path, get_value, load_config
from asteroid_audiosep.data.corpora import EVAL_BUILDERS

log = logging.getLogger("make_mixtures")


def evaluation_lists(cfg):
    """(what, csv path) of every list the later stages read (released benchmark excluded)."""
    lists = []
    if get_value(cfg, "data.valid_list"):
        lists.append(("data.valid_list", data_path(cfg, get_value(cfg, "data.valid_list"))))
    for i, entry in enumerate(get_value(cfg, "evaluation.sets") or []):
        if "list" in entry:
            lists.append((f"evaluation.sets[{i}] ({entry.get('name')})", data_path(cfg, entry["list"])))
    if get_value(cfg, "enhancement.list"):
        lists.append(("enhancement.list", data_path(cfg, get_value(cfg, "enhancement.list"))))
    return lists


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (make_mixtures) %(message)s")
    try:
        cfg = load_config(args.config)
        check_required(cfg, [1], args.config)
        data_dir = Path(get_value(cfg, "paths.data_dir", "data"))
        for name, options in (get_value(cfg, "data.eval_mixtures") or {}).items():
            if options is None:  # switched off (e.g. by a config that extends another)
                continue
            if name not in EVAL_BUILDERS:
                raise AudioSepError(f"unknown protocol data.eval_mixtures.{name}; choose among {sorted(EVAL_BUILDERS)}")
            options = dict(options or {})
            root = options.pop("root", None)
            if not root:
                raise AudioSepError(f"set data.eval_mixtures.{name}.root (see docs/data.md)")
            builder = EVAL_BUILDERS[name]
            accepted = inspect.signature(builder).parameters
            unknown = sorted(set(options) - set(accepted))
            if unknown:
                raise AudioSepError(f"data.eval_mixtures.{name}: unknown options {unknown}")
            out = builder(root, data_dir / "eval" / name, **options)
            log.info("%s evaluation mixtures: %s", name, out)
        from asteroid_audiosep.data.evallist import read_eval_list

        for what, path in evaluation_lists(cfg):
            if not path.is_file():
                raise AudioSepError(f"{what}: evaluation list {path} not found (run stage 0, or fix the path)")
            log.info("%s: %d mixtures in %s", what, len(read_eval_list(path)), path)
    except AudioSepError as err:
        print(f"make_mixtures.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
