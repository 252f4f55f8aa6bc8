r"""Sparsity: the :math:`\ell_1` norm and its prox, soft-thresholding.

For :math:`g(x) = w\|x\|_1` the proximal map is

.. math:: \operatorname{prox}_{\tau g}(x)_i = \operatorname{sign}(x_i)\max(|x_i| - \tau w, 0),

and for complex :math:`x` the modulus is shrunk and the phase kept,
:math:`x_i \max(1 - \tau w / |x_i|, 0)` (Donoho, 1995, "De-noising by soft-thresholding",
IEEE Trans. Inf. Theory 41(3); Daubechies, Defrise & De Mol, 2004, Comm. Pure Appl. Math. 57(11)).
"""

from __future__ import annotations

import torch

from ..._checks import check_tensor
from ..base import Prior
from ._common import as_threshold, check_weight

__all__ = ["soft_threshold", "soft_threshold_unchecked", "L1"]


def soft_threshold(x: torch.Tensor, thresh: float | torch.Tensor) -> torch.Tensor:
    r"""Soft-thresholding :math:`S_t(x) = \operatorname{argmin}_z \tfrac12\|z - x\|^2 + t\|z\|_1`.

    Real :math:`x`: :math:`\operatorname{sign}(x)\max(|x| - t, 0)`. Complex :math:`x` (the
    :math:`\ell_1` norm of moduli): :math:`x\max(1 - t/|x|, 0)`, i.e. the modulus shrinks by
    :math:`t` and the phase is kept.

    Parameters
    ----------
    x:
        Tensor of any shape ``(B, ...)``, real or complex.
    thresh:
        Threshold :math:`t \ge 0`: a number, a per-sample tensor ``(B,)``, or a tensor broadcastable to ``x``.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``. Differentiable everywhere except at :math:`|x| = t`.
    """
    check_tensor("x", x)
    return soft_threshold_unchecked(x, as_threshold("thresh", thresh, x))


def soft_threshold_unchecked(x: torch.Tensor, thresh: float | torch.Tensor) -> torch.Tensor:
    r"""The core of :func:`soft_threshold` without its argument checks, for hot loops (unrolled stages).

    ``thresh`` must already be ``>= 0`` and broadcast against ``x`` as it is (a number, or a tensor on
    ``x``'s device, e.g. ``(B, 1, 1, 1)`` or a learned per-entry threshold); nothing is checked or reshaped.
    Real :math:`x`: :math:`\operatorname{sign}(x)\max(|x| - t, 0)`; complex: :math:`x\max(1 - t/|x|, 0)`.
    """
    if x.is_complex():
        mag = x.abs()
        # x * (1 - t/|x|)_+ written so that x = 0 gives 0 without a 0/0 in the value or the gradient.
        safe = torch.where(mag > 0, mag, torch.ones_like(mag))
        scale = torch.clamp(1.0 - thresh / safe, min=0.0)
        return x * torch.where(mag > 0, scale, torch.zeros_like(scale))
    return torch.sign(x) * torch.clamp(x.abs() - thresh, min=0.0)


class L1(Prior):
    r"""The prior :math:`g(x) = w\|x\|_1` (sum of moduli over all entries of each sample).

    ``forward(x, tau)`` returns :math:`\operatorname{prox}_{\tau g}(x) = S_{\tau w}(x)`
    (:func:`soft_threshold`); ``regularizer(x)`` returns :math:`g(x)` per sample, shape ``(B,)``.

    Parameters
    ----------
    weight:
        :math:`w \ge 0`.
    """

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.weight = check_weight("weight", weight)

    def forward(self, x: torch.Tensor, tau: float | torch.Tensor = 1.0) -> torch.Tensor:
        """:math:`\\operatorname{prox}_{\\tau w\\|\\cdot\\|_1}(x)`; ``tau`` a number or per-sample tensor."""
        check_tensor("x", x)
        return soft_threshold_unchecked(x, as_threshold("tau", tau, x) * self.weight)

    def regularizer(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`w\sum_i |x_i|` per sample, shape ``(B,)``."""
        check_tensor("x", x)
        return self.weight * x.abs().flatten(1).sum(dim=1)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"
