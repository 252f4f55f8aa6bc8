r"""ADMM-CSNet (Yang, Sun, Li & Xu, IEEE TPAMI 2018), the generic successor of Deep ADMM-Net, for CS-MRI.

The network unrolls ADMM for :math:`\min_x \tfrac12\|A x - y\|^2 + g(z)` s.t. :math:`x = z`, with
:math:`A = P F` (:class:`~proxlab.operators.MRI`: mask :math:`P`, orthonormal DFT :math:`F`, real images) and the
z-step replaced by a learned residual block. Stage :math:`n = 1, \dots, N` (from :math:`z = \beta = 0`):

.. math::
    x &= \arg\min_x \tfrac12\|A x - y\|^2 + \tfrac{\rho_n}2 \|x - (z - \beta)\|^2
       = (A^\top A + \rho_n I)^{-1}\big(A^\top y + \rho_n (z - \beta)\big)
       &&\text{(reconstruction)}\\
    u &= x + \beta, \qquad z = u - C_2\,\mathrm{PLF}(C_1 u) &&\text{(denoising block)}\\
    \beta &\leftarrow \beta + \eta_n (x - z) &&\text{(multiplier update)}

and the output is one more reconstruction from the last :math:`z, \beta`, followed (``final_dc=True``) by a hard
data-consistency step. :math:`C_1` is a ``kernel × kernel`` convolution 1 → ``filters`` maps, :math:`C_2` one
``filters`` → 1 (zero padding, with biases, as the authors' PyTorch port), and :math:`\mathrm{PLF}` applies one
learned piecewise-linear function per map (:class:`PiecewiseLinear`: values at ``plf_points`` equispaced knots
on :math:`[-1, 1]`, linear between them, a learned slope below and above; started as a ReLU).

The reconstruction is the exact Fourier solve of :meth:`proxlab.operators.MRI.solve_normal`:
:math:`x = \operatorname{Re} F^{-1}[F(A^\top y + \rho v) / (P_s + \rho)]` with the symmetrised mask
:math:`P_s(k) = (P(k) + P(-k))/2`, the minimiser over *real* images. For a conjugate-symmetric mask (the
pseudo-radial ones) and noiseless :math:`y` this is the paper's :math:`F^{-1}[(P + \rho)^{-1}(y + \rho F v)]`;
for a mask that is not (random Cartesian columns) the paper's complex formula would not give a real image.

The hard data-consistency step replaces the output's k-space on the sampled frequencies by the measured one,
:math:`\hat x = \operatorname{Re} F^{-1}[P_u \hat y + (1 - P_u) F x]`, with :math:`P_u(k) = \max(P(k), P(-k))`
and :math:`\hat y = F(A^\top y) / P_s` the Hermitian completion of :math:`y` (:math:`y` on :math:`P`,
:math:`\overline{y(-k)}` where only :math:`-k` is sampled, their mean where both are). For noiseless
measurements of a real image :math:`A \hat x = y` exactly and :math:`\hat x` is the real image nearest to
:math:`x` that agrees with :math:`y`; with a symmetric mask it is the port's :math:`F^{-1}[y + (1-P) F x]`.

Stages: ``tied=False`` (the MATLAB version) gives every stage its own :math:`\rho_n, \eta_n, C_1, C_2,
\mathrm{PLF}`; ``tied=True`` (the authors' PyTorch port) shares one set across all stages and the final
reconstruction. With ``final_dc=True`` the final reconstruction's :math:`\rho` has no effect (off the sampled
frequencies of :math:`P_u` that reconstruction is :math:`F(z - \beta)` whatever :math:`\rho`, and on them the
data-consistency step overwrites it), so it uses the last stage's; with ``final_dc=False`` an untied net learns
a separate one. Parameters, with :math:`F` = ``filters``, :math:`k` =
``kernel``, :math:`M` = ``plf_points``:

.. math::
    p_\text{stage} = \underbrace{(F k^2 + F)}_{C_1} + \underbrace{F (M + 2)}_{\mathrm{PLF}}
                     + \underbrace{(F k^2 + 1)}_{C_2} + \underbrace{2}_{\rho, \eta}
                   = 2 F k^2 + F (M + 3) + 3,

``tied=True``: :math:`p_\text{stage}` (19,715 for 128 maps of 5×5 and 101 knots: the port's count, its PLF
parametrised by 102 slopes and a bias per map); ``tied=False``: :math:`N p_\text{stage}` (197,150 for
10 stages), one more with ``final_dc=False``. ``bias=False`` removes the :math:`F + 1` conv biases from each stage.

The penalties are learned as :math:`\rho = \mathrm{softplus}(r)`, so they stay > 0 (the convention of proxlab's
unrolled networks; :math:`\|A\|^2 = 1` for a 0/1 mask); the port learns :math:`\rho` directly. :math:`\eta` is
learned directly, as in the port. Start (the paper): :math:`\rho = 0.1`, :math:`\eta = 1`, PLF = ReLU, zero biases
and He-normal convolutions (fan-in, gain :math:`\sqrt2`; ``conv_init="he"``). With 128 maps the He start makes
each block's correction :math:`C_2\,\mathrm{PLF}(C_1 u)` of the order of the image itself, so the untrained net is
far from the data; ``conv_init="port"`` draws both convolutions from :math:`\mathcal N(0, 0.025^2)`, as the port
does, and starts close to the data-term iteration. The authors train with NMSE :math:`\|\hat x - x\|/\|x\|`,
Adam at 2e-3 halved every 50 epochs, weight decay 1e-4.

k-space (``norm``): ``"ortho"`` (default), :math:`y = P \odot \mathrm{fft2}(x, \text{norm="ortho"})` as
:class:`~proxlab.operators.MRI` measures; ``"backward"``, the port's :math:`y = P \odot \mathrm{fft2}(x)`, which
is divided by :math:`\sqrt{HW}`. The port's pairs of unnormalised ``fft2``/``ifft2`` make its network the same
in both conventions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_choice
from ..operators.mri import MRI
from ..solvers.steps import PARAMETRISATIONS
from .admmnet import NORMS, _int_at_least, _mask_of, _number, checked_kspace, piecewise_linear

__all__ = ["ADMMCSNet", "ADMMCSNetStage", "PiecewiseLinear", "CONV_INITS"]

#: Starts of the convolutions of :class:`ADMMCSNet`: ``"he"`` (the paper) or ``"port"`` (N(0, 0.025²)).
CONV_INITS = ("he", "port")

_SOFTPLUS, _INV_SOFTPLUS = PARAMETRISATIONS["softplus"][:2]


def _penalty(value: float, dtype: torch.dtype) -> nn.Parameter:
    """The raw parameter r of a penalty rho = softplus(r) that starts at ``value``."""
    return nn.Parameter(torch.tensor(_INV_SOFTPLUS(value), dtype=dtype))


class PiecewiseLinear(nn.Module):
    r"""One learned piecewise-linear function per channel, applied to ``t (N, L, H, W)``.

    ``values (L, M)`` at the knots :math:`p_k = \text{low} + k\,(\text{high} - \text{low})/(M-1)`, linear between
    them; beyond the ends it continues with the learned ``slopes (L, 2)`` (below, above):
    :math:`q_0 + s_0 (t - p_0)` and :math:`q_{M-1} + s_1 (t - p_{M-1})` (see
    :func:`proxlab.unrolled.admmnet.piecewise_linear`). Started as a ReLU: :math:`q_k = \max(p_k, 0)`, slopes 0, 1.
    """

    def __init__(self, channels: int, points: int = 101, low: float = -1.0, high: float = 1.0,
                 dtype: torch.dtype | None = None):
        super().__init__()
        dtype = torch.get_default_dtype() if dtype is None else dtype
        self.channels = _int_at_least("channels", channels, 1)
        points = _int_at_least("plf_points", points, 2)
        self.low, self.high = _number("low", low), _number("high", high)
        if not self.low < self.high:
            raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
        knots = self.knots(points, torch.float64)
        self.values = nn.Parameter(knots.clamp_min(0).to(dtype).repeat(self.channels, 1))
        self.slopes = nn.Parameter(torch.tensor([0.0, 1.0], dtype=dtype).repeat(self.channels, 1))

    def knots(self, points: int | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The ``M`` fixed knot positions on ``[low, high]``."""
        points = self.values.shape[-1] if points is None else points
        dtype = self.values.dtype if dtype is None else dtype
        return torch.linspace(self.low, self.high, points, dtype=torch.float64).to(dtype)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if t.ndim != 4 or t.shape[1] != self.channels:
            raise ValueError(f"PiecewiseLinear: t must have shape (N, {self.channels}, H, W), got shape "
                             f"{tuple(t.shape)}")
        return piecewise_linear(t, self.values, self.low, self.high, self.slopes)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, points={self.values.shape[-1]}, range=[{self.low}, {self.high}]"


class ADMMCSNetStage(nn.Module):
    r"""The learned parts of one stage: the penalty :math:`\rho = \mathrm{softplus}(\text{rho_raw})`, ``eta``
    (0-d), ``conv1`` (1 → F), ``plf`` (F functions), ``conv2`` (F → 1). ``denoise(u)`` is
    :math:`u - C_2\,\mathrm{PLF}(C_1 u)`."""

    def __init__(self, filters: int, kernel: int, plf_points: int, rho: float, eta: float, bias: bool,
                 dtype: torch.dtype, conv_init: str = "he"):
        super().__init__()
        self.rho_raw = _penalty(rho, dtype)
        self.eta = nn.Parameter(torch.tensor(eta, dtype=dtype))
        self.conv1 = nn.Conv2d(1, filters, kernel, padding=kernel // 2, bias=bias, dtype=dtype)
        self.plf = PiecewiseLinear(filters, plf_points, dtype=dtype)
        self.conv2 = nn.Conv2d(filters, 1, kernel, padding=kernel // 2, bias=bias, dtype=dtype)
        for conv in (self.conv1, self.conv2):
            if conv_init == "he":
                nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            else:
                nn.init.normal_(conv.weight, std=0.025)
            if bias:
                nn.init.zeros_(conv.bias)

    @property
    def rho(self) -> torch.Tensor:
        r"""The stage's penalty :math:`\rho > 0`."""
        return _SOFTPLUS(self.rho_raw)

    def denoise(self, u: torch.Tensor) -> torch.Tensor:
        return u - self.conv2(self.plf(self.conv1(u)))


class ADMMCSNet(nn.Module):
    r"""ADMM-CSNet for single-coil MRI with real images (see the module docstring for the maths).

    Parameters
    ----------
    operator_or_mask:
        The task's :class:`~proxlab.operators.MRI` (its mask is copied), a ``(H, W)`` 0/1 mask tensor in ``fft2``
        layout (``centered=True`` for DC in the middle) or a mask ``.mat`` path (:meth:`MRI.from_mat`).
    stages:
        N, the full stages (reconstruction, denoising block, multiplier update); one more reconstruction follows.
    filters, kernel:
        The maps of :math:`C_1` / :math:`C_2` (128) and their odd kernel size (5).
    tied:
        One set of stage parameters for all stages (the authors' PyTorch port) or one per stage (MATLAB).
    final_dc:
        End with the hard data-consistency step (the port).
    rho, eta:
        Start values of :math:`\rho` and :math:`\eta` (0.1 and 1, the paper's).
    plf_points:
        Knots of each PLF on :math:`[-1, 1]` (101: spacing 0.02, the port's).
    bias:
        Biases in :math:`C_1` and :math:`C_2` (the port has them).
    conv_init:
        ``"he"`` (the paper: He-normal) or ``"port"`` (the PyTorch port's :math:`\mathcal N(0, 0.025^2)`, which
        starts near the data-term iteration); biases start at 0 in both (the port keeps PyTorch's default).
    norm:
        k-space convention of ``y``: ``"ortho"`` (:class:`~proxlab.operators.MRI`) or ``"backward"``.
    dtype:
        The parameters' dtype (default: torch's default dtype); ``y`` is cast to the matching complex dtype.
    """

    def __init__(self, operator_or_mask, stages: int = 10, filters: int = 128, kernel: int = 5, tied: bool = False,
                 final_dc: bool = True, rho: float = 0.1, eta: float = 1.0, plf_points: int = 101, bias: bool = True,
                 conv_init: str = "he", norm: str = "ortho", centered: bool = False, dtype: torch.dtype | None = None):
        super().__init__()
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        try:
            mask = _mask_of(operator_or_mask)
        except TypeError:
            raise TypeError(f"operator_or_mask: expected an MRI operator, an (H, W) mask tensor in fft2 layout or a "
                            f"mask .mat path, got {type(operator_or_mask).__name__}") from None
        if mask.ndim != 2 or mask.is_complex():
            raise ValueError(f"operator_or_mask: the mask must be a real (H, W) tensor, got shape "
                             f"{tuple(mask.shape)} and dtype {mask.dtype}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"operator_or_mask: the mask must hold only 0 and 1, got values in "
                             f"[{float(mask.min())}, {float(mask.max())}]")
        if centered:
            mask = torch.fft.ifftshift(mask)
        self.stages = _int_at_least("stages", stages, 1)
        self.filters = _int_at_least("filters", filters, 1)
        kernel = _int_at_least("kernel", kernel, 1)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (a centred 'same' convolution), got {kernel}")
        self.kernel = kernel
        for name, flag in (("tied", tied), ("final_dc", final_dc), ("bias", bias)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {flag!r}")
        self.tied, self.final_dc = tied, final_dc
        self.norm = check_choice("norm", norm, NORMS)
        check_choice("conv_init", conv_init, CONV_INITS)
        rho, eta = _number("rho", rho), _number("eta", eta)
        if rho <= 0:
            raise ValueError(f"rho must be > 0 (the reconstruction divides by P_s + rho), got {rho!r}")
        plf_points = _int_at_least("plf_points", plf_points, 2)
        self.operator = MRI(mask)
        mask = self.operator.mask
        sym = 0.5 * (mask + torch.roll(torch.flip(mask, dims=(0, 1)), shifts=(1, 1), dims=(0, 1)))  # P_s
        self.register_buffer("_mask_sym", sym, persistent=False)
        def make():
            return ADMMCSNetStage(self.filters, kernel, plf_points, rho, eta, bias, dtype, conv_init)

        self.blocks = nn.ModuleList([make()] if tied else [make() for _ in range(self.stages)])
        # the final reconstruction's own rho: untied and without the data-consistency step only (module docstring)
        self.register_parameter("final_rho_raw", None if tied or final_dc else _penalty(rho, dtype))

    @property
    def mask(self) -> torch.Tensor:
        """The 0/1 sampling mask (fft2 layout)."""
        return self.operator.mask

    def stage(self, n: int) -> ADMMCSNetStage:
        """The parameters of stage ``n`` (0-based; all the same module when ``tied``)."""
        return self.blocks[0 if self.tied else n]

    def penalties(self) -> torch.Tensor:
        r""":math:`\rho` of the ``stages + 1`` reconstructions (the last one the final reconstruction's: its own
        parameter, or the last stage's where it has none)."""
        rhos = [self.stage(n).rho for n in range(self.stages)]
        return torch.stack(rhos + [rhos[-1] if self.final_rho_raw is None else _SOFTPLUS(self.final_rho_raw)])

    def num_parameters(self) -> int:
        """The number of learned scalars (shared ones counted once)."""
        return sum(p.numel() for p in self.parameters())

    # --- the layers -------------------------------------------------------------------------------------------
    def reconstruct(self, aty: torch.Tensor, v: torch.Tensor | None, rho: torch.Tensor) -> torch.Tensor:
        r""":math:`(A^\top A + \rho I)^{-1}(A^\top y + \rho v)`, ``aty`` = :math:`A^\top y` ``(N, 1, H, W)``,
        ``v`` = :math:`z - \beta` or ``None`` (zero, the first stage)."""
        return self.operator.solve_normal(aty if v is None else aty + rho * v, rho)

    def data_consistency(self, x: torch.Tensor, aty: torch.Tensor) -> torch.Tensor:
        r"""The hard data-consistency step :math:`\operatorname{Re} F^{-1}[P_u \hat y + (1 - P_u) F x]` with
        :math:`\hat y = F(A^\top y) / P_s` (module docstring)."""
        sym = self._mask_sym.to(x.dtype)
        sampled = sym > 0
        measured = torch.fft.fft2(aty, norm="ortho") / torch.where(sampled, sym, torch.ones_like(sym))
        return torch.fft.ifft2(torch.where(sampled, measured, torch.fft.fft2(x, norm="ortho")), norm="ortho").real

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(B, C, H, W)`` real images from k-space ``y (B, C, H, W)`` (complex, the convention of
        ``norm``; entries outside the mask are ignored)."""
        y = checked_kspace("ADMMCSNet.forward", y, self.mask.shape, self.blocks[0].eta.dtype)
        H, W = self.mask.shape
        B, C = y.shape[:2]
        y = y.reshape(B * C, 1, H, W)
        if self.norm == "backward":
            y = y / math.sqrt(H * W)
        aty = self.operator.adjoint(y)
        rhos = self.penalties()
        v = beta = None
        for n in range(self.stages):
            s = self.stage(n)
            x = self.reconstruct(aty, v, rhos[n])
            z = s.denoise(x if beta is None else x + beta)
            beta = s.eta * (x - z) if beta is None else beta + s.eta * (x - z)
            v = z - beta
        x = self.reconstruct(aty, v, rhos[-1])
        if self.final_dc:
            x = self.data_consistency(x, aty)
        return x.reshape(B, C, H, W)

    def extra_repr(self) -> str:
        return (f"stages={self.stages}, filters={self.filters}, kernel={self.kernel}, tied={self.tied}, "
                f"final_dc={self.final_dc}, size={tuple(self.mask.shape)}, ratio={float(self.mask.mean()):.4f}, "
                f"norm={self.norm!r}")

