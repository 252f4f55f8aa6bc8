r"""One iteration of each algorithm, written once as a pure function of the state.

Convention: minimise :math:`F(x) = f(x) + g(x)` with the smooth data term
:math:`f(x) = \tfrac12\|Ax - y\|^2` (gradient step) and the prior :math:`g` (prox step). A prox is
any callable ``prox(v, tau)`` returning :math:`\operatorname{prox}_{\tau g}(v)`; classic priors carry
their weight inside :math:`g`, learned denoisers may ignore ``tau`` (plug-and-play).

A classic solver (:mod:`proxlab.solvers.algorithms`) loops a step until a tolerance; an unrolled
network runs the same step K times with per-stage learnable ``step_size`` / ``rho`` / ``prox``.
Scalars may be floats or tensors (learnable parameters), broadcast per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..operators.base import LinearOperator

__all__ = [
    "Prox",
    "gradient_step",
    "pgd_step",
    "FISTAState",
    "fista_step",
    "fista_momentum",
    "ADMMState",
    "admm_step",
    "HQSState",
    "hqs_step",
]

Prox = Callable[[torch.Tensor, "float | torch.Tensor"], torch.Tensor]


def gradient_step(x: torch.Tensor, A: LinearOperator, y: torch.Tensor, step_size, ATy: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`x - \gamma A^\top(Ax - y)`; with ``ATy`` given, :math:`x - \gamma(A^\top A x - A^\top y)`."""
    if ATy is None:
        return x - step_size * A.adjoint(A(x) - y)
    return x - step_size * (A.gram(x) - ATy)


def pgd_step(x: torch.Tensor, A: LinearOperator, y: torch.Tensor, prox: Prox, step_size, ATy: torch.Tensor | None = None) -> torch.Tensor:
    r"""Proximal gradient / ISTA: :math:`x^+ = \operatorname{prox}_{\gamma g}(x - \gamma A^\top(Ax - y))`."""
    return prox(gradient_step(x, A, y, step_size, ATy), step_size)


@dataclass
class FISTAState:
    """``x``: current iterate; ``z``: extrapolated point; ``t``: momentum counter (Beck & Teboulle)."""

    x: torch.Tensor
    z: torch.Tensor
    t: float = 1.0


def fista_momentum(t: float) -> tuple[float, float]:
    r"""Beck–Teboulle: :math:`t^+ = (1 + \sqrt{1 + 4t^2})/2`, momentum :math:`(t - 1)/t^+`."""
    t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
    return t_next, (t - 1.0) / t_next


def fista_step(state: FISTAState, A: LinearOperator, y: torch.Tensor, prox: Prox, step_size,
               momentum=None, ATy: torch.Tensor | None = None) -> FISTAState:
    r"""FISTA (Beck & Teboulle, SIAM J. Imaging Sci. 2009):
    :math:`x^+ = \operatorname{prox}_{\gamma g}(z - \gamma\nabla f(z))`, :math:`z^+ = x^+ + \beta(x^+ - x)`.

    ``momentum`` overrides :math:`\beta` (a learned value in FISTA-Net); otherwise the Beck–Teboulle
    sequence is used.
    """
    x_new = pgd_step(state.z, A, y, prox, step_size, ATy)
    if momentum is None:
        t_next, momentum = fista_momentum(state.t)
    else:
        t_next = state.t
    z_new = x_new + momentum * (x_new - state.x)
    return FISTAState(x=x_new, z=z_new, t=t_next)


@dataclass
class ADMMState:
    """Scaled-form ADMM variables: ``x`` (data), ``z`` (prior), ``u`` (scaled multiplier)."""

    x: torch.Tensor
    z: torch.Tensor
    u: torch.Tensor


def admm_step(state: ADMMState, A: LinearOperator, y: torch.Tensor, prox: Prox, rho, ATy: torch.Tensor | None = None,
              **solve_kwargs) -> ADMMState:
    r"""ADMM for :math:`\min f(x) + g(z)` s.t. :math:`x = z` (Boyd et al., 2011, scaled form):

    .. math::
        x^+ = (A^\top A + \rho I)^{-1}(A^\top y + \rho(z - u)),\quad
        z^+ = \operatorname{prox}_{g/\rho}(x^+ + u),\quad u^+ = u + x^+ - z^+.

    The x-update is ``A.solve_normal`` warm-started from the previous ``x``; ``solve_kwargs``
    (``tol``, ``max_iter``) reach its CG where the operator has no closed form.
    """
    if ATy is None:
        ATy = A.adjoint(y)
    x = A.solve_normal(ATy + rho * (state.z - state.u), _flat_scalar(rho), x0=state.x, **solve_kwargs)
    z = prox(x + state.u, 1.0 / rho)
    return ADMMState(x=x, z=z, u=state.u + x - z)


@dataclass
class HQSState:
    """Half-quadratic splitting variables: ``x`` (data), ``z`` (prior)."""

    x: torch.Tensor
    z: torch.Tensor


def hqs_step(state: HQSState, A: LinearOperator, y: torch.Tensor, prox: Prox, mu, ATy: torch.Tensor | None = None,
             **solve_kwargs) -> HQSState:
    r"""Half-quadratic splitting (Geman & Yang, 1995; as in DPIR, Zhang et al. 2021):

    .. math:: x^+ = (A^\top A + \mu I)^{-1}(A^\top y + \mu z),\quad z^+ = \operatorname{prox}_{g/\mu}(x^+).
    """
    if ATy is None:
        ATy = A.adjoint(y)
    x = A.solve_normal(ATy + mu * state.z, _flat_scalar(mu), x0=state.x, **solve_kwargs)
    return replace(state, x=x, z=prox(x, 1.0 / mu))


def _flat_scalar(v):
    """A per-sample tensor of shape (B, 1, 1, 1) becomes (B,) for ``solve_normal``; scalars pass."""
    if isinstance(v, torch.Tensor) and v.ndim > 1:
        return v.reshape(v.shape[0])
    return v
