"""The FiLM-conditioned residual U-Net (ResUNet30) that predicts AudioSep's complex mask."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .film import FiLM


class ConvBlockRes(nn.Module):
    """Pre-activation residual block: two (BN -> FiLM -> LeakyReLU -> 3x3 conv) plus a shortcut.

    Args:
        in_channels: input channels.
        out_channels: output channels; a 1x1 convolution with bias adapts the shortcut
            when they differ from ``in_channels``.
        condition_dim: size of the query embedding fed to the FiLM layers.
        film_mode: see :class:`FiLM`.
        film_hidden_dim: see :class:`FiLM`.
        momentum: BatchNorm momentum.
        negative_slope: LeakyReLU slope.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        condition_dim: int,
        film_mode: str = "beta",
        film_hidden_dim: Optional[int] = None,
        momentum: float = 0.01,
        negative_slope: float = 0.01,
    ):
        super().__init__()
        self.negative_slope = negative_slope
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.film1 = FiLM(condition_dim, in_channels, film_mode, film_hidden_dim)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=momentum)
        self.film2 = FiLM(condition_dim, out_channels, film_mode, film_hidden_dim)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.film1(self.bn1(x), condition)
        h = self.conv1(F.leaky_relu(h, self.negative_slope))
        h = self.film2(self.bn2(h), condition)
        h = self.conv2(F.leaky_relu(h, self.negative_slope))
        return self.shortcut(x) + h


class EncoderBlock(nn.Module):
    """A residual block followed by average pooling; returns (pooled, skip)."""

    def __init__(self, in_channels: int, out_channels: int, pool_size: Tuple[int, int], **block_kw):
        super().__init__()
        self.pool_size = tuple(pool_size)
        self.conv_block = ConvBlockRes(in_channels, out_channels, **block_kw)

    def forward(self, x: torch.Tensor, condition: torch.Tensor):
        skip = self.conv_block(x, condition)
        if self.pool_size == (1, 1):
            return skip, skip
        return F.avg_pool2d(skip, kernel_size=self.pool_size), skip


class DecoderBlock(nn.Module):
    """BN -> FiLM -> LeakyReLU -> transposed conv upsampling, skip concatenation, residual block."""

    def __init__(self, in_channels: int, out_channels: int, upsample: Tuple[int, int], **block_kw):
        super().__init__()
        self.negative_slope = block_kw.get("negative_slope", 0.01)
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=block_kw.get("momentum", 0.01))
        self.film1 = FiLM(
            block_kw["condition_dim"],
            in_channels,
            block_kw.get("film_mode", "beta"),
            block_kw.get("film_hidden_dim"),
        )
        self.conv1 = nn.ConvTranspose2d(
            in_channels, out_channels, kernel_size=upsample, stride=upsample, bias=False
        )
        self.conv_block = ConvBlockRes(2 * out_channels, out_channels, **block_kw)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, condition: torch.Tensor):
        h = self.film1(self.bn1(x), condition)
        h = self.conv1(F.leaky_relu(h, self.negative_slope))
        return self.conv_block(torch.cat((h, skip), dim=1), condition)


class ResUNet30(nn.Module):
    """Text-conditioned ResUNet of AudioSep (Kong et al. 2021's ResUNet30 with FiLM).

    Takes a magnitude spectrogram (batch, in_channels, frames, freq_bins) and a condition
    (batch, condition_dim); returns mask features (batch, in_channels * 3, frames, freq_bins):
    per channel, a magnitude-mask logit and the two components of a phase rotation.

    Args:
        freq_bins: number of STFT bins (``n_fft // 2 + 1``); the last one is dropped inside
            the network, so ``freq_bins - 1`` must be divisible by the product of the
            frequency pooling factors.
        in_channels: audio channels of the input spectrogram.
        channels: output channels of the encoder blocks (the decoder mirrors them).
        bottleneck_channels: channels of the bottleneck block.
        pool_sizes: (time, freq) average-pooling factor after each encoder block.
        condition_dim: size of the query embedding.
        film_mode: ``"beta"`` (released) or ``"gamma_beta"`` (paper), see :class:`FiLM`.
        film_hidden_dim: hidden width of ``gamma_beta`` FiLM layers.
        momentum: BatchNorm momentum.
        negative_slope: LeakyReLU slope.
    """

    def __init__(
        self,
        freq_bins: int = 1025,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128, 256, 384, 384),
        bottleneck_channels: int = 384,
        pool_sizes: Sequence[Sequence[int]] = ((2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (1, 2)),
        condition_dim: int = 512,
        film_mode: str = "beta",
        film_hidden_dim: Optional[int] = None,
        momentum: float = 0.01,
        negative_slope: float = 0.01,
    ):
        super().__init__()
        channels = [int(c) for c in channels]
        pool_sizes = [tuple(int(v) for v in p) for p in pool_sizes]
        if len(channels) != len(pool_sizes) or not channels:
            raise ValueError(
                f"channels ({len(channels)}) and pool_sizes ({len(pool_sizes)}) must have "
                "the same, non-zero length"
            )
        self.time_factor = 1
        freq_factor = 1
        for t, f in pool_sizes:
            self.time_factor *= t
            freq_factor *= f
        if (freq_bins - 1) % freq_factor:
            raise ValueError(
                f"{freq_bins - 1} frequency bins are not divisible by the frequency pooling "
                f"product {freq_factor}: choose n_fft or pool_sizes so that it is"
            )
        self.in_channels = in_channels
        self.negative_slope = negative_slope
        kw = dict(
            condition_dim=condition_dim,
            film_mode=film_mode,
            film_hidden_dim=film_hidden_dim,
            momentum=momentum,
            negative_slope=negative_slope,
        )
        self.bn0 = nn.BatchNorm2d(freq_bins, momentum=momentum)
        self.pre_conv = nn.Conv2d(in_channels, channels[0], kernel_size=1)
        ins = [channels[0]] + channels[:-1]
        self.encoder_blocks = nn.ModuleList(
            EncoderBlock(i, o, p, **kw) for i, o, p in zip(ins, channels, pool_sizes)
        )
        self.bottleneck = EncoderBlock(channels[-1], bottleneck_channels, (1, 1), **kw)
        dec_ins = [bottleneck_channels] + channels[::-1][:-1]
        self.decoder_blocks = nn.ModuleList(
            DecoderBlock(i, o, p, **kw)
            for i, o, p in zip(dec_ins, channels[::-1], pool_sizes[::-1])
        )
        self.after_conv = nn.Conv2d(channels[0], in_channels * 3, kernel_size=1)
        #: Optional block between the bottleneck and the decoder, (B, C, T', F') -> same shape
        #: (AudioSep-DP's dual-path RNN, :mod:`.dprnn`); None in the released AudioSep.
        self.center: Optional[nn.Module] = None

    #: In eval mode without autograd, run the fused inference path (:mod:`.fused`); set to
    #: False to always run :meth:`reference_forward`.
    fused_inference: bool = True

    def forward(self, mag: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(batch, in_channels, frames, freq_bins) magnitudes -> (batch, 3 * in_channels, ...)."""
        if self.fused_inference and not self.training and not self._needs_grad(mag, condition):
            from .fused import fused_forward

            return fused_forward(self, mag, condition)
        return self.reference_forward(mag, condition)

    def _needs_grad(self, *inputs: torch.Tensor) -> bool:
        if not torch.is_grad_enabled():
            return False
        return any(t.requires_grad for t in inputs) or any(p.requires_grad for p in self.parameters())

    def reference_forward(self, mag: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """The module-by-module computation (training, autograd, and the reference for tests)."""
        frames = mag.shape[2]
        # BatchNorm over frequency bins: frequency becomes the channel axis.
        x = self.bn0(mag.transpose(1, 3)).transpose(1, 3)
        pad = -frames % self.time_factor
        x = F.pad(x, (0, 0, 0, pad))[..., :-1]
        x = self.pre_conv(x)
        skips: List[torch.Tensor] = []
        for block in self.encoder_blocks:
            x, skip = block(x, condition)
            skips.append(skip)
        x, _ = self.bottleneck(x, condition)
        if self.center is not None:
            x = self.center(x)
        for block, skip in zip(self.decoder_blocks, reversed(skips)):
            x = block(x, skip, condition)
        x = self.after_conv(x)
        return F.pad(x, (0, 1))[:, :, :frames]
