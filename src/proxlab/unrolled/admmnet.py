r"""Deep ADMM-Net (Yang, Sun, Li & Xu, NIPS 2016) for compressive-sensing MRI, as the authors released it.

The network unrolls ADMM for :math:`\min_x \tfrac12\|P F x - y\|^2 + \sum_l \lambda_l g(D_l x)` with the
splitting :math:`z_l = D_l x`. Stage :math:`n = 1, \dots, N` (from :math:`z_l = \beta_l = 0`):

.. math::
    x^{(n)} &= \operatorname{Re} F^{-1}\Big[\big(P + \textstyle\sum_l \rho_l |\hat h_l|^2\big)^{-1}
              \big(y + F \textstyle\sum_l \rho_l H_l^\top (z_l - \beta_l)\big)\Big]
              &&\text{(reconstruction layer)}\\
    c_l &= D_l x^{(n)} &&\text{(convolution layer)}\\
    z_l &= \mathrm{PLF}_l(c_l + \beta_l) &&\text{(nonlinear transform layer)}\\
    \beta_l &\leftarrow \beta_l + \eta_l (c_l - z_l) &&\text{(multiplier update layer)}

and the output is one more reconstruction layer :math:`x^{(N+1)}` from the last :math:`z, \beta`. Every stage,
and the last reconstruction layer, has its own parameters:

- ``rec_gamma[n] (L, s²-1)``, ``rec_rho[n] (L,)``: the reconstruction layer's filters :math:`H_l` and penalties
  :math:`\rho_l`;
- ``conv_gamma[n] (L, s²-1)``: the convolution layer's filters :math:`D_l` (not tied to :math:`H_l`);
- ``plf_values[n] (L, 101)``: the values of the piecewise-linear function :math:`\mathrm{PLF}_l` at the fixed
  positions :math:`p_k = -1 + 0.02k` (linear in between; outside :math:`[-1, 1]` it continues with slope 1 from
  the end values, :math:`\mathrm{PLF}(t) = t - p_{end} + q_{end}`, as the authors' compiled ``nnlinemex`` does);
- ``eta[n] (L,)``: the multiplier update rates :math:`\eta_l`.

A filter is a combination of the :math:`s^2 - 1` non-DC 2-D DCT bases of size :math:`s \times s` (``filter_size``):
:math:`H_l = \sum_m \gamma_{l,m} B_m`, with :math:`B_m` row :math:`m` of ``kron(dctmtx(s), dctmtx(s))``
reshaped column-major (MATLAB's ``filter_base.m``), see :func:`dct_filter_bases`. Convolutions are circular
(``imfilter(.., 'same', 'circular', 'conv')``) and :math:`H_l^\top` is the correlation with :math:`H_l`; the
Fourier solve uses :math:`|\hat h_l|^2 = |\mathrm{psf2otf}(H_l)|^2`, and a frequency where the denominator is
exactly 0 gets 1e-6, as the authors' code does. The DCT-basis filters have no DC response, so the mask must sample
DC (it is refused otherwise). The mask :math:`P` enters the denominator as it is (0/1); with the
pseudo-radial masks (conjugate-symmetric) the real part of the complex solve is the exact minimiser over real
images.

Measurements (``norm``): ``"backward"``, the authors' convention, :math:`y = P \odot \mathrm{fft2}(x)` with the
unnormalised DFT (``torch.fft.fft2(x)``) and :math:`P` in ``fft2`` layout (``ifftshift`` of a centred mask);
``"ortho"``: :math:`y = P \odot \mathrm{fft2}(x, \text{norm="ortho"})`, what :class:`proxlab.operators.MRI`
measures. The two give the same image: the authors' solve is the orthonormal one applied to
:math:`y / \sqrt{HW}`. The output is the real image :math:`x^{(N+1)}` (the authors score ``abs`` of it).

Stages are counted as full iterations (X, C, Z, M); the released ``net-stage{7,14,15}.mat`` hold 9, 16 and 17 of
them (their names count the middle stages, between the first and the last full one), each followed by the last
reconstruction layer. Initialisation (:meth:`ADMMNet.init_net`, InitNet.m): :math:`\gamma = I`, :math:`\rho_l = 0.2`,
:math:`\eta_l = 1.6`, PLF = soft-thresholding at 0.05.
"""

from __future__ import annotations

import math
import numbers
import os

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_choice, check_tensor

__all__ = ["ADMMNet", "dct_filter_bases", "piecewise_linear", "NORMS"]

#: Measurement conventions of :class:`ADMMNet` (see the module docstring).
NORMS = ("backward", "ortho")


def dct_matrix(n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The orthonormal DCT-II matrix (MATLAB's ``dctmtx(n)``): row ``k`` is the ``k``-th cosine."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    d = torch.cos(math.pi * (2 * j + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] = math.sqrt(1.0 / n)
    return d.to(dtype)


def dct_filter_bases(size: int = 3, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The ``size² - 1`` non-DC 2-D DCT bases ``(size² - 1, size, size)``, in the order of the authors'
    ``filter_base.m``: basis ``r`` (rows ``r = a·size + b`` of ``kron(D, D)``, ``r ≥ 1``) is
    ``outer(D[b], D[a])``, the row reshaped column-major."""
    d = dct_matrix(size)
    rows = [torch.outer(d[r % size], d[r // size]) for r in range(1, size * size)]
    return torch.stack(rows).to(dtype)


def piecewise_linear(t: torch.Tensor, values: torch.Tensor, low: float = -1.0, high: float = 1.0,
                     slopes: torch.Tensor | None = None) -> torch.Tensor:
    r"""The learned piecewise-linear function, one per channel: ``t (N, L, H, W)``, ``values (L, M)`` at the ``M``
    equispaced positions of ``[low, high]``; linear between them, slope 1 beyond the ends
    (:math:`t - p_0 + q_0` below, :math:`t - p_{M-1} + q_{M-1}` above), or the slopes ``slopes (L, 2)``
    (below, above) when given. Differentiable in ``t``, ``values`` and ``slopes``: its own backward keeps only
    ``t`` for autograd (no index or mask tensors), so a deep ADMM-Net trains in a fraction of the memory."""
    if slopes is None:
        slopes = torch.ones(values.shape[0], 2, dtype=values.dtype, device=values.device)
    return _PiecewiseLinear.apply(t, values, slopes, float(low), float(high))


def _plf_parts(t: torch.Tensor, L: int, M: int, low: float, high: float):
    """Where each entry of ``t`` falls: interval ``k`` (clamped into range), its fraction, below / above flags."""
    step = (high - low) / (M - 1)
    u = (t - low) / step
    k = torch.floor(u).clamp_(0, M - 2)
    frac = u - k
    idx = k.long() + (torch.arange(L, device=t.device) * M).view(1, L, 1, 1)
    return idx, frac, u < 0, u >= M - 1, step


class _PiecewiseLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t, values, slopes, low, high):
        L, M = values.shape
        idx, frac, below, above, _ = _plf_parts(t, L, M, low, high)
        flat = values.reshape(-1)
        q0 = flat[idx]
        inside = q0 + (flat[idx + 1] - q0) * frac
        out = torch.where(below, (t - low) * slopes[:, 0].view(1, L, 1, 1) + values[:, 0].view(1, L, 1, 1), inside)
        out = torch.where(above, (t - high) * slopes[:, 1].view(1, L, 1, 1) + values[:, -1].view(1, L, 1, 1), out)
        ctx.save_for_backward(t, values, slopes)
        ctx.low, ctx.high = low, high
        return out

    @staticmethod
    def backward(ctx, g):
        t, values, slopes = ctx.saved_tensors
        low, high = ctx.low, ctx.high
        L, M = values.shape
        idx, frac, below, above, step = _plf_parts(t, L, M, low, high)
        inside = ~(below | above)
        flat = values.reshape(-1)
        zero = g.new_zeros(())
        grad_t = grad_values = grad_slopes = None
        if ctx.needs_input_grad[0]:
            slope_in = (flat[idx + 1] - flat[idx]) / step
            grad_t = torch.where(below, slopes[:, 0].view(1, L, 1, 1),
                                 torch.where(above, slopes[:, 1].view(1, L, 1, 1), slope_in)) * g
        if ctx.needs_input_grad[1]:
            g_in = torch.where(inside, g, zero)
            acc = torch.zeros(L * M, dtype=g.dtype, device=g.device)
            acc.index_add_(0, idx.reshape(-1), (g_in * (1 - frac)).reshape(-1))
            acc.index_add_(0, (idx + 1).reshape(-1), (g_in * frac).reshape(-1))
            grad_values = acc.view(L, M)
            grad_values[:, 0] += torch.where(below, g, zero).sum((0, 2, 3))
            grad_values[:, -1] += torch.where(above, g, zero).sum((0, 2, 3))
        if ctx.needs_input_grad[2]:
            grad_slopes = torch.stack([torch.where(below, g * (t - low), zero).sum((0, 2, 3)),
                                       torch.where(above, g * (t - high), zero).sum((0, 2, 3))], dim=1)
        return grad_t, grad_values, grad_slopes, None, None


def soft_threshold_values(positions: torch.Tensor, threshold: float) -> torch.Tensor:
    """Soft-thresholding at ``threshold`` evaluated at ``positions`` (InitNet.m's ``nnsoft``)."""
    return torch.sign(positions) * (positions.abs() - abs(threshold)).clamp_min(0)


def _int_at_least(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)



def checked_kspace(where: str, y, shape, real_dtype: torch.dtype) -> torch.Tensor:
    """``y`` checked as complex k-space ``(B, C, H, W)`` on the mask's grid ``shape``, cast to the complex dtype
    of ``real_dtype``; a clear error naming ``where`` otherwise."""
    y = check_tensor("y", y)
    H, W = shape
    if y.ndim != 4 or tuple(y.shape[-2:]) != (H, W):
        raise ValueError(f"{where}: y must have shape (B, C, {H}, {W}) (the mask's k-space grid), got shape "
                         f"{tuple(y.shape)}")
    if not y.is_complex():
        raise TypeError(f"{where}: y must be complex k-space, got dtype {y.dtype}")
    return y.to(torch.complex128 if real_dtype == torch.float64 else torch.complex64)

class ADMMNet(nn.Module):
    r"""Deep ADMM-Net for single-coil Cartesian MRI (see the module docstring for the maths and conventions).

    Parameters
    ----------
    mask:
        ``(H, W)`` 0/1 sampling mask in ``fft2`` layout (DC at ``[0, 0]``); ``centered=True`` for a mask with DC
        in the middle (the authors' mask files), which is ``ifftshift``-ed.
    stages:
        Number of full stages (reconstruction, convolution, nonlinear transform, multiplier update); one more
        reconstruction layer follows them.
    filters, filter_size:
        :math:`L` filters of size :math:`s \times s` (odd), each a combination of the :math:`s^2-1` DCT bases.
    norm:
        ``"backward"`` (the authors' unnormalised ``fft2``) or ``"ortho"`` (:class:`proxlab.operators.MRI`).
    rho, eta, threshold:
        InitNet.m's start: :math:`\rho_l`, :math:`\eta_l`, and the PLF as soft-thresholding at ``threshold``;
        the filters start as the first :math:`L` bases (:math:`\gamma = I`).
    plf_points:
        Number of PLF positions on :math:`[-1, 1]` (101: spacing 0.02).
    """

    def __init__(self, mask: torch.Tensor, stages: int, filters: int = 8, filter_size: int = 3, norm: str = "backward",
                 rho: float = 0.2, eta: float = 1.6, threshold: float = 0.05, plf_points: int = 101,
                 centered: bool = False, dtype: torch.dtype | None = None):
        super().__init__()
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        mask = check_tensor("mask", mask)
        if mask.ndim != 2 or mask.is_complex():
            raise ValueError(f"mask must be a real (H, W) tensor, got shape {tuple(mask.shape)} and dtype {mask.dtype}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"mask must hold only 0 and 1, got values in [{float(mask.min())}, {float(mask.max())}]")
        self.stages = _int_at_least("stages", stages, 1)
        self.filters = _int_at_least("filters", filters, 1)
        filter_size = _int_at_least("filter_size", filter_size, 2)
        if filter_size % 2 == 0:
            raise ValueError(f"filter_size must be odd (a centred kernel), got {filter_size}")
        self.filter_size = filter_size
        self.norm = check_choice("norm", norm, NORMS)
        rho, eta, threshold = _number("rho", rho), _number("eta", eta), _number("threshold", threshold)
        plf_points = _int_at_least("plf_points", plf_points, 2)
        mask = mask.to(dtype)
        if centered:
            mask = torch.fft.ifftshift(mask)
        if float(mask[0, 0]) != 1:
            raise ValueError("mask must sample the DC frequency (mask[0, 0] = 1 in fft2 layout; the centre with "
                             "centered=True): the DCT-basis filters have no DC response, so without it the "
                             "reconstruction layer cannot determine the image mean")
        H, W = mask.shape
        if H < filter_size or W < filter_size:
            raise ValueError(f"mask must be at least filter_size×filter_size = {filter_size}×{filter_size}, "
                             f"got shape {(H, W)}")
        self.register_buffer("mask", mask)
        n_bases, L, K = filter_size * filter_size - 1, self.filters, self.stages
        gamma = torch.eye(L, n_bases, dtype=dtype)  # InitNet.m: eye(s-1, L), here one row per filter
        self.rec_gamma = nn.Parameter(gamma.repeat(K + 1, 1, 1))
        self.rec_rho = nn.Parameter(torch.full((K + 1, L), rho, dtype=dtype))
        self.conv_gamma = nn.Parameter(gamma.repeat(K, 1, 1))
        positions = torch.linspace(-1.0, 1.0, plf_points, dtype=torch.float64)
        self.plf_values = nn.Parameter(soft_threshold_values(positions, threshold).to(dtype).repeat(K, L, 1))
        self.eta = nn.Parameter(torch.full((K, L), eta, dtype=dtype))

    @classmethod
    def init_net(cls, mask: torch.Tensor, stages: int, filters: int = 8, filter_size: int = 3, norm: str = "backward",
                 rho: float = 0.2, eta: float = 1.6, threshold: float = 0.05, plf_points: int = 101,
                 centered: bool = False, dtype: torch.dtype | None = None) -> "ADMMNet":
        """The authors' InitNet.m start (the ADMM of the baseline CS-MRI model with DCT-basis sparsity): identity
        filter coefficients, :math:`\\rho = 0.2`, :math:`\\eta = 1.6`, PLF = soft-threshold at 0.05."""
        return cls(mask, stages, filters, filter_size, norm=norm, rho=rho, eta=eta, threshold=threshold,
                   plf_points=plf_points, centered=centered, dtype=dtype)

    # --- the layers -------------------------------------------------------------------------------------------
    def filter_bank(self, gamma: torch.Tensor) -> torch.Tensor:
        """Filters ``(L, s, s)`` from coefficients ``gamma (L, s²-1)`` over the DCT bases."""
        # the bases are made in float64 each time (a few numbers), so .double() after float32 loses nothing
        bases = dct_filter_bases(self.filter_size).to(device=gamma.device, dtype=gamma.dtype)
        return torch.einsum("lm,mij->lij", gamma, bases)

    def _pad(self, v: torch.Tensor) -> torch.Tensor:
        p = self.filter_size // 2
        return F.pad(v, (p, p, p, p), mode="circular")

    def convolve(self, x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        """Circular convolution ``(N, 1, H, W) -> (N, L, H, W)`` with the filters of ``gamma`` (imfilter 'conv')."""
        kernels = self.filter_bank(gamma).flip(-2, -1)  # conv2d correlates: flip for a convolution
        return F.conv2d(self._pad(x), kernels[:, None])

    def reconstruct(self, y: torch.Tensor, v: torch.Tensor | None, gamma: torch.Tensor,
                    rho: torch.Tensor) -> torch.Tensor:
        r"""The reconstruction layer: :math:`\operatorname{Re} F^{-1}[(y + F\sum_l\rho_l H_l^\top v_l) /
        (P + \sum_l\rho_l|\hat h_l|^2)]` with orthonormal :math:`F`, ``y (N, 1, H, W)`` complex (orthonormal
        convention, masked), ``v = z - β (N, L, H, W)`` or ``None`` (zero, the first stage)."""
        kernels = self.filter_bank(gamma)
        H, W = y.shape[-2:]
        s = self.filter_size
        padded = kernels.new_zeros(kernels.shape[0], H, W)
        padded[:, :s, :s] = kernels
        otf2 = torch.fft.fft2(padded).abs().pow(2)  # |psf2otf(H_l)|²: the shift to the centre is a phase
        denom = self.mask.to(otf2.dtype) + (rho[:, None, None] * otf2).sum(0)
        denom = torch.where(denom == 0, torch.full_like(denom, 1e-6), denom)
        num = y
        if v is not None:  # Σ_l ρ_l H_lᵀ v_l: correlation with H_l, one conv2d over the L channels
            back = F.conv2d(self._pad(v), (rho[:, None, None] * kernels)[None])
            num = num + torch.fft.fft2(back, norm="ortho")
        return torch.fft.ifft2(num / denom, norm="ortho").real

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(B, C, H, W)`` real images from k-space ``y (B, C, H, W)`` (complex; the convention of
        ``norm``; entries outside the mask are ignored)."""
        y = checked_kspace("ADMMNet.forward", y, self.mask.shape, self.rec_rho.dtype)
        H, W = self.mask.shape
        B, C = y.shape[:2]
        y = y.reshape(B * C, 1, H, W) * self.mask
        if self.norm == "backward":
            y = y / math.sqrt(H * W)
        z = beta = None
        for n in range(self.stages):
            x = self.reconstruct(y, None if z is None else z - beta, self.rec_gamma[n], self.rec_rho[n])
            c = self.convolve(x, self.conv_gamma[n])
            z = piecewise_linear(c if beta is None else c + beta, self.plf_values[n])
            eta = self.eta[n].view(1, -1, 1, 1)
            beta = eta * (c - z) if beta is None else beta + eta * (c - z)
        x = self.reconstruct(y, z - beta, self.rec_gamma[self.stages], self.rec_rho[self.stages])
        return x.reshape(B, C, H, W)

    # --- the authors' files -----------------------------------------------------------------------------------
    @classmethod
    def from_matlab(cls, path: str | os.PathLike, mask, norm: str = "backward",
                    dtype: torch.dtype = torch.float64) -> "ADMMNet":
        """Load a trained net of the authors' MATLAB code (``net-stage{7,14,15}.mat``: v7.3/HDF5 or v5).

        ``mask``: the sampling mask the net was trained with (the net file does not hold it; the authors' code
        reads ``mask.mat``): a ``(H, W)`` tensor in ``fft2`` layout, a mask ``.mat`` file (ISTA-Net's corner layout
        or the authors' centred one, see :meth:`proxlab.operators.MRI.from_mat`) or an :class:`~proxlab.operators.MRI`.
        ``dtype``: the parameters' dtype (default float64, the authors' double precision).
        """
        from ._admmnet_io import read_matlab_net

        stages = read_matlab_net(path)
        mask = _mask_of(mask)
        L, n_bases = stages["rec_gamma"].shape[1:]
        size = math.isqrt(n_bases + 1)
        plf_points = stages["plf_values"].shape[-1]
        net = cls(mask, stages["rec_gamma"].shape[0] - 1, filters=L, filter_size=size, norm=norm,
                  plf_points=plf_points, dtype=dtype)
        with torch.no_grad():
            for name, value in stages.items():
                getattr(net, name).copy_(value.to(dtype))
        return net

    def extra_repr(self) -> str:
        return (f"stages={self.stages}, filters={self.filters}, filter_size={self.filter_size}, "
                f"size={tuple(self.mask.shape)}, ratio={float(self.mask.mean()):.4f}, norm={self.norm!r}")


def _mask_of(mask) -> torch.Tensor:
    from ..operators.mri import MRI

    if isinstance(mask, MRI):
        return mask.mask.detach().clone()
    if isinstance(mask, (str, os.PathLike)):
        return MRI.from_mat(mask).mask.clone()
    if isinstance(mask, torch.Tensor):
        return mask.detach().clone()
    raise TypeError(f"mask: expected an (H, W) tensor in fft2 layout, a mask .mat path or an MRI operator, "
                    f"got {type(mask).__name__}")
