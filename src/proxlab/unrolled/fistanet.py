r"""FISTA-Net (Xiang, Dong & Yang, IEEE TMI 2021): K phases of accelerated proximal gradient with ONE learned
transform block shared by every phase, and six learned scalars that set the phases' thresholds, step sizes and
momenta. Built for sparse-view CT (:class:`~proxlab.operators.ParallelBeamCT`, :math:`x_0` = FBP, K = 6).

Phase :math:`k = 0, \dots, K-1`, from :math:`x_0 = A.\mathrm{init}(b)` (FBP for CT) and :math:`y_0 = x_0`:

.. math::
    r_k &= y_k - \mu_k\, d_k, \\
    x_{k+1} &= \operatorname{ReLU}\Big(r_k + \mathcal G\big(\tilde{\mathcal H}(\operatorname{soft}(
              \mathcal H(\mathcal D(r_k)), \theta_k))\big)\Big), \\
    y_{k+1} &= x_{k+1} + \rho_k (x_{k+1} - x_k),

and :math:`\hat x = x_K`. The block (:class:`FISTANetBlock`) is the authors' CT code: :math:`\mathcal D` a 3×3
convolution 1 → F maps, :math:`\mathcal H` and :math:`\tilde{\mathcal H}` four 3×3 convolutions F → F each with a
ReLU between consecutive ones (none after the fourth), :math:`\mathcal G` a 3×3 convolution F → 1; all with biases
(zero at the start), weights Xavier-normal.

The data-term direction :math:`d_k` (option ``gradient``):

- ``"adjoint"`` (default): :math:`d_k = A^\top(A y_k - b) / \|A\|_2^2`, the exact gradient of
  :math:`\tfrac12\|Ay - b\|^2` divided by :math:`L = \|A\|_2^2` (``operator.norm``, cached per image shape), with
  autograd through it. So :math:`\mu_k` is the step in units of :math:`1/L`, the convention of every unrolled
  network of proxlab; :math:`\mu_0 = \mathrm{softplus}(0.1) \approx 0.744` starts below the classic :math:`1/L`.
- ``"fbp"``: :math:`d_k = \mathrm{FBP}(A y_k - b)`, computed without a graph (detached), as the authors' code does
  with ``iradon(radon(y) - b)`` on NumPy arrays; only :math:`\mu_k` gets a gradient from this term.
  :math:`\mu_k` is dimensionless here: FBP is an approximate inverse of :math:`A`, so :math:`\mu = 1` is a full
  "pseudo-inverse" step. This needs a :class:`~proxlab.operators.ParallelBeamCT`.

The scalars, with :math:`s = \mathrm{softplus}` and the phase index :math:`k` counted from 0 as in the authors' code:

.. math::
    \theta_k = s(w_\theta k + b_\theta),\quad \mu_k = s(w_\mu k + b_\mu),\quad
    \rho_k = \frac{s(w_\rho k + b_\rho) - s(b_\rho)}{s(w_\rho k + b_\rho)},

started at :math:`w_\theta = -0.5, b_\theta = -2, w_\mu = -0.2, b_\mu = 0.1, w_\rho = 0.5, b_\rho = 0`: the
thresholds and steps fall with :math:`k` and the momentum grows from :math:`\rho_0 = 0` towards 1.

Extra loss terms (``net(y, return_aux=True).aux``, one tensor per phase): ``"symmetry"``
:math:`\tilde{\mathcal H}(\mathcal H(\mathcal D r_k)) - \mathcal D r_k` and ``"sparsity"`` the thresholded code
:math:`\operatorname{soft}(\mathcal H(\mathcal D r_k), \theta_k)`, for :func:`proxlab.losses.fistanet_loss`
(MSE + 0.01 Σ mean(sym²) + 0.001 Σ mean|code|).

With F = 32 the network has 74,599 weights, the paper's count: the block's 74,593 (``D`` 320, eight F → F
convolutions 9,248 each, ``G`` 289) and the six scalars.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_choice, check_positive
from ..operators.base import LinearOperator
from ..operators.ct import ParallelBeamCT
from ..priors.classic.sparsity import soft_threshold_unchecked
from .base import AuxProx, OperatorNormCache, UnrolledOutput

__all__ = ["FISTANet", "FISTANetBlock", "GRADIENTS"]

#: The data-term directions of :class:`FISTANet` (see the module docstring).
GRADIENTS = ("adjoint", "fbp")

# Start values of the six scalars (the authors' CT code).
_STARTS = {"w_theta": -0.5, "b_theta": -2.0, "w_mu": -0.2, "b_mu": 0.1, "w_rho": 0.5, "b_rho": 0.0}


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class FISTANetBlock(AuxProx):
    r"""The shared block of :class:`FISTANet`: ``x = ReLU(v + G(H̃(soft(H(D v), θ))))``.

    ``forward(v, theta)`` returns ``x``; ``forward_aux(v, theta)`` also returns ``{"symmetry": H̃(H(Dv)) - Dv,
    "sparsity": soft(H(Dv), θ)}`` (four more convolutions for the symmetry term, so the plain call skips them).
    ``theta`` is the phase's threshold (a number or a 0-d tensor), given by the network.
    """

    def __init__(self, features: int = 32):
        super().__init__()
        c = _positive_int("features", features)
        conv = lambda i, o: nn.Conv2d(i, o, 3, padding=1)  # noqa: E731
        self.conv_D = conv(1, c)
        self.forward_convs = nn.ModuleList(conv(c, c) for _ in range(4))
        self.backward_convs = nn.ModuleList(conv(c, c) for _ in range(4))
        self.conv_G = conv(c, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def _chain(convs: nn.ModuleList, z: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(convs):
            z = conv(F.relu(z) if i else z)  # a ReLU between consecutive convolutions, none after the last
        return z

    def _run(self, v: torch.Tensor, theta, symmetry: bool):
        if v.ndim != 4 or v.shape[1] != 1:
            raise ValueError(f"FISTANetBlock expects (B, 1, H, W) images, got shape {tuple(v.shape)}")
        d = self.conv_D(v)
        z = self._chain(self.forward_convs, d)
        code = soft_threshold_unchecked(z, theta)
        x = F.relu(v + self.conv_G(self._chain(self.backward_convs, code)))
        sym = self._chain(self.backward_convs, z) - d if symmetry else None
        return x, code, sym

    def forward(self, v: torch.Tensor, tau=None) -> torch.Tensor:
        return self._run(v, tau, False)[0]

    def forward_aux(self, v: torch.Tensor, tau=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, code, sym = self._run(v, tau, True)
        return x, {"symmetry": sym, "sparsity": code}


class FISTANet(OperatorNormCache, nn.Module):
    """FISTA-Net: ``phases`` phases of one shared :class:`FISTANetBlock` (see the module docstring).

    Parameters
    ----------
    operator:
        The forward model :math:`A`, a proxlab :class:`~proxlab.operators.LinearOperator` on single-channel
        images (``x_0 = operator.init(b)``: FBP for :class:`~proxlab.operators.ParallelBeamCT`).
    phases:
        K, the number of phases (the paper's 6 for CT).
    features:
        F, the feature maps of the block (32).
    gradient:
        ``"adjoint"`` (default; :math:`\\mu_k` in units of :math:`1/\\|A\\|^2`, autograd through
        :math:`A^\\top(Ay - b)`) or ``"fbp"`` (the authors' detached :math:`\\mathrm{FBP}(Ay - b)`, CT only).
    theta_start:
        :math:`\\theta_0` at the start (``None``: the authors' :math:`\\mathrm{softplus}(-2) \\approx 0.127`), set
        through :math:`b_\\theta = \\mathrm{softplus}^{-1}(\\theta_0)`. The authors' value suits images that fill
        [0, 1]; on dim images (most voxels 0) every code of the first phases falls under it, the soft-threshold then
        passes no gradient to :math:`\\theta` or the block, and training stalls near FBP: start lower there.
    """

    tied = True  # one block for every phase (read by proxlab.unrolled.istanet.conv_macs_per_pixel)

    def __init__(self, operator: LinearOperator, phases: int = 6, features: int = 32, gradient: str = "adjoint",
                 theta_start: float | None = None):
        super().__init__()
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator: expected a proxlab LinearOperator (e.g. ParallelBeamCT), got "
                            f"{type(operator).__name__}")
        if operator.in_shape and operator.in_shape[0] not in (None, 1):
            raise ValueError(f"operator: FISTA-Net works on single-channel images (B, 1, H, W), but the operator's "
                             f"input shape is {operator.in_shape}")
        self.phases = _positive_int("phases", phases)
        check_choice("gradient", gradient, GRADIENTS)
        if gradient == "fbp" and not isinstance(operator, ParallelBeamCT):
            raise TypeError(f"operator: gradient='fbp' needs a ParallelBeamCT (it back-projects with FBP), got "
                            f"{type(operator).__name__}; use gradient='adjoint'")
        self.operator, self.gradient, self.features = operator, gradient, features
        self.block = FISTANetBlock(features)
        starts = dict(_STARTS)
        if theta_start is not None:
            theta = check_positive("theta_start", theta_start)
            starts["b_theta"] = math.log(math.expm1(theta)) if theta < 20 else theta  # softplus⁻¹
        self.theta_start = theta_start
        for name, value in starts.items():
            self.register_parameter(name, nn.Parameter(torch.tensor(value)))
        self._norms: dict[tuple, float] = {}

    @property
    def stages(self) -> int:
        """The number of phases (proxlab's name for the iterations of an unrolled network)."""
        return self.phases

    # ------------------------------------------------------------------ the learned scalars
    def _k(self) -> torch.Tensor:
        return torch.arange(self.phases, dtype=self.w_theta.dtype, device=self.w_theta.device)

    def thresholds(self) -> torch.Tensor:
        """θ_k = softplus(w_θ k + b_θ), k = 0 … K−1."""
        return F.softplus(self.w_theta * self._k() + self.b_theta)

    def step_sizes(self) -> torch.Tensor:
        """μ_k = softplus(w_μ k + b_μ): multiples of 1/‖A‖² (``"adjoint"``) or of the FBP direction (``"fbp"``)."""
        return F.softplus(self.w_mu * self._k() + self.b_mu)

    def momenta(self) -> torch.Tensor:
        """ρ_k = (softplus(w_ρ k + b_ρ) − softplus(b_ρ)) / softplus(w_ρ k + b_ρ); ρ_0 = 0."""
        s = F.softplus(self.w_rho * self._k() + self.b_rho)
        return (s - F.softplus(self.b_rho)) / s


    # ------------------------------------------------------------------ the phases
    def _direction(self, y: torch.Tensor, b: torch.Tensor, inv_norm: float | None) -> torch.Tensor:
        A = self.operator
        if self.gradient == "fbp":
            with torch.no_grad():
                return A.fbp(A(y) - b)
        return A.adjoint(A(y) - b) * inv_norm

    def forward(self, y: torch.Tensor, return_aux: bool = False, x0: torch.Tensor | None = None):
        """:math:`\\hat x` from the measurements ``y`` (the docstring's :math:`b`); ``x0`` replaces the start
        :math:`A.\\mathrm{init}(y)`. With ``return_aux=True`` an :class:`UnrolledOutput` ``(x, aux)``."""
        x = self.operator.init(y) if x0 is None else x0
        inv_norm = None if self.gradient == "fbp" else 1.0 / self._norm(x.shape[1:])
        thetas, mus, rhos = self.thresholds(), self.step_sizes(), self.momenta()
        terms: dict[str, list[torch.Tensor]] = {"symmetry": [], "sparsity": []}
        x_prev = v = x
        for k in range(self.phases):
            r = v - mus[k] * self._direction(v, y, inv_norm)
            if return_aux:
                x, aux = self.block.forward_aux(r, thetas[k])
                for key, term in aux.items():
                    terms[key].append(term)
            else:
                x = self.block(r, thetas[k])
            if k < self.phases - 1:
                v = x + rhos[k] * (x - x_prev)
                x_prev = x
        if not return_aux:
            return x
        return UnrolledOutput(x, {key: tuple(t) for key, t in terms.items()})

    def extra_repr(self) -> str:
        start = "" if self.theta_start is None else f", theta_start={self.theta_start!r}"
        return f"phases={self.phases}, features={self.features}, gradient={self.gradient!r}{start}"
