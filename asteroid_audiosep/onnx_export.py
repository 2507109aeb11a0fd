"""Exporting an AudioSep model to ONNX: waveform in, waveform out, STFT and ISTFT in the graph.

ONNX has an STFT operator (opset 17) but no inverse, so the graph computes both transforms as
convolutions with fixed DFT kernels, as the released AudioSep code itself does: the STFT is a
strided ``Conv`` whose kernels are the windowed cosines and sines of the ``n_fft // 2 + 1``
bins (reflect padding by ``n_fft // 2`` first, as ``torch.stft(center=True)``), the ISTFT a
strided ``ConvTranspose`` with the windowed inverse-DFT kernels (the imaginary parts of the DC
and Nyquist bins ignored, as ``irfft`` does), divided by the overlap-added squared window and
cropped to the input's length. The kernels are computed in float64 and stored in float32; the
transforms then agree with ``torch.stft``/``torch.istft`` to float32 rounding (about 2e-6 of
the spectrum's largest magnitude), and the whole graph with the PyTorch forward to about 1e-6
on the released architecture (tests/test_onnx_export.py checks <= 1e-4).

The graph (:class:`SeparationGraph`) has inputs ``mixture`` ``(batch, in_channels, samples)``
float32 at the model's rate and ``condition`` ``(batch, condition_dim)``, and the output
``separated`` ``(batch, in_channels, samples)``. It is the network's plain path
(:meth:`~asteroid_audiosep.masknn.ResUNet30.reference_forward`, eval-mode BatchNorm), not the
fused CPU path. The query encoders (CLAP, CLIP text towers) are not in it: the embeddings of the
queries named at export are written beside it (``OUT.queries.npz``, arrays ``texts`` and
``vectors``). The model's settings are in the graph's metadata (key :data:`METADATA_KEY`).
"""
import contextlib
import json
import logging
import math
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import AudioSepError
from .fileio import atomic_write
from .version import __version__

__all__ = ["METADATA_KEY", "DEFAULT_OPSET", "SeparationGraph", "ExportResult", "export_onnx", "export_separator",
           "bake_queries",
           "queries_path", "dft_kernels"]

log = logging.getLogger("asteroid_audiosep")

#: The graph's metadata key whose value (JSON) holds the model's rate, STFT and grid settings.
METADATA_KEY = "asteroid_audiosep"
#: The opset written by default (the exporter's own; 18 is the lowest torch's exporter writes).
DEFAULT_OPSET = 18
#: Exporters: ``"dynamo"`` (``torch.export`` based, the default) and ``"legacy"`` (TorchScript).
EXPORTERS = ("dynamo", "legacy")


def dft_kernels(n_fft: int, window: torch.Tensor):
    """The STFT and ISTFT as convolution kernels, computed in float64, returned in float32.

    Returns:
        ``(analysis, synthesis)``, each ``(2 * bins, 1, n_fft)``: ``analysis`` rows give the real
        then the imaginary parts of the bins of a frame (``Conv``); ``synthesis`` rows turn them
        back into a windowed frame (``ConvTranspose``), as ``irfft`` (DC and Nyquist imaginary
        parts ignored) times the window.
    """
    bins = n_fft // 2 + 1
    w = window.detach().to("cpu", torch.float64)
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(bins, dtype=torch.float64)
    angle = 2 * math.pi * ((k[:, None] * n[None, :]) % n_fft) / n_fft  # exact integer product first
    cos, sin = torch.cos(angle), torch.sin(angle)
    analysis = torch.cat([cos * w, -sin * w])
    weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0
    synth_imag = -weight * sin / n_fft * w
    synth_imag[0] = 0.0
    if n_fft % 2 == 0:
        synth_imag[-1] = 0.0
    synthesis = torch.cat([weight * cos / n_fft * w, synth_imag])
    return analysis.float()[:, None], synthesis.float()[:, None]


class SeparationGraph(nn.Module):
    """What the ONNX graph computes: ``(mixture, condition) -> separated``, all in real tensors.

    Args:
        model: an :class:`~asteroid_audiosep.models.AudioSep` (any subclass whose network exports);
            its separator is shared, not copied.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.n_fft, self.hop = int(model.n_fft), int(model.hop_length)
        self.bins = self.n_fft // 2 + 1
        analysis, synthesis = dft_kernels(self.n_fft, model.window)
        self.register_buffer("analysis", analysis, persistent=False)
        self.register_buffer("synthesis", synthesis, persistent=False)
        self.register_buffer("window_sq", (model.window.detach().float() ** 2)[None, None], persistent=False)

    def forward(self, mixture: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        batch, channels, length = mixture.shape
        pad = self.n_fft // 2
        x = F.pad(mixture.reshape(batch * channels, 1, length), (pad, pad), mode="reflect")
        spec = F.conv1d(x, self.analysis, stride=self.hop)  # (items, 2 * bins, frames)
        frames = spec.shape[-1]
        parts = spec.reshape(batch, channels, 2, self.bins, frames).transpose(-1, -2)
        real, imag = self.model.mask_spectrogram(parts[:, :, 0], parts[:, :, 1], condition)
        est = torch.stack([real, imag], dim=2).transpose(-1, -2).reshape(batch * channels, 2 * self.bins, frames)
        wav = F.conv_transpose1d(est, self.synthesis, stride=self.hop)
        envelope = F.conv_transpose1d(torch.ones_like(spec[:1, :1]), self.window_sq, stride=self.hop)
        wav = wav / envelope
        return wav[..., pad:pad + length].reshape(batch, channels, length)


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote.

    Attributes:
        path: the ONNX model.
        queries: the query table (``OUT.queries.npz``), or None when no query was baked.
        texts: the baked queries.
        seconds: export time (graph capture, optimisation and writing).
        exporter: the exporter used.
        opset: the graph's opset.
    """

    path: Path
    queries: Optional[Path]
    texts: List[str]
    seconds: float
    exporter: str
    opset: int


def queries_path(onnx_path: Union[str, Path]) -> Path:
    """``OUT.onnx`` -> ``OUT.queries.npz``: where a graph's query table lives."""
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.stem + ".queries.npz")


def _metadata(model, samples: Optional[int], opset: int) -> dict:
    return {
        "format": 1,
        "model_name": type(model).__name__,
        "sample_rate": int(model.sample_rate),
        "n_fft": int(model.n_fft),
        "hop_length": int(model.hop_length),
        "in_channels": int(model.in_channels),
        "condition_dim": int(model.condition_dim),
        "time_pool_factor": int(model.time_pool_factor),
        "samples": samples,
        "min_samples": int(model.n_fft) // 2 + 1,
        "opset": int(opset),
        "asteroid_audiosep_version": __version__,
    }


def _capture(graph: SeparationGraph, example, samples: Optional[int], opset: int, exporter: str):
    """The ONNX ModelProto of ``graph`` (batch axis dynamic; samples too when ``samples`` is None)."""
    import onnx

    names = dict(input_names=["mixture", "condition"], output_names=["separated"])
    if exporter == "dynamo":
        from torch.export import Dim

        batch = Dim("batch", min=1)
        length = {} if samples is not None else {2: Dim.AUTO}
        shapes = {"mixture": {0: batch, **length}, "condition": {0: batch}}
        program = torch.onnx.export(graph, example, dynamo=True, opset_version=opset, dynamic_shapes=shapes,
                                    optimize=True, verbose=False, **names)
        proto = program.model_proto
        if samples is None:  # Dim.AUTO names the axis after an internal symbol (s28...): "samples"
            symbol = proto.graph.input[0].type.tensor_type.shape.dim[2].dim_param
            _rename_dim(proto, symbol, "samples")
        return proto
    import io

    axes = {"mixture": {0: "batch"}, "condition": {0: "batch"}, "separated": {0: "batch"}}
    if samples is None:
        axes["mixture"][2] = axes["separated"][2] = "samples"
    buffer = io.BytesIO()
    torch.onnx.export(graph, example, buffer, dynamo=False, opset_version=opset, dynamic_axes=axes,
                      do_constant_folding=True, **names)
    return onnx.load_from_string(buffer.getvalue())


@contextlib.contextmanager
def _quiet_loggers(names=("onnxscript", "onnx_ir", "torch.onnx", "torch.export", "torch._export")):
    """The exporters' INFO logs (one line per folded initializer) kept out of the user's log."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logging.WARNING, logger.level))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _rename_dim(proto, old: str, new: str) -> None:
    """Rename a symbolic dimension everywhere in the graph's declared shapes."""
    if not old:
        return
    pattern = re.compile(r"\b" + re.escape(old) + r"\b")
    graph = proto.graph
    for info in list(graph.input) + list(graph.output) + list(graph.value_info):
        for dim in info.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = pattern.sub(new, dim.dim_param)


def export_onnx(model, path: Union[str, Path], conditions: Optional[torch.Tensor] = None,
                texts: Sequence[str] = (), *, opset: int = DEFAULT_OPSET, dynamic_length: bool = False,
                seconds: float = 10.0, exporter: str = "dynamo") -> ExportResult:
    """Write ``model`` as an ONNX graph at ``path`` and its query table beside it.

    Use :meth:`asteroid_audiosep.Separator.export_onnx` to embed the queries with the model's own
    encoder; this function takes the embeddings.

    Args:
        model: an :class:`~asteroid_audiosep.models.AudioSep` (set to eval mode; exported on the
            CPU, then returned to its device).
        path: the ``.onnx`` file to write (atomically).
        conditions: ``(len(texts), condition_dim)`` embeddings of ``texts``, written to
            ``OUT.queries.npz``; None with no ``texts``.
        texts: the queries the rows stand for (looked up by this text at inference).
        opset: ONNX opset (>= 18 with the dynamo exporter, >= 17 with the legacy one).
        dynamic_length: make the samples axis dynamic (any length from ``n_fft // 2 + 1``);
            otherwise the graph takes exactly ``seconds`` of audio. The batch axis is dynamic.
        seconds: the fixed length (without ``dynamic_length``) and the example's length.
        exporter: ``"dynamo"`` or ``"legacy"`` (see :data:`EXPORTERS`).

    Returns:
        An :class:`ExportResult`.

    Raises:
        AudioSepError: bad arguments, or a model the exporter cannot capture.
    """
    try:
        import onnx
        import onnxscript  # noqa: F401  (the dynamo exporter's, checked here for one clear message)
    except ImportError as err:
        raise AudioSepError(f"ONNX export needs the 'onnx' extra ({err.name} is missing): pip install "
                            "'asteroid-audiosep[onnx]'") from err
    path = Path(path)
    if exporter not in EXPORTERS:
        raise AudioSepError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    if int(opset) < 17:
        raise AudioSepError(f"--opset {opset}: the graph needs opset 17 or later")
    if exporter == "dynamo" and int(opset) < 18:  # its down-conversion fails (no Pad adapter to 17)
        raise AudioSepError(f"--opset {opset}: the dynamo exporter writes opset 18 or later; use "
                            "--exporter legacy for opset 17")
    if path.suffix.lower() != ".onnx":
        raise AudioSepError(f"{path}: name the output OUT.onnx")
    texts = list(texts)
    if (conditions is None) != (not texts) or (conditions is not None and tuple(conditions.shape) != (
            len(texts), model.condition_dim)):
        raise AudioSepError(f"give one ({model.condition_dim},) embedding per query text to bake")
    rate = int(model.sample_rate)
    samples = None if dynamic_length else int(round(seconds * rate))
    example_len = samples or int(round(min(seconds, 2.0) * rate))
    if example_len < model.n_fft // 2 + 1:
        raise AudioSepError(f"--seconds {seconds}: the graph needs at least {model.n_fft // 2 + 1} samples")
    device = model.window.device
    model = model.eval().to("cpu")  # and back to its device below
    graph = SeparationGraph(model).eval()
    noise = torch.Generator().manual_seed(0)
    example = (0.1 * torch.randn(2, model.in_channels, example_len, generator=noise),
               torch.randn(2, model.condition_dim, generator=noise))
    start = time.perf_counter()
    separator, own = model.separator, model.separator.__dict__.get("fused_inference")
    separator.fused_inference = False  # the plain path (the fused one does not export)
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet_loggers():
            warnings.simplefilter("ignore")  # the exporters' notes on tracing, not the user's concern
            proto = _capture(graph, example, samples, int(opset), exporter)
    except AudioSepError:
        raise
    except Exception as err:  # exporter failures: many types, all mean "this model does not export"
        raise AudioSepError(f"the {exporter} exporter cannot capture this {type(model).__name__}: "
                            f"{type(err).__name__}: {str(err)[:500]}") from err
    finally:
        if own is None:
            del separator.fused_inference
        else:
            separator.fused_inference = own
        model.to(device)
    written = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if written != int(opset):
        raise AudioSepError(f"the {exporter} exporter wrote opset {written}, not {opset}: choose --opset {written}")
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(_metadata(model, samples, int(opset)))
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as handle:
        handle.write(proto.SerializeToString())
    table = None
    if texts:
        table = queries_path(path)
        with atomic_write(table, "wb") as handle:
            np.savez(handle, texts=np.array(texts, dtype=str),
                     vectors=conditions.detach().to("cpu", torch.float32).numpy())
    seconds_taken = time.perf_counter() - start
    log.info("exported %s (%s exporter, opset %d) in %.1f s", path, exporter, opset, seconds_taken)
    return ExportResult(path, table, texts, seconds_taken, exporter, int(opset))


def bake_queries(separator, queries) -> tuple:
    """The texts and embeddings to write to ``OUT.queries.npz`` for ``queries``.

    With no queries: a model without a query encoder bakes nothing (its users pass embeddings),
    a model whose encoder is an embedding table bakes all its texts, and a live encoder (CLAP,
    CLIP...) is refused: it is not in the graph, so the queries must be named now.

    Returns:
        ``(texts, conditions)``; ``([], None)`` when nothing is baked.

    Raises:
        AudioSepError: no queries for a live encoder, or a query that depends on the input.
    """
    from .encoders import PrecomputedQueryEncoder
    from .queries import TextQuery, as_queries

    model = separator.model
    if queries is None or (not isinstance(queries, str) and not list(queries)):
        if model.query_encoder_spec is None and model.__dict__.get("_query_encoder") is None:
            return [], None
        encoder = model.query_encoder
        if isinstance(encoder, PrecomputedQueryEncoder):
            texts = sorted(encoder.index, key=encoder.index.get)
            return texts, separator.embed(texts)
        name = getattr(encoder, "name", type(encoder).__name__)
        raise AudioSepError(
            f"this model's query encoder ({name}) is not part of the ONNX graph: name the queries to "
            "bake into OUT.queries.npz, e.g. -q 'dog barking' -q speech (repeatable); only those "
            "queries can be separated with the graph")
    items = as_queries(queries)
    spans = [q.label for q in items if q.needs_input]
    if spans:
        raise AudioSepError(f"query {spans[0]!r} takes its example from each input: it cannot be baked")
    texts = [q.text_value.strip() if isinstance(q, TextQuery) else q.label for q in items]  # the lookup keys
    if len(set(texts)) != len(texts):
        raise AudioSepError(f"queries to bake must have distinct texts or names, got {texts}")
    return texts, separator.embed(items)


def export_separator(separator, path: Union[str, Path], queries=None, **options) -> ExportResult:
    """:func:`export_onnx` for a :class:`~asteroid_audiosep.Separator`'s model, with the queries
    embedded by its encoder (:func:`bake_queries`); ``options``: those of :func:`export_onnx`."""
    if separator.backend != "torch":
        raise AudioSepError("export needs the PyTorch model (a .pth package or released name), "
                            "not an ONNX graph")
    texts, conditions = bake_queries(separator, queries)
    return export_onnx(separator.model, path, conditions, texts, **options)
