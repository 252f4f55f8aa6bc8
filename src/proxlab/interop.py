r"""proxlab's operators and priors where DeepInverse-style code expects its own objects.

DeepInverse's algorithms talk to a *physics* (``A(x)``, ``A_adjoint(y)``, ``prox_l2(z, y, gamma)``, calling it
measures) and to a *denoiser* ``denoiser(x, sigma)``. :func:`as_physics` and :func:`as_denoiser` wrap proxlab's
objects so that such code runs on them unchanged; nothing here imports DeepInverse.

- :class:`Physics` (``as_physics(A, noise)``): ``A`` / ``A_adjoint`` are the operator's; ``physics(x)`` is
  :math:`A x + \sigma n`; ``prox_l2(z, y, gamma)`` is :math:`\arg\min_x \tfrac12\|Ax - y\|^2 + \tfrac1{2\gamma}\|x-z\|^2`,
  the solve :math:`(A^\top A + I/\gamma)\,x = A^\top y + z/\gamma` in closed form where the operator has one;
  ``A_dagger(y)`` the operator's own initial reconstruction (e.g. the pseudo-inverse for masks, FBP for CT).
- :class:`Denoiser` (``as_denoiser(prior)``): ``denoiser(x, sigma)`` is the prior's
  :math:`\operatorname{prox}_{\sigma^2 g}(x)`, the MAP denoiser for Gaussian noise of level :math:`\sigma` when
  :math:`g = -\log p` (a learned prox trained for one noise level may ignore ``sigma``).
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_positive
from .operators.base import LinearOperator
from .priors.base import require

__all__ = ["Physics", "Denoiser", "as_physics", "as_denoiser"]


class Physics(nn.Module):
    """A proxlab :class:`~proxlab.operators.base.LinearOperator` with DeepInverse's physics methods."""

    def __init__(self, operator: LinearOperator, noise: float = 0.0):
        super().__init__()
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator: expected a proxlab LinearOperator, got {type(operator).__name__}")
        self.operator = operator
        self.noise = check_positive("noise", noise, strict=False)

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - DeepInverse's names
        return self.operator(x)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return self.operator.adjoint(y)

    def A_vjp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """The vector-Jacobian product of ``A`` at ``x`` (DeepInverse's data fidelities call it): ``Aᵀ v``."""
        return self.operator.adjoint(v)

    def A_dagger(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return self.operator.init(y)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Measure ``x``: :math:`A x + \\sigma n`, ``n`` standard Gaussian (complex for complex measurements)."""
        y = self.operator(x)
        if self.noise == 0:
            return y
        n = torch.randn(y.shape, dtype=y.dtype, device=y.device, generator=generator)
        return y + self.noise * n

    def prox_l2(self, z: torch.Tensor, y: torch.Tensor, gamma: float) -> torch.Tensor:
        r""":math:`\arg\min_x \tfrac12\|A x - y\|^2 + \tfrac1{2\gamma}\|x - z\|^2`."""
        gamma = check_positive("gamma", gamma)
        return self.operator.solve_normal(self.operator.adjoint(y) + z / gamma, 1.0 / gamma)


class Denoiser(nn.Module):
    """A proxlab prior as a denoiser ``denoiser(x, sigma)``: :math:`\\operatorname{prox}_{\\sigma^2 g}(x)`."""

    def __init__(self, prior):
        super().__init__()
        require(prior, "prox", "as_denoiser")
        self.prior = prior

    def forward(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        if isinstance(sigma, torch.Tensor):
            tau = sigma.to(x.dtype).reshape(-1) ** 2
            if tau.numel() == 1:
                tau = float(tau)
        else:
            tau = check_positive("sigma", sigma, strict=False) ** 2
        return self.prior(x, tau)  # a Prior's call is its prox; any callable prox(v, tau) works too


def as_physics(operator: LinearOperator, noise: float = 0.0) -> Physics:
    """``operator`` (with Gaussian ``noise`` of that level when called) as a DeepInverse-style physics."""
    return Physics(operator, noise)


def as_denoiser(prior) -> Denoiser:
    """A prior with a prox as a DeepInverse-style denoiser ``denoiser(x, sigma)``."""
    return Denoiser(prior)
