"""Fused eval-mode inference of ResUNet30: folded BatchNorm/FiLM, channels-last, oneDNN post-ops.

In eval mode every ``BatchNorm -> FiLM`` pair is a per-(item, channel) affine map, so a
pre-activation ``leaky_relu(bn(x) + beta)`` is one pass over the feature map, and the one that
follows a convolution folds into that convolution's weights and bias. With oneDNN (CPU) the
bias, the LeakyReLU and the residual addition run as post-ops of the convolutions; feature
maps stay channels-last; the batch is run one item at a time so that every FiLM shift becomes
a plain per-channel bias. It is fastest when large freed blocks stay mapped: the entry points
(CLI, recipe steps) call :func:`~asteroid_audiosep.cpu_memory.retain_freed_memory` for that;
this module leaves the process's allocator alone.

Under CPU bfloat16 autocast (``--precision bf16``) the same oneDNN path runs on a cached bf16
copy of the folded weights (AVX512_BF16/AMX convolutions on bf16 channels-last feature maps),
with fp32 biases and FiLM coefficients, an fp32 residual stream, and fp32 where bf16 costs
accuracy for little time: the 1x1 convolutions at the network's ends and the full-resolution
blocks (:func:`_cast_folded`). Autocast itself is off inside: it would recast every weight on
every call and cannot reach the fused post-ops.

The result equals :meth:`ResUNet30.reference_forward` to float rounding; the weights and the
state dict are untouched (folded copies are cached and rebuilt when a parameter changes).
"""

from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

__all__ = ["fused_forward", "mkldnn_fusion_available", "clear_fused_cache"]

_CL = torch.channels_last


def mkldnn_fusion_available() -> bool:
    """Whether oneDNN convolutions with fused post-ops can be used (CPU builds with mkldnn)."""
    return bool(
        torch.backends.mkldnn.is_available()
        and hasattr(torch.ops, "mkldnn")
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
        and hasattr(torch.ops.mkldnn, "_convolution_pointwise_")
    )


# ---------------------------------------------------------------------------- convolution kernels
class _TorchOps:
    """Folded convolutions with plain PyTorch ops (any device, dtype and autocast)."""

    def __init__(self, slope: float):
        self.slope = slope

    def affine_lrelu(self, x, scale, shift, dtype: Optional[torch.dtype] = None):
        """``leaky_relu(x * scale + shift)``, per channel (scale, shift: (C,)); ``dtype``: see
        :class:`_MkldnnOps`."""
        return F.leaky_relu_(
            torch.addcmul(
                shift.to(x.dtype)[:, None, None], x, scale.to(x.dtype)[:, None, None]
            ),
            self.slope,
        )

    def conv(self, x, w, b, padding: int, lrelu: bool = False):
        out = F.conv2d(x, w, b, padding=padding)
        return F.leaky_relu_(out, self.slope) if lrelu else out

    def pointwise(self, x, w, b, lrelu: bool = False):
        """A 1x1 convolution of a (1, C_in, T, F) input with few channels, channels-last output.

        (Convolutions of a 1-channel input would otherwise give a channels-first output.)
        """
        out = torch.empty(
            (1, w.shape[0]) + tuple(x.shape[2:]), dtype=x.dtype, device=x.device, memory_format=_CL
        )
        w2 = w.reshape(w.shape[0], w.shape[1]).to(x.dtype)
        bias = (
            torch.zeros(w.shape[0], dtype=x.dtype, device=x.device) if b is None else b.to(x.dtype)
        )
        if w.shape[1] == 1:
            torch.addcmul(bias.reshape(1, -1, 1, 1), x, w2.reshape(1, -1, 1, 1), out=out)
        else:
            out.copy_(torch.einsum("bihw,oi->bohw", x, w2)).add_(bias.reshape(1, -1, 1, 1))
        return F.leaky_relu_(out, self.slope) if lrelu else out

    def conv_add_(self, acc, x, w, padding: int):
        """``acc += conv(x, w)`` in place; returns ``acc``."""
        return acc.add_(F.conv2d(x, w, None, padding=padding))


class _MkldnnOps(_TorchOps):
    """The same, as oneDNN convolutions with bias, LeakyReLU and residual sum as post-ops.

    Convolutions compute in their weight's dtype (a bf16 input feature map for bf16 weights);
    ``dtype`` is that of the pre-activations. The residual stream (block inputs and outputs,
    skips) stays fp32: a bf16 convolution's output is added to it in fp32.
    """

    def __init__(self, slope: float, dtype: torch.dtype = torch.float32):
        super().__init__(slope)
        self.dtype = dtype

    def affine_lrelu(self, x, scale, shift, dtype: Optional[torch.dtype] = None):
        # A depthwise 1x1 convolution with bias and a LeakyReLU post-op: one pass over x.
        dtype = dtype or self.dtype
        x = x.to(dtype)
        w = scale.reshape(-1, 1, 1, 1).to(dtype)
        return torch.ops.mkldnn._convolution_pointwise(
            x, w, shift, [0, 0], [1, 1], [1, 1], x.shape[1], "leaky_relu", [self.slope], ""
        )

    def conv(self, x, w, b, padding: int, lrelu: bool = False):
        attr, scalars = ("leaky_relu", [self.slope]) if lrelu else ("none", [])
        return torch.ops.mkldnn._convolution_pointwise(
            x.to(w.dtype), w, b, [padding, padding], [1, 1], [1, 1], 1, attr, scalars, ""
        )

    def conv_add_(self, acc, x, w, padding: int):
        x = x.to(w.dtype)
        if acc.dtype != x.dtype:  # bf16 convolution, fp32 residual stream
            return acc.to(torch.float32).add_(self.conv(x, w, None, padding))
        return torch.ops.mkldnn._convolution_pointwise_.binary(
            acc, x, w, None, [padding, padding], [1, 1], [1, 1], 1, "add", 1.0, None, [], None
        )


# ---------------------------------------------------------------------------- folding
def _bn_affine(bn: torch.nn.BatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``x * scale + shift`` (per channel)."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


def _cl(w: torch.Tensor) -> torch.Tensor:
    return w.contiguous(memory_format=_CL) if w.dim() == 4 else w.contiguous()


def _fold_block(block) -> Dict[str, Optional[torch.Tensor]]:
    """Condition-independent folded tensors of one :class:`ConvBlockRes`."""
    s1, t1 = _bn_affine(block.bn1)
    s2, t2 = _bn_affine(block.bn2)
    shortcut = block.shortcut
    has_sc = isinstance(shortcut, torch.nn.Conv2d)
    return dict(
        s1=s1,
        t1=t1,
        s2=s2,
        t2=t2,
        # conv1 followed by bn2: the BatchNorm scale goes into the output channels' weights.
        w1=_cl(block.conv1.weight * s2[:, None, None, None]),
        w2=_cl(block.conv2.weight),
        w_sc=_cl(shortcut.weight) if has_sc else None,
        b_sc=shortcut.bias.contiguous() if has_sc and shortcut.bias is not None else None,
        film_gamma=block.film1.mode != "beta",
        w1_raw=block.conv1.weight,
    )


def _fold(net) -> dict:
    """All condition-independent folded tensors of a ResUNet30 (fp32, on its device)."""
    s0, t0 = _bn_affine(net.bn0)
    enc = [_fold_block(b.conv_block) for b in net.encoder_blocks]
    bott = _fold_block(net.bottleneck.conv_block)
    dec = []
    for block in net.decoder_blocks:
        s, t = _bn_affine(block.bn1)
        dec.append(
            dict(
                s1=s, t1=t, wt=block.conv1.weight.contiguous(), block=_fold_block(block.conv_block)
            )
        )
    return dict(
        s0=s0,
        t0=t0,
        w_pre=_cl(net.pre_conv.weight),
        b_pre=net.pre_conv.bias,
        enc=enc,
        bott=bott,
        dec=dec,
        w_after=_cl(net.after_conv.weight),
        b_after=net.after_conv.bias,
    )


def _cache_key(net) -> tuple:
    tensors = list(net.parameters()) + list(net.buffers())
    return tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)


#: The folded convolution weights cast to the compute dtype; scales, shifts and biases stay fp32
#: (oneDNN adds an fp32 bias to bf16 convolutions), and so do the 1x1 convolutions at the
#: network's ends (pre_conv, after_conv: few FLOPs, the input's and the mask's full precision).
_WEIGHTS = ("w1", "w2", "w_sc", "wt")


def _cast_folded(p: dict, dtype: torch.dtype) -> dict:
    """The folded tensors for computing in ``dtype``: the full-resolution blocks (the first
    encoder block, the last decoder block) keep fp32 weights, so they compute in fp32.

    They hold about a fifth of the FLOPs; in bf16 they cost the most accuracy (measured on
    the stand-in released weights: output SNR against fp32 38 dB all-bf16, 45 dB with them fp32).
    """
    out = _cast(p, dtype)
    out["enc"][0], out["dec"][-1] = p["enc"][0], p["dec"][-1]
    return out


def _cast(p, dtype: torch.dtype):
    """A copy of the folded tensors ``p`` with the convolution weights in ``dtype``."""
    if isinstance(p, dict):
        return {
            k: (v.to(dtype) if k in _WEIGHTS and v is not None else _cast(v, dtype))
            for k, v in p.items()
        }
    if isinstance(p, list):
        return [_cast(v, dtype) for v in p]
    return p


def _folded(net, dtype: torch.dtype = torch.float32) -> dict:
    """The folded tensors, cached per compute dtype (all dropped when a parameter changes)."""
    key = _cache_key(net)
    cache = net.__dict__.get("_fused_cache")
    if cache is None or cache[0] != key:
        with torch.no_grad():
            cache = (key, {torch.float32: _fold(net)})
        net.__dict__["_fused_cache"] = cache
    folded = cache[1]
    if dtype not in folded:
        with torch.no_grad():
            folded[dtype] = _cast_folded(folded[torch.float32], dtype)
    return folded[dtype]


def clear_fused_cache(net) -> None:
    """Drop the folded copies of a ResUNet30's weights (they are rebuilt on the next call)."""
    net.__dict__.pop("_fused_cache", None)


# ---------------------------------------------------------------------------- forward
def _film(film, condition: torch.Tensor) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
    gamma, beta = film.coefficients(condition)
    return (None if gamma is None else gamma[:, :, 0, 0]), beta[:, :, 0, 0]


def _block_coefficients(block, condition):
    """Per-item FiLM coefficients of one ConvBlockRes: ((gamma1, beta1), (gamma2, beta2))."""
    return _film(block.film1, condition), _film(block.film2, condition)


def _res_block(ops, p, coeffs, i: int, x: torch.Tensor, a: Optional[torch.Tensor] = None):
    """One ConvBlockRes on batch item ``i``.

    ``shortcut(x) + conv2(lrelu(bn2(conv1(lrelu(bn1(x) + b1))) + b2))``, folded.

    ``x`` may be overwritten (it is a temporary of the caller). ``a``: the pre-activation, when
    the caller computed it already.
    """
    (g1, b1), (g2, b2) = coeffs
    if a is None:
        scale, shift = p["s1"], p["t1"]
        if g1 is not None:
            scale, shift = scale * g1[i], shift * g1[i]
        a = ops.affine_lrelu(x, scale, shift + b1[i], p["w1"].dtype)
    w1, bias1 = p["w1"], p["t2"] + b2[i]
    if g2 is not None:
        w1 = _cl(p["w1_raw"] * (p["s2"] * g2[i])[:, None, None, None]).to(p["w2"].dtype)
        bias1 = p["t2"] * g2[i] + b2[i]
    h = ops.conv(a, w1, bias1, padding=1, lrelu=True)
    del a
    acc = x if p["w_sc"] is None else ops.conv(x, p["w_sc"], p["b_sc"], padding=0)
    del x
    return ops.conv_add_(acc, h, p["w2"], padding=1)


def _forward_item(net, ops, p, coeffs, i: int, x: torch.Tensor) -> torch.Tensor:
    """The U-Net body for batch item ``i``: (1, in_ch, T, F) normalised input -> after_conv.

    Each convolution computes in its folded weight's dtype (see :func:`_cast_folded`).
    """
    enc_coeffs, bott_coeffs, dec_coeffs = coeffs
    # pre_conv and the first block's pre-activation, both 1x1 convolutions of the 1-channel input.
    (g1, b1), _ = enc_coeffs[0]
    s1, t1 = p["enc"][0]["s1"], p["enc"][0]["t1"]
    if g1 is not None:
        s1, t1 = s1 * g1[i], t1 * g1[i]
    w_a = p["w_pre"] * s1[:, None, None, None]
    b_a = t1 + b1[i] + (s1 * p["b_pre"] if p["b_pre"] is not None else 0)
    # In fp32 whatever the compute dtype (cheap, and the input's full range is kept).
    a = ops.pointwise(x, w_a, b_a, lrelu=True).to(p["enc"][0]["w1"].dtype)
    x = ops.pointwise(x, p["w_pre"], p["b_pre"])
    skips: List[torch.Tensor] = []
    for k, block in enumerate(net.encoder_blocks):
        skip = _res_block(ops, p["enc"][k], enc_coeffs[k], i, x, a)
        a = None
        skips.append(skip)
        # The next block may accumulate into its input in place: never alias the skip.
        x = (
            F.avg_pool2d(skip, kernel_size=block.pool_size)
            if block.pool_size != (1, 1)
            else skip.clone()
        )
    x = _res_block(ops, p["bott"], bott_coeffs, i, x)
    if net.center is not None:  # AudioSep-DP's dual-path RNN: its own module, in its weights' dtype
        dtype, weights = x.dtype, next(net.center.parameters()).dtype  # (the bf16 path runs with autocast off)
        x = net.center(x.contiguous().to(weights)).to(dtype).contiguous(memory_format=_CL)
    for k, block in enumerate(net.decoder_blocks):
        d = p["dec"][k]
        (g, b), block_coeffs = dec_coeffs[k]
        scale, shift = d["s1"], d["t1"]
        if g is not None:
            scale, shift = scale * g[i], shift * g[i]
        a = ops.affine_lrelu(x, scale, shift + b[i], d["wt"].dtype)
        del x
        h = F.conv_transpose2d(a, d["wt"], stride=block.conv1.stride)
        del a
        x = torch.cat((h, skips.pop()), dim=1)
        del h
        x = _res_block(ops, d["block"], block_coeffs, i, x)
    return ops.conv(x, p["w_after"], p["b_after"], padding=0)


def _cpu_autocast() -> Optional[torch.dtype]:
    """The CPU autocast dtype, or None when CPU autocast is off."""
    try:
        enabled = torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        enabled = torch.is_autocast_cpu_enabled()
    if not enabled:
        return None
    try:
        return torch.get_autocast_dtype("cpu")
    except AttributeError:  # torch < 2.4
        return torch.get_autocast_cpu_dtype()


def fused_forward(net, mag: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """Eval-mode :class:`ResUNet30` forward without autograd; same result as the reference.

    Args:
        net: the ResUNet30 (eval mode).
        mag: magnitude spectrogram (batch, in_channels, frames, freq_bins).
        condition: query embeddings (batch, condition_dim).

    Returns:
        (batch, in_channels * 3, frames, freq_bins), contiguous.
    """
    autocast = _cpu_autocast() if mag.device.type == "cpu" else None
    use_mkldnn = (
        mag.device.type == "cpu"
        and mag.dtype == torch.float32
        and autocast in (None, torch.bfloat16)
        and mkldnn_fusion_available()
    )
    if use_mkldnn and autocast is not None:
        # bf16 oneDNN convolutions on bf16 weights, autocast off (see the module docstring).
        with torch.autocast("cpu", enabled=False):
            return _fused(net, _MkldnnOps(float(net.negative_slope), autocast), mag, condition, autocast)
    ops = (_MkldnnOps if use_mkldnn else _TorchOps)(float(net.negative_slope))
    return _fused(net, ops, mag, condition, mag.dtype)


def _fused(net, ops, mag: torch.Tensor, condition: torch.Tensor, dtype: torch.dtype):
    """The fused forward with ``ops``, on the folded weights for computing in ``dtype``."""
    p = _folded(net, dtype)
    frames = mag.shape[2]
    condition = condition.to(mag.dtype)
    coeffs = (
        [_block_coefficients(b.conv_block, condition) for b in net.encoder_blocks],
        _block_coefficients(net.bottleneck.conv_block, condition),
        [
            (_film(b.film1, condition), _block_coefficients(b.conv_block, condition))
            for b in net.decoder_blocks
        ],
    )
    # bn0 over frequency bins, time padded to the pooling grid, last bin dropped.
    x = mag * p["s0"] + p["t0"]
    pad = -frames % net.time_factor
    x = F.pad(x[..., :-1], (0, 0, 0, pad))
    outs = []
    for i in range(x.shape[0]):
        xi = x[i : i + 1].contiguous(memory_format=_CL)
        outs.append(_forward_item(net, ops, p, coeffs, i, xi))
    out = torch.cat(outs) if len(outs) > 1 else outs[0]
    return F.pad(out, (0, 1))[:, :, :frames].contiguous()
