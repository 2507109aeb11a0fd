"""Block-wise access to audio at another sample rate, equal to resampling the whole signal at once.

:func:`resample_range` computes samples ``[start, end)`` of ``resample(x, src_rate, dst_rate)``
from a slice of ``x`` with a few samples of margin, so that a long file is read, resampled and
written chunk by chunk without ever being held in memory. :class:`AudioFileSignal` and
:class:`TensorSignal` give the same random access to a file (through ``soundfile``) and to an
in-memory tensor.
"""

import math
import os
from pathlib import Path
from typing import Callable, Tuple, Union

import numpy as np
import soundfile as sf
import torch

from .audio import resample
from .errors import AudioSepError

__all__ = [
    "AudioFileSignal",
    "TensorSignal",
    "resample_range",
    "resample_margin",
    "resampled_length",
    "rate_ratio",
    "processing_rate",
]

# torchaudio's sinc resampler defaults, which audio.resample uses.
_LOWPASS_WIDTH = 6
_ROLLOFF = 0.99


def rate_ratio(src_rate: int, dst_rate: int) -> Tuple[int, int]:
    """``(src, dst)`` rates divided by their gcd: ``src`` source samples map to ``dst`` ones."""
    g = math.gcd(int(src_rate), int(dst_rate))
    return int(src_rate) // g, int(dst_rate) // g


def resampled_length(length: int, src_rate: int, dst_rate: int) -> int:
    """Length of ``resample(x, src_rate, dst_rate)`` for ``x`` of ``length`` samples."""
    src, dst = rate_ratio(src_rate, dst_rate)
    return -(-int(length) * dst // src)


#: Largest sinc kernel (in floats) that exact rational resampling may build.
_MAX_KERNEL = 1 << 22


def _kernel_size(src_rate: int, dst_rate: int) -> int:
    src, dst = rate_ratio(src_rate, dst_rate)
    width = math.ceil(_LOWPASS_WIDTH * src / (min(src, dst) * _ROLLOFF))
    return dst * (2 * width + src)


def processing_rate(rate: int, target_rate: int) -> int:
    """The rate to treat a signal as having when resampling it to (and from) ``target_rate``.

    ``rate`` itself, unless the exact rational resampling kernel between the two would be huge
    (rates such as 44101 Hz, whose ratio to the model rate does not reduce); then the nearest
    rate with a small kernel. The samples are kept one for one, so the output still has the
    input's length and rate; the model merely sees the audio a few parts per million off pitch.
    """
    rate, target_rate = int(rate), int(target_rate)
    if rate <= 0:
        raise AudioSepError(f"invalid sample rate {rate}")
    if (
        _kernel_size(rate, target_rate) <= _MAX_KERNEL
        and _kernel_size(target_rate, rate) <= _MAX_KERNEL
    ):
        return rate
    for delta in range(1, rate):
        for candidate in (rate - delta, rate + delta):
            if (
                candidate > 0
                and max(_kernel_size(candidate, target_rate), _kernel_size(target_rate, candidate))
                <= _MAX_KERNEL
            ):
                return candidate
    return target_rate


def _pad_blocks(src: int, dst: int) -> int:
    """Source blocks (of ``src`` samples) of margin the resampling kernel reaches beyond a block."""
    width = math.ceil(_LOWPASS_WIDTH * src / (min(src, dst) * _ROLLOFF))
    return -(-width // src) + 1  # one more block than the kernel needs, for safety


def resample_margin(src_rate: int, dst_rate: int) -> int:
    """Source samples needed on each side of an aligned span to resample it exactly.

    For output ranges whose ends map to whole blocks of the source (multiples of
    ``rate_ratio(src_rate, dst_rate)[0]`` source samples), :func:`resample_range` reads at most
    this many source samples beyond the span. Zero when the rates are equal.
    """
    if int(src_rate) == int(dst_rate):
        return 0
    src, dst = rate_ratio(src_rate, dst_rate)
    return _pad_blocks(src, dst) * src


def resample_range(
    read: Callable[[int, int], torch.Tensor],
    src_length: int,
    start: int,
    end: int,
    src_rate: int,
    dst_rate: int,
) -> torch.Tensor:
    """Samples ``[start, end)`` of the resampled signal, from a slice of the source.

    Args:
        read: ``read(a, b)`` returns source samples ``[a, b)`` as (..., b - a).
        src_length: length of the whole source signal.
        start: first output sample (at ``dst_rate``).
        end: end of the output range (exclusive), at most
            ``resampled_length(src_length, src_rate, dst_rate)``.
        src_rate: the source's rate.
        dst_rate: the output rate.

    Returns:
        (..., end - start): equal (to float rounding) to
        ``audio.resample(whole_source, src_rate, dst_rate)[..., start:end]``.
    """
    if int(src_rate) == int(dst_rate):
        return read(start, end)
    src, dst = rate_ratio(src_rate, dst_rate)
    pad = _pad_blocks(src, dst)
    first_block, last_block = start // dst, -(-end // dst)
    a = max(0, (first_block - pad) * src)
    b = min(int(src_length), (last_block + pad) * src)
    out = resample(read(a, b), int(src_rate), int(dst_rate))
    base = (a // src) * dst
    if out.shape[-1] < end - base:
        raise AssertionError(
            f"resample_range: {out.shape[-1]} samples for [{start}, {end}) from {base}"
        )
    return out[..., start - base : end - base]


class _Signal:
    """Random access to a multichannel signal at its own rate and at a target rate.

    Attributes:
        rate: the signal's own sample rate.
        channels: number of channels.
        frames: length at its own rate.
        target_rate: the rate of :meth:`read_resampled`.
        resample_rate: the rate the signal is treated as having when resampled
            (``rate`` but for unusual rates, see :func:`processing_rate`).
        length: length at ``target_rate``.
    """

    rate: int
    channels: int
    frames: int

    def __init__(self, target_rate: int):
        self.target_rate = int(target_rate)
        self.resample_rate = processing_rate(self.rate, self.target_rate)
        self.length = resampled_length(self.frames, self.resample_rate, self.target_rate)

    def read(self, start: int, end: int) -> torch.Tensor:
        """Samples ``[start, end)`` at the signal's own rate, (channels, end - start) float32."""
        raise NotImplementedError

    def read_resampled(self, start: int, end: int) -> torch.Tensor:
        """Samples ``[start, end)`` at ``target_rate`` (as if the whole signal were resampled)."""
        return resample_range(
            self.read, self.frames, start, end, self.resample_rate, self.target_rate
        )

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TensorSignal(_Signal):
    """A (channels, time) tensor seen through the :class:`AudioFileSignal` interface.

    Args:
        wav: (channels, time) or (time,) audio.
        rate: its sample rate.
        target_rate: the rate to read it at.
    """

    def __init__(self, wav: torch.Tensor, rate: int, target_rate: int):
        wav = torch.as_tensor(wav)
        if wav.dim() == 1:
            wav = wav[None]
        if wav.dim() != 2:
            raise AudioSepError(
                f"audio must be (channels, time) or (time,), got shape {tuple(wav.shape)}"
            )
        self.wav = wav.detach().float().cpu()
        self.rate, self.channels, self.frames = int(rate), wav.shape[0], wav.shape[1]
        super().__init__(target_rate)

    def read(self, start: int, end: int) -> torch.Tensor:
        return self.wav[:, start:end]


class AudioFileSignal(_Signal):
    """An audio file read block by block (``soundfile``), never loaded whole.

    Args:
        path: the file.
        target_rate: the rate to read it at.

    Raises:
        AudioSepError: the file does not exist, cannot be decoded, or is empty.
    """

    def __init__(self, path: Union[str, os.PathLike], target_rate: int):
        self.path = Path(path)
        if not self.path.is_file():
            raise AudioSepError(f"audio file not found: {self.path}")
        try:
            self._file = sf.SoundFile(str(self.path))
        except Exception as err:  # libsndfile raises several types for corrupt files
            raise AudioSepError(f"cannot read audio file {self.path}: {err}") from err
        self.rate, self.channels, self.frames = (
            self._file.samplerate,
            self._file.channels,
            self._file.frames,
        )
        if self.frames <= 0:
            self._file.close()
            raise AudioSepError(f"audio file {self.path} is empty (0 samples)")
        super().__init__(target_rate)

    def read(self, start: int, end: int) -> torch.Tensor:
        try:
            self._file.seek(start)
            data = self._file.read(end - start, dtype="float32", always_2d=True)
        except Exception as err:
            raise AudioSepError(
                f"cannot read audio file {self.path} at frame {start}: {err}"
            ) from err
        if data.shape[0] != end - start:
            raise AudioSepError(
                f"audio file {self.path} is truncated: frames {start}-{end} requested, "
                f"{data.shape[0]} read (the header says {self.frames})"
            )
        return torch.from_numpy(np.ascontiguousarray(data.T))

    def close(self) -> None:
        self._file.close()
