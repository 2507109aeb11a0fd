"""Chunked, seam-free application of an AudioSep model to signals of any length and rate.

The separator pools time by ``model.time_pool_factor`` (32) frames, so its output at a frame
depends on where that frame sits on the pooling grid. Chunks here start and end on that grid
(multiples of ``time_pool_factor * hop_length`` samples, 10240 at 32 kHz) and are run with
context on both sides, which is then dropped: the kept samples equal the whole-clip output to
better than 70 dB SNR. Each chunk is read, resampled to the model rate, separated for all
queries at once (one STFT, one batch), resampled back and handed over, so memory does not grow
with the signal's length.
"""

import math
from dataclasses import dataclass
from typing import Iterator, List, Optional

import torch

from .errors import AudioSepError
from .stream import _Signal, rate_ratio, resample_margin, resample_range

__all__ = [
    "DEFAULT_CHUNK_SECONDS",
    "DEFAULT_CONTEXT_SECONDS",
    "Chunk",
    "ChunkPlan",
    "SeparatedBlock",
    "ChunkedSeparator",
    "separate_segment",
]

#: Default chunk length (rounded to the pooling grid: 10.24 s at 32 kHz).
DEFAULT_CHUNK_SECONDS = 10.0
#: Default context on each side of a chunk (rounded up to the pooling grid).
DEFAULT_CONTEXT_SECONDS = 0.64


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

    Every segment given to the model has the same length, ``chunk + 2 * context`` (the first
    and the last chunks take their missing context from the other side), except near the end
    of the signal, where it may be up to one pooling unit longer. Equal shapes let the
    allocator reuse the same blocks from chunk to chunk.

    Attributes:
        length: signal length.
        chunk: span of every chunk but the last (a multiple of the grid, and of ``unit``).
        context: context on each side (a multiple of ``unit``).
        margin: output kept beyond each span, for resampling back.
        unit: the pooling unit every segment starts on (``time_pool_factor * hop_length``).
    """

    length: int
    chunk: int
    context: int
    margin: int = 0
    unit: int = 1

    def __len__(self) -> int:
        return max(1, -(-self.length // self.chunk))

    def __iter__(self) -> Iterator[Chunk]:
        segment = self.chunk + 2 * self.context
        last_start = max(0, (self.length - segment) // self.unit * self.unit)
        for k in range(len(self)):
            start, end = k * self.chunk, min(self.length, (k + 1) * self.chunk)
            seg_start = max(0, min(start - self.context, last_start))
            yield Chunk(
                start=start,
                end=end,
                seg_start=seg_start,
                seg_end=min(self.length, max(seg_start + segment, end + self.context)),
                keep_start=max(0, start - self.margin),
                keep_end=min(self.length, end + self.margin),
            )


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


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None or dtype == torch.float32:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


@torch.inference_mode()
def separate_segment(
    model,
    wav: torch.Tensor,
    conditions: torch.Tensor,
    batch_size: Optional[int] = None,
    autocast_dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Separate every query from one segment: one STFT, the queries run as a batch.

    Args:
        model: an :class:`~asteroid_audiosep.models.AudioSep` in eval mode.
        wav: (channels, time) at ``model.sample_rate``, on the model's device. A mono model
            separates each channel independently; otherwise ``channels`` must equal
            ``model.in_channels``. Inputs shorter than half an STFT window are zero-padded
            (the STFT's reflect padding needs that many samples).
        conditions: (queries, condition_dim) query embeddings.
        batch_size: most (query, channel) items per network call (None: all at once).
        autocast_dtype: run the network under autocast with this dtype (e.g. float16 on CUDA).

    Returns:
        (queries, channels, time) float32.
    """
    channels, length = wav.shape
    queries = conditions.shape[0]
    if model.in_channels == 1:
        x = wav[:, None]  # each channel is one mono item
    elif model.in_channels == channels:
        x = wav[None]
    else:
        raise AudioSepError(
            f"the model takes {model.in_channels} channels; the audio has {channels}"
        )
    minimum = model.n_fft // 2 + 1  # reflect padding needs more samples than half a window
    if length < minimum:
        x = torch.nn.functional.pad(x, (0, minimum - length))
    spec = model.stft(x.float())  # (items, in_channels, frames, bins), once for all queries
    items = spec.shape[0]
    conditions = conditions.to(device=wav.device, dtype=torch.float32)
    total = queries * items
    step = total if not batch_size else max(1, int(batch_size))
    outs: List[torch.Tensor] = []
    for lo in range(0, total, step):
        idx = torch.arange(lo, min(total, lo + step), device=wav.device)
        with _autocast(wav.device, autocast_dtype):
            est = model.separate_spectrogram(spec[idx % items], conditions[idx // items])
        outs.append(model.istft(est.to(spec.dtype), x.shape[-1]))
    out = torch.cat(outs) if len(outs) > 1 else outs[0]
    return out[..., :length].reshape(queries, channels, length).float()


class ChunkedSeparator:
    """Runs a model over a signal chunk by chunk, for several queries at once.

    Args:
        model: an :class:`~asteroid_audiosep.models.AudioSep` (put in eval mode here).
        conditions: (queries, condition_dim) query embeddings.
        chunk_seconds: span of each chunk; rounded to the pooling grid (and, for inputs whose
            rate is not the model's, to whole resampling blocks). Longer chunks waste less
            compute on context but need more memory.
        context_seconds: context on each side, at least this much (rounded up to the grid).
        batch_size: most (query, channel) items per network call.
        autocast_dtype: autocast dtype for the network (half precision on GPU), or None.
    """

    def __init__(
        self,
        model,
        conditions: torch.Tensor,
        chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
        context_seconds: float = DEFAULT_CONTEXT_SECONDS,
        batch_size: Optional[int] = None,
        autocast_dtype: Optional[torch.dtype] = None,
    ):
        if not chunk_seconds > 0:
            raise AudioSepError(f"chunk_seconds must be positive, got {chunk_seconds}")
        if not context_seconds >= 0:
            raise AudioSepError(f"context_seconds must be >= 0, got {context_seconds}")
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
        self.unit = int(model.time_pool_factor * model.hop_length)

    def plan(self, signal: _Signal) -> ChunkPlan:
        """The chunks for ``signal`` (read at the model rate)."""
        rate = int(self.model.sample_rate)
        block = rate_ratio(rate, signal.resample_rate)[0]  # model samples per resampling block
        grid = self.unit * block // math.gcd(self.unit, block)
        margin = resample_margin(rate, signal.resample_rate)
        chunk = max(grid, round(self.chunk_seconds * rate / grid) * grid)
        context = -(-(math.ceil(self.context_seconds * rate) + margin) // self.unit) * self.unit
        return ChunkPlan(signal.length, chunk, context, margin, self.unit)

    def run(self, signal: _Signal, plan: Optional[ChunkPlan] = None) -> Iterator[SeparatedBlock]:
        """Separate ``signal`` chunk by chunk.

        Yields:
            :class:`SeparatedBlock` s covering the signal's samples in order, at its own rate.

        Raises:
            AudioSepError: the signal holds NaN or infinite values, or its channels do not
                suit the model.
        """
        plan = plan or self.plan(signal)
        rate = int(self.model.sample_rate)
        model_block, native_block = rate_ratio(rate, signal.resample_rate)
        queries = self.conditions.shape[0]
        for chunk in plan:
            seg = signal.read_resampled(chunk.seg_start, chunk.seg_end)
            if not bool(torch.isfinite(seg).all()):
                raise AudioSepError(
                    f"the audio holds NaN or infinite values (near {chunk.start / rate:.2f} s)"
                )
            start = chunk.start // model_block * native_block
            end = (
                signal.frames
                if chunk.end == plan.length
                else chunk.end // model_block * native_block
            )
            mixture = signal.read(start, end)
            if not bool(seg.any()):
                targets = torch.zeros((queries,) + tuple(mixture.shape))
                yield SeparatedBlock(start, end, targets, mixture, silent=True)
                continue
            out = separate_segment(
                self.model,
                seg.to(self.device),
                self.conditions,
                self.batch_size,
                self.autocast_dtype,
            )
            kept = out[
                ..., chunk.keep_start - chunk.seg_start : chunk.keep_end - chunk.seg_start
            ].cpu()

            def read_kept(a: int, b: int, kept=kept, lo=chunk.keep_start) -> torch.Tensor:
                if a < lo or b - lo > kept.shape[-1]:
                    raise AssertionError(
                        f"resampling needs [{a}, {b}), kept [{lo}, {lo + kept.shape[-1]})"
                    )
                return kept[..., a - lo : b - lo]

            targets = resample_range(read_kept, plan.length, start, end, rate, signal.resample_rate)
            yield SeparatedBlock(start, end, targets, mixture)
