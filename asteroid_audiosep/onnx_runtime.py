"""Running an exported AudioSep graph with ONNX Runtime, through the package's chunked pipeline.

:class:`OnnxNetwork` opens a graph written by :mod:`~asteroid_audiosep.onnx_export` in an ONNX
Runtime session and reads the model's settings from its metadata; it stands in for the PyTorch
model wherever :class:`~asteroid_audiosep.apply.ChunkRunner` needs one (rate, STFT hop, pooling
grid, channels), so files go through the same chunk planner, reader and writer threads and
outputs. Its query encoder is the table exported beside the graph (``OUT.queries.npz``): queries
are looked up by their text. :class:`OnnxChunkRunner` runs the network part with the session.

Without the package, the graph is used as it is::

    session = onnxruntime.InferenceSession("audiosep.onnx")
    table = numpy.load("audiosep.queries.npz")
    condition = table["vectors"][list(table["texts"]).index("dog barking")][None]
    separated = session.run(None, {"mixture": mixture, "condition": condition})[0]
"""
import json
import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from .apply import ChunkRunner
from .encoders import PrecomputedQueryEncoder
from .errors import AudioSepError
from .models import AudioSep
from .onnx_export import METADATA_KEY, queries_path

__all__ = ["BakedQueries", "OnnxNetwork", "OnnxChunkRunner", "is_onnx_file", "load_queries_table",
           "load_onnx_network"]

PathLike = Union[str, os.PathLike]


def is_onnx_file(model) -> bool:
    """Whether ``model`` names an ONNX graph (by its ``.onnx`` suffix)."""
    return isinstance(model, (str, os.PathLike)) and str(model).lower().endswith(".onnx")


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as err:
        raise AudioSepError("the onnxruntime backend needs ONNX Runtime: pip install "
                            "'asteroid-audiosep[onnx]'") from err
    return onnxruntime


class BakedQueries(PrecomputedQueryEncoder):
    """The query table exported with a graph: text -> embedding, an unknown text refused with
    the list of the texts it holds."""

    def _embed_text(self, texts):
        missing = [t for t in texts if t not in self.index]
        if missing:
            baked = ", ".join(repr(t) for t in sorted(self.index, key=self.index.get))
            raise AudioSepError(f"query {missing[0]!r} was not baked into {self.path or 'the query table'}: "
                                f"it holds {baked}; export again with -q {missing[0]!r} to add it")
        return super()._embed_text(texts)


def load_queries_table(path: PathLike, condition_dim: Optional[int] = None) -> BakedQueries:
    """Read ``OUT.queries.npz`` (arrays ``texts`` and ``vectors``; no pickled objects).

    Raises:
        AudioSepError: missing or malformed table, or vectors of the wrong size.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioSepError(f"query table not found: {path} (export with -q TEXT to write it)")
    try:
        with np.load(path, allow_pickle=False) as data:
            texts, vectors = [str(t) for t in data["texts"]], np.asarray(data["vectors"], dtype=np.float32)
    except (OSError, ValueError, KeyError) as err:
        raise AudioSepError(f"{path} is not a query table (arrays texts, vectors): {err}") from err
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise AudioSepError(f"{path}: {len(texts)} texts but vectors of shape {vectors.shape}")
    table = BakedQueries(table=dict(zip(texts, torch.from_numpy(vectors))), embed_dim=condition_dim)
    table.path = str(path)
    return table


class OnnxNetwork:
    """An exported graph in an ONNX Runtime session, with the settings of the model it came from.

    Args:
        path: the ``.onnx`` file.
        device: ``"cpu"`` (default) or ``"cuda"`` (ONNX Runtime's CUDA provider, when installed).
        query_embeddings: a query table to use instead of ``OUT.queries.npz`` (an
            ``OUT.queries.npz`` of another export, or a package embedding table).
        threads: intra-op threads (default: torch's, as set by ``--threads``).

    Attributes:
        sample_rate, n_fft, hop_length, in_channels, condition_dim, time_pool_factor: the
            exported model's (from the graph's metadata).
        samples: the graph's fixed input length, or None when it takes any length.
        session: the ``onnxruntime.InferenceSession``.
    """

    query_encoder_spec = None  # the table is not a buildable encoder: nothing to rebuild

    def __init__(self, path: PathLike, device=None, query_embeddings: Optional[PathLike] = None,
                 threads: Optional[int] = None):
        ort = _import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise AudioSepError(f"ONNX model not found: {self.path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        device = torch.device(device or "cpu")
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise AudioSepError("this ONNX Runtime has no CUDA provider: use --device cpu, or install "
                                    "onnxruntime-gpu")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as err:  # ONNX Runtime raises its own exception types for bad files
            raise AudioSepError(f"ONNX Runtime cannot open {self.path}: {err}") from err
        meta = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if meta is None:
            raise AudioSepError(f"{self.path} was not exported by asteroid-audiosep export (no "
                                f"{METADATA_KEY!r} metadata): its rate and STFT are unknown")
        meta = json.loads(meta)
        self.metadata = meta
        self.sample_rate = int(meta["sample_rate"])
        self.n_fft, self.hop_length = int(meta["n_fft"]), int(meta["hop_length"])
        self.in_channels, self.condition_dim = int(meta["in_channels"]), int(meta["condition_dim"])
        self.time_pool_factor = int(meta["time_pool_factor"])
        self.samples = meta.get("samples")
        self.window = torch.hann_window(self.n_fft)  # where the runner's tensors live: the CPU
        self._table = query_embeddings
        self._query_encoder = None

    check_channels = AudioSep.check_channels
    fold_channels = AudioSep.fold_channels
    pad_short = AudioSep.pad_short

    def eval(self) -> "OnnxNetwork":
        """Nothing to switch: the graph is the eval-mode network."""
        return self

    @property
    def query_encoder(self) -> BakedQueries:
        """The query table: ``query_embeddings`` when given, else ``OUT.queries.npz``."""
        if self._query_encoder is None:
            path = self._table or queries_path(self.path)
            if self._table is None:
                self._query_encoder = load_queries_table(path, self.condition_dim)
            else:
                self._query_encoder = PrecomputedQueryEncoder(path=path, embed_dim=self.condition_dim)
        return self._query_encoder

    def __call__(self, mixture: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """``separated`` for ``mixture`` ``(batch, in_channels, samples)`` and ``condition``."""
        if self.samples is not None and mixture.shape[-1] != self.samples:
            raise AudioSepError(f"{self.path} takes exactly {self.samples} samples (exported without "
                                f"--dynamic-length), not {mixture.shape[-1]}: export with --dynamic-length")
        feeds = {"mixture": mixture.detach().to("cpu", torch.float32).contiguous().numpy(),
                 "condition": condition.detach().to("cpu", torch.float32).contiguous().numpy()}
        return torch.from_numpy(self.session.run(["separated"], feeds)[0])


class OnnxChunkRunner(ChunkRunner):
    """:class:`~asteroid_audiosep.apply.ChunkRunner` with an :class:`OnnxNetwork` as the network.

    Raises:
        AudioSepError: the graph has a fixed length (chunks vary in length: it needs
            ``--dynamic-length``), or ``autocast_dtype`` is set (the graph is float32).
    """

    def __init__(self, model: OnnxNetwork, conditions: torch.Tensor, *args, **kwargs):
        super().__init__(model, conditions, *args, **kwargs)
        if model.samples is not None:
            raise AudioSepError(f"{model.path} takes exactly {model.samples} samples; chunked separation "
                                "needs a graph exported with --dynamic-length")
        if self.autocast_dtype is not None:
            raise AudioSepError("the onnxruntime backend runs the float32 graph: use --precision fp32")

    def network(self, wavs: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """As :func:`~asteroid_audiosep.apply.separate_segments`: (segments, queries, channels, time)."""
        segments, channels, length = wavs.shape
        x = self.model.pad_short(self.model.fold_channels(wavs.float()))
        items, queries = x.shape[0], conditions.shape[0]
        total = queries * items
        step = total if not self.batch_size else max(1, int(self.batch_size))
        outs = []
        for lo in range(0, total, step):
            idx = torch.arange(lo, min(total, lo + step))
            outs.append(self.model(x[idx % items], conditions[idx // items]))
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        out = out[..., :length].reshape(queries, segments, channels, length)
        return out.transpose(0, 1).contiguous()


def load_onnx_network(path: PathLike, device=None, query_embeddings: Optional[PathLike] = None,
                      precision: Union[str, bool, None] = "auto", half: Union[bool, str, None] = None
                      ) -> OnnxNetwork:
    """An :class:`OnnxNetwork` for :class:`~asteroid_audiosep.Separator` (``backend="onnxruntime"``).

    Raises:
        AudioSepError: a precision other than float32 asked for, or a file that is not a graph.
    """
    if half or (precision not in (None, False, "auto", "fp32", "float32")):
        raise AudioSepError(f"the onnxruntime backend runs the float32 graph, not {precision if not half else half}: "
                            "use --precision fp32 (or auto)")
    if not is_onnx_file(path):
        raise AudioSepError(f"--backend onnxruntime takes an exported graph (OUT.onnx), not {path}: "
                            "write one with asteroid-audiosep export")
    return OnnxNetwork(path, device, query_embeddings)

