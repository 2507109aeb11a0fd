"""The ``demo`` sub-command: its options and its run (the page itself: :mod:`asteroid_audiosep.demo`)."""
import argparse
import logging

from .cli_options import add_model_options
from .demo import DEFAULT_HOST, DEFAULT_MAX_MINUTES, DEFAULT_PORT
from .demo_sessions import QueueSettings

__all__ = ["add_demo_parser", "add_demo_arguments", "run_demo"]

log = logging.getLogger("asteroid_audiosep")


def add_demo_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="a local web page to try separation (upload or record, type queries, listen)",
        description="Serve a web page (Gradio, the 'demo' extra) on which to upload or record "
        "audio, type what to separate and hear, see and download the separated sound and the "
        "residual. It runs what `separate` runs, binds to 127.0.0.1 by default and never opens "
        "a public share link.",
    )
    add_demo_arguments(p)
    p.set_defaults(func=run_demo)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``demo`` sub-command's options."""
    add_model_options(parser)
    parser.add_argument("--query-embeddings", metavar="FILE",
                        help="precomputed query-embedding table instead of the model's text encoder")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="address to serve on (default: %(default)s, this machine only; 0.0.0.0 "
                        "serves every network interface: anyone who can reach the port can use it)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port (default: %(default)s)")
    parser.add_argument("--max-minutes", type=float, default=DEFAULT_MAX_MINUTES,
                        help="longest input the page accepts, in minutes (default: %(default)s)")
    QueueSettings.add_arguments(parser)


def run_demo(args: argparse.Namespace) -> int:
    """``asteroid-audiosep demo``: load the model, serve the page until interrupted."""
    from .demo import DemoSeparator, _import_gradio, serve

    _import_gradio()  # a missing extra is reported before the model loads
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's startup self-checks
    from .threads import set_threads

    set_threads(args.threads)
    queue = QueueSettings(args.concurrency, args.max_queue)  # checked before the model loads
    separator = DemoSeparator(args.model, args.device, args.query_embeddings, args.max_minutes,
                              half=args.half, precision=args.precision)
    log.info("%s", separator.describe(markdown=False))
    try:
        serve(separator, args.host, args.port, block=True, queue=queue)
    finally:
        separator.close()
    return 0
