r"""Sparse coding over a dictionary: optimal codes by FISTA, iteration-error curves, dictionary learning.

The problem is the lasso :math:`\min_Z \tfrac12\|X - W_dZ\|^2 + \alpha\|Z\|_1` for signals :math:`X`
(rows of ``x``, ``(B, n)``) over a dictionary :math:`W_d` ``(n, m)`` of m atoms, solved by the classic
solvers of :mod:`proxlab.solvers` on :class:`~proxlab.operators.CompressedSensing` with ``matrix = W_d``.
These are the baselines and targets of LISTA (Gregor & LeCun, ICML 2010; :mod:`proxlab.unrolled.lista`).
"""

from __future__ import annotations

import torch

from ..operators import CompressedSensing
from ..priors.classic import L1
from .algorithms import fista, ista

__all__ = ["sparse_codes", "iteration_errors", "learn_dictionary"]


def sparse_codes(dictionary: torch.Tensor, x: torch.Tensor, alpha: float, iterations: int, tol: float = 0.0,
                 chunk: int = 1024) -> torch.Tensor:
    r""":math:`\operatorname{argmin}_Z \tfrac12\|X - W_dZ\|^2 + \alpha\|Z\|_1` for every row of ``x`` ``(B, n)`` by
    FISTA (:func:`proxlab.solvers.fista`, step 1/‖W_d‖², from 0) on ``chunk`` rows at a time (cache-sized
    blocks run faster); each block stops after ``iterations`` or at relative change ``tol``. Returns ``(B, m)``."""
    A = CompressedSensing(matrix=dictionary)
    step = 1.0 / A.norm()
    return torch.cat([fista(A, xb, L1(alpha), step_size=step, x0=xb.new_zeros(xb.shape[0], dictionary.shape[1]),
                            max_iter=iterations, tol=tol, history=False).x for xb in x.split(chunk)])


def iteration_errors(dictionary: torch.Tensor, x: torch.Tensor, z_star: torch.Tensor, alpha: float, iterations: int,
                     solver=fista, step_size: float | None = None) -> list[float]:
    r"""Mean over rows of :math:`\|Z_k - Z^*\|^2` after :math:`k = 1 \dots` ``iterations`` of ``solver``
    (:func:`~proxlab.solvers.fista` or :func:`~proxlab.solvers.ista`) from :math:`Z_0 = 0`."""
    if solver not in (fista, ista):
        raise ValueError(f"solver must be proxlab.solvers.fista or ista, got {solver!r}")
    errors: list[float] = []

    def record(k, state):
        z = state if isinstance(state, torch.Tensor) else state.x
        errors.append(float((z - z_star).pow(2).sum(1).mean()))

    A = CompressedSensing(matrix=dictionary)
    solver(A, x, L1(alpha), step_size=step_size, x0=x.new_zeros(x.shape[0], dictionary.shape[1]),
           max_iter=iterations, tol=0, history=False, callback=record)
    return errors


def learn_dictionary(patches: torch.Tensor, atoms: int, alpha: float, iterations: int, batch_size: int = 1024,
                     code_iters: int = 30, seed: int = 0) -> torch.Tensor:
    r"""A dictionary :math:`W_d` ``(n, atoms)`` with unit-norm columns for ``patches`` ``(N, n)``.

    Online alternating minimisation of :math:`\tfrac12\|X - W_dZ\|^2 + \alpha\|Z\|_1` (after Mairal et al.,
    JMLR 2010): each iteration codes a random batch by ``code_iters`` FISTA iterations, updates running
    statistics :math:`A = \overline{ZZ^\top}`, :math:`B = \overline{XZ^\top}` (plain average over the first 20
    batches, then an exponential window of about 20 batches), and takes 10 projected gradient steps on
    :math:`\tfrac12\operatorname{tr}(W_d^\top W_d A) - \operatorname{tr}(W_d^\top B)` (step 1/‖A‖, each atom
    renormalised to unit norm). Atoms that no code uses are replaced by random patches.
    """
    g = torch.Generator().manual_seed(seed)
    N, n = patches.shape
    batch_size = min(batch_size, N)
    norms = patches.norm(dim=1)
    pool = patches[norms > 1e-3 * norms.max()]  # non-flat patches to start atoms from
    D = pool[torch.randint(len(pool), (atoms,), generator=g)].T.clone()
    D = D + 0.01 * torch.randn(D.shape, generator=g)
    D = D / D.norm(dim=0, keepdim=True)
    A_bar, B_bar = torch.zeros(atoms, atoms), torch.zeros(n, atoms)
    for t in range(iterations):
        X = patches[torch.randint(N, (batch_size,), generator=g)]
        Z = sparse_codes(D, X, alpha, code_iters)
        w = max(1.0 / (t + 1), 0.05)
        A_bar = (1 - w) * A_bar + w * (Z.T @ Z) / batch_size
        B_bar = (1 - w) * B_bar + w * (X.T @ Z) / batch_size
        step = 1.0 / max(float(torch.linalg.matrix_norm(A_bar, ord=2)), 1e-12)
        for _ in range(10):
            D = D - step * (D @ A_bar - B_bar)
            D = D / D.norm(dim=0, keepdim=True).clamp_min(1e-12)
        dead = (A_bar.diagonal() < 1e-10).nonzero().squeeze(1)
        if dead.numel():
            fresh = pool[torch.randint(len(pool), (dead.numel(),), generator=g)].T
            D[:, dead] = fresh / fresh.norm(dim=0, keepdim=True)
    return D
