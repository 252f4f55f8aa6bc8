r"""Periodic orthonormal 2-D discrete wavelet transform and the wavelet-:math:`\ell_1` prior.

One level on a side of even length :math:`N` (periodic extension, Mallat, 1989; Daubechies, 1992, "Ten
Lectures on Wavelets", ch. 6):

.. math::
    a_n = \sum_{k=0}^{L-1} h_k\, x_{(2n + k) \bmod N}, \qquad
    d_n = \sum_{k=0}^{L-1} g_k\, x_{(2n + k) \bmod N}, \qquad g_k = (-1)^k h_{L-1-k},

with :math:`h` the Daubechies scaling filter (:math:`\sum h_k = \sqrt2`, :math:`\sum h_k h_{k+2m} = \delta_m`).
The periodised filter bank is orthonormal for every even :math:`N` (also :math:`N < L`), so the synthesis is
the adjoint. In 2-D the filters act separably along H and W (``conv2d`` with stride 2 on the circularly
extended image); the adjoint is ``conv_transpose2d`` followed by folding the extension back (``index_add``).
The transform recurses on the approximation band ``levels`` times.

Coefficient layout (same shape as the image): at each level the block is split into quadrants
``[[LL, LH], [HL, HH]]``, first letter the filter along H, second along W; LL of the finest level holds the
next level. The coarsest approximation is ``c[..., :H >> levels, :W >> levels]``.

Filters (``h``, full double precision; names as in PyWavelets: ``dbN`` has N vanishing moments and 2N taps):
``haar`` (= ``db1``), ``db2`` (4 taps, :math:`h = ((1+\sqrt3), (3+\sqrt3), (3-\sqrt3), (1-\sqrt3)) / (4\sqrt2)`),
``db4`` (8 taps). db2 and db4 are the widely published 60-digit tables (Daubechies, 1988, Comm. Pure Appl.
Math. 41(7), table 1, recomputed to high precision); they agree with a 50-digit ``mpmath`` solution of the
orthonormality and vanishing-moment equations, and the tests check those equations in float64.
"""

from __future__ import annotations

import functools
import math

import torch

from ..._checks import check_choice, check_positive
from ...operators.base import LinearOperator, match
from ..base import Prior
from ._common import as_threshold, check_weight
from .sparsity import soft_threshold_unchecked

__all__ = ["WAVELETS", "wavelet_filter", "WaveletTransform", "prox_wavelet_l1", "WaveletL1"]

_HAAR = (1.0 / math.sqrt(2.0), 1.0 / math.sqrt(2.0))
_DB2 = (
    4.829629131445341433748715998644486838169524195042022752011715e-01,
    8.365163037378079055752937809168732034593703883484392934953414e-01,
    2.241438680420133810259727622404003554678835181842717613871683e-01,
    -1.294095225512603811744494188120241641745344506599652569070016e-01,
)
_DB4 = (
    2.303778133088965008632911830440708500016152482483092977910968e-01,
    7.148465705529156470899219552739926037076084010993081758450110e-01,
    6.308807679298589078817163383006152202032229226771951174057473e-01,
    -2.798376941685985421141374718007538541198732022449175284003358e-02,
    -1.870348117190930840795706727890814195845441743745800912057770e-01,
    3.084138183556076362721936253495905017031482172003403341821219e-02,
    3.288301166688519973540751354924438866454194113754971259727278e-02,
    -1.059740178506903210488320852402722918109996490637641983484974e-02,
)
_FILTERS = {"haar": _HAAR, "db1": _HAAR, "db2": _DB2, "db4": _DB4}
WAVELETS: tuple[str, ...] = tuple(_FILTERS)


def wavelet_filter(wavelet: str) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The analysis low-pass :math:`h` and high-pass :math:`g_k = (-1)^k h_{L-1-k}` filters, float64 ``(L,)``."""
    check_choice("wavelet", wavelet, WAVELETS)
    h = torch.tensor(_FILTERS[wavelet], dtype=torch.float64)
    sign = torch.tensor([(-1.0) ** k for k in range(h.numel())], dtype=torch.float64)
    return h, sign * h.flip(0)


class WaveletTransform(LinearOperator):
    r"""Orthonormal periodic 2-D DWT :math:`W` on ``(B, C, H, W)``, batched over ``B`` and ``C``.

    ``forward`` gives the coefficients in the in-place pyramid layout (same shape as the input; see the
    module docstring), ``adjoint`` is the synthesis; :math:`W^\top W = W W^\top = I`, so ``gram`` is the
    identity, ``solve_normal`` is :math:`b / (1 + \rho)` and ``norm()`` is 1. H and W must be divisible by
    ``2**levels``. Complex inputs are transformed as real and imaginary parts.

    Parameters
    ----------
    wavelet:
        ``"haar"`` (``"db1"``), ``"db2"`` or ``"db4"``.
    levels:
        Number of decomposition levels, ``>= 1``.
    """

    def __init__(self, wavelet: str = "db4", levels: int = 3):
        super().__init__((None, None, None), (None, None, None))
        lo, hi = wavelet_filter(wavelet)
        if isinstance(levels, bool) or not isinstance(levels, int):
            raise TypeError(f"levels: expected an int, got {levels!r}")
        check_positive("levels", levels)
        self.wavelet = wavelet
        self.levels = levels
        self.filter_length = lo.numel()
        bank = torch.stack([torch.outer(a, b) for a in (lo, hi) for b in (lo, hi)])  # LL, LH, HL, HH
        self.register_buffer("kernels", bank.unsqueeze(1), persistent=False)  # (4, 1, L, L)

    # ---- shape checks -------------------------------------------------------------------------
    def _check_sides(self, t: torch.Tensor, arg: str, where: str) -> None:
        m = 2**self.levels
        H, W = t.shape[-2], t.shape[-1]
        if H % m or W % m:
            raise ValueError(
                f"{where}: {arg} has spatial size {H}x{W}, but {self.levels} wavelet levels need H and W divisible "
                f"by 2**levels = {m}; crop or pad the image, or use fewer levels"
            )

    def check_input(self, x: torch.Tensor, arg: str = "x") -> torch.Tensor:
        super().check_input(x, arg)
        self._check_sides(x, arg, f"{self.name}.forward")
        return x

    def check_output(self, y: torch.Tensor, arg: str = "y") -> torch.Tensor:
        super().check_output(y, arg)
        self._check_sides(y, arg, f"{self.name}.adjoint")
        return y

    # ---- one level ----------------------------------------------------------------------------
    def _extension(self, n: int, device: torch.device) -> torch.Tensor:
        return torch.arange(n + self.filter_length - 2, device=device) % n

    def _analysis(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, h, w) -> (N, 4, h/2, w/2) bands LL, LH, HL, HH."""
        h, w = x.shape[-2:]
        xp = x.index_select(-2, self._extension(h, x.device)).index_select(-1, self._extension(w, x.device))
        return torch.nn.functional.conv2d(xp, match(self.kernels, x), stride=2)

    def _synthesis(self, bands: torch.Tensor) -> torch.Tensor:
        """Adjoint of :meth:`_analysis`: (N, 4, h/2, w/2) -> (N, 1, h, w)."""
        h, w = 2 * bands.shape[-2], 2 * bands.shape[-1]
        yp = torch.nn.functional.conv_transpose2d(bands, match(self.kernels, bands), stride=2)
        out = bands.new_zeros(yp.shape[:-2] + (h, yp.shape[-1]))
        out = out.index_add(-2, self._extension(h, bands.device), yp)
        res = bands.new_zeros(yp.shape[:-2] + (h, w))
        return res.index_add(-1, self._extension(w, bands.device), out)

    # ---- multi-level --------------------------------------------------------------------------
    def _forward_real(self, x: torch.Tensor, levels: int) -> torch.Tensor:
        bands = self._analysis(x)
        ll = bands[:, :1]
        if levels > 1:
            ll = self._forward_real(ll, levels - 1)
        top = torch.cat((ll, bands[:, 1:2]), dim=-1)
        bottom = torch.cat((bands[:, 2:3], bands[:, 3:4]), dim=-1)
        return torch.cat((top, bottom), dim=-2)

    def _adjoint_real(self, c: torch.Tensor, levels: int) -> torch.Tensor:
        h2, w2 = c.shape[-2] // 2, c.shape[-1] // 2
        ll = c[..., :h2, :w2]
        if levels > 1:
            ll = self._adjoint_real(ll, levels - 1)
        bands = torch.cat((ll, c[..., :h2, w2:], c[..., h2:, :w2], c[..., h2:, w2:]), dim=1)
        return self._synthesis(bands)

    def _batched(self, fn, t: torch.Tensor) -> torch.Tensor:
        if t.is_complex():
            return torch.complex(self._batched(fn, t.real), self._batched(fn, t.imag))
        B, C, H, W = t.shape
        return fn(t.reshape(B * C, 1, H, W), self.levels).reshape(B, C, H, W)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._batched(self._forward_real, x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._batched(self._adjoint_real, y)

    # ---- closed forms (orthonormal) -----------------------------------------------------------
    def gram(self, x: torch.Tensor) -> torch.Tensor:
        return self.check_input(x)

    def init(self, y: torch.Tensor) -> torch.Tensor:
        return self.adjoint(y)

    def solve_normal(self, b, rho, tol=None, max_iter=None, x0=None):
        r""":math:`(W^\top W + \rho I)^{-1} b = b / (1 + \rho)`."""
        self.check_input(b, "b")
        rho_t = torch.as_tensor(rho, dtype=b.real.dtype, device=b.device)
        if bool((rho_t < 0).any()):
            raise ValueError(f"rho must be >= 0, got {rho!r}")
        return b / (1.0 + rho_t)

    def norm(self, shape=None, **kwargs) -> float:
        return 1.0

    def detail_mask(self, height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Boolean ``(height, width)`` mask, ``True`` on detail coefficients, ``False`` on the coarsest approximation."""
        mask = torch.ones(height, width, dtype=torch.bool, device=device)
        mask[: height >> self.levels, : width >> self.levels] = False
        return mask

    def extra_repr(self) -> str:
        return f"wavelet={self.wavelet!r}, levels={self.levels}"


@functools.lru_cache(maxsize=32)
def _transform(wavelet: str, levels: int) -> WaveletTransform:
    return WaveletTransform(wavelet, levels)


def prox_wavelet_l1(x: torch.Tensor, thresh: float | torch.Tensor, wavelet: str = "db4", levels: int = 3) -> torch.Tensor:
    r"""Prox of :math:`t\,\|\mathrm{detail}(Wx)\|_1`: :math:`W^\top S_t(Wx)` with the coarsest approximation kept.

    :math:`W` is the orthonormal :class:`WaveletTransform`, so this is the exact prox (Donoho & Johnstone,
    1994, "Ideal spatial adaptation by wavelet shrinkage", Biometrika 81(3)). The coarsest approximation band
    ``c[..., :H >> levels, :W >> levels]`` is left unthresholded (it is not penalised), so constants and
    smooth trends pass unchanged.

    Parameters
    ----------
    x:
        Images ``(B, C, H, W)``, H and W divisible by ``2**levels``.
    thresh:
        :math:`t \ge 0`: number, per-sample tensor ``(B,)``, or tensor broadcastable to ``x``.
    wavelet, levels:
        As in :class:`WaveletTransform`.
    """
    check_choice("wavelet", wavelet, WAVELETS)
    if isinstance(levels, bool) or not isinstance(levels, int):
        raise TypeError(f"levels: expected an int, got {levels!r}")
    check_positive("levels", levels)
    return _prox_with(_transform(wavelet, levels), x, thresh, "thresh")


def _prox_with(op: WaveletTransform, x: torch.Tensor, thresh, name: str) -> torch.Tensor:
    c = op(x)
    t = as_threshold(name, thresh, x)
    mask = op.detail_mask(x.shape[-2], x.shape[-1], x.device)
    return op.adjoint(torch.where(mask, soft_threshold_unchecked(c, t), c))


class WaveletL1(Prior):
    r"""Wavelet sparsity prior :math:`g(x) = w\,\|\mathrm{detail}(Wx)\|_1` (approximation band not penalised).

    ``forward(x, tau)`` is :math:`\operatorname{prox}_{\tau g}(x) = W^\top S_{\tau w}(Wx)` on the detail
    coefficients (:func:`prox_wavelet_l1`); ``regularizer(x)`` is :math:`g(x)` per sample, ``(B,)``.
    The transform is available as ``self.transform``.
    """

    def __init__(self, weight: float = 1.0, wavelet: str = "db4", levels: int = 3):
        super().__init__()
        self.weight = check_weight("weight", weight)
        self.transform = WaveletTransform(wavelet, levels)

    def forward(self, x: torch.Tensor, tau: float | torch.Tensor = 1.0) -> torch.Tensor:
        self.transform.check_input(x)
        return _prox_with(self.transform, x, as_threshold("tau", tau, x) * self.weight, "tau")

    def regularizer(self, x: torch.Tensor) -> torch.Tensor:
        c = self.transform(x)
        mask = self.transform.detail_mask(x.shape[-2], x.shape[-1], x.device)
        return self.weight * (c.abs() * mask).flatten(1).sum(dim=1)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"
