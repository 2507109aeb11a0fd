"""Streaming separation: audio in blocks as it arrives, separated audio out with a stated latency.

:class:`SeparationStream` (made by :meth:`Separator.stream <asteroid_audiosep.Separator.stream>`)
runs the grid-aligned chunked path of :class:`~asteroid_audiosep.apply.ChunkRunner` on a signal
whose length it does not know yet. It cuts chunks of ``block_seconds`` (rounded up to the pooling
grid) from the start, the last one shorter (``ChunkPlan.build(fixed=True)``: the plan of a prefix
is a prefix of the plan), and runs a chunk as soon as every input sample it reads has arrived: its
span, the context after it and the resampling margin. A chunk is then exactly what the offline
path computes for the same plan, so the concatenated outputs equal
``Separator.separate_waveform(wav, rate, queries, block_seconds=...)`` (bit for bit on one thread).

Latency (:attr:`SeparationStream.latency`, samples at the caller's rate): output sample ``j`` is
returned by the :meth:`~SeparationStream.process` call that delivers input sample
``j + latency`` (both counted from 0), or earlier; the first sample of every chunk is returned
exactly then. So after ``n`` input samples at least ``n - latency`` output samples have been
returned, and exactly ``n - latency`` just before each chunk is released: fed one sample per
sample period, the output lags the input by ``latency`` periods (a pass-through would have 0).
The time the network takes for a chunk comes on top (see :attr:`~SeparationStream.real_time_factor`).
The outputs, concatenated, are aligned with the input (output sample ``j`` is input sample ``j``
separated): the delay is in time, not in the samples.
"""
import time
from dataclasses import replace
from typing import Optional, Union

import numpy as np
import torch

from .apply import ChunkRunner, _ceil_to
from .errors import AudioSepError
from .stream import _Signal, rate_ratio, resample_margin, resampled_length

__all__ = ["SeparationStream", "DEFAULT_BLOCK_SECONDS"]

#: Default chunk of a stream (latency about this plus the context and resampling margins).
DEFAULT_BLOCK_SECONDS = 1.0


class _Received(_Signal):
    """The input received so far, at its own rate; samples no chunk reads any more are dropped.

    ``frames`` (and ``length``, at the model rate) grow as blocks arrive; reads address samples
    by their index in the whole stream.
    """

    def __init__(self, rate: int, channels: int, target_rate: int):
        self.rate, self.channels, self.frames = int(rate), int(channels), 0
        super().__init__(target_rate)
        self.offset = 0  # stream index of self._data[:, 0]
        self._data = torch.zeros(self.channels, 0)
        self._pending = []

    def append(self, block: torch.Tensor) -> None:
        self._pending.append(block)
        self.frames += block.shape[-1]
        self.length = resampled_length(self.frames, self.resample_rate, self.target_rate)

    def _consolidate(self) -> None:
        if self._pending:
            self._data = torch.cat([self._data, *self._pending], dim=-1)
            self._pending = []

    def read(self, start: int, end: int) -> torch.Tensor:
        self._consolidate()
        if start < self.offset or end > self.frames:
            raise AssertionError(f"stream read [{start}, {end}) outside [{self.offset}, {self.frames})")
        return self._data[:, start - self.offset : end - self.offset]

    def drop_before(self, index: int) -> None:
        """Forget the samples before stream index ``index``."""
        self._consolidate()
        index = min(max(index, self.offset), self.frames)
        self._data = self._data[:, index - self.offset :].clone()
        self.offset = index


class SeparationStream:
    """Separates audio that arrives block by block, for several queries at once.

    Feed :meth:`process` blocks of any length, in order; each call returns the separated samples
    that became ready (possibly none); :meth:`flush` returns the rest once the input has ended.
    Concatenated along time, the outputs equal ``separator.separate_waveform(wav, rate, queries,
    block_seconds=block_seconds)`` of the whole input (see the module docstring).

    Args:
        separator: a :class:`~asteroid_audiosep.Separator` (model, device, precision, context).
        queries: text queries or :class:`~asteroid_audiosep.Query` objects (not span queries).
        rate: the input's sample rate (any; resampled to the model's and back, block-wise).
        channels: its channel count (a mono model separates each channel).
        block_seconds: the stream's chunk length (rounded up to the model's pooling grid and whole
            resampling blocks).
        conditions: (queries, condition_dim) conditions computed elsewhere.

    Attributes:
        labels: the queries' labels (the first axis of every output).
        samples_in: input samples received so far; samples_out: output samples returned.
        compute_seconds: time spent in :meth:`process` and :meth:`flush`.

    Raises:
        AudioSepError: a span query, a bad rate, channel count or block length.
    """

    def __init__(self, separator, queries, rate: int, channels: int,
                 block_seconds: float = DEFAULT_BLOCK_SECONDS, *, conditions: Optional[torch.Tensor] = None):
        if not (isinstance(rate, (int, np.integer)) and rate > 0):
            raise AudioSepError(f"rate must be a positive whole number of Hz, got {rate!r}")
        if not (isinstance(channels, (int, np.integer)) and channels > 0):
            raise AudioSepError(f"channels must be a positive whole number, got {channels!r}")
        if not block_seconds > 0:
            raise AudioSepError(f"block_seconds must be positive, got {block_seconds}")
        resolved = separator.conditions(queries, conditions)
        if resolved.spans:
            raise AudioSepError(f"query {resolved.labels[resolved.spans[0]]!r} takes its example from a span of "
                                "the input, which a stream does not have yet: use separate_waveform")
        self.labels = resolved.labels
        self.rate, self.channels = int(rate), int(channels)
        self.block_seconds = float(block_seconds)
        self.runner: ChunkRunner = separator.runner(resolved.conditions, self.block_seconds)
        model_rate = int(self.runner.model.sample_rate)
        self._signal = _Received(self.rate, self.channels, model_rate)
        self.runner.check(self._signal)
        layout = self.runner.layout(self._signal.resample_rate)
        self._step = _ceil_to(layout["chunk"], layout["grid"])  # model samples per chunk
        self._ahead = layout["context"] - layout["trim"]  # model samples read after a chunk's span
        self._src, self._dst = rate_ratio(self._signal.resample_rate, model_rate)  # input/model samples per block
        self._margin = resample_margin(self._signal.resample_rate, model_rate)  # input samples, each side
        self._next = 0  # index of the next chunk to run
        self._done = False
        self.samples_in = self.samples_out = 0
        self.compute_seconds = 0.0

    # ------------------------------------------------------------------ timing
    def _needed(self, k: int) -> int:
        """Input samples that must have arrived before chunk ``k`` can run as a non-final chunk:
        those its segment reads (span, context after it, resampling margin), and at least one
        beyond its span."""
        end = (k + 1) * self._step
        reads = -(-(end + self._ahead) // self._dst) * self._src + self._margin
        beyond = end // self._dst * self._src + 1  # input samples that make the model-rate length exceed end
        return max(reads, beyond)

    def _out_start(self, k: int) -> int:
        """First output sample (at the caller's rate) of chunk ``k``."""
        return k * self._step // self._dst * self._src

    @property
    def latency(self) -> int:
        """The delay in samples at the caller's rate: output sample ``j`` is returned by the
        :meth:`process` call that delivers input sample ``j + latency`` (counted from 0) at the
        latest, exactly then for the first sample of every chunk (see the module docstring).
        About ``block_seconds`` plus the context after a chunk plus the resampling margins."""
        return self._needed(0) - 1 - self._out_start(0)

    @property
    def latency_seconds(self) -> float:
        """:attr:`latency` in seconds."""
        return self.latency / self.rate

    @property
    def real_time_factor(self) -> float:
        """Compute time over the duration of the input received (below 1: faster than real time)."""
        return self.compute_seconds / (self.samples_in / self.rate) if self.samples_in else 0.0

    # ------------------------------------------------------------------ blocks
    def _as_block(self, block: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
        block = torch.as_tensor(block)
        if block.dim() == 1 and self.channels == 1:
            block = block[None]
        if block.dim() != 2 or block.shape[0] != self.channels:
            hint = (" (a (samples, channels) array: pass its transpose)"
                    if block.dim() == 2 and block.shape[1] == self.channels else "")
            raise AudioSepError(f"a block must be ({self.channels}, samples) for this {self.channels}-channel "
                                f"stream, got shape {tuple(block.shape)}{hint}")
        if not block.dtype.is_floating_point:
            raise AudioSepError(f"a block must hold floating-point samples in [-1, 1], got {block.dtype}: "
                                "convert integer PCM first (e.g. int16 / 32768)")
        block = block.detach().to("cpu", torch.float32, copy=True)  # converted; a copy: callers reuse buffers
        if not bool(torch.isfinite(block).all()):
            raise AudioSepError(f"the block at {self.samples_in / self.rate:.2f} s holds NaN or infinite values")
        return block

    def _run(self, plan, k: int) -> torch.Tensor:
        window = replace(plan, bounds=plan.bounds[k : k + 2])  # chunk k alone, clipped as in the whole plan
        chunk = next(iter(window))
        segment = self.runner.read(self._signal, window, chunk)
        out = self.runner.finish(segment, self.runner.separate([segment])[0]).targets
        nxt = chunk.end  # what chunk k + 1 reads from: its segment (and resampling margin) and its span
        first = max(0, nxt - window.context) // self._dst * self._src - self._margin
        self._signal.drop_before(min(first, self._out_start(k + 1)))
        return out

    def _empty(self) -> torch.Tensor:
        return torch.zeros(len(self.labels), self.channels, 0)

    def _collect(self, outs) -> torch.Tensor:
        out = torch.cat(outs, dim=-1) if outs else self._empty()
        self.samples_out += out.shape[-1]
        return out

    def process(self, block: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
        """Take the next input samples; return the separated samples that are now ready.

        Args:
            block: (channels, samples) audio at the stream's rate (or (samples,) when mono);
                floating-point, converted to float32; any length, 0 included.

        Returns:
            (queries, channels, n) float32, the next ``n`` separated samples (``n`` may be 0).

        Raises:
            AudioSepError: a block of the wrong shape or channel count, integer or non-finite
                samples, or a stream already flushed.
        """
        if self._done:
            raise AudioSepError("the stream was flushed: start a new one with Separator.stream")
        block = self._as_block(block)
        started = time.perf_counter()
        self._signal.append(block)
        self.samples_in += block.shape[-1]
        outs, plan = [], None
        while self._signal.frames >= self._needed(self._next):
            plan = plan or self.runner.plan(self._signal, fixed=True)
            outs.append(self._run(plan, self._next))
            self._next += 1
        self.compute_seconds += time.perf_counter() - started
        return self._collect(outs)

    def flush(self) -> torch.Tensor:
        """End the input: return the separated samples not returned yet (the last chunks).

        Returns:
            (queries, channels, n) float32; the stream takes no more input afterwards.
        """
        if self._done:
            return self._empty()
        self._done = True
        started = time.perf_counter()
        plan = self.runner.plan(self._signal, fixed=True)
        outs = [self._run(plan, k) for k in range(self._next, len(plan))]
        self._next = len(plan)
        self.compute_seconds += time.perf_counter() - started
        return self._collect(outs)
