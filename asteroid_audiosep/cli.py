"""The ``asteroid-audiosep`` command line (also ``python -m asteroid_audiosep``)."""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from .checkpoints import trusted_checkpoints
from .cli_demo import add_demo_parser
from .cli_onnx import add_backend_option, add_export_parser
from .cli_options import add_model_options
from .cli_score import add_score_options
from .cli_stream import add_stream_parser
from .cpu_memory import retain_freed_memory
from .errors import AudioSepError

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


class _QueryAction(argparse.Action):
    """Collects every query option, of any kind, in command-line order."""

    def __init__(self, *args, kind: str = "text", **kwargs):
        self.kind = kind
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest) or [])
        items.append((self.kind, values))
        setattr(namespace, self.dest, items)


def build_queries(given, allow_none: bool = False) -> list:
    """``[(kind, value), ...]`` from the command line -> strings and Query objects."""
    from .queries import Query
    from .query_files import load_queries_file, parse_audio_argument, parse_span, parse_video_argument

    queries = []
    for kind, value in given:
        if kind == "text":
            queries.append(value)
        elif kind == "audio":
            queries.append(parse_audio_argument(value))
        elif kind == "span":
            queries.append(Query.span(*parse_span(value)))
        elif kind == "image":
            if not Path(value).is_file():
                raise AudioSepError(f"--query-image: {value} not found")
            queries.append(Query.image(value))
        elif kind == "video":
            queries.append(parse_video_argument(value))
        else:
            queries.extend(load_queries_file(value))
    if not queries and not allow_none:
        raise AudioSepError("give at least one query (or --auto K): -q TEXT, --query-audio, --query-span, "
                            "--query-image, "
                            "--query-video or --queries")
    return queries


def _separate(args: argparse.Namespace) -> int:
    from .cli_score import named_queries, query_variants, score_settings
    from .separator import Separator, check_request
    from .threads import set_threads

    set_threads(args.threads)
    mode = "both" if args.keep_both else "remove" if args.remove else "target"
    queries = build_queries(args.queries, allow_none=args.auto is not None or args.query_variants is not None)
    check_request(args.inputs, named_queries(args, queries), mode, args.outdir, args.auto, args.format,
                  args.subtype)  # before the model
    separator = Separator(args.model, args.device, chunk_seconds=args.chunk_seconds,
                          context_seconds=args.context_seconds, whole_seconds=args.whole_seconds,
                          batch_size=args.batch_size, query_embeddings=args.query_embeddings,
                          precision=args.precision, half=args.half,
                          progress=not args.quiet, backend=args.backend, **score_settings(args))
    report = separator.separate_files(args.inputs, queries, args.outdir, mode=mode, overwrite=args.overwrite,
                                      format=args.format, subtype=args.subtype, auto=args.auto,
                                      min_score=args.min_score, labels=args.labels,
                                      query_variants=query_variants(args))
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
        "folders searched recursively) and write OUTDIR/<stem>__<query>.<ext> with the input's "
        "length, rate, channels and format. Files of any length are streamed in seam-free chunks; all "
        "queries run in one pass. Exit status 1 when a file failed (the others are still "
        "written), 2 for errors that concern every file (query, model).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
    add_model_options(p)
    kinds = (
        ("--query", "-q", "text", "TEXT", "text describing the sound to separate; repeat for several"),
        ("--query-audio", None, "audio", "FILE[@START-END]",
         "an example of the sound (CLAP models); FILE1,FILE2,... averages a few examples"),
        ("--query-span", None, "span", "START-END",
         "the sound heard at START-END seconds of each input itself (CLAP models)"),
        ("--query-image", None, "image", "IMAGE", "a picture of the sound's source (CLIP models)"),
        ("--query-video", None, "video", "FILE[@SECONDS]",
         "a video frame (default: the middle one) of the sound's source (CLIP models)"),
        ("--queries", None, "file", "FILE.yaml",
         "named (combined) queries, e.g. dog: {text: a dog barking, audio: [bark.wav]}"),
    )
    for long, short, kind, metavar, help_text in kinds:
        names = [long] + ([short] if short else [])
        p.add_argument(*names, dest="queries", action=_QueryAction, kind=kind, metavar=metavar,
                       default=[], help=help_text + " (repeatable; all queries share one pass)")
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
    p.add_argument(
        "--chunk-seconds",
        type=float,
        default=DEFAULT_CHUNK_SECONDS,
        help="longest chunk; longer files are cut into equal chunks on the network's pooling "
        "grid (default: %(default)s)",
    )
    p.add_argument(
        "--context-seconds",
        type=float,
        default=DEFAULT_CONTEXT_SECONDS,
        help="context on each side of a chunk (default: %(default)s)",
    )
    p.add_argument(
        "--whole-seconds",
        type=float,
        help="run files up to this long in one forward, unchunked (default: up to one chunk "
        "plus its context; raise it where memory allows)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="most (query, chunk, channel) items per network call; larger values batch "
        "equal-length chunks and short files, for GPUs (default: one chunk's items)",
    )
    p.add_argument("--auto", type=int, metavar="K",
                   help="also separate the K most likely sounds of each file, found by zero-shot tagging "
                   "with the model's CLAP encoder (outputs named after the labels; CLAP models)")
    p.add_argument("--min-score", type=float, metavar="S",
                   help="with --score: do not write outputs whose CLAPScore-i is below S (reported 'not "
                   "found' in scores.csv); with --auto alone: leave out labels whose score (cosine) is below S")
    p.add_argument("--labels", metavar="FILE",
                   help="with --auto: the label vocabulary, one per line (default: AudioSet's 527 names)")
    p.add_argument("--format", choices=["same", "wav", "flac"], default="same",
                   help="output container: same (WAV stays WAV, FLAC stays FLAC, others become FLAC; "
                   "default), wav (RF64 beyond 4 GiB) or flac")
    p.add_argument("--subtype", help="sample format: PCM_16, PCM_24, FLOAT... (default: the input's when it "
                   "is 16/24-bit PCM, else float; 24-bit in FLAC); integer outputs that would clip are "
                   "scaled down with a warning")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_backend_option(p)
    add_score_options(p)
    p.set_defaults(func=_separate)


def _tag(args: argparse.Namespace) -> int:
    from .separator import Separator
    from .tagging import load_labels, write_tags

    if args.output and Path(args.output).suffix.lower() not in (".csv", ".json"):
        raise AudioSepError(f"-o {args.output}: write .csv or .json")
    from .threads import set_threads

    set_threads(args.threads)
    labels = load_labels(args.labels) if args.labels else None
    separator = Separator(args.model, args.device, precision=args.precision, half=args.half, progress=False)
    tags, errors = separator.tag(args.files, labels, args.top, args.window, args.cache_dir)
    for t in tags:
        shown = ", ".join(f"{label} {score:.3f}" for label, score in t.labels) or "(silent)"
        print(f"{t.file} {t.start:7.2f}-{t.end:7.2f} s: {shown}")
    for path, message in errors.items():
        print(f"failed: {path}: {message}", file=sys.stderr)
    if args.output:
        print(f"wrote {write_tags(tags, args.output)}")
    return 1 if errors else 0


def add_tag_parser(subparsers) -> None:
    from .tagging import DEFAULT_TOP, DEFAULT_WINDOW_SECONDS

    p = subparsers.add_parser(
        "tag", help="list the most likely sound labels of each window of audio files",
        description="Zero-shot tagging with the model's CLAP encoder: each window's audio embedding is "
        "compared with the text embeddings of a label vocabulary (AudioSet's 527 names by default). "
        "Prints the top labels per window with their cosine scores. Exit status 1 when a file failed "
        "(the others are tagged), 2 for errors that concern every file.")
    p.add_argument("files", nargs="+", metavar="FILE", help="audio files")
    add_model_options(p, needs="; its encoder needs an audio tower")
    p.add_argument("--labels", metavar="FILE", help="label vocabulary, one label per line (default: AudioSet's 527)")
    p.add_argument("--top", type=int, default=DEFAULT_TOP, help="labels per window (default: %(default)s)")
    p.add_argument("--window", type=float, default=DEFAULT_WINDOW_SECONDS,
                   help="window length in seconds (default: %(default)s, CLAP's)")
    p.add_argument("-o", "--output", metavar="OUT", help="also write the tags to OUT.csv or OUT.json")
    p.add_argument("--cache-dir", help="where label embeddings are cached (default: ~/.cache/asteroid_audiosep)")
    p.set_defaults(func=_tag)


#: Sub-command registrars, in help order. Each adds one sub-parser with `func` set.
SUBCOMMANDS = [add_convert_parser, add_separate_parser, add_tag_parser, add_demo_parser, add_stream_parser,
               add_export_parser]


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
    for sub in subparsers.choices.values():  # every sub-command reads a model file
        sub.add_argument("--trust-checkpoint", action="store_true",
                         help="read a model/CLAP file that holds more than tensors and the allowed types "
                         "by full unpickling, which RUNS THE CODE IN THE FILE: only for files from a "
                         "source you trust (docs/security.md)")
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
        with trusted_checkpoints(args.trust_checkpoint):
            return int(args.func(args) or 0)
    except AudioSepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
