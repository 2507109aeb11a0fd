"""The functional inference API: :func:`separate` and :func:`separate_waveform`.

Both are thin wrappers: each call builds a :class:`~asteroid_audiosep.separator.Separator`
(which loads the model) and runs one of its methods. To separate several times with one model,
build the :class:`~asteroid_audiosep.separator.Separator` once instead.
"""

import os
from typing import Optional, Sequence, Union

import torch

from .apply import DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS
from .devices import resolve_device
from .models import AudioSep
from .outputs import MODES, query_slug
from .pipeline import FileResult, SeparationReport
from .queries import QueryLike
from .separator import Separator, _half_dtype, check_request
from .separator import load_model as load_separator  # noqa: F401  (the former name, kept for callers)

__all__ = [
    "MODES",
    "FileResult",
    "SeparationReport",
    "Separator",
    "separate",
    "separate_waveform",
    "query_slug",
    "resolve_device",
]

PathLike = Union[str, os.PathLike]
_ = _half_dtype  # re-exported: the legacy ``half`` names


def separate_waveform(
    model: Union[str, PathLike, AudioSep],
    wav: torch.Tensor,
    sample_rate: int,
    queries: Union[QueryLike, Sequence[QueryLike]],
    *,
    condition: Optional[torch.Tensor] = None,
    device: Optional[Union[str, torch.device]] = None,
    precision: str = "auto",
    half: Union[bool, str, None] = None,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    context_seconds: float = DEFAULT_CONTEXT_SECONDS,
    batch_size: Optional[int] = None,
    whole_seconds: Optional[float] = None,
) -> torch.Tensor:
    """Separate every query from an in-memory waveform (:meth:`Separator.separate_waveform`).

    Args:
        model: a model, a package path or a released model name.
        wav: (channels, time) or (time,) audio at ``sample_rate``.
        sample_rate: its rate (any; it is resampled to the model's and back).
        queries: one query or several: strings (text) or :class:`~asteroid_audiosep.Query`
            objects (a span query takes its example from ``wav`` itself); only their number
            counts when ``condition`` is given.
        condition: (queries, condition_dim) precomputed embeddings instead of the encoder.
        device, precision, half, chunk_seconds, context_seconds, batch_size, whole_seconds: see
            :func:`separate`.

    Returns:
        (queries, channels, time) at ``sample_rate``; ``wav - result[q]`` is the residual.
    """
    separator = Separator(model, device, chunk_seconds=chunk_seconds, context_seconds=context_seconds,
                          whole_seconds=whole_seconds, batch_size=batch_size, precision=precision, half=half)
    return separator.separate_waveform(wav, sample_rate, queries, conditions=condition)


def separate(
    inputs: Union[PathLike, Sequence[PathLike]],
    queries: Union[QueryLike, Sequence[QueryLike]],
    model: Union[str, PathLike, AudioSep] = "audiosep-base",
    outdir: Optional[PathLike] = "separated",
    *,
    mode: str = "target",
    overwrite: bool = False,
    device: Optional[Union[str, torch.device]] = None,
    precision: str = "auto",
    half: Union[bool, str, None] = None,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    context_seconds: float = DEFAULT_CONTEXT_SECONDS,
    batch_size: Optional[int] = None,
    query_embeddings: Optional[Union[PathLike, torch.Tensor]] = None,
    progress: bool = True,
    whole_seconds: Optional[float] = None,
    format: str = "same",
    subtype: Optional[str] = None,
    auto: Optional[int] = None,
    min_score: Optional[float] = None,
    labels: Optional[Union[PathLike, Sequence[str]]] = None,
) -> SeparationReport:
    """Separate the sounds that queries describe from audio files and folders.

    Every file is streamed chunk by chunk (memory does not grow with its length), resampled to
    the model's rate and back, each channel separated (batched); the outputs have the input's
    length, rate and channels, and by default its container and sample format (see ``format``);
    they are written atomically. Reading and
    writing run in threads beside the network.

    Args:
        inputs: audio files and/or folders (searched recursively for files soundfile reads).
        queries: one or more queries: strings (text) or :class:`~asteroid_audiosep.Query`
            objects (audio examples, spans of each input, images, videos, combinations); all
            run in one pass over each file; outputs are named after their labels.
        model: a model package path, a released model name, or an :class:`AudioSep`.
        outdir: output folder (folder inputs keep their sub-folder layout); None writes next
            to each input.
        mode: ``"target"`` (the described sound), ``"remove"`` (the residual: the mixture
            minus the described sound) or ``"both"``.
        overwrite: rewrite existing outputs (an input file is never overwritten).
        device: ``"cpu"``, ``"cuda"``... (default: CUDA when available).
        precision: the network's precision: ``"auto"`` (bf16 on GPUs that support it and on
            CPUs with native bf16, else fp32), ``"fp32"``, ``"bf16"`` or ``"fp16"`` (see
            :mod:`~asteroid_audiosep.precision`).
        half: the legacy setting, an alias (``True``/``"fp16"``, ``"bf16"``, ``False`` = fp32).
        chunk_seconds: longest chunk; longer files are cut into equal grid-aligned chunks.
        context_seconds: context on each side of a chunk (>= 0.64 s keeps chunked output
            within 60 dB of whole-clip output).
        batch_size: most (query, segment, channel) items per network call (default: one
            segment's items); larger values batch equal-length chunks and short files (GPU).
        query_embeddings: an embedding table file (offline use, looked up by query text), or a
            (queries, condition_dim) tensor.
        progress: show progress (files, or the chunks of a lone file).
        whole_seconds: files up to this long run in one forward (default: up to one chunk
            plus its context); raise it where memory allows.
        format: ``"same"`` (WAV stays WAV, FLAC stays FLAC, other containers become FLAC),
            ``"wav"`` or ``"flac"``; RF64 is used where a WAV would pass 4 GiB.
        subtype: the sample format (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``); default: the
            input's when it is 16/24-bit PCM, else float (24-bit in FLAC). Integer outputs that
            would clip are scaled down with a warning.
        auto: also separate the ``auto`` most likely sounds of each file, found by zero-shot
            tagging with the model's CLAP encoder (:func:`~asteroid_audiosep.tagging.auto_queries`;
            outputs are named after the labels); ``queries`` may then be empty.
        min_score: with ``auto``, leave out labels whose cosine score is below it.
        labels: with ``auto``, the label vocabulary (a list, or a file with one label per line;
            default: AudioSet's 527 names).

    Returns:
        A :class:`SeparationReport`; ``report.ok`` is False when a file failed.

    Raises:
        AudioSepError: for errors that concern every file (bad query, model, device, mode).
    """
    given = isinstance(query_embeddings, torch.Tensor)
    check_request(inputs, queries, mode, outdir, auto, format, subtype)  # before the model: fail fast
    separator = Separator(model, device, chunk_seconds=chunk_seconds, context_seconds=context_seconds,
                          whole_seconds=whole_seconds, batch_size=batch_size,
                          query_embeddings=None if given else query_embeddings, precision=precision,
                          half=half, progress=progress)
    return separator.separate_files(inputs, queries, outdir, mode=mode, overwrite=overwrite, format=format,
                                    subtype=subtype, conditions=query_embeddings if given else None, auto=auto,
                                    min_score=min_score, labels=labels)
