r"""Classic iterative solvers for :math:`\min_x \tfrac12\|Ax - y\|^2 + g(x)`, each a loop of one step.

Plug-and-play: pass any denoiser module as ``prior``; it is called as ``prior(v, tau)`` and may
ignore ``tau``. Classic priors (:mod:`proxlab.priors.classic`) carry their weight inside :math:`g`
and also have the ``regularizer`` capability (:mod:`proxlab.priors.base`), which the history uses to
record the objective. Each solver checks that its prior is a prox before the first iteration.

``step_size``, ``rho`` and ``mu`` are absolute here (the tuned per-task weights are); plug-and-play and the
unrolled networks give them relative to :math:`\|A\|_2^2` (see :mod:`proxlab.solvers.steps`).
"""

from __future__ import annotations

from functools import partial

import torch

from ..operators.base import LinearOperator, conjugate_gradient
from ..priors.base import capabilities, require
from .loop import SolveResult, solve
from .steps import admm_step, fista_step, get_step, hqs_step, pgd_step

__all__ = ["pgd", "ista", "fista", "admm", "hqs", "cg", "least_squares_objective"]


def _check(A, y, prior, who: str):
    if not isinstance(A, LinearOperator):
        raise TypeError(f"A must be a proxlab LinearOperator, got {type(A).__name__}")
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"y must be a torch.Tensor, got {type(y).__name__}")
    if y.ndim and y.shape[0] == 0:
        raise ValueError(f"{who}: y is an empty batch (shape {tuple(y.shape)}); expected at least one measurement")
    bad = ~torch.isfinite(y)
    if bool(bad.any()):
        n_nan = int(torch.isnan(y).sum())
        raise ValueError(f"{who}: y holds {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values (of {y.numel()}); "
                         "a measurement must be finite")
    if prior is not None:
        require(prior, "prox", who)


def least_squares_objective(A: LinearOperator, y: torch.Tensor, prior=None, objective: bool | None = None):
    r"""A monitor recording ``residual`` :math:`\|Ax - y\|` (batch mean) and ``objective``
    :math:`\tfrac12\|Ax - y\|^2 + g(x)` (batch mean): with ``objective=None`` where the prior has the
    ``regularizer`` capability, with ``True`` always (a prior without it is a ``TypeError`` here, before
    any iteration), with ``False`` never."""
    if objective:
        require(prior, "regularizer", "least_squares_objective", why="the objective history")
    has_reg = prior is not None and objective is not False and "regularizer" in capabilities(prior)

    def monitor(x: torch.Tensor) -> dict[str, float]:
        r = A(x) - y
        sq = (r.abs() ** 2).flatten(1).sum(dim=1)
        out = {"residual": float(sq.sqrt().mean())}
        if has_reg:
            out["objective"] = float((0.5 * sq + prior.regularizer(x)).mean())
        return out

    return monitor


def _x0(A, y, x0):
    if x0 is None:
        with torch.no_grad():
            return A.init(y)
    return x0.clone()


def _start(name: str, x: torch.Tensor, A: LinearOperator, y: torch.Tensor, prior):
    """``solve``'s first ``state`` and its ``get_x`` (the read-out) for step ``name``, from the table of steps that
    the unrolled networks share."""
    entry = get_step(name)
    return {"state": entry.init(x, A, y, prior), "get_x": entry.readout}


def _default_step(A: LinearOperator, x: torch.Tensor) -> float:
    return 1.0 / A.norm(tuple(x.shape[1:]))


def pgd(A: LinearOperator, y: torch.Tensor, prior, step_size: float | None = None, x0: torch.Tensor | None = None,
        max_iter: int = 100, tol: float = 1e-5, callback=None, history: bool = True, progress: bool = False) -> SolveResult:
    r"""Proximal gradient descent (ISTA): :math:`x^+ = \operatorname{prox}_{\gamma g}(x - \gamma A^\top(Ax - y))`.

    ``step_size`` defaults to :math:`1/\|A\|_2^2`, which guarantees descent for convex :math:`g`.
    ``x0`` defaults to ``A.init(y)``.
    """
    _check(A, y, prior, "pgd")
    x = _x0(A, y, x0)
    gamma = _default_step(A, x) if step_size is None else float(step_size)
    ATy = A.adjoint(y)
    step = lambda s: pgd_step(s, A, y, prior, gamma, ATy)  # noqa: E731
    monitor = least_squares_objective(A, y, prior) if history else None
    return solve(step, **_start("pgd", x, A, y, prior), max_iter=max_iter, tol=tol, monitor=monitor, callback=callback,
                 progress=progress)


ista = pgd


def fista(A: LinearOperator, y: torch.Tensor, prior, step_size: float | None = None, x0: torch.Tensor | None = None,
          max_iter: int = 100, tol: float = 1e-5, callback=None, history: bool = True, progress: bool = False) -> SolveResult:
    r"""FISTA (Beck & Teboulle, 2009): PGD with Nesterov momentum, :math:`O(1/k^2)` in objective."""
    _check(A, y, prior, "fista")
    x = _x0(A, y, x0)
    gamma = _default_step(A, x) if step_size is None else float(step_size)
    ATy = A.adjoint(y)
    step = partial(fista_step, A=A, y=y, prox=prior, step_size=gamma, ATy=ATy)
    monitor = least_squares_objective(A, y, prior) if history else None
    return solve(step, **_start("fista", x, A, y, prior), max_iter=max_iter, tol=tol, monitor=monitor, callback=callback,
                 progress=progress)


def admm(A: LinearOperator, y: torch.Tensor, prior, rho: float = 1.0, x0: torch.Tensor | None = None,
         max_iter: int = 100, tol: float = 1e-5, callback=None, history: bool = True, progress: bool = False,
         inner_tol: float = 1e-5, inner_max_iter: int = 30) -> SolveResult:
    r"""ADMM in scaled form (see :func:`proxlab.solvers.steps.admm_step`); the x-update uses
    ``A.solve_normal`` (exact for masks, blur, MRI and CS; otherwise warm-started CG to relative
    residual ``inner_tol`` in at most ``inner_max_iter`` steps). Returns the z-iterate (the prior's
    output) as ``x``."""
    _check(A, y, prior, "admm")
    if not rho > 0:
        raise ValueError(f"rho must be > 0, got {rho!r}")
    x = _x0(A, y, x0)
    ATy = A.adjoint(y)
    step = partial(admm_step, A=A, y=y, prox=prior, rho=float(rho), ATy=ATy, tol=inner_tol, max_iter=inner_max_iter)
    monitor = least_squares_objective(A, y, prior) if history else None
    return solve(step, **_start("admm", x, A, y, prior), max_iter=max_iter, tol=tol, monitor=monitor, callback=callback,
                 progress=progress)


def hqs(A: LinearOperator, y: torch.Tensor, prior, mu: float = 1.0, x0: torch.Tensor | None = None,
        max_iter: int = 100, tol: float = 1e-5, callback=None, history: bool = True, progress: bool = False,
        inner_tol: float = 1e-5, inner_max_iter: int = 30) -> SolveResult:
    r"""Half-quadratic splitting with a fixed penalty :math:`\mu` (see :func:`proxlab.solvers.steps.hqs_step`);
    the x-update is solved as in :func:`admm`."""
    _check(A, y, prior, "hqs")
    if not mu > 0:
        raise ValueError(f"mu must be > 0, got {mu!r}")
    x = _x0(A, y, x0)
    ATy = A.adjoint(y)
    step = partial(hqs_step, A=A, y=y, prox=prior, mu=float(mu), ATy=ATy, tol=inner_tol, max_iter=inner_max_iter)
    monitor = least_squares_objective(A, y, prior) if history else None
    return solve(step, **_start("hqs", x, A, y, prior), max_iter=max_iter, tol=tol, monitor=monitor, callback=callback,
                 progress=progress)


def cg(A: LinearOperator, y: torch.Tensor, rho: float = 0.0, max_iter: int = 100, tol: float = 1e-6) -> torch.Tensor:
    r"""(Regularised) least squares by conjugate gradient: :math:`(A^\top A + \rho I)x = A^\top y`."""
    _check(A, y, None, "cg")
    ATy = A.adjoint(y)
    if rho < 0:
        raise ValueError(f"rho must be >= 0, got {rho!r}")
    with torch.no_grad():
        return conjugate_gradient(lambda v: A.gram(v) + rho * v, ATy, tol=tol, max_iter=max_iter)
