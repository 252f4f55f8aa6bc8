"""Learned proximal networks used as plug-in priors and as the prox of unrolled solvers."""

from __future__ import annotations

import torch
from torch import nn

from .base import Prior

__all__ = ["DnCNN"]


class DnCNN(Prior):
    r"""Residual CNN denoiser in the style of DnCNN (Zhang et al., IEEE TIP 2017).

    :math:`D(y) = y - r_\theta(y)`: conv–ReLU, ``depth − 2`` × (conv–BN–ReLU), conv, all 3×3 with
    ``features`` channels; the network predicts the noise. Called as a prox, ``D(v, tau)`` ignores
    ``tau`` (it was trained for one noise level). With ``depth=10, features=32``: 74,849 parameters.
    Its only capability (:mod:`proxlab.priors.base`) is ``prox``: it has no regularizer.
    """

    def __init__(self, channels: int = 1, depth: int = 10, features: int = 32, batch_norm: bool = True):
        super().__init__()
        for name, v, lo in [("channels", channels, 1), ("depth", depth, 3), ("features", features, 1)]:
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(features, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.channels = channels

    def forward(self, x: torch.Tensor, tau: float | torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"DnCNN: x must have shape (B, {self.channels}, H, W), got shape {tuple(x.shape)}")
        return x - self.body(x)
