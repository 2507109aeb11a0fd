"""The ``export`` sub-command and the ``separate --backend`` option (ONNX export and ONNX Runtime)."""
import argparse
from pathlib import Path

__all__ = ["add_export_parser", "add_backend_option"]


def _export(args: argparse.Namespace) -> int:
    from .errors import AudioSepError
    from .separator import Separator
    from .threads import set_threads

    if Path(args.output).suffix.lower() != ".onnx":
        raise AudioSepError(f"{args.output}: name the output OUT.onnx")
    set_threads(args.threads)
    separator = Separator(args.model, "cpu", precision="fp32", query_embeddings=args.query_embeddings,
                          progress=False, backend="torch")
    result = separator.export_onnx(args.output, args.queries, opset=args.opset, dynamic_length=args.dynamic_length,
                                   seconds=args.seconds, exporter=args.exporter)
    size = result.path.stat().st_size / 2**20
    length = "any length" if args.dynamic_length else f"{args.seconds:g} s"
    print(f"wrote {result.path} ({size:.1f} MiB, opset {result.opset}, {length}, {result.exporter} exporter, "
          f"{result.seconds:.1f} s)")
    if result.queries is not None:
        print(f"wrote {result.queries} ({len(result.texts)} queries: {', '.join(result.texts)})")
    return 0


def add_export_parser(subparsers) -> None:
    """``asteroid-audiosep export MODEL OUT.onnx [--opset N] [--dynamic-length] -q QUERY...``."""
    from .onnx_export import DEFAULT_OPSET

    p = subparsers.add_parser(
        "export", help="export a model to ONNX (STFT/ISTFT in the graph) with its queries' embeddings",
        description="Write MODEL as an ONNX graph: inputs mixture (batch, channels, samples) float32 at the "
        "model's rate and condition (batch, condition_dim), output separated (batch, channels, samples); "
        "the STFT and ISTFT are convolutions inside it. The query encoder is not: the embeddings of the "
        "-q queries are written to OUT.queries.npz (texts, vectors). Run it with `separate --backend "
        "onnxruntime -m OUT.onnx` or any ONNX Runtime (docs/deploy.md). Needs the 'onnx' extra.")
    p.add_argument("model", metavar="MODEL", help="model package (.pth), released checkpoint or released model name")
    p.add_argument("output", metavar="OUT.onnx", help="the graph to write")
    p.add_argument("-q", "--query", dest="queries", action="append", default=[], metavar="TEXT",
                   help="a query to bake into OUT.queries.npz (repeatable; required when the model has a "
                   "text encoder)")
    p.add_argument("--query-embeddings", metavar="FILE",
                   help="embed the queries with this precomputed table instead of the model's encoder")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help="ONNX opset: 18 or later, 17 with --exporter legacy (default: %(default)s)")
    p.add_argument("--dynamic-length", action="store_true",
                   help="any input length (needed by separate --backend onnxruntime); default: exactly --seconds")
    p.add_argument("--seconds", type=float, default=10.0,
                   help="the input length of a fixed-length graph (default: %(default)s)")
    p.add_argument("--exporter", choices=["dynamo", "legacy"], default="dynamo",
                   help="torch.onnx.export with dynamo=True (torch.export; default) or dynamo=False (TorchScript: "
                   "deprecated by torch, faster to export)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for the export")
    p.set_defaults(func=_export)


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend`` of ``separate``."""
    parser.add_argument("--backend", choices=["auto", "torch", "onnxruntime"], default="auto",
                        help="the network's engine: torch, or onnxruntime for a graph written by "
                        "`export --dynamic-length` (-m OUT.onnx; queries looked up in OUT.queries.npz); "
                        "auto: onnxruntime for a .onnx model (default)")
