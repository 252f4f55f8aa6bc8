r"""Box constraints :math:`\ell \le x \le u`: the indicator function and its prox, the projection.

For :math:`g = \iota_C`, :math:`C = \{x : \ell \le x_i \le u\}`, every :math:`\tau > 0` gives the same prox,
the Euclidean projection :math:`P_C(x)_i = \min(\max(x_i, \ell), u)`. Non-negativity is ``Box(0, None)``.
"""

from __future__ import annotations

import math

import torch

from ..._checks import check_tensor
from ..base import Prior
from ._common import as_threshold

__all__ = ["project_box", "Box"]


def _check_bounds(low: float | None, high: float | None) -> tuple[float | None, float | None]:
    vals = []
    for name, v in (("low", low), ("high", high)):
        if v is None:
            vals.append(None)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected a number or None, got {v!r}") from None
        if math.isnan(f):
            raise ValueError(f"{name} must not be NaN")
        vals.append(f)
    lo, hi = vals
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"low must be <= high, got low={low!r}, high={high!r}")
    return lo, hi


def project_box(x: torch.Tensor, low: float | None = 0.0, high: float | None = None) -> torch.Tensor:
    r"""Euclidean projection onto :math:`\{z : \text{low} \le z_i \le \text{high}\}` (``None`` = unbounded).

    This is :math:`\operatorname{prox}_{\tau\iota_C}(x)` for every :math:`\tau \ge 0`. Real tensors only.
    """
    check_tensor("x", x)
    if x.is_complex():
        raise TypeError(f"x: project_box needs a real tensor, got dtype {x.dtype}")
    lo, hi = _check_bounds(low, high)
    if lo is None and hi is None:
        return x
    return torch.clamp(x, min=lo, max=hi)


class Box(Prior):
    r"""The indicator :math:`g = \iota_{[\ell, u]^n}` of a box (``None`` bounds are infinite).

    ``forward(x, tau)`` is the projection (:func:`project_box`) for any ``tau >= 0``;
    ``regularizer(x)`` is :math:`g(x)` per sample: ``0`` where every entry is feasible, ``+inf`` otherwise.
    """

    def __init__(self, low: float | None = 0.0, high: float | None = None):
        super().__init__()
        self.low, self.high = _check_bounds(low, high)

    def forward(self, x: torch.Tensor, tau: float | torch.Tensor = 1.0) -> torch.Tensor:
        check_tensor("x", x)
        as_threshold("tau", tau, x)  # validated for a uniform interface; the projection does not depend on it
        return project_box(x, self.low, self.high)

    def regularizer(self, x: torch.Tensor) -> torch.Tensor:
        """``0`` for samples inside the box, ``+inf`` for the others; shape ``(B,)``."""
        check_tensor("x", x)
        flat = x.flatten(1)
        ok = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        if self.low is not None:
            ok &= (flat >= self.low).all(dim=1)
        if self.high is not None:
            ok &= (flat <= self.high).all(dim=1)
        zero = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        return torch.where(ok, zero, torch.full_like(zero, float("inf")))

    def extra_repr(self) -> str:
        return f"low={self.low}, high={self.high}"
