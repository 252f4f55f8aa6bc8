r"""Batched inversion of a gradient map :math:`f = \nabla\psi` of a convex potential.

Given a convex :math:`\psi` and a target :math:`x`, the point :math:`y^* = f^{-1}(x)` minimises the
convex function

.. math:: \varphi_x(y) = \psi(y) - \langle x, y\rangle, \qquad \nabla\varphi_x(y) = f(y) - x,

so inverting :math:`f` is smooth convex minimisation. :func:`invert_gradient_map` runs one
limited-memory BFGS (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 7.4) for every
sample of a batch at once: one call of ψ on the still-running samples per function evaluation, the
two-loop recursion as batched dot products, and a per-sample line search. This replaces the
one-image-at-a-time ``scipy.optimize.fmin_cg`` of the learned-proximal-network authors (Fang,
Buchanan & Sulam, ICLR 2024, code ``lpn/utils/invert_model/invert_cvx_cg.py``).

Line search
    The first trial step is 1 (the L-BFGS scaling γ = sᵀy / yᵀy makes it well sized; the very
    first iteration uses ``min(1, 1/‖g‖∞)`` along −g). A step ``t`` along ``d`` is accepted for a
    sample when the Armijo condition ``φ(y + t d) ≤ φ(y) + c₁ t gᵀd`` holds or, because near the
    solution a change in φ drowns in floating-point noise (float32 especially), when the
    *approximate Wolfe* condition of Hager & Zhang (SIAM J. Optim. 16, 2005) holds:
    ``(2δ − 1) gᵀd ≥ ∇φ(y + t d)ᵀd`` together with ``φ(y + t d) ≤ φ(y) + ε_φ``, where ε_φ is a
    few hundred machine epsilons of the size of the terms of φ. Otherwise ``t`` shrinks to the
    zero of the secant model of φ' along ``d`` (clipped to [0.1 t, 0.5 t]).
    Convexity makes every accepted pair satisfy ``sᵀy ≥ 0``; pairs with ``sᵀy`` not safely
    positive are masked out of the memory for that sample.

Stopping
    A sample stops when its residual ``‖f(y) − x‖₂ ≤ tol · √n`` (n entries per sample: the
    root-mean-square residual per entry is at most ``tol``), when ``max_iter`` iterations are spent,
    or when its line search fails twice in a row (the residual that comes back then says how far
    it got).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["invert_gradient_map"]

_C1 = 1e-4  # Armijo constant
_DELTA = 0.1  # approximate-Wolfe constant (Hager & Zhang use 0.1)
_MAX_TRIALS = 25  # line-search trials per iteration


def _value_and_grad(psi: Callable[[torch.Tensor], torch.Tensor], y: torch.Tensor, x: torch.Tensor, shape):
    """φ(y) = ψ(y) − ⟨x, y⟩ per sample, its gradient f(y) − x (flattened) and a noise scale for φ."""
    with torch.enable_grad():
        yy = y.detach().reshape(shape).requires_grad_(True)
        p = psi(yy)
        (g,) = torch.autograd.grad(p.sum(), yy)
    p = p.detach()
    xy = (x * y).sum(1)
    return p - xy, g.reshape(y.shape) - x, p.abs() + xy.abs()


def invert_gradient_map(
    psi: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y0: torch.Tensor | None = None,
    tol: float = 1e-5,
    max_iter: int = 500,
    history: int = 10,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Solve :math:`\nabla\psi(y) = x` for every sample by minimising :math:`\psi(y) - \langle x, y\rangle`.

    Parameters
    ----------
    psi:
        Convex potential, ``psi(y) -> (B,)`` for ``y`` of ``x``'s shape, differentiable by autograd;
        it is called on subsets of the batch (the samples still running).
    x:
        Targets ``(B, ...)``.
    y0:
        Start (default ``x``, as the authors' code).
    tol, max_iter, history:
        Stop a sample when ``‖f(y) − x‖₂ ≤ tol·√n``; at most ``max_iter`` iterations; L-BFGS memory.

    Returns
    -------
    y: ``(B, ...)`` the minimisers (detached); phi: ``(B,)`` the minimum values
    :math:`\psi(y) - \langle x, y\rangle`; residual: ``(B,)`` :math:`\|f(y) - x\|_2`;
    iterations: ``(B,)`` int64 iterations spent per sample.
    """
    shape = x.shape
    b = shape[0]
    if b == 0:
        raise ValueError(f"x is an empty batch (shape {tuple(shape)}); expected at least one image to invert at")
    xf = x.detach().reshape(b, -1)
    n = xf.shape[1]
    y = (xf if y0 is None else y0.detach().reshape(b, -1)).clone()
    threshold = tol * math.sqrt(n)
    eps = torch.finfo(x.dtype).eps
    m = history

    def evaluate(yv, idx):
        sub_shape = (len(idx),) + tuple(shape[1:])
        return _value_and_grad(psi, yv, xf[idx], sub_shape)

    all_idx = torch.arange(b, device=x.device)
    phi, g, _ = evaluate(y, all_idx)
    iters = torch.zeros(b, dtype=torch.int64, device=x.device)
    running = g.norm(dim=1) > threshold
    fails = torch.zeros(b, dtype=torch.int64, device=x.device)

    # L-BFGS memory, per sample: ring buffers of s, y pairs and 1 / sᵀy (0 = pair masked out).
    S = x.new_zeros((m, b, n))
    Yd = x.new_zeros((m, b, n))
    rho = x.new_zeros((m, b))
    count = torch.zeros(b, dtype=torch.int64, device=x.device)  # pairs stored per sample

    for _ in range(max_iter):
        idx = running.nonzero().flatten()
        if idx.numel() == 0:
            break
        ya, ga, phia = y[idx], g[idx], phi[idx]
        Sa, Ya, rhoa, ca = S[:, idx], Yd[:, idx], rho[:, idx], count[idx]
        # Two-loop recursion, newest pair first; slot of the k-th newest pair is (count - 1 - k) % m.
        q = ga.clone()
        alphas = []
        order = [((ca - 1 - k) % m) for k in range(m)]
        valid = [(ca > k) for k in range(m)]
        ar = torch.arange(len(idx), device=x.device)
        for k in range(m):
            sl, ok = order[k], valid[k]
            s_k, y_k, r_k = Sa[sl, ar], Ya[sl, ar], rhoa[sl, ar] * ok
            a = r_k * (s_k * q).sum(1)
            q = q - a[:, None] * y_k
            alphas.append(a)
        # Initial Hessian scaling γ = sᵀy / yᵀy of the newest usable pair (1 where none).
        s0, y0n, r0 = Sa[order[0], ar], Ya[order[0], ar], rhoa[order[0], ar] * valid[0]
        yy = (y0n * y0n).sum(1)
        gamma = torch.where((r0 > 0) & (yy > 0), 1.0 / (r0 * yy).clamp_min(1e-300), torch.ones_like(yy))
        r = gamma[:, None] * q
        for k in reversed(range(m)):
            sl, ok = order[k], valid[k]
            s_k, y_k, r_k = Sa[sl, ar], Ya[sl, ar], rhoa[sl, ar] * ok
            beta = r_k * (y_k * r).sum(1)
            r = r + (alphas[k] - beta)[:, None] * s_k
        d = -r
        gd = (ga * d).sum(1)
        # Steepest descent where the memory gives no descent direction (or is empty).
        fresh = (gd >= 0) | (ca == 0)
        d = torch.where(fresh[:, None], -ga, d)
        gd = torch.where(fresh, -(ga * ga).sum(1), gd)
        t = torch.ones_like(gd)
        t = torch.where(fresh, torch.clamp(1.0 / ga.abs().amax(1).clamp_min(1e-30), max=1.0), t)

        # Per-sample line search on the samples still searching.
        accepted = torch.zeros_like(fresh)
        y_new, phi_new, g_new = ya.clone(), phia.clone(), ga.clone()
        for _trial in range(_MAX_TRIALS):
            pend = (~accepted).nonzero().flatten()
            if pend.numel() == 0:
                break
            yt = ya[pend] + t[pend, None] * d[pend]
            pt, gt, scale = evaluate(yt, idx[pend])
            dt = (gt * d[pend]).sum(1)
            d0 = gd[pend]
            armijo = pt <= phia[pend] + _C1 * t[pend] * d0
            noise = 300.0 * eps * (scale + phia[pend].abs())
            approx = (dt <= (2 * _DELTA - 1) * d0) & (pt <= phia[pend] + noise)
            ok = (armijo | approx) & torch.isfinite(pt)
            okp = pend[ok]
            y_new[okp], phi_new[okp], g_new[okp] = yt[ok], pt[ok], gt[ok]
            accepted[okp] = True
            # Shrink: zero of the secant model of φ' along d, kept in [0.1 t, 0.5 t].
            bad = pend[~ok]
            if bad.numel():
                tb, d0b, dtb = t[bad], gd[bad], dt[~ok]
                sec = torch.where(dtb > d0b, tb * d0b / (d0b - dtb), 0.5 * tb)
                sec = torch.where(torch.isfinite(sec), sec, 0.5 * tb)
                t[bad] = torch.minimum(torch.maximum(sec, 0.1 * tb), 0.5 * tb)

        # Update memory for accepted samples; failed line searches drop the memory.
        acc = accepted.nonzero().flatten()
        gi = idx[acc]
        s_vec = y_new[acc] - ya[acc]
        y_vec = g_new[acc] - ga[acc]
        sy = (s_vec * y_vec).sum(1)
        usable = sy > eps * s_vec.norm(dim=1) * y_vec.norm(dim=1)
        slot = count[gi] % m
        S[slot, gi] = s_vec
        Yd[slot, gi] = y_vec
        rho[slot, gi] = torch.where(usable, 1.0 / torch.where(usable, sy, torch.ones_like(sy)), torch.zeros_like(sy))
        count[gi] += 1
        y[gi], phi[gi], g[gi] = y_new[acc], phi_new[acc], g_new[acc]
        fails[gi] = 0
        failed = idx[~accepted]
        fails[failed] += 1
        count[failed] = 0
        rho[:, failed] = 0
        iters[idx] += 1
        running = (g.norm(dim=1) > threshold) & (fails < 2)
    # Samples that ran out of iterations or stalled keep their last iterate.
    return y.reshape(shape), phi, g.norm(dim=1), iters
