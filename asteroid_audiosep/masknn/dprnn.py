"""AudioSep-DP's dual-path RNN at the ResUNet bottleneck, built from Asteroid's ``DPRNNBlock``.

The released AudioSep-DP code (DCASE 2024 Task 9, arXiv:2409.13292) runs ``DPRNN('GRU', C,
hidden, C, num_layers=L)`` on the bottleneck feature map ``(B, C, T', F')``: per layer, a
2-layer bidirectional GRU along time (rows) and one along frequency (columns), each followed by
a linear projection, ``GroupNorm(1, C, eps=1e-8)`` and a residual sum; then ``PReLU`` and a 1x1
convolution. Asteroid's :class:`~asteroid.masknn.recurrent.DPRNNBlock` with ``rnn_type="GRU"``,
``norm_type="gLN"`` computes exactly that layer (intra-chunk = time, inter-chunk = frequency;
gLN = GroupNorm(1) with eps 1e-8), checked against the released implementation's output in
``tests/test_zoo.py``; only the output head is added here.
"""
from typing import Optional

import torch
from asteroid.masknn.recurrent import DPRNNBlock
from torch import nn


class DualPathRNN(nn.Module):
    """Dual-path GRU block over a (batch, channels, time, frequency) feature map, same shape out.

    Args:
        channels: feature channels (the ResUNet's bottleneck width; released: 384).
        hidden: GRU hidden size per direction (released default 128).
        layers: number of dual-path layers (released default 2).
        rnn_layers: stacked GRU layers inside each row/column RNN (released: 2).
        dropout: dropout between stacked GRU layers (released: 0.1; inactive in eval mode).

    The output replaces the input (no outer residual), as released. In eval mode the result of
    one item does not depend on the others of the batch (GroupNorm(1) is per item).
    """

    def __init__(self, channels: int, hidden: int = 128, layers: int = 2, rnn_layers: int = 2,
                 dropout: float = 0.1):
        super().__init__()
        self.blocks = nn.ModuleList(
            DPRNNBlock(channels, hidden, norm_type="gLN", bidirectional=True, rnn_type="GRU",
                       num_layers=rnn_layers, dropout=dropout)
            for _ in range(layers)
        )
        self.output = nn.Sequential(nn.PReLU(), nn.Conv2d(channels, channels, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, channels, time, freq) -> the same shape."""
        x = x.contiguous()
        for block in self.blocks:
            x = block(x)
        return self.output(x)


def released_key(key: str) -> Optional[str]:
    """The name of a released ``DPRNN.0.*`` tensor (``key`` without that prefix) in
    :class:`DualPathRNN`, or None when it is not one of its tensors."""
    import re

    m = re.match(r"^(row|col)_(rnn|norm)\.(\d+)\.(.+)$", key)
    if m:
        path, kind, i, rest = m.groups()
        side = "intra" if path == "row" else "inter"
        if kind == "rnn":
            if rest.startswith("rnn."):
                return f"blocks.{i}.{side}_RNN.{rest}"
            if rest.startswith("proj."):
                return f"blocks.{i}.{side}_linear.{rest[len('proj.'):]}"
            return None
        return {"weight": f"blocks.{i}.{side}_norm.gamma", "bias": f"blocks.{i}.{side}_norm.beta"}.get(rest)
    if re.match(r"^output\.[01]\.(weight|bias)$", key):
        return key
    return None
