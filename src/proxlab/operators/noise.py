r"""Noise models and measurement simulation: :math:`y = A x + n`, reproducible from a seed."""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_positive, check_tensor
from .base import LinearOperator

__all__ = ["GaussianNoise", "Measurement"]


class GaussianNoise(nn.Module):
    r"""Additive white Gaussian noise :math:`n \sim \mathcal N(0, \sigma^2 I)`.

    For complex measurements (MRI k-space) the real and imaginary parts each get standard deviation
    :math:`\sigma/\sqrt 2`, so :math:`\mathbb E|n_i|^2 = \sigma^2` — the same per-entry energy as image-
    domain noise of level :math:`\sigma` seen through an orthonormal FFT.
    """

    def __init__(self, sigma: float):
        super().__init__()
        self.sigma = check_positive("sigma", sigma, strict=False)

    def forward(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        check_tensor("y", y)
        if self.sigma == 0:
            return y.clone()
        real = y.real.dtype if y.is_complex() else y.dtype
        # Draw on the CPU from the generator so results do not depend on the device.
        if y.is_complex():
            n = torch.randn((2,) + tuple(y.shape), generator=generator, dtype=torch.float64)
            noise = torch.complex(n[0], n[1]) * (self.sigma / 2**0.5)
        else:
            noise = torch.randn(tuple(y.shape), generator=generator, dtype=torch.float64) * self.sigma
        return y + noise.to(device=y.device, dtype=y.dtype if y.is_complex() else real)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}"


class Measurement(nn.Module):
    r"""Simulates :math:`y = A x + n`.

    ``measurement(x, seed=s)`` is bit-for-bit reproducible: the noise comes from a CPU generator
    seeded with ``s`` (in float64, then cast), whatever the device. Without a seed the global RNG is used.
    """

    def __init__(self, operator: LinearOperator, noise: nn.Module | float | None = None):
        super().__init__()
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator must be a proxlab LinearOperator, got {type(operator).__name__}")
        if isinstance(noise, (int, float)):
            noise = GaussianNoise(float(noise))
        if noise is not None and not callable(noise):
            raise TypeError(f"noise must be a callable noise model, a float sigma or None, got {type(noise).__name__}")
        self.operator = operator
        self.noise = noise

    def forward(self, x: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        y = self.operator(x)
        if self.noise is None:
            return y
        g = None if seed is None else torch.Generator().manual_seed(int(seed))
        return self.noise(y, generator=g)
