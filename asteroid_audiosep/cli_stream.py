"""``asteroid-audiosep stream``: raw float32 PCM on stdin -> the separated sound's PCM on stdout.

Input and output are interleaved little-endian float32 frames of ``--channels`` samples at
``--rate`` (what ``ffmpeg -f f32le`` writes and ``ffplay -f f32le`` reads). Raw PCM carries no
header, so a wrong ``--rate`` or non-float32 input cannot be detected: the tool separates what it
is told it gets. Everything but the audio goes to stderr (the log, the real-time factor).
"""
import argparse
import logging
import os
import sys
import time
from typing import BinaryIO

import numpy as np

from .cli_options import add_model_options
from .errors import AudioSepError

log = logging.getLogger("asteroid_audiosep")

#: Bytes asked of stdin per read (a read returns what is there, up to this).
READ_BYTES = 1 << 16
#: Seconds of audio between two progress lines in the log.
REPORT_EVERY_SECONDS = 30.0
_SAMPLE = np.dtype("<f4")


def _write(out: BinaryIO, separated) -> None:
    """(1, channels, n) -> interleaved little-endian float32 frames."""
    if separated.shape[-1]:
        out.write(np.ascontiguousarray(separated[0].numpy().T, dtype=_SAMPLE).tobytes())
        out.flush()


def run_stream(stream, source: BinaryIO, sink: BinaryIO) -> int:
    """Feed ``source``'s frames through ``stream`` and write its output to ``sink``.

    Returns:
        The number of input frames.

    Raises:
        AudioSepError: the input ends inside a frame (after the whole frames were separated
            and written).
    """
    frame = stream.channels * _SAMPLE.itemsize
    pending = b""
    reported = 0.0
    while True:
        data = source.read1(READ_BYTES) if hasattr(source, "read1") else source.read(READ_BYTES)
        if not data:
            break
        pending += data
        whole = len(pending) // frame * frame
        if whole:
            samples = np.frombuffer(pending[:whole], dtype=_SAMPLE).reshape(-1, stream.channels)
            pending = pending[whole:]
            _write(sink, stream.process(samples.T.astype(np.float32)))
        seconds = stream.samples_in / stream.rate
        if seconds - reported >= REPORT_EVERY_SECONDS:
            reported = seconds
            log.info("stream: %.0f s of audio, real-time factor %.2f", seconds, stream.real_time_factor)
    _write(sink, stream.flush())
    if pending:
        raise AudioSepError(
            f"the input ended inside a frame: {len(pending)} trailing byte(s) of a {frame}-byte frame "
            f"({stream.channels} x float32) were dropped; the whole frames before them were separated "
            "and written. Check --channels and that the input is f32le (ffmpeg -f f32le)")
    return stream.samples_in


def _stream(args: argparse.Namespace) -> int:
    from .separator import Separator
    from .threads import set_threads

    if len(args.query) != 1:
        raise AudioSepError(f"stream separates one query, got {len(args.query)}: run one stream per query")
    if args.rate <= 0 or args.channels <= 0:
        raise AudioSepError(f"--rate and --channels must be positive, got {args.rate} and {args.channels}")
    set_threads(args.threads)
    separator = Separator(args.model, args.device, precision=args.precision, half=args.half,
                          context_seconds=args.context_seconds, query_embeddings=args.query_embeddings,
                          progress=False)
    stream = separator.stream(args.query, args.rate, args.channels, args.block_seconds)
    log.info("stream: %r from %d-channel float32 at %d Hz; latency %d samples (%.3f s) plus compute time",
             args.query[0], args.channels, args.rate, stream.latency, stream.latency_seconds)
    started = time.perf_counter()
    try:
        frames = run_stream(stream, sys.stdin.buffer, sys.stdout.buffer)
    except BrokenPipeError:
        log.warning("stream: the reader of stdout went away; stopped")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        return 1
    finally:
        log.info("stream: %.2f s of audio, %.2f s computing (%.2f s wall): real-time factor %.3f",
                 stream.samples_in / stream.rate, stream.compute_seconds, time.perf_counter() - started,
                 stream.real_time_factor)
    if not frames:
        log.warning("stream: no input on stdin")
    return 0 if frames else 1


def add_stream_parser(subparsers) -> None:
    from .apply import DEFAULT_CONTEXT_SECONDS
    from .realtime import DEFAULT_BLOCK_SECONDS

    p = subparsers.add_parser(
        "stream",
        help="separate a sound from raw float32 PCM on stdin as it arrives, to stdout",
        description="Read interleaved little-endian float32 PCM (--channels at --rate, e.g. "
        "`ffmpeg -i in.wav -f f32le -ac 2 -ar 44100 -`) on stdin and write the sound --query describes, "
        "in the same format, on stdout, with a fixed delay (logged, with the real-time factor, on "
        "stderr). Raw PCM has no header: a wrong --rate or a non-float32 input cannot be detected. "
        "Exit status 2 when the input ends inside a frame (the whole frames are still written).",
    )
    p.add_argument("--query", "-q", action="append", default=[], required=True, metavar="TEXT",
                   help="text describing the sound to separate (exactly one)")
    p.add_argument("--rate", type=int, required=True, help="sample rate of the input (Hz); the output has it too")
    p.add_argument("--channels", type=int, required=True, help="channels of the input; the output has them too")
    p.add_argument("--block-seconds", type=float, default=DEFAULT_BLOCK_SECONDS,
                   help="chunk length: the delay is about this plus the context (default: %(default)s)")
    p.add_argument("--context-seconds", type=float, default=DEFAULT_CONTEXT_SECONDS,
                   help="context after (and before) each chunk (default: %(default)s)")
    p.add_argument("--query-embeddings", metavar="FILE",
                   help="precomputed query-embedding table to look the query up in (offline use)")
    add_model_options(p)
    p.set_defaults(func=_stream)
