r"""Classic reconstruction methods by name, with per-task default weights (layer 3).

Each method maps ``(A, y, task) -> x``. Names: ``init`` (the operator's own first estimate:
:math:`A^\top y`, zero-filled IFFT, Qinit, FBP), ``tikhonov`` (:math:`\min \tfrac12\|Ax-y\|^2 +
\tfrac\rho2\|x\|^2` by CG), ``fista-tv``, ``admm-tv``, ``hqs-tv``, ``fista-wavelet``, ``admm-wavelet``.
The weights in :data:`DEFAULT_WEIGHTS` were chosen by ``python benchmarks/tune_classic.py`` on
scikit-image images that the demo does not test on (``coffee``, ``chelsea``, ``coins`` grey
crops; the CT row on random ellipse phantoms).

:func:`proxlab.reconstruct` is the one call for a classic method, a zoo model or a learned module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._checks import check_choice
from .operators import LinearOperator
from .priors.classic import TV, WaveletL1
from .solvers import admm, cg, fista, hqs
from .tasks import Task

__all__ = ["CLASSIC_METHODS", "DEFAULT_WEIGHTS", "PNP_DEFAULTS", "Method", "get_method", "reconstruct", "pnp",
           "task_of_operator"]

# lam: prior weight; rho: ADMM/HQS penalty (relative to lam where noted in tune_classic.py); tik: Tikhonov rho.
DEFAULT_WEIGHTS: dict[str, dict[str, float]] = {
    "denoise": {"tv": 0.1, "wavelet": 0.1, "tik": 0.03, "rho_tv": 1.0, "rho_wavelet": 1.0},
    "inpaint": {"tv": 0.003, "wavelet": 0.003, "tik": 3e-4, "rho_tv": 0.03, "rho_wavelet": 0.03},
    "deblur": {"tv": 0.001, "wavelet": 0.003, "tik": 0.01, "rho_tv": 0.1, "rho_wavelet": 0.3},
    "cs": {"tv": 0.001, "wavelet": 0.01, "tik": 1e-4, "rho_tv": 0.03, "rho_wavelet": 0.1},
    "mri": {"tv": 0.001, "wavelet": 1e-4, "tik": 1e-4, "rho_tv": 0.01, "rho_wavelet": 0.01},
    "ct": {"tv": 3.0, "wavelet": 3.0, "tik": 30.0, "rho_tv": 90.0, "rho_wavelet": 300.0},
}


@dataclass(frozen=True)
class Method:
    """A classic method: ``prior`` is ``"tv"``, ``"wavelet"`` or ``None``; ``solver`` the loop."""

    name: str
    solver: str
    prior: str | None
    description: str


CLASSIC_METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("init", "init", None, "the operator's first estimate (Aᵀy, zero-filled IFFT, Qinit, FBP)"),
        Method("tikhonov", "cg", None, "Tikhonov-regularised least squares by conjugate gradient"),
        Method("fista-tv", "fista", "tv", "FISTA with the isotropic TV prox (FGP inner solver)"),
        Method("admm-tv", "admm", "tv", "ADMM, exact x-update via solve_normal, TV prox"),
        Method("hqs-tv", "hqs", "tv", "half-quadratic splitting with the TV prox"),
        Method("fista-wavelet", "fista", "wavelet", "FISTA with db4 wavelet soft-thresholding"),
        Method("admm-wavelet", "admm", "wavelet", "ADMM with db4 wavelet soft-thresholding"),
        Method("pnp-admm", "admm", "learned", "plug-and-play ADMM with a learned prox (needs a prior)"),
        Method("pnp-pgd", "pgd", "learned", "plug-and-play proximal gradient with a learned prox (needs a prior)"),
    ]
}
# Plug-and-play defaults (the LPN paper's PnP-ADMM uses rho = 0.1 and 20 iterations for deblurring).
PNP_DEFAULTS = {"rho": 0.1, "max_iter": 20, "flow_weight": 0.1}  # flow_weight: a GLOW prior's λ (--lam)


def get_method(name: str) -> Method:
    check_choice("method", name, list(CLASSIC_METHODS))
    return CLASSIC_METHODS[name]


def task_of_operator(A: LinearOperator) -> str:
    """The task whose default weights fit operator ``A``, by its type (``GaussianBlur`` -> ``"deblur"`` ...)."""
    from .operators import MRI, BlockCompressedSensing, Denoising, GaussianBlur, Inpainting, ParallelBeamCT

    kinds = {Denoising: "denoise", Inpainting: "inpaint", GaussianBlur: "deblur", BlockCompressedSensing: "cs",
             MRI: "mri", ParallelBeamCT: "ct"}
    for kind, task in kinds.items():
        if isinstance(A, kind):
            return task
    raise ValueError(f"no task has default weights for a {type(A).__name__}; pass task= (one of "
                     f"{', '.join(DEFAULT_WEIGHTS)})")


def _levels(shape: tuple[int, ...]) -> int:
    """Largest level count <= 3 that divides both image sides."""
    H, W = shape[-2:]
    for lv in (3, 2, 1):
        if H % 2**lv == 0 and W % 2**lv == 0:
            return lv
    return 0


def _make_prior(kind: str, lam: float, shape) -> torch.nn.Module:
    if kind == "tv":
        return TV(lam, max_iter=30, tol=1e-4, low=0.0, high=1.0)
    levels = _levels(shape)
    if levels == 0:
        raise ValueError(f"wavelet methods need even image sides, got {tuple(shape[-2:])}")
    return WaveletL1(lam, wavelet="db4", levels=levels)


def reconstruct(
    method: str,
    A: LinearOperator,
    y: torch.Tensor,
    task: Task | str,
    lam: float | None = None,
    rho: float | None = None,
    max_iter: int = 100,
    tol: float = 1e-5,
    callback: Callable | None = None,
    prior: torch.nn.Module | None = None,
) -> torch.Tensor:
    """Run a method by name; ``lam``/``rho`` override the task's defaults. The ``pnp-*`` methods need
    ``prior``, a learned prox module (e.g. a zoo LPN or denoiser); ``rho`` is then the ADMM penalty
    (default 0.1) and PnP-PGD steps by ``1/‖A‖²``. ``task`` (a :class:`~proxlab.tasks.Task` or its name)
    gives the default weights."""
    m = get_method(method)
    name = task if isinstance(task, str) else task.name
    check_choice("task", name, list(DEFAULT_WEIGHTS))
    w = DEFAULT_WEIGHTS[name]
    if m.prior == "learned":
        if prior is None:
            raise ValueError(f"method {method!r} needs a learned prior (e.g. --prior zoo:NAME)")
        from .priors.flow import FlowPrior, Glow

        if isinstance(prior, Glow):  # a flow plugs in through its latent shrinkage, of weight lam
            prior = FlowPrior(prior, PNP_DEFAULTS["flow_weight"] if lam is None else lam)
        return pnp(m.solver, A, y, prior, rho=PNP_DEFAULTS["rho"] if rho is None else rho, max_iter=max_iter,
                   tol=tol, callback=callback).x
    with torch.no_grad():
        x0 = A.init(y)
        if m.solver == "init":
            return x0
        if m.solver == "cg":
            return cg(A, y, rho=w["tik"] if rho is None else rho, max_iter=max_iter, tol=1e-6)
        lam = w[m.prior] if lam is None else lam
        prior = _make_prior(m.prior, lam, x0.shape)
        if m.solver == "fista":
            return fista(A, y, prior, x0=x0, max_iter=max_iter, tol=tol, callback=callback, history=False).x
        rho = w[f"rho_{m.prior}"] if rho is None else rho
        if m.solver == "admm":
            return admm(A, y, prior, rho=rho, x0=x0, max_iter=max_iter, tol=tol, callback=callback, history=False).x
        return hqs(A, y, prior, mu=rho, x0=x0, max_iter=max_iter, tol=tol, callback=callback, history=False).x


def pnp(solver: str, A: LinearOperator, y: torch.Tensor, prior: torch.nn.Module, rho: float = 0.1,
        max_iter: int = 20, tol: float = 1e-5, callback: Callable | None = None):
    r"""Plug-and-play ADMM or PGD with ``prior`` as the prox; returns the :class:`~proxlab.solvers.SolveResult`
    (its history holds the per-iteration relative change, to show convergence, not the objective: for a learned
    prior with a regularizer, an LPN, evaluating it inverts the network's gradient map, which took 95 % of a 256²
    PnP-ADMM run).

    ``rho`` is relative to :math:`\|A\|_2^2`: ADMM runs with penalty ``rho·‖A‖²``, so one value means the
    same balance for a mask or a blur (‖A‖² = 1) and for CT (‖A‖² in the thousands)."""
    prior.eval()
    x0 = A.init(y)
    if solver == "admm":
        scale = A.norm(tuple(x0.shape[1:]))
        return admm(A, y, prior, rho=rho * scale, x0=x0, max_iter=max_iter, tol=tol, callback=callback, history=False)
    from .solvers import pgd

    return pgd(A, y, prior, x0=x0, max_iter=max_iter, tol=tol, callback=callback, history=False)
