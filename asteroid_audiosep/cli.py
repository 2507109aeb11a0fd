"""The ``asteroid-audiosep`` command line (also ``python -m asteroid_audiosep``)."""
import argparse
import logging
import sys
from typing import List, Optional

from .errors import AudioSepError

log = logging.getLogger("asteroid_audiosep")


def _convert_official(args: argparse.Namespace) -> int:
    from .official import convert_official, download_official, KNOWN_MODELS

    source = args.checkpoint
    if source in KNOWN_MODELS:
        source = download_official(source)
    out = convert_official(source, args.output)
    print(f"wrote {out}")
    return 0


def add_convert_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "convert-official",
        help="convert the released AudioSep checkpoint into an Asteroid model package",
        description="Convert a released AudioSep Lightning checkpoint (audiosep_base_4M_steps.ckpt) "
        "into an Asteroid model package loadable with AudioSep.from_pretrained. The CLAP weights "
        "it holds are written beside the package (OUT stem + .clap.pt).",
    )
    p.add_argument("checkpoint", help="the .ckpt file, or a released model name (audiosep-base) to download")
    p.add_argument("output", help="the model package to write (.pth)")
    p.set_defaults(func=_convert_official)


#: Sub-command registrars, in help order. Each adds one sub-parser with `func` set.
SUBCOMMANDS = [add_convert_parser]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asteroid-audiosep",
        description="AudioSep (Separate Anything You Describe) for Asteroid: separate sounds "
        "described in words, import the released checkpoint.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except AudioSepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
