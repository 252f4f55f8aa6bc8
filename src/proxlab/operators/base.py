r"""The :class:`LinearOperator` base, composition, and the dot-product (adjoint) test.

A linear operator :math:`A: \mathcal X \to \mathcal Y` acts on batches ``(B, *in_shape)`` and returns
``(B, *out_shape)``. Spaces are real vector spaces with the inner product
:math:`\langle a, b\rangle = \operatorname{Re}\sum_i \overline{a_i} b_i`, so a real image mapped to
complex k-space has the adjoint :math:`A^\top y = \operatorname{Re}(F^H M y)`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .._checks import check_positive, check_shape, checked_to, format_shape

__all__ = ["match", "rho_tensor", "LinearOperator", "ComposedOperator", "AdjointOperator", "inner", "adjoint_test", "conjugate_gradient"]

Shape = tuple[int | None, ...]


def match(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``t`` on ``like``'s device with ``like``'s real precision (complex stays complex); no copy if already so."""
    real = like.real.dtype if like.is_complex() else like.dtype
    if t.is_complex():
        dtype = torch.complex128 if real == torch.float64 else torch.complex64
    elif t.is_floating_point():
        dtype = real
    else:
        dtype = t.dtype
    return t.to(device=like.device, dtype=dtype)


def rho_tensor(rho, like: torch.Tensor, ndim: int | None = None) -> torch.Tensor:
    """``rho`` (float, 0-d tensor or per-sample ``(B,)`` tensor) as a tensor that broadcasts against a
    batch with ``ndim`` dims (default ``like.ndim``); raises if any value is negative or not finite."""
    real = like.real.dtype if like.is_complex() else like.dtype
    r = torch.as_tensor(rho, dtype=real, device=like.device)
    if r.ndim == 1:
        r = r.view((-1,) + (1,) * ((like.ndim if ndim is None else ndim) - 1))
    elif r.ndim > 1:
        r = r.reshape(r.shape[0], *([1] * ((like.ndim if ndim is None else ndim) - 1)))
    if not bool(torch.isfinite(r).all()) or bool((r < 0).any()):
        raise ValueError(f"rho must be finite and >= 0, got {rho!r}")
    return r


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Per-sample real inner product :math:`\operatorname{Re}\sum \bar a b` over all but the batch dim."""
    prod = a.conj() * b if (a.is_complex() or b.is_complex()) else a * b
    prod = prod.real if prod.is_complex() else prod
    return prod.flatten(1).sum(dim=1)


def conjugate_gradient(
    apply: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> torch.Tensor:
    r"""Solve :math:`M x = b` for a symmetric positive definite :math:`M` given as ``apply``.

    Batched: each sample has its own step lengths and stops contributing once its relative
    residual :math:`\|b - Mx\| / \|b\|` is below ``tol`` (Hestenes & Stiefel, 1952).
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    p = r.clone()
    rs = inner(r, r)
    bnorm = inner(b, b).sqrt().clamp_min(torch.finfo(b.real.dtype).tiny)
    shape = (-1,) + (1,) * (b.ndim - 1)
    for _ in range(max_iter):
        if bool((rs.sqrt() / bnorm <= tol).all()):
            break
        Mp = apply(p)
        pMp = inner(p, Mp)
        active = rs.sqrt() / bnorm > tol
        alpha = torch.where(active & (pMp > 0), rs / pMp.clamp_min(torch.finfo(pMp.dtype).tiny), torch.zeros_like(rs))
        x = x + alpha.view(shape) * p
        r = r - alpha.view(shape) * Mp
        rs_new = inner(r, r)
        beta = torch.where(active, rs_new / rs.clamp_min(torch.finfo(rs.dtype).tiny), torch.zeros_like(rs))
        p = r + beta.view(shape) * p
        rs = rs_new
    return x


def _nonempty(x: torch.Tensor, arg: str, where: str) -> torch.Tensor:
    if x.ndim and x.shape[0] == 0:
        raise ValueError(f"{where}: {arg} is an empty batch (shape {tuple(x.shape)}); expected at least one image")
    return x


class LinearOperator(nn.Module, abc.ABC):
    r"""Base class for linear forward models :math:`y = A x`.

    Subclasses implement ``_forward`` and ``_adjoint`` on already-checked batches and may override
    ``gram``, ``init`` and ``solve_normal`` where a cheaper or exact form exists.

    Parameters
    ----------
    in_shape, out_shape:
        Per-sample shapes (without the batch dimension). ``None`` entries accept any size.
    """

    def __init__(self, in_shape: Sequence[int | None], out_shape: Sequence[int | None]):
        super().__init__()
        self.in_shape: Shape = tuple(in_shape)
        self.out_shape: Shape = tuple(out_shape)
        self._norm_cache: dict[tuple, float] = {}

    def _load_from_state_dict(self, *args, **kwargs):
        # new buffers (a matrix, a mask) may change ‖A‖²: forget the cached power-iteration results, and let the
        # subclass forget whatever it derived from its buffers (_buffers_loaded)
        self._norm_cache.clear()
        super()._load_from_state_dict(*args, **kwargs)
        self._buffers_loaded()

    def _buffers_loaded(self) -> None:
        """Called after ``load_state_dict`` filled this operator's buffers: drop state derived from them."""

    # ---- to implement -------------------------------------------------------------------------
    @abc.abstractmethod
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`Ax` for an already-checked batch."""

    @abc.abstractmethod
    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """:math:`A^\top y` for an already-checked batch."""

    # ---- public API ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return type(self).__name__

    def check_input(self, x: torch.Tensor, arg: str = "x") -> torch.Tensor:
        return _nonempty(check_shape(arg, x, ("B",) + self.in_shape, where=f"{self.name}.forward"), arg,
                         f"{self.name}.forward")

    def check_output(self, y: torch.Tensor, arg: str = "y") -> torch.Tensor:
        return _nonempty(check_shape(arg, y, ("B",) + self.out_shape, where=f"{self.name}.adjoint"), arg,
                         f"{self.name}.adjoint")

    def to(self, *args, **kwargs):
        """``nn.Module.to``, with a clear error for a device name torch does not know (e.g. ``'gpu'``)."""
        return checked_to(super(), self, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply :math:`A` to a batch ``x`` of shape ``(B, *in_shape)``."""
        return self._forward(self.check_input(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        r"""Apply :math:`A^\top` to a batch ``y`` of shape ``(B, *out_shape)``."""
        return self._adjoint(self.check_output(y))

    # DeepInverse-compatible aliases.
    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - name fixed by convention
        return self.forward(x)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return self.adjoint(y)

    def gram(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`A^\top A x`."""
        return self._adjoint(self._forward(self.check_input(x)))

    def init(self, y: torch.Tensor) -> torch.Tensor:
        r"""A cheap first estimate of ``x`` from ``y``; :math:`A^\top y` unless overridden."""
        return self.adjoint(y)

    def solve_normal(self, b: torch.Tensor, rho: float | torch.Tensor, tol: float = 1e-6, max_iter: int = 100,
                     x0: torch.Tensor | None = None) -> torch.Tensor:
        r"""Solve :math:`(A^\top A + \rho I)\,x = b`.

        Operators with a closed form (masks, FFT blurs, MRI, orthonormal-row CS) override this and
        ignore ``tol``, ``max_iter`` and ``x0``; the default runs batched conjugate gradient to
        relative residual ``tol``, warm-started from ``x0`` when given (iterative solvers pass
        their previous iterate).
        """
        self.check_input(b, "b")
        rho_t = rho_tensor(rho, b)
        return conjugate_gradient(lambda v: self.gram(v) + rho_t * v, b, x0=x0, tol=tol, max_iter=max_iter)

    def norm(self, shape: Sequence[int] | None = None, max_iter: int = 200, tol: float = 1e-7, seed: int = 0) -> float:
        r""":math:`\|A\|_2^2` (largest eigenvalue of :math:`A^\top A`) by power iteration; cached.

        ``shape`` is a per-sample input shape; needed only when ``in_shape`` has free dimensions.
        """
        shape = tuple(shape) if shape is not None else self.in_shape
        if any(s is None for s in shape):
            raise ValueError(
                f"{self.name}.norm: shape must be given for an operator with free input dims {format_shape(self.in_shape)}"
            )
        key = (shape, max_iter, tol, seed)
        if key not in self._norm_cache:
            dtype, device = self._buffer_dtype_device()
            g = torch.Generator(device="cpu").manual_seed(seed)
            x = torch.randn((1,) + shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
            x = x / x.norm()
            lam = 0.0
            with torch.no_grad():
                for _ in range(max_iter):
                    z = self.gram(x)
                    lam_new = float(inner(x, z).item())
                    x = z / z.norm().clamp_min(1e-30)
                    if abs(lam_new - lam) <= tol * max(abs(lam_new), 1e-30):
                        lam = lam_new
                        break
                    lam = lam_new
            self._norm_cache[key] = lam
        return self._norm_cache[key]

    def _buffer_dtype_device(self) -> tuple[torch.dtype, torch.device]:
        for b in self.buffers():
            if b.is_floating_point():
                return b.dtype, b.device
        for b in self.buffers():
            return torch.float32, b.device
        return torch.float32, torch.device("cpu")

    def __matmul__(self, other: LinearOperator) -> ComposedOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return ComposedOperator(self, other)

    @property
    def T(self) -> AdjointOperator:  # noqa: N802
        """The adjoint as an operator of its own."""
        return AdjointOperator(self)

    def extra_repr(self) -> str:
        return f"in_shape={format_shape(self.in_shape)}, out_shape={format_shape(self.out_shape)}"


class ComposedOperator(LinearOperator):
    r""":math:`(A \circ B) x = A(Bx)`, adjoint :math:`B^\top A^\top`. Built by ``A @ B``."""

    def __init__(self, outer: LinearOperator, inner_op: LinearOperator):
        if len(outer.in_shape) != len(inner_op.out_shape) or any(
            a is not None and b is not None and a != b for a, b in zip(outer.in_shape, inner_op.out_shape)
        ):
            raise ValueError(
                f"cannot compose {outer.name} with in_shape={format_shape(outer.in_shape)} after "
                f"{inner_op.name} with out_shape={format_shape(inner_op.out_shape)}"
            )
        super().__init__(inner_op.in_shape, outer.out_shape)
        self.outer = outer
        self.inner_op = inner_op

    @property
    def name(self) -> str:
        return f"({self.outer.name} @ {self.inner_op.name})"

    def _forward(self, x):
        return self.outer._forward(self.inner_op._forward(x))

    def _adjoint(self, y):
        return self.inner_op._adjoint(self.outer._adjoint(y))


class AdjointOperator(LinearOperator):
    r"""The operator :math:`A^\top`, whose adjoint is :math:`A`."""

    def __init__(self, op: LinearOperator):
        super().__init__(op.out_shape, op.in_shape)
        self.op = op

    @property
    def name(self) -> str:
        return f"{self.op.name}.T"

    def _forward(self, x):
        return self.op._adjoint(x)

    def _adjoint(self, y):
        return self.op._forward(y)


def adjoint_test(
    op: LinearOperator,
    x_shape: Sequence[int] | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
    batch: int = 2,
    seed: int = 0,
) -> float:
    r"""Dot-product test: the relative error :math:`|\langle Ax, y\rangle - \langle x, A^\top y\rangle| / (\|Ax\|\|y\|)`.

    ``x`` and ``y`` are standard normal (``y`` complex when ``A x`` is). ``x_shape`` is the
    per-sample input shape, required when the operator has free input dimensions. A correct
    adjoint gives about ``1e-15`` in float64 and ``1e-7`` in float32.
    """
    x_shape = tuple(x_shape) if x_shape is not None else op.in_shape
    if any(s is None for s in x_shape):
        raise ValueError(f"adjoint_test: x_shape must be given for {op.name} with free input dims {format_shape(op.in_shape)}")
    check_positive("batch", batch)
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn((batch,) + tuple(x_shape), generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    with torch.no_grad():
        Ax = op(x)
        if Ax.is_complex():
            y = torch.complex(
                torch.randn(Ax.shape, generator=g, dtype=torch.float64), torch.randn(Ax.shape, generator=g, dtype=torch.float64)
            ).to(dtype=Ax.dtype, device=Ax.device)
        else:
            y = torch.randn(Ax.shape, generator=g, dtype=torch.float64).to(dtype=Ax.dtype, device=Ax.device)
        ATy = op.adjoint(y)
        if ATy.shape != x.shape:
            raise ValueError(f"adjoint_test: {op.name}.adjoint returned shape {tuple(ATy.shape)}, expected {tuple(x.shape)}")
        lhs = inner(Ax, y).sum()
        rhs = inner(x, ATy).sum()
        scale = (Ax.abs().norm() * y.abs().norm()).clamp_min(torch.finfo(x.dtype).tiny)
    return float((lhs - rhs).abs() / scale)
