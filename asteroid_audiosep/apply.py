"""Chunked, seam-free application of an AudioSep model to signals of any length and rate.

The separator pools time by ``model.time_pool_factor`` (32) frames, so its output at a frame
depends on where that frame sits on the pooling grid. A signal that fits in one segment is run
whole, in one forward, with no context: its output is the whole-signal forward itself. A longer
one is cut into ``n = ceil(length / chunk)`` chunks of (almost) equal length that start and end
on that grid (multiples of ``time_pool_factor * hop_length`` samples, 10240 at 32 kHz) and are
run with context on both sides, which is then dropped: the kept samples equal the whole-clip
output to better than 60 dB SNR. Each chunk is read, resampled to the model rate, separated for
all queries at once (one STFT, one batch; chunks of equal length may share a call, see
``batch_size``), resampled back and handed over, so memory does not grow with the signal.
"""

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

import torch

from .errors import AudioSepError
from .stream import _Signal, rate_ratio, resample_margin, resample_range

__all__ = [
    "DEFAULT_CHUNK_SECONDS",
    "DEFAULT_CONTEXT_SECONDS",
    "Chunk",
    "ChunkPlan",
    "Segment",
    "SeparatedBlock",
    "ChunkRunner",
    "separate_segment",
    "separate_segments",
    "batches",
]

#: Default chunk length (chunks are as long as this, rounded up to the pooling grid, or shorter).
DEFAULT_CHUNK_SECONDS = 10.0
#: Default context on each side of a chunk (rounded up to the pooling grid).
DEFAULT_CONTEXT_SECONDS = 0.64


def _ceil_to(value: int, step: int) -> int:
    return -(-int(value) // int(step)) * int(step)


@dataclass(frozen=True)
class Chunk:
    """One chunk, in samples at the model rate.

    Attributes:
        start: first sample of the chunk's own span.
        end: end of its span (exclusive).
        seg_start: first sample given to the model (span plus context, clipped to the signal).
        seg_end: end of the samples given to the model.
        keep_start: first output sample kept (span plus the margin that resampling back needs).
        keep_end: end of the kept output samples.
    """

    start: int
    end: int
    seg_start: int
    seg_end: int
    keep_start: int
    keep_end: int


@dataclass(frozen=True)
class ChunkPlan:
    """Grid-aligned chunks covering a signal of ``length`` samples (model rate).

    Build it with :meth:`build`. A signal no longer than ``whole`` samples is one chunk run
    whole (no context). A longer one has ``n = ceil(length / chunk)`` chunks whose spans differ
    by at most one grid step, so that none is a sliver; each segment given to the model is the
    span with ``context`` samples before it and ``context - trim`` after it, clipped to the
    signal. ``trim`` (one STFT hop) makes an inner segment's frame count a multiple of the
    pooling factor, so the network pads no frame of it.

    Attributes:
        length: signal length.
        bounds: chunk boundaries, ``0 = bounds[0] < ... < bounds[-1] = length``.
        context: context before each chunk (a multiple of ``unit``; 0 for a whole-signal plan).
        margin: output kept beyond each span, for resampling back.
        unit: the pooling unit every segment starts on (``time_pool_factor * hop_length``).
        trim: how much shorter than ``context`` the context after a chunk is.
    """

    length: int
    bounds: Tuple[int, ...]
    context: int = 0
    margin: int = 0
    unit: int = 1
    trim: int = 0

    @classmethod
    def build(
        cls,
        length: int,
        chunk: int,
        context: int,
        margin: int = 0,
        unit: int = 1,
        grid: Optional[int] = None,
        trim: int = 0,
        whole: Optional[int] = None,
        fixed: bool = False,
    ) -> "ChunkPlan":
        """Plan ``length`` samples in chunks of at most ``chunk`` (rounded up to ``grid``, a
        multiple of ``unit``); signals up to ``whole`` samples (default: ``chunk`` rounded up to
        the grid plus twice the context) are one chunk. Other arguments: see the attributes;
        ``margin`` is at most ``context - trim``. ``fixed``: chunks of ``chunk`` rounded up to
        the grid from the start, the last one shorter (no ``whole`` rule), as a stream cuts a
        signal whose length it does not know yet: the plan of a prefix is a prefix of the plan
        (see :mod:`~asteroid_audiosep.realtime`)."""
        grid = int(grid or unit)
        if fixed:
            bounds = tuple(range(0, int(length), _ceil_to(chunk, grid))) + (int(length),)
            return cls(int(length), bounds, int(context), int(margin), int(unit), int(trim))
        if whole is None:
            whole = _ceil_to(chunk, grid) + 2 * context
        if length <= whole:
            return cls(int(length), (0, int(length)), 0, 0, int(unit), 0)
        units = -(-length // grid)
        n = min(units, max(1, -(-length // int(chunk))))
        base, extra = divmod(units, n)
        bounds = tuple(min(length, (k * base + min(k, extra)) * grid) for k in range(n + 1))
        return cls(int(length), bounds, int(context), int(margin), int(unit), int(trim))

    @property
    def chunk(self) -> int:
        """The longest span."""
        return max(b - a for a, b in zip(self.bounds, self.bounds[1:]))

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def __iter__(self) -> Iterator[Chunk]:
        for start, end in zip(self.bounds, self.bounds[1:]):
            yield Chunk(
                start=start,
                end=end,
                seg_start=max(0, start - self.context),
                seg_end=min(self.length, end + self.context - self.trim),
                keep_start=max(0, start - self.margin),
                keep_end=min(self.length, end + self.margin),
            )


@dataclass
class Segment:
    """One chunk of a signal, read and resampled, ready for the network.

    Attributes:
        chunk: where it lies (model rate).
        wav: (channels, chunk.seg_end - chunk.seg_start) at the model rate.
        start: first input sample of the chunk's span, at the input's own rate.
        end: end of the span (exclusive), at the input's own rate.
        mixture: (channels, end - start) the input samples themselves.
        length: length of the whole signal at the model rate.
        resample_rate: the rate the input is resampled from (see ``_Signal.resample_rate``).
        silent: whether ``wav`` is digital silence (the network is skipped: its output for an
            all-zero input is exactly zero).
        conditions: this input's own (queries, condition_dim) embeddings (span queries), or
            None for the separator's.
    """

    chunk: Chunk
    wav: torch.Tensor
    start: int
    end: int
    mixture: torch.Tensor
    length: int
    resample_rate: int
    silent: bool = False
    conditions: Optional[torch.Tensor] = None


@dataclass
class SeparatedBlock:
    """Separated audio for samples ``[start, end)`` of the input, at the input's own rate.

    Attributes:
        start: first input sample.
        end: end (exclusive).
        targets: (queries, channels, end - start) separated sources.
        mixture: (channels, end - start) the input samples themselves.
        silent: whether the input was digital silence over the chunk (the model was skipped:
            its output for an all-zero input is exactly zero).
    """

    start: int
    end: int
    targets: torch.Tensor
    mixture: torch.Tensor
    silent: bool = False


def batches(items: Iterable, key: Callable, limit: Callable[[Any], int],
            carried: Optional[Callable[[Any], bool]] = None) -> Iterator[List]:
    """Group consecutive items of equal ``key`` into batches of at most ``limit(first)``: the one
    rule for where a network batch ends.

    Items for which ``carried(item)`` is true (e.g. a file's end, in a pipeline) join the current
    group without counting or breaking it, so that order is kept; a group is yielded as soon as
    its batch is full, or at once when it holds only carried items.

    Yields:
        Lists of items in input order; their non-carried items form one batch.
    """
    group: List = []
    batch: List = []
    for item in items:
        if carried is None or not carried(item):
            if batch and (key(item) != key(batch[0]) or len(batch) >= limit(batch[0])):
                yield group
                group, batch = [], []
            batch.append(item)
        group.append(item)
        if not batch or len(batch) >= limit(batch[0]):
            yield group
            group, batch = [], []
    if group:
        yield group


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None or dtype == torch.float32:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


@torch.inference_mode()
def separate_segments(
    model,
    wavs: torch.Tensor,
    conditions: torch.Tensor,
    batch_size: Optional[int] = None,
    autocast_dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Separate every query from equal-length segments: one STFT, (query, item) pairs batched.

    Args:
        model: an :class:`~asteroid_audiosep.models.AudioSep` in eval mode.
        wavs: (segments, channels, time) at ``model.sample_rate``, on the model's device. A mono
            model separates each channel independently; otherwise ``channels`` must equal
            ``model.in_channels``. Inputs shorter than half an STFT window are zero-padded
            (the STFT's reflect padding needs that many samples).
        conditions: (queries, condition_dim) query embeddings.
        batch_size: most (query, segment, channel) items per network call (None: all at once).
        autocast_dtype: run the network under autocast with this dtype (e.g. float16 on CUDA).

    Returns:
        (segments, queries, channels, time) float32; each segment's output is what it gives
        alone (the network treats batch items independently).
    """
    segments, channels, length = wavs.shape
    queries = conditions.shape[0]
    x = model.pad_short(model.fold_channels(wavs))  # a mono model: each channel is one item
    spec = model.stft(x.float())  # (items, in_channels, frames, bins), once for all queries
    items = spec.shape[0]
    conditions = conditions.to(device=wavs.device, dtype=torch.float32)
    total = queries * items
    step = total if not batch_size else max(1, int(batch_size))
    outs: List[torch.Tensor] = []
    for lo in range(0, total, step):
        idx = torch.arange(lo, min(total, lo + step), device=wavs.device)
        with _autocast(wavs.device, autocast_dtype):
            est = model.separate_spectrogram(spec[idx % items], conditions[idx // items])
        outs.append(model.istft(est.to(spec.dtype), x.shape[-1]))
    out = torch.cat(outs) if len(outs) > 1 else outs[0]
    out = out[..., :length].reshape(queries, segments, channels, length)
    return out.transpose(0, 1).float().contiguous()


def separate_segment(
    model,
    wav: torch.Tensor,
    conditions: torch.Tensor,
    batch_size: Optional[int] = None,
    autocast_dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """:func:`separate_segments` for one (channels, time) segment: (queries, channels, time)."""
    return separate_segments(model, wav[None], conditions, batch_size, autocast_dtype)[0]


class ChunkRunner:
    """Runs a model over a signal chunk by chunk, for several queries at once.

    The steps are separate methods so that a pipeline can run them in different threads:
    :meth:`plan` and :meth:`read` (input side), :meth:`separate` (the network, on a batch of
    equal-length segments), :meth:`finish` (back to the input's rate). :meth:`run` chains
    them in the calling thread.

    Args:
        model: an :class:`~asteroid_audiosep.models.AudioSep` (put in eval mode here).
        conditions: (queries, condition_dim) query embeddings.
        chunk_seconds: longest chunk; a longer signal is cut into ``ceil(length / chunk)``
            chunks of equal length on the pooling grid (and, for inputs whose rate is not the
            model's, on whole resampling blocks). Longer chunks waste less compute on context
            but need more memory.
        context_seconds: context on each side, at least this much (rounded up to the grid);
            the context after a chunk is one STFT hop shorter, so that segments fill whole
            pooling units.
        batch_size: most (query, segment, channel) items per network call. None: one segment
            per call, all its (query, channel) items at once. Larger values let chunks of equal
            length (inner chunks of a file, short files of equal length) share a call.
        autocast_dtype: autocast dtype for the network (half precision on GPU), or None.
        whole_seconds: signals up to this long are run whole, in one forward (default: up to
            one segment, the chunk plus its context on both sides). Raise it where memory
            allows (a GPU with memory to spare) to run longer files unchunked.
    """

    def __init__(
        self,
        model,
        conditions: torch.Tensor,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        context_seconds: float = DEFAULT_CONTEXT_SECONDS,
        batch_size: Optional[int] = None,
        autocast_dtype: Optional[torch.dtype] = None,
        whole_seconds: Optional[float] = None,
    ):
        if not chunk_seconds > 0:
            raise AudioSepError(f"chunk_seconds must be positive, got {chunk_seconds}")
        if not context_seconds >= 0:
            raise AudioSepError(f"context_seconds must be >= 0, got {context_seconds}")
        if whole_seconds is not None and not whole_seconds >= 0:
            raise AudioSepError(f"whole_seconds must be >= 0, got {whole_seconds}")
        if batch_size is not None and not int(batch_size) >= 1:
            raise AudioSepError(f"batch_size must be at least 1, got {batch_size}")
        if conditions.dim() != 2 or conditions.shape[1] != model.condition_dim:
            raise AudioSepError(
                f"conditions must be (queries, {model.condition_dim}), "
                f"got {tuple(conditions.shape)}"
            )
        self.model = model.eval()
        self.device = model.window.device
        self.conditions = conditions.to(self.device, torch.float32)
        self.chunk_seconds = float(chunk_seconds)
        self.context_seconds = float(context_seconds)
        self.batch_size = batch_size
        self.autocast_dtype = autocast_dtype
        self.whole_seconds = whole_seconds
        self.unit = int(model.time_pool_factor * model.hop_length)

    # ------------------------------------------------------------------ input side
    def check(self, signal: _Signal) -> None:
        """Raise :class:`AudioSepError` when the signal's channels do not suit the model."""
        self.model.check_channels(signal.channels)

    def plan(self, signal: _Signal, fixed: bool = False) -> ChunkPlan:
        """The chunks for ``signal`` (read at the model rate); ``fixed``: a stream's plan (see
        :meth:`ChunkPlan.build`)."""
        return ChunkPlan.build(signal.length, **self.layout(signal.resample_rate), fixed=fixed)

    def layout(self, resample_rate: int) -> dict:
        """:meth:`ChunkPlan.build`'s arguments but ``length`` and ``fixed``, for a signal
        resampled from ``resample_rate``."""
        rate = int(self.model.sample_rate)
        block = rate_ratio(rate, resample_rate)[0]  # model samples per resampling block
        grid = self.unit * block // math.gcd(self.unit, block)
        margin = resample_margin(rate, resample_rate)
        context = _ceil_to(math.ceil(self.context_seconds * rate) + margin, self.unit)
        hop = int(self.model.hop_length)
        trim = hop if context - hop >= margin and self.unit % hop == 0 else 0
        chunk = max(grid, round(self.chunk_seconds * rate))
        whole = None
        if self.whole_seconds is not None:
            whole = max(_ceil_to(chunk, grid) + 2 * context, round(self.whole_seconds * rate))
        return dict(chunk=chunk, context=context, margin=margin, unit=self.unit, grid=grid, trim=trim, whole=whole)

    def read(self, signal: _Signal, plan: ChunkPlan, chunk: Chunk) -> Segment:
        """Read (and resample) one chunk's segment and its span of the input."""
        rate = int(self.model.sample_rate)
        seg = signal.read_resampled(chunk.seg_start, chunk.seg_end)
        if not bool(torch.isfinite(seg).all()):
            raise AudioSepError(
                f"the audio holds NaN or infinite values (near {chunk.start / rate:.2f} s)"
            )
        model_block, native_block = rate_ratio(rate, signal.resample_rate)
        start = chunk.start // model_block * native_block
        end = signal.frames if chunk.end == plan.length else chunk.end // model_block * native_block
        return Segment(
            chunk=chunk,
            wav=seg,
            start=start,
            end=end,
            mixture=signal.read(start, end),
            length=plan.length,
            resample_rate=signal.resample_rate,
            silent=not bool(seg.any()),
        )

    def segments(self, signal: _Signal, plan: Optional[ChunkPlan] = None) -> Iterator[Segment]:
        """:meth:`read` for every chunk of the plan, in order."""
        self.check(signal)
        plan = plan or self.plan(signal)
        for chunk in plan:
            yield self.read(signal, plan, chunk)

    # ------------------------------------------------------------------ network
    def segments_per_call(self, segment: Segment) -> int:
        """How many segments shaped like ``segment`` one network call takes (``batch_size``)."""
        if not self.batch_size:
            return 1
        items = self.conditions.shape[0] * (
            segment.wav.shape[0] if self.model.in_channels == 1 else 1
        )
        return max(1, int(self.batch_size) // items)

    def batch_key(self, segment: Segment):
        """Segments with equal keys may share a network call: equal shape, same conditions."""
        return tuple(segment.wav.shape), id(segment.conditions)

    def batches(self, segments: Iterable[Segment]) -> Iterator[List[Segment]]:
        """Consecutive segments of equal shape, grouped up to :meth:`segments_per_call`."""
        return batches(segments, self.batch_key, self.segments_per_call)

    def separate(self, segments: List[Segment]) -> List[torch.Tensor]:
        """The network's output for equal-shape segments: (queries, channels, time) each, on CPU.

        Silent segments skip the network (their output is exactly zero).
        """
        queries = self.conditions.shape[0]
        outs: List[Optional[torch.Tensor]] = [
            torch.zeros((queries,) + tuple(s.wav.shape)) if s.silent else None for s in segments
        ]
        groups: dict = {}  # segments sharing their conditions run together
        for k, out in enumerate(outs):
            if out is None:
                groups.setdefault(id(segments[k].conditions), []).append(k)
        for todo in groups.values():
            own = segments[todo[0]].conditions
            conditions = self.conditions if own is None else own.to(self.device, torch.float32)
            wavs = torch.stack([segments[k].wav for k in todo]).to(self.device)
            est = self.network(wavs, conditions).cpu()
            for j, k in enumerate(todo):
                outs[k] = est[j]
        return outs

    def network(self, wavs: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
        """The network on equal-length segments: :func:`separate_segments` with this runner's
        settings (a subclass may run another engine, e.g. ONNX Runtime)."""
        return separate_segments(self.model, wavs, conditions, self.batch_size, self.autocast_dtype)

    # ------------------------------------------------------------------ output side
    def finish(self, segment: Segment, out: torch.Tensor) -> SeparatedBlock:
        """Keep a segment's own span of the network output, at the input's rate."""
        chunk = segment.chunk
        kept = out[..., chunk.keep_start - chunk.seg_start : chunk.keep_end - chunk.seg_start]

        def read_kept(a: int, b: int) -> torch.Tensor:
            if a < chunk.keep_start or b - chunk.keep_start > kept.shape[-1]:
                raise AssertionError(
                    f"resampling needs [{a}, {b}), kept [{chunk.keep_start}, "
                    f"{chunk.keep_start + kept.shape[-1]})"
                )
            return kept[..., a - chunk.keep_start : b - chunk.keep_start]

        targets = resample_range(
            read_kept,
            segment.length,
            segment.start,
            segment.end,
            int(self.model.sample_rate),
            segment.resample_rate,
        )
        return SeparatedBlock(
            segment.start, segment.end, targets, segment.mixture, silent=segment.silent
        )

    def run(self, signal: _Signal, plan: Optional[ChunkPlan] = None) -> Iterator[SeparatedBlock]:
        """Separate ``signal`` chunk by chunk, in the calling thread.

        Yields:
            :class:`SeparatedBlock` s covering the signal's samples in order, at its own rate.

        Raises:
            AudioSepError: the signal holds NaN or infinite values, or its channels do not
                suit the model.
        """
        for batch in self.batches(self.segments(signal, plan)):
            for segment, out in zip(batch, self.separate(batch)):
                yield self.finish(segment, out)


#: The former name of :class:`ChunkRunner` (kept for callers written against it).
ChunkedSeparator = ChunkRunner
