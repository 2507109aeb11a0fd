"""The inference front door: :class:`Separator`, a model loaded once with its settings.

``Separator(model, device, precision, chunk_seconds, ...)`` loads the model in ``__init__`` and
keeps every setting on ``self``; its methods separate an in-memory waveform
(:meth:`~Separator.separate_waveform`), audio files and folders (:meth:`~Separator.separate_files`,
streamed chunk by chunk through a :class:`~asteroid_audiosep.apply.ChunkRunner` by a
:class:`~asteroid_audiosep.pipeline.FilePipeline`), embed queries (:meth:`~Separator.embed`), tag
recordings (:meth:`~Separator.tag`) and separate each file's most likely sounds
(:meth:`~Separator.auto`). The command line, the demo and the benchmarks all go through it.
"""
import logging
import os
import time
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch

from .apply import DEFAULT_CHUNK_SECONDS, DEFAULT_CONTEXT_SECONDS, ChunkRunner
from .conditions import QueryConditions, encode, resolve_conditions
from .devices import resolve_device
from .errors import AudioSepError
from .inputs import _optional_queries, _outdir, check_request, collect_inputs  # noqa: F401  (public here too)
from .models import AudioSep
from .outputs import OutputPlanner, record_outputs
from .pipeline import FileJob, FilePipeline, FileResult, SeparationReport
from .precision import precision_name, resolve_precision
from .queries import Query, QueryLike, as_queries
from .scoring import check_scoring, finish_scoring, make_judge
from .stream import TensorSignal

__all__ = ["Separator", "load_model", "collect_inputs", "autocast_dtype"]

log = logging.getLogger("asteroid_audiosep")

PathLike = Union[str, os.PathLike]
ModelLike = Union[str, PathLike, AudioSep]
Queries = Union[QueryLike, Sequence[QueryLike]]

def autocast_dtype(precision: Union[str, bool, None], device: torch.device,
                   half: Union[bool, str, None] = None) -> Optional[torch.dtype]:
    """The network's autocast dtype for a ``precision`` name (None: float32), the legacy ``half``
    values accepted as aliases: :func:`~asteroid_audiosep.precision.resolve_precision`."""
    return resolve_precision(precision, device, half=half)


def _half_dtype(half: Union[bool, str, None], device: torch.device,
                precision: Union[str, bool, None] = "auto") -> Optional[torch.dtype]:
    """The former name of :func:`autocast_dtype` (``half`` first)."""
    return resolve_precision(precision, device, half=half)


def load_model(model: ModelLike, device=None, query_embeddings: Optional[PathLike] = None) -> AudioSep:
    """An :class:`AudioSep` in eval mode on ``device`` (see :func:`resolve_device`).

    Args:
        model: a model package, a released checkpoint, a released model name
            (``"audiosep-base"``) or URL (see :func:`asteroid_audiosep.pretrained.package_path`),
            or a model.
        device: ``"cpu"``, ``"cuda"``... (default: CUDA when available).
        query_embeddings: a precomputed embedding table (see
            :class:`~asteroid_audiosep.encoders.PrecomputedQueryEncoder`) used as the query
            encoder instead of the package's own (offline use).
    """
    if not isinstance(model, AudioSep):
        from . import pretrained

        try:
            model = pretrained.load_model(model)
        except AudioSepError:
            raise
        except Exception as err:  # torch.load / state-dict errors of a broken package
            raise AudioSepError(f"cannot load the model {model}: {err}") from err
    model = model.eval().to(resolve_device(device))
    if query_embeddings is not None:
        from .encoders import PrecomputedQueryEncoder

        model.set_query_encoder(PrecomputedQueryEncoder(path=query_embeddings), update_spec=False)
    return model


BACKENDS = ("auto", "torch", "onnxruntime")


def _backend(backend: str, model) -> str:
    """``"torch"`` or ``"onnxruntime"`` for a requested backend and model (auto: by the file)."""
    from .onnx_runtime import is_onnx_file  # no ONNX import: the module imports onnxruntime on use

    if backend not in BACKENDS:
        raise AudioSepError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "onnxruntime" if is_onnx_file(model) else "torch"
    if backend == "torch" and is_onnx_file(model):
        raise AudioSepError(f"{model} is an ONNX graph: separate it with --backend onnxruntime")
    return backend


class Separator:
    """A model loaded once, with its inference settings: the one door to separation.

    Args:
        model: a released model name (``"audiosep-base"``), a released checkpoint, a model
            package path, or an :class:`AudioSep` (put in eval mode on ``device``). Loaded once,
            here.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... (default: CUDA when available).
        precision: the network's precision: ``"auto"`` (bf16 on GPUs that support it and on
            CPUs that compute bf16 natively, else fp32), ``"fp32"``, ``"bf16"`` or ``"fp16"``
            (see :mod:`~asteroid_audiosep.precision`).
        chunk_seconds: longest chunk; longer inputs are cut into equal grid-aligned chunks.
        context_seconds: context on each side of a chunk (>= 0.64 s keeps chunked output within
            60 dB of whole-clip output).
        whole_seconds: inputs up to this long run in one forward (default: up to one chunk plus
            its context); raise it where memory allows.
        batch_size: most (query, chunk, channel) items per network call (default: one chunk's
            items); larger values batch equal-length chunks and short files (GPU).
        query_embeddings: an embedding table file looked up by query text instead of the
            model's own text encoder (offline use).
        half: legacy alias of ``precision`` (False, True, ``"fp16"``, ``"bf16"``).
        progress: show progress bars (files, or the chunks of a lone file).
        backend: ``"torch"``, ``"onnxruntime"`` (``model`` is a graph written by
            :meth:`export_onnx`, run by ONNX Runtime in float32; its queries are looked up in
            ``OUT.queries.npz``) or ``"auto"`` (onnxruntime for a ``.onnx`` file), see
            :mod:`~asteroid_audiosep.onnx_runtime`.
        score: score every output with CLAPScore and CLAPScore-i (:mod:`~asteroid_audiosep.scoring`):
            ``OUTDIR/scores.csv``, and ``min_score`` of :meth:`separate_files` leaves out outputs
            that did not find their sound.
        score_encoder: the encoder that scores (see
            :func:`~asteroid_audiosep.metrics.clap_score.resolve_score_encoder`); default: the
            model's own, which must have an audio tower (CLAP).

    Attributes:
        model: the loaded :class:`AudioSep` (eval mode, on ``device``).
        device: where it runs.
    """

    def __init__(
        self,
        model: ModelLike = "audiosep-base",
        device: Optional[Union[str, torch.device]] = None,
        precision: Union[str, bool, None] = "auto",
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        context_seconds: float = DEFAULT_CONTEXT_SECONDS,
        whole_seconds: Optional[float] = None,
        batch_size: Optional[int] = None,
        query_embeddings: Optional[PathLike] = None,
        *,
        half: Union[bool, str, None] = None,
        progress: bool = True,
        backend: str = "auto",
        score: bool = False,
        score_encoder=None,
    ):
        self.backend = _backend(backend, model)
        if self.backend == "onnxruntime":
            from .onnx_runtime import load_onnx_network

            self.model = load_onnx_network(model, device, query_embeddings, precision, half)
            precision, half = "fp32", None
        else:
            self.model = load_model(model, device, query_embeddings)
        self.device = self.model.window.device
        self.precision = precision_name(precision, half)
        self.autocast_dtype = autocast_dtype(precision, self.device, half)
        self.chunk_seconds = chunk_seconds
        self.context_seconds = context_seconds
        self.whole_seconds = whole_seconds
        self.batch_size = batch_size
        self.progress = progress
        self.runner(torch.zeros(1, self.model.condition_dim))  # settings checked now, not per call
        self._tagger = None
        self.scorer = None
        if score:  # fails here, before any work, when nothing can score
            from .metrics.clap_score import ClapScorer

            self.scorer = ClapScorer(score_encoder, model=self.model)

    # ------------------------------------------------------------------ queries
    def conditions(self, queries: Queries, conditions: Optional[torch.Tensor] = None) -> QueryConditions:
        """The queries' labels and conditions (see :func:`~asteroid_audiosep.conditions.resolve_conditions`)."""
        return resolve_conditions(self.model, queries, conditions)

    def embed(self, queries: Queries) -> torch.Tensor:
        """``(len(queries), condition_dim)`` conditions of queries, one row per query given.

        Raises:
            AudioSepError: a span query (its example is a part of the input: separate with it
                instead), or a query the encoder cannot embed.
        """
        items = as_queries(queries)
        spans = [q.label for q in items if q.needs_input]
        if spans:
            raise AudioSepError(f"query {spans[0]!r} takes its example from the input being separated: "
                                "pass it to separate_waveform / separate_files")
        return encode(self.model.query_encoder, items, self.device, self.model.condition_dim)

    def runner(self, conditions: torch.Tensor, chunk_seconds: Optional[float] = None) -> ChunkRunner:
        """The chunked runner of the network for these conditions and this separator's settings
        (``chunk_seconds``, when given, instead of the separator's)."""
        runner = ChunkRunner
        if self.backend == "onnxruntime":
            from .onnx_runtime import OnnxChunkRunner as runner
        return runner(self.model, conditions, self.chunk_seconds if chunk_seconds is None else chunk_seconds,
                      self.context_seconds, self.batch_size, self.autocast_dtype, self.whole_seconds)

    def export_onnx(self, path: PathLike, queries: Optional[Queries] = None, **options):
        """Write the model as an ONNX graph (STFT and ISTFT inside) and the embeddings of ``queries``
        beside it (``OUT.queries.npz``): see :func:`~asteroid_audiosep.onnx_export.export_separator`
        for ``options`` (``opset``, ``dynamic_length``, ``seconds``, ``exporter``).

        Returns:
            An :class:`~asteroid_audiosep.onnx_export.ExportResult`.
        """
        from .onnx_export import export_separator

        return export_separator(self, path, queries, **options)

    def stream(self, queries: Queries, rate: int, channels: int, block_seconds: float = 1.0, *,
               conditions: Optional[torch.Tensor] = None):
        """A :class:`~asteroid_audiosep.realtime.SeparationStream` (its Args: the same): audio in as it
        arrives (``process(block)``, ``flush()``), separated audio out with a stated delay (``latency``);
        its outputs concatenated equal ``separate_waveform(..., block_seconds=block_seconds)``."""
        from .realtime import SeparationStream

        return SeparationStream(self, queries, rate, channels, block_seconds, conditions=conditions)

    # ------------------------------------------------------------------ waveforms
    def separate_waveform(self, wav: torch.Tensor, sample_rate: int, queries: Queries, *,
                          conditions: Optional[torch.Tensor] = None,
                          block_seconds: Optional[float] = None) -> torch.Tensor:
        """Separate every query from an in-memory waveform (chunked, like files).

        Args:
            wav: (channels, time) or (time,) audio at ``sample_rate``.
            sample_rate: its rate (any; it is resampled to the model's and back).
            queries: strings (text) or :class:`~asteroid_audiosep.Query` objects (a span query
                takes its example from ``wav`` itself); only their number counts when
                ``conditions`` are given.
            conditions: (queries, condition_dim) conditions computed elsewhere.
            block_seconds: cut chunks as :meth:`stream` with this ``block_seconds`` does (from
                the start, the last one shorter), so that the result equals the stream's output;
                None: equal chunks of ``chunk_seconds``.

        Returns:
            (queries, channels, time) at ``sample_rate``; ``wav - result[q]`` is the residual.
        """
        signal = TensorSignal(wav, sample_rate, self.model.sample_rate)
        resolved = self.conditions(queries, conditions)
        own = resolved.for_input(signal)
        runner = self.runner(resolved.conditions if own is None else own, block_seconds)
        if signal.frames == 0:
            raise AudioSepError("the waveform is empty (0 samples)")
        plan = runner.plan(signal, fixed=block_seconds is not None)
        blocks = [block.targets for block in runner.run(signal, plan)]
        return torch.cat(blocks, dim=-1) if len(blocks) > 1 else blocks[0]

    # ------------------------------------------------------------------ files
    def separate_files(
        self,
        inputs: Union[PathLike, Sequence[PathLike]],
        queries: Optional[Queries],
        outdir: Optional[PathLike] = "separated",
        *,
        mode: str = "target",
        overwrite: bool = False,
        format: str = "same",
        subtype: Optional[str] = None,
        conditions: Optional[torch.Tensor] = None,
        auto: Optional[int] = None,
        min_score: Optional[float] = None,
        labels: Optional[Union[PathLike, Sequence[str]]] = None,
        query_variants=None,
    ) -> SeparationReport:
        """Separate the sounds that queries describe from audio files and folders.

        Every file is streamed chunk by chunk (memory does not grow with its length), resampled
        to the model's rate and back, each channel separated (batched); the outputs have the
        input's length, rate and channels, and by default its container and sample format; they
        are written atomically, reading and writing in threads beside the network. A file that
        fails is reported and skipped; the others are still processed.

        Args:
            inputs: audio files and/or folders (searched recursively for files soundfile reads).
            queries: strings (text) or :class:`~asteroid_audiosep.Query` objects (audio
                examples, spans of each input, images, videos, combinations); all run in one
                pass over each file; outputs are named after their labels.
            outdir: output folder (folder inputs keep their sub-folder layout); None writes
                next to each input.
            mode: ``"target"`` (the described sound), ``"remove"`` (the residual: the mixture
                minus the described sound) or ``"both"``.
            overwrite: rewrite existing outputs (an input file is never overwritten).
            format: ``"same"`` (WAV stays WAV, FLAC stays FLAC, other containers become FLAC),
                ``"wav"`` or ``"flac"``; RF64 is used where a WAV would pass 4 GiB.
            subtype: the sample format (``"PCM_16"``, ``"PCM_24"``, ``"FLOAT"``); default: the
                input's when it is 16/24-bit PCM, else float (24-bit in FLAC). Integer outputs
                that would clip are scaled down with a warning.
            conditions: (queries, condition_dim) conditions computed elsewhere.
            auto: also separate the ``auto`` most likely sounds of each file (see :meth:`auto`);
                ``queries`` may then be empty.
            min_score: with ``score``: targets whose CLAPScore-i is below it are not written (reported
                "not found" in ``scores.csv``); else, with ``auto``: leave out labels whose cosine
                score is below it.
            labels: with ``auto``, the label vocabulary (a list, or a file with one label per
                line; default: AudioSet's 527 names).
            query_variants: with ``score``: N (each text query phrased N ways) or phrasings
                (``{name: [...]}`` or a YAML file); the best-scoring phrasing's output is kept
                (:mod:`~asteroid_audiosep.query_variants`).

        Returns:
            A :class:`~asteroid_audiosep.pipeline.SeparationReport`; ``report.ok`` is False
            when a file failed.

        Raises:
            AudioSepError: for errors that concern every file (bad query, mode, no input).
        """
        check_scoring(self.scorer, outdir, min_score, auto)
        if auto is not None:
            return self.auto(inputs, auto, queries, outdir, min_score=min_score, labels=labels, mode=mode,
                             overwrite=overwrite, format=format, subtype=subtype)
        start_time = time.perf_counter()
        not_audio: List[Path] = []
        variants = None
        if query_variants is not None:
            from .query_variants import VariantPlan

            variants = VariantPlan(self.scorer, queries, query_variants, mode)
        items, files = check_request(inputs, variants.names if variants else queries, mode, outdir, None, format,
                                     subtype, not_audio)
        report = self._separate(files, variants.queries if variants else items, _outdir(outdir), mode, overwrite,
                                format, subtype, conditions, start_time, min_score, variants=variants)
        report.not_audio = not_audio
        finish_scoring(self.scorer, outdir, report.files)
        return report

    def _separate(self, files, items: List[Query], outdir: Optional[Path], mode: str, overwrite: bool,
                  format: str, subtype: Optional[str], given: Optional[torch.Tensor], start_time: float,
                  min_score: Optional[float] = None, texts: Optional[dict] = None, variants=None
                  ) -> SeparationReport:
        resolved = self.conditions(items, given)
        judge = make_judge(self.scorer, resolved.queries, min_score, texts, variants)
        runner = self.runner(resolved.conditions)
        existing = [p for p, _, _ in files if p.exists()]
        planner = OutputPlanner([q.label for q in variants.names] if variants else resolved.labels, mode, outdir,
                                overwrite, existing, format, subtype)
        per_input = resolved.for_input if resolved.spans else None
        results: List[FileResult] = []
        jobs: List[FileJob] = []
        for path, rel, error in files:
            result = FileResult(input=path)
            results.append(result)
            try:
                if error:
                    raise AudioSepError(error)
                outputs = planner.plan(path, rel)
                outputs = variants.expand(outputs) if variants else outputs
            except AudioSepError as err:
                result.fail(err)
                continue
            if outputs:
                jobs.append(FileJob(result, outputs, conditions=per_input, out_format=planner.formats[path],
                                    keep=judge.bind(result) if judge else None))
            else:
                result.status = "skipped"
                log.info("skipped %s: its outputs exist (use --overwrite to redo them)", path)
        try:
            FilePipeline(runner, progress=self.progress).run(jobs)
        finally:
            record_outputs(p for r in results for p in r.outputs)
        return SeparationReport(results, time.perf_counter() - start_time)

    # ------------------------------------------------------------------ tagging
    @property
    def tagger(self):
        """The encoder that tags recordings: the model's own query encoder (with an audio tower),
        also when an embedding table stands in for it to embed the queries."""
        if self._tagger is None:
            encoder = self.model.query_encoder
            from .encoders import PrecomputedQueryEncoder

            if isinstance(encoder, PrecomputedQueryEncoder) and self.model.query_encoder_spec:
                from .encoders import build_query_encoder

                encoder = build_query_encoder(self.model.query_encoder_spec).eval().to(self.device)
            self._tagger = encoder
        return self._tagger

    def tag(self, files: Sequence[PathLike], labels: Optional[Union[PathLike, Sequence[str]]] = None,
            top: int = 5, window_seconds: float = 10.0, cache_dir: Optional[PathLike] = None):
        """The ``top`` labels of each window of every file (see :func:`~asteroid_audiosep.tagging.tag_files`).

        Returns:
            ``(tags, errors)``: a :class:`~asteroid_audiosep.tagging.WindowTags` per window of
            every readable file, and ``{file: message}`` for those that failed.
        """
        from .tagging import load_labels, tag_files

        if labels is not None and isinstance(labels, (str, os.PathLike)):
            labels = load_labels(labels)
        return tag_files(self.tagger, files, labels, top, window_seconds, cache_dir)

    def auto(
        self,
        inputs: Union[PathLike, Sequence[PathLike]],
        k: int,
        queries: Optional[Queries] = None,
        outdir: Optional[PathLike] = "separated",
        *,
        min_score: Optional[float] = None,
        labels: Optional[Union[PathLike, Sequence[str]]] = None,
        cache_dir: Optional[PathLike] = None,
        **output_options,
    ) -> SeparationReport:
        """Separate the ``k`` most likely sounds of each file (plus ``queries``), file by file.

        Each file is tagged window by window, streamed (never loaded whole), by
        :func:`~asteroid_audiosep.tagging.auto_queries`; its labels become text queries named
        after them, separated with ``queries`` in one streamed pass. ``output_options`` are
        those of :meth:`separate_files` (``mode``, ``overwrite``, ``format``, ``subtype``).
        """
        from .tagging import auto_queries, load_labels

        check_scoring(self.scorer, outdir, min_score, k)
        start_time = time.perf_counter()
        mode = output_options.get("mode", "target")
        not_audio: List[Path] = []
        extra, files = check_request(inputs, queries, mode, outdir, k, not_audio=not_audio)
        if labels is None or isinstance(labels, (str, os.PathLike)):
            labels = load_labels(labels)
        table = self.tagger is not self.model.query_encoder  # labels embedded by the tagger, not the table
        outdir = _outdir(outdir)
        results: List[FileResult] = []
        for path, rel, error in files:
            try:
                if error:
                    raise AudioSepError(error)
                if self.scorer is not None:  # ranked with the score of scores.csv; min_score: CLAPScore-i
                    from .scoring import rank_labels

                    found = rank_labels(self.scorer, path, list(labels), k, cache_dir)
                else:
                    found = auto_queries(self.tagger, path, None, k, min_score, labels=list(labels),
                                         cache_dir=cache_dir)
                texts = {q.label: q.text_value for q in found}
                if not found and not extra:
                    raise AudioSepError(f"no label scores {min_score} or more: lower --min-score")
                log.info("%s: %s", path, ", ".join(q.label for q in found))
                if table and found:
                    rows = self.tagger.encode_text([q.text_value for q in found]).float().cpu()
                    found = [Query.embedding(row, name=q.label) for q, row in zip(found, rows)]
            except AudioSepError as err:
                result = FileResult(input=path)
                result.fail(err)
                results.append(result)
                continue
            report = self._separate([(path, Path("."), None)], extra + found,
                                    outdir / rel if outdir is not None else None, mode,
                                    output_options.get("overwrite", False), output_options.get("format", "same"),
                                    output_options.get("subtype"), None, time.perf_counter(),
                                    min_score if self.scorer is not None else None, texts)
            results.extend(report.files)
        finish_scoring(self.scorer, outdir, results)
        return SeparationReport(results, time.perf_counter() - start_time, not_audio)
