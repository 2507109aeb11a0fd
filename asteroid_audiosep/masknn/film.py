"""FiLM layers: a query embedding turned into per-channel modulation of feature maps."""
from typing import Optional

import torch
from torch import nn

FILM_MODES = ("beta", "gamma_beta")


class FiLM(nn.Module):
    """Feature-wise linear modulation of a BatchNorm output by a condition vector.

    ``beta`` (as in the released AudioSep checkpoint): ``h + W c + b``, one linear layer.
    ``gamma_beta`` (as in the paper, Eq. 6-7): a hidden layer with ReLU then
    ``gamma * h + beta``, where ``gamma = 1 + W_g z`` so that a freshly initialised layer is
    close to the identity.

    Args:
        condition_dim: size of the query embedding.
        num_features: number of channels of the modulated feature map.
        mode: ``"beta"`` or ``"gamma_beta"``.
        hidden_dim: width of the hidden layer of ``gamma_beta`` (defaults to ``condition_dim``).
    """

    def __init__(
        self,
        condition_dim: int,
        num_features: int,
        mode: str = "beta",
        hidden_dim: Optional[int] = None,
    ):
        super().__init__()
        if mode not in FILM_MODES:
            raise ValueError(f"FiLM mode must be one of {FILM_MODES}, got {mode!r}")
        self.mode = mode
        self.num_features = num_features
        if mode == "beta":
            self.linear = nn.Linear(condition_dim, num_features)
        else:
            hidden_dim = hidden_dim or condition_dim
            self.hidden = nn.Linear(condition_dim, hidden_dim)
            self.linear = nn.Linear(hidden_dim, 2 * num_features)

    def coefficients(self, condition: torch.Tensor):
        """Return ``(gamma, beta)`` of shape (batch, C, 1, 1); ``gamma`` is None in beta mode."""
        if self.mode == "beta":
            return None, self.linear(condition)[:, :, None, None]
        out = self.linear(torch.relu(self.hidden(condition)))[:, :, None, None]
        delta, beta = out.chunk(2, dim=1)
        return 1.0 + delta, beta

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.coefficients(condition)
        if gamma is None:
            return x + beta
        return x * gamma + beta
