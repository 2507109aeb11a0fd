"""Public inference API: separate what queries describe from audio files, folders or waveforms.

:func:`separate` is what ``asteroid-audiosep separate`` runs: the queries become embeddings
(:func:`query_conditions`), the output files are planned (:mod:`~asteroid_audiosep.outputs`:
``<stem>__<query slug>.wav`` and/or ``<stem>__<query slug>__residual.wav``), and every input
file is streamed through a :class:`~asteroid_audiosep.apply.ChunkedSeparator` by a
:class:`~asteroid_audiosep.pipeline.FilePipeline` (any length, rate and channel count; all
queries in one pass; reading and writing beside the network). A file that fails is reported and
skipped; the others are still processed. :func:`separate_waveform` does the same for an
in-memory tensor.
"""

import logging
import os
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch

from .apply import DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS, ChunkedSeparator
from .audio import AUDIO_EXTENSIONS
from .devices import resolve_device
from .encoders import PrecomputedQueryEncoder
from .errors import AudioSepError
from .models import AudioSep
from .outputs import MODES, OutputPlanner, query_slug, record_outputs
from .pipeline import FileJob, FilePipeline, FileResult, SeparationReport
from .queries import Query, QueryLike, as_queries, embed_queries
from .stream import TensorSignal

__all__ = [
    "MODES",
    "FileResult",
    "SeparationReport",
    "separate",
    "separate_waveform",
    "load_separator",
    "query_conditions",
    "query_slug",
    "resolve_device",
]

log = logging.getLogger("asteroid_audiosep")

PathLike = Union[str, os.PathLike]


def _half_dtype(half: Union[bool, str, None], device: torch.device,
                precision: Optional[str] = "auto") -> Optional[torch.dtype]:
    from .precision import resolve_precision

    return resolve_precision(precision, device, half=half)


def load_separator(
    model: Union[str, PathLike, AudioSep],
    device: Optional[Union[str, torch.device]] = None,
    query_embeddings: Optional[PathLike] = None,
) -> AudioSep:
    """An :class:`AudioSep` in eval mode on ``device``.

    Args:
        model: a model package, a released checkpoint, a released model name
            (``"audiosep-base"``) or URL (see :func:`asteroid_audiosep.pretrained.package_path`),
            or a model.
        device: see :func:`resolve_device`.
        query_embeddings: a precomputed embedding table (see
            :class:`~asteroid_audiosep.encoders.PrecomputedQueryEncoder`) used as the query
            encoder instead of the package's own (offline use).
    """
    if not isinstance(model, AudioSep):
        from .pretrained import load_model

        try:
            model = load_model(model)
        except AudioSepError:
            raise
        except Exception as err:  # torch.load / state-dict errors of a broken package
            raise AudioSepError(f"cannot load the model {model}: {err}") from err
    model = model.eval().to(resolve_device(device))
    if query_embeddings is not None:
        model.set_query_encoder(PrecomputedQueryEncoder(path=query_embeddings), update_spec=False)
    return model


def query_conditions(
    model: AudioSep,
    queries: Union[QueryLike, Sequence[QueryLike]],
    embeddings: Optional[torch.Tensor] = None,
    span_reader=None,
) -> Tuple[List[str], torch.Tensor]:
    """Queries -> ``(labels, conditions)``: the one place where queries become embeddings.

    Args:
        model: the separator (its query encoder embeds the queries).
        queries: one query or several: strings (text queries) or
            :class:`~asteroid_audiosep.Query` objects (audio examples, spans, images, videos,
            combinations). Duplicates are dropped unless ``embeddings`` are given (then the
            queries only name the outputs).
        embeddings: (queries, condition_dim) precomputed embeddings instead of the encoder.
        span_reader: reads a span of the input, for span queries (see
            :func:`~asteroid_audiosep.queries.embed_queries`); without it, span queries get a
            zero placeholder (the caller embeds them per input).

    Returns:
        The queries' labels (output names) and their (queries, condition_dim) float32
        embeddings on the model's device.
    """
    items = as_queries(queries)
    if embeddings is None:
        items = unique_queries(items)
        labels = [q.label for q in items]
        if all(q.kind == "text" for q in items):  # text only: exactly the model's own path
            return labels, model.embed_queries([q.text_value for q in items])
        return labels, _embed(model, items, span_reader)
    labels = [q.label for q in items]
    embeddings = torch.as_tensor(embeddings, dtype=torch.float32)
    if embeddings.dim() == 1:
        embeddings = embeddings[None]
    if embeddings.shape != (len(items), model.condition_dim):
        raise AudioSepError(
            f"query embeddings must be ({len(items)}, {model.condition_dim}), "
            f"got {tuple(embeddings.shape)}"
        )
    return labels, embeddings


def unique_queries(queries) -> List[Query]:
    """The queries, text stripped, each identical text query once (in order)."""
    items = [Query.text(q.text_value.strip(), name=q.name) if q.kind == "text" else q for q in as_queries(queries)]
    return list({((q.kind, q.text_value, q.name) if q.kind == "text" else id(q)): q for q in items}.values())


def _embed(model: AudioSep, items: List[Query], span_reader) -> torch.Tensor:
    """Embeddings of ``items``; span queries get zeros when there is no ``span_reader``."""
    encoder = model.query_encoder
    if span_reader is None and any(q.needs_input for q in items):
        from .queries import check_supported

        check_supported(items, encoder)
        out = torch.zeros(len(items), model.condition_dim)
        fixed = [k for k, q in enumerate(items) if not q.needs_input]
        if fixed:
            out[fixed] = embed_queries(encoder, [items[k] for k in fixed], dim=model.condition_dim)
    else:
        out = embed_queries(encoder, items, span_reader=span_reader, dim=model.condition_dim)
    return out.to(model.window.device, torch.float32)


def _file_conditions(model: AudioSep, items: List[Query], conditions: torch.Tensor):
    """Per-input embeddings for span queries (the span is read from the input itself): the rows
    of ``conditions`` that do not depend on the input are kept, the span queries' are embedded."""
    spans = [k for k, q in enumerate(items) if q.needs_input]
    if not spans:
        return None

    def per_input(signal) -> torch.Tensor:
        def read(start: float, end: float):
            a, b = int(round(start * signal.rate)), int(round(end * signal.rate))
            if b > signal.frames + 1 or a >= signal.frames:
                raise AudioSepError(f"span {start:g}-{end:g} s is outside {signal.frames / signal.rate:.2f} s "
                                    "of audio")
            return signal.read(a, min(b, signal.frames)).mean(0), signal.rate

        out = conditions.clone()
        out[spans] = _embed(model, [items[k] for k in spans], read)
        return out

    return per_input


def _separator(model: AudioSep, conditions: torch.Tensor, chunk_seconds, context_seconds, batch_size, half,
               whole_seconds, precision="auto") -> ChunkedSeparator:
    return ChunkedSeparator(model, conditions, chunk_seconds, context_seconds, batch_size,
                            _half_dtype(half, model.window.device, precision), whole_seconds)


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
    """Separate every query from an in-memory waveform (chunked, like the file API).

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
    model = load_separator(model, device)
    signal = TensorSignal(wav, sample_rate, model.sample_rate)
    items = unique_queries(queries) if condition is None else as_queries(queries)
    _, conditions = query_conditions(model, items, condition)
    per_input = _file_conditions(model, items, conditions) if condition is None else None
    if per_input is not None:
        conditions = per_input(signal)
    separator = _separator(model, conditions, chunk_seconds, context_seconds, batch_size, half, whole_seconds,
                           precision)
    if signal.frames == 0:
        raise AudioSepError("the waveform is empty (0 samples)")
    blocks = [block.targets for block in separator.run(signal)]
    return torch.cat(blocks, dim=-1) if len(blocks) > 1 else blocks[0]


# ---------------------------------------------------------------------------- files
def _collect_inputs(
    inputs: Sequence[PathLike], is_output
) -> List[Tuple[Path, Path, Optional[str]]]:
    """``(file, relative output folder, error)`` per input; folders are searched recursively.

    Files this tool wrote (listed in their folder's output manifest, or named like an output of
    this run's queries) are never inputs, so ``-o`` may be an input folder.

    Raises:
        AudioSepError: no audio file at all (naming the folders searched and the extensions).
    """
    from .outputs import read_manifest

    found: List[Tuple[Path, Path, Optional[str]]] = []
    folders = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            folders.append(item)
            manifests: dict = {}
            for path in sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS):
                if path.parent not in manifests:
                    manifests[path.parent] = read_manifest(path.parent)
                if path.name in manifests[path.parent] or is_output(path):
                    continue  # an output of this tool, not an input
                found.append((path, path.parent.relative_to(item), None))
        elif item.exists():
            found.append((item, Path("."), None))
        else:
            found.append((item, Path("."), f"no such file or folder: {item}"))
    if not found:
        raise AudioSepError(
            f"no audio file found in {', '.join(map(str, folders))} (searched recursively for "
            f"{', '.join(AUDIO_EXTENSIONS)}; earlier outputs of this tool are not inputs)"
        )
    return found


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
    start_time = time.perf_counter()
    if mode not in MODES:
        raise AudioSepError(f"mode must be one of {MODES}, got {mode!r}")
    if auto is not None:
        if int(auto) < 1:
            raise AudioSepError(f"--auto must be >= 1, got {auto}")
        return _separate_auto(inputs, queries, model, outdir, auto, min_score, labels, start_time,
                              dict(mode=mode, overwrite=overwrite, device=device, half=half, precision=precision,
                                   chunk_seconds=chunk_seconds, context_seconds=context_seconds,
                                   batch_size=batch_size, progress=progress, whole_seconds=whole_seconds,
                                   format=format, subtype=subtype))
    given = isinstance(query_embeddings, torch.Tensor)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if not inputs:
        raise AudioSepError("no input given: name audio files or folders")
    items = as_queries(queries)
    outdir = Path(outdir) if outdir is not None else None
    labels = list(dict.fromkeys(q.label for q in items))
    naming = OutputPlanner(labels, mode, outdir, overwrite, [], format, subtype)
    files = _collect_inputs(inputs, naming.is_output_name)  # before the model: fail fast
    model = load_separator(model, device, None if given else query_embeddings)
    items = items if given else unique_queries(items)
    queries, conditions = query_conditions(model, items, query_embeddings if given else None)
    per_input = None if given else _file_conditions(model, items, conditions)
    separator = _separator(model, conditions, chunk_seconds, context_seconds, batch_size, half, whole_seconds,
                           precision)
    existing = [p for p, _, _ in files if p.exists()]
    planner = OutputPlanner(queries, mode, outdir, overwrite, existing, format, subtype)
    results: List[FileResult] = []
    jobs: List[FileJob] = []
    for path, rel, error in files:
        result = FileResult(input=path)
        results.append(result)
        try:
            if error:
                raise AudioSepError(error)
            outputs = planner.plan(path, rel)
        except AudioSepError as err:
            result.fail(err)
            continue
        if outputs:
            jobs.append(FileJob(result, outputs, conditions=per_input, out_format=planner.formats[path]))
        else:
            result.status = "skipped"
            log.info("skipped %s: its outputs exist (use --overwrite to redo them)", path)
    try:
        FilePipeline(separator, progress=progress).run(jobs)
    finally:
        record_outputs(p for r in results for p in r.outputs)
    return SeparationReport(results, time.perf_counter() - start_time)


def _separate_auto(inputs, queries, model, outdir, k: int, min_score, labels, start_time: float,
                   options) -> SeparationReport:
    """``separate --auto K``: each file's K most likely sounds (plus ``queries``), file by file."""
    from .audio import load_audio
    from .tagging import auto_queries, load_labels

    if labels is None or isinstance(labels, (str, os.PathLike)):
        labels = load_labels(labels)

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    extra = [] if queries is None or (not isinstance(queries, (str, Query)) and not list(queries)) \
        else as_queries(queries)
    model = load_separator(model, options["device"])
    outdir = Path(outdir) if outdir is not None else None
    naming = OutputPlanner([q.label for q in extra] or ["query"], options["mode"], outdir, True, [])
    results: List[FileResult] = []
    for path, rel, error in _collect_inputs(inputs, naming.is_output_name):
        try:
            if error:
                raise AudioSepError(error)
            wav, rate = load_audio(path)
            found = auto_queries(model.query_encoder, wav, rate, k, min_score, labels=list(labels))
            if not found and not extra:
                raise AudioSepError(f"no label scores {min_score} or more: lower --min-score")
            log.info("%s: %s", path, ", ".join(q.label for q in found))
        except AudioSepError as err:
            result = FileResult(input=path)
            result.fail(err)
            results.append(result)
            continue
        report = separate(path, extra + found, model, outdir / rel if outdir is not None else None, **options)
        results.extend(report.files)
    return SeparationReport(results, time.perf_counter() - start_time)
