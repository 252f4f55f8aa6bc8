"""Learned proximal networks used as plug-in priors and as the prox of unrolled solvers."""

from __future__ import annotations

import torch
from torch import nn

from .base import Prior

__all__ = ["DnCNN", "ResNetProxBN", "UNetProx"]


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


def _check_ints(**values) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {v!r}")


class ResNetProxBN(Prior):
    r"""The ResNet prox of the flow-unrolling paper's baseline (Wei et al., IEEE TSP 2022):
    a 3×3 lift to ``features`` maps, ``blocks`` residual blocks of two 3×3 convolutions with batch norm and
    ReLU, then three 1×1 convolutions (``features → features → features → channels``, ReLU between); the
    whole is residual, :math:`v + r_\theta(v)`, its last layer zero-initialised (the identity at start).
    ``tau`` is ignored. The paper states the blocks and the 1×1 head; the lift is our reading of how the image
    reaches 128 maps."""

    def __init__(self, channels: int = 1, features: int = 128, blocks: int = 2):
        super().__init__()
        _check_ints(channels=channels, features=features, blocks=blocks)
        self.channels = channels
        self.lift = nn.Conv2d(channels, features, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features), nn.ReLU(inplace=True),
            nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features)) for _ in range(blocks))
        self.head = nn.Sequential(nn.Conv2d(features, features, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(features, features, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(features, channels, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, v: torch.Tensor, tau: float | torch.Tensor | None = None) -> torch.Tensor:
        if v.ndim != 4 or v.shape[1] != self.channels:
            raise ValueError(f"ResNetProxBN: v must have shape (B, {self.channels}, H, W), got shape {tuple(v.shape)}")
        h = torch.relu(self.lift(v))
        for block in self.blocks:
            h = torch.relu(h + block(h))
        return v + self.head(h)


class UNetProx(Prior):
    r"""A small U-Net prox (Ronneberger et al. 2015): ``levels`` down-sampling stages (2×2 max-pool) of two 3×3
    conv–BN–ReLU each, with ``features · 2^i`` maps, a bottleneck, and up-sampling stages (2×2 transposed
    convolution, skip concatenation, two conv–BN–ReLU); residual output :math:`v + r_\theta(v)` with a
    zero-initialised last 1×1 layer. Images need sides divisible by ``2**levels``; ``tau`` is ignored."""

    def __init__(self, channels: int = 1, features: int = 32, levels: int = 2):
        super().__init__()
        _check_ints(channels=channels, features=features, levels=levels)
        self.channels, self.levels = channels, levels

        def double(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        widths = [features * 2 ** i for i in range(levels + 1)]
        self.down = nn.ModuleList([double(channels, widths[0])] + [double(widths[i], widths[i + 1]) for i in range(levels)])
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(levels)))
        self.merge = nn.ModuleList(double(2 * widths[i], widths[i]) for i in reversed(range(levels)))
        self.out = nn.Conv2d(widths[0], channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, v: torch.Tensor, tau: float | torch.Tensor | None = None) -> torch.Tensor:
        m = 2 ** self.levels
        if v.ndim != 4 or v.shape[1] != self.channels or v.shape[2] % m or v.shape[3] % m:
            raise ValueError(f"UNetProx: v must have shape (B, {self.channels}, H, W) with H, W divisible by {m}, "
                             f"got shape {tuple(v.shape)}")
        skips, h = [], self.down[0](v)
        for block in self.down[1:]:
            skips.append(h)
            h = block(torch.nn.functional.max_pool2d(h, 2))
        for up, merge in zip(self.up, self.merge):
            h = merge(torch.cat([up(h), skips.pop()], 1))
        return v + self.out(h)
