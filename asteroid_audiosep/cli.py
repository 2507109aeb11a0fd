"""The ``asteroid-audiosep`` command line (also ``python -m asteroid_audiosep``)."""
import argparse
import logging
import sys
from typing import List, Optional

from .cpu_memory import retain_freed_memory
from .errors import AudioSepError
from .tagging import add_tag_parser

log = logging.getLogger("asteroid_audiosep")


def _convert_official(args: argparse.Namespace) -> int:
    from .hub import KNOWN_MODELS, download_official
    from .official import convert_official

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


def _separate(args: argparse.Namespace) -> int:
    from .api import separate

    mode = "both" if args.keep_both else "remove" if args.remove else "target"
    report = separate(
        args.inputs,
        args.query,
        model=args.model,
        outdir=args.outdir,
        mode=mode,
        overwrite=args.overwrite,
        device=args.device,
        half=args.half or False,
        chunk_seconds=args.chunk_seconds,
        context_seconds=args.context_seconds,
        batch_size=args.batch_size,
        query_embeddings=args.query_embeddings,
        progress=not args.quiet,
    )
    for result in report.failed:
        print(f"failed: {result.input}: {result.error}", file=sys.stderr)
    print(report.summary())
    return 0 if report.ok else 1


def add_separate_parser(subparsers) -> None:
    from .apply import DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS

    p = subparsers.add_parser(
        "separate",
        help="separate the sounds that text queries describe from audio files or folders",
        description="Separate the sound each --query describes from every input (files, or "
        "folders searched recursively) and write OUTDIR/<stem>__<query>.wav with the input's "
        "length, rate and channels. Files of any length are streamed in seam-free chunks; all "
        "queries run in one pass. Exit status 1 when a file failed (the others are still "
        "written), 2 for errors that concern every file (query, model).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
    p.add_argument(
        "--model",
        "-m",
        default="audiosep-base",
        help="model package (.pth) or released model name (default: %(default)s)",
    )
    p.add_argument(
        "--query",
        "-q",
        action="append",
        required=True,
        help="text describing the sound to separate; repeat for several",
    )
    p.add_argument(
        "--query-embeddings",
        metavar="FILE",
        help="precomputed query-embedding table to look the queries up in, instead of the "
        "model's text encoder (offline use)",
    )
    p.add_argument(
        "-o", "--outdir", default="separated", help="output folder (default: %(default)s)"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--remove",
        action="store_true",
        help="write the residual (input minus the described sound) instead of the sound",
    )
    group.add_argument("--keep-both", action="store_true", help="write the sound and the residual")
    p.add_argument(
        "--overwrite", action="store_true", help="redo existing outputs (never an input file)"
    )
    p.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
    p.add_argument(
        "--half",
        nargs="?",
        const="fp16",
        choices=["fp16", "bf16"],
        help="half precision on GPU (fp16 when given without a value)",
    )
    p.add_argument(
        "--chunk-seconds",
        type=float,
        default=DEFAULT_CHUNK_SECONDS,
        help="chunk length, rounded to the network's pooling grid (default: %(default)s)",
    )
    p.add_argument(
        "--context-seconds",
        type=float,
        default=DEFAULT_CONTEXT_SECONDS,
        help="context on each side of a chunk (default: %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="most (query, channel) items per network call (default: all)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_separate)


#: Sub-command registrars, in help order. Each adds one sub-parser with `func` set.
SUBCOMMANDS = [add_convert_parser, add_separate_parser, add_tag_parser]


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
    # A process-wide choice made here, at the entry point: keep large freed blocks mapped so
    # that chunked inference does not page-fault on every feature map (see cpu_memory).
    retain_freed_memory()
    try:
        return int(args.func(args) or 0)
    except AudioSepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
