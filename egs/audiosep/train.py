#!/usr/bin/env python
"""Recipe stage 2: train AudioSep from the experiment's YAML config.

Usage (run.sh calls the first form)::

    python egs/audiosep/train.py --config exp/mini/config.yaml
    python egs/audiosep/train.py --config conf/mini.yaml --exp_dir exp/mini --ngpu 0 \\
        --training.max_steps 100            # any YAML value: --section.key value

Rerunning the same command resumes from the experiment's last checkpoint (same step,
optimiser, scheduler and data order). Under SLURM, start one task per GPU with ``srun``:
Lightning reads the SLURM environment (``--ntasks-per-node`` = GPUs per node).

The sections read here are ``paths``, ``data``, ``model`` and ``training``; every key, its
default and its meaning are in ``asteroid_audiosep/resources/train_defaults.yaml``, which the
recipe's configs inherit (``base: train_defaults.yaml``). The run itself is
:func:`asteroid_audiosep.engine.trainer.train`, which documents what it writes.
"""
import argparse
import logging
import sys
from typing import Any, Optional, Sequence

from asteroid_audiosep.errors import AudioSepError


def parse_args(argv: Optional[Sequence[str]] = None):
    """``(args, overrides)``: the named options and the ``--section.key value`` pairs."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", "--conf", dest="config", required=True, help="the YAML config")
    parser.add_argument("--exp_dir", default=None, help="experiment directory (default: paths.exp_dir)")
    parser.add_argument("--ngpu", type=int, default=None, help="GPUs per node (training.devices; 0: CPU)")
    parser.add_argument("--num_nodes", type=int, default=None, help="nodes (training.num_nodes)")
    return parser.parse_known_args(argv)


def main(argv: Optional[Sequence[str]] = None, extra_callbacks: Sequence[Any] = ()) -> int:
    """Command-line entry point; returns the exit status (1 with a message on bad configuration)."""
    from asteroid_audiosep.cpu_memory import retain_freed_memory
    from asteroid_audiosep.engine.trainer import run_from_files
    from asteroid_audiosep.threads import set_threads

    logging.basicConfig(level=logging.INFO, format="%(asctime)s (train) %(message)s")
    retain_freed_memory()
    args, rest = parse_args(argv)
    try:
        set_threads()  # the free cores; training.num_threads, when set, overrides it
        run_from_files(args.config, rest, exp_dir=args.exp_dir, ngpu=args.ngpu,
                       num_nodes=args.num_nodes, extra_callbacks=extra_callbacks)
    except AudioSepError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
