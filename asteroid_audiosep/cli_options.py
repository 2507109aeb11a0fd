"""The command-line options that ``separate``, ``tag`` and ``demo`` share: model, device,
precision and CPU threads (declared once, here)."""

import argparse

from .precision import add_precision_arguments


def add_model_options(parser: argparse.ArgumentParser, needs: str = "") -> None:
    """``-m/--model``, ``--device``, ``--precision`` (and its alias ``--half``), ``--threads``."""
    parser.add_argument("--model", "-m", default="audiosep-base",
                        help=f"model package (.pth) or released model name{needs} (default: %(default)s)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
    add_precision_arguments(parser)
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads (default: the cores not busy with other processes; "
                        "AUDIOSEP_NUM_THREADS or OMP_NUM_THREADS also set it)")
