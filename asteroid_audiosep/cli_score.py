"""``separate``'s scoring options: ``--score``, ``--score-encoder``, ``--query-variants``
(``--min-score`` is declared with ``--auto``, whose label threshold it was first)."""
import argparse
from pathlib import Path

from .errors import AudioSepError


def add_score_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--score``, ``--score-encoder`` and ``--query-variants`` to ``separate``."""
    parser.add_argument("--score", action="store_true",
                        help="score every output with CLAPScore and CLAPScore-i (its gain over the input) and "
                        "write OUTDIR/scores.csv; see docs/scoring.md")
    parser.add_argument("--score-encoder", metavar="SPEC",
                        help="with --score: the CLAP encoder that scores: a CLAP checkpoint, 'clap', or a JSON/"
                        "YAML encoder spec (default: the model's own, which needs an audio tower)")
    parser.add_argument("--query-variants", metavar="N|FILE.yaml",
                        help="separate with N phrasings of each text query (or the phrasings of FILE.yaml: "
                        "name: [phrasing, ...]) and keep the output that scores best against their mean "
                        "(implies --score)")


def score_settings(args: argparse.Namespace) -> dict:
    """``Separator`` keyword arguments from the parsed options."""
    return {"score": bool(args.score or args.query_variants), "score_encoder": args.score_encoder}


def query_variants(args: argparse.Namespace):
    """``--query-variants`` as ``separate_files`` takes it: N, a phrasings file, or None."""
    value = args.query_variants
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    if not Path(value).is_file():
        raise AudioSepError(f"--query-variants {value}: give a number of phrasings or a YAML file of them")
    return value


def named_queries(args: argparse.Namespace, queries: list) -> list:
    """The queries that name the outputs (checked before the model is loaded): those given, and
    the names of a ``--query-variants`` file."""
    value = query_variants(args)
    if isinstance(value, (str, Path)):
        from .query_variants import load_phrasings

        return list(queries) + list(load_phrasings(value))
    return queries
