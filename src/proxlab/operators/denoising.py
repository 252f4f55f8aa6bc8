"""The identity forward model of denoising."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import LinearOperator, rho_tensor

__all__ = ["Denoising"]


class Denoising(LinearOperator):
    r"""Identity :math:`A = I`: denoising, :math:`y = x + n`.

    ``shape`` fixes the per-sample shape ``(C, H, W)``; by default any ``(C, H, W)`` is accepted.
    ``solve_normal`` is exact: :math:`x = b / (1 + \rho)`.
    """

    def __init__(self, shape: Sequence[int | None] = (None, None, None)):
        super().__init__(shape, shape)

    def _forward(self, x):
        return x

    def _adjoint(self, y):
        return y

    def gram(self, x):
        return self.check_input(x)

    def solve_normal(self, b, rho, tol=None, max_iter=None, x0=None):
        self.check_input(b, "b")
        return b / (1.0 + rho_tensor(rho, b))

    def norm(self, shape=None, **kwargs) -> float:
        return 1.0
