r"""Learned proximal networks (LPN): exact proximal operators of learned, explicit priors.

Fang, Buchanan & Sulam, "What's in a Prior? Learned Proximal Networks for Inverse Problems",
ICLR 2024 (code: github.com/ZhenghanFang/learned-proximal-networks @cbc3cfa).

An input-convex network gives a scalar potential :math:`\psi_\theta`; its gradient
:math:`f_\theta = \nabla\psi_\theta` is the proximal operator of a prior :math:`R_\theta`
(Gribonval & Nikolova): :math:`f_\theta = \operatorname{prox}_{R_\theta}` with

.. math:: R_\theta(x) = \langle x, y^*\rangle - \tfrac12\|x\|_2^2 - \psi_\theta(y^*), \qquad y^* = f_\theta^{-1}(x),

and :math:`y^*` minimises the convex :math:`\psi_\theta(y) - \langle x, y\rangle`
(:mod:`proxlab.priors.lpn_invert`).

Convexity of ψ. Each hidden layer is :math:`z_{k+1} = \sigma(W_k z_k + S_k x + b_k)` with
:math:`\sigma` = softplus (convex, non-decreasing), :math:`W_k \ge 0` elementwise (the "z-path"
weights) and :math:`S_k` free (the first layer and the skip layers from the input, which carry the
biases). A non-negative combination of convex functions plus an affine function is convex, and a
convex non-decreasing function of a convex function is convex, so every unit of every layer is
convex in :math:`x`; the output :math:`w^\top z_L` with :math:`w \ge 0`, plus :math:`\alpha\|x\|^2`
(α ≥ 0, no ½, as in the authors' code), is convex, strongly so when α > 0. Resizing the input
(bilinear) and average pooling are linear maps, so they keep this argument intact.
:meth:`LearnedProximalNetwork.after_optimizer_step` (alias ``clamp_weights``) restores
:math:`W_k \ge 0` after each optimiser step; the z-path weights start at
:math:`\exp(\mathcal N(-10, 0.1^2))`, as the authors' ``init_weights(-10, 0.1)`` (their 1-D
notebook keeps PyTorch's default init instead).

softplus is ``torch.nn.functional.softplus(·, beta, threshold=40)``: above the threshold it is
replaced by the identity, a jump of ``log(1 + e^{-40}) / β`` ≈ 4e-18/β that keeps ψ convex to
float64 precision (PyTorch's default threshold 20 leaves a 2e-9/β jump).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive, check_shape
from .base import Prior
from .lpn_invert import invert_gradient_map

__all__ = ["LearnedProximalNetwork", "LPNFullyConnected", "LPN1D", "LPNConv", "LPNFullyConvolutional"]

_THRESHOLD = 40.0


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return value


class LearnedProximalNetwork(Prior):
    r"""Base of the LPN variants: ψ, its gradient (the prox), the prior R and weight clamping.

    Subclasses build their layers, list the z-path layers in ``self._z_path`` (their ``weight`` is
    kept ≥ 0) and implement ``_psi(x) -> (B,)`` on checked input and ``_check(name, x, where)``.

    As a :class:`~proxlab.priors.base.Prior` it has the capabilities ``prox`` (``forward``, which
    ignores ``tau``), ``regularizer`` (:math:`R`, by inverting :math:`f`) and ``after_optimizer_step``
    (the clamp of the z-path weights).
    """

    def __init__(self, beta: float, alpha: float):
        super().__init__()
        self.beta = check_positive("beta", beta)
        self.alpha = check_positive("alpha", alpha, strict=False)
        self._z_path: list[nn.Module] = []

    def _act(self, t: torch.Tensor) -> torch.Tensor:
        return F.softplus(t, beta=self.beta, threshold=_THRESHOLD)

    def _quadratic(self, x: torch.Tensor) -> torch.Tensor:
        return self.alpha * x.pow(2).flatten(1).sum(1)

    def _checked(self, name: str, x: torch.Tensor, where: str) -> torch.Tensor:
        self._check(name, x, where)
        p = next(self.parameters())
        if x.dtype != p.dtype:
            raise TypeError(
                f"{where}: {name} has dtype {x.dtype} but the parameters are {p.dtype}; "
                f"cast one of them (model.to({x.dtype}) or {name}.to({p.dtype}))"
            )
        return x

    def z_path_parameters(self) -> list[nn.Parameter]:
        """The hidden-to-hidden weights that must stay ≥ 0 for ψ to be convex."""
        return [layer.weight for layer in self._z_path]

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Clamp the z-path weights to ≥ 0; call after every optimiser step (the trainer's ``post_step``).

        This is the prior's ``after_optimizer_step`` capability (:mod:`proxlab.priors.base`).
        """
        for w in self.z_path_parameters():
            w.clamp_(min=0.0)

    def clamp_weights(self) -> None:
        """Alias of :meth:`after_optimizer_step` (the clamp to non-negative z-path weights)."""
        self.after_optimizer_step()

    @torch.no_grad()
    def init_weights(self, mean: float = -10.0, std: float = 0.1) -> None:
        """z-path weights ← exp(N(mean, std²)) (the authors' ``init_weights(-10, 0.1)``)."""
        for w in self.z_path_parameters():
            w.normal_(mean, std).exp_()

    def psi(self, x: torch.Tensor) -> torch.Tensor:
        """The convex potential ψ(x), one value per sample: ``(B,)``."""
        return self._psi(self._checked("x", x, f"{type(self).__name__}.psi"))

    def forward(self, y: torch.Tensor, tau: float | torch.Tensor | None = None) -> torch.Tensor:
        r"""The learned prox :math:`f(y) = \nabla\psi(y)`, per sample, by autograd.

        ``tau`` is accepted and ignored (a proxlab prox is called ``prox(v, tau)``; an LPN is
        trained for one noise level). When gradients are enabled and ``y`` or any parameter
        requires grad, the graph of the gradient is kept (``create_graph=True``) so that a loss on
        ``f(y)`` trains the network; otherwise (inference, ``torch.no_grad()``) the gradient is
        computed with grad enabled internally and returned detached.
        """
        y = self._checked("y", y, f"{type(self).__name__}.forward")
        create = torch.is_grad_enabled() and (y.requires_grad or any(p.requires_grad for p in self.parameters()))
        with torch.enable_grad():
            yy = y if (create and y.requires_grad) else y.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self._psi(yy).sum(), yy, create_graph=create)
        return g if create else g.detach()

    def invert(
        self, x: torch.Tensor, tol: float = 1e-5, max_iter: int = 500, return_residual: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        r""":math:`y^* = f^{-1}(x)`: the minimiser of :math:`\psi(y) - \langle x, y\rangle`, batched.

        Batched L-BFGS from :math:`y_0 = x` (:func:`proxlab.priors.lpn_invert.invert_gradient_map`);
        a sample stops when :math:`\|f(y) - x\|_2 \le \mathrm{tol}\cdot\sqrt n` (n entries per
        sample: root-mean-square residual ≤ tol) or after ``max_iter`` iterations. Returns ``y``
        (detached), and with ``return_residual`` also ``‖f(y) − x‖₂`` per sample ``(B,)``.
        """
        y, _, res = self._invert(x, tol, max_iter, "invert")
        return (y, res) if return_residual else y

    def regularizer(
        self, x: torch.Tensor, tol: float = 1e-5, max_iter: int = 500, return_residual: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        r"""The learned prior :math:`R(x) = \langle x, y^*\rangle - \tfrac12\|x\|^2 - \psi(y^*)`, ``(B,)``.

        :math:`y^* = f^{-1}(x)` by :meth:`invert` (same ``tol`` / ``max_iter``). The value is
        :math:`-\min_y[\psi(y) - \langle x, y\rangle] - \tfrac12\|x\|^2`, so an error ε in
        :math:`y^*` changes it only by O(ε²). If ``x`` requires grad, ``R`` carries the gradient
        :math:`\nabla R(x) = y^* - x` (envelope theorem); no gradient flows to the parameters.
        With ``return_residual`` returns ``(R, residual)``, residual ``= ‖f(y*) − x‖₂`` per sample.
        """
        y, phi, res = self._invert(x, tol, max_iter, "regularizer")
        xf = x.flatten(1)
        # -φ(y*) - ½‖x‖² written so that d/dx = y* − x while the value equals ⟨x,y*⟩ − ½‖x‖² − ψ(y*).
        inner = (xf * y.flatten(1)).sum(1)
        reg = inner - inner.detach() - phi - 0.5 * xf.pow(2).sum(1)
        return (reg, res) if return_residual else reg

    def _invert(self, x, tol, max_iter, what):
        where = f"{type(self).__name__}.{what}"
        x = self._checked("x", x, where)
        tol = check_positive("tol", tol)
        max_iter = _check_int("max_iter", max_iter, 1)
        return invert_gradient_map(self._psi, x, tol=tol, max_iter=max_iter)[:3]


class LPNFullyConnected(LearnedProximalNetwork):
    r"""Fully connected LPN for vectors ``(B, dim)`` (the paper's 1-D Laplacian experiment).

    :math:`z_1 = \sigma(A_0 x)`, :math:`z_{k+1} = \sigma(W_k z_k + S_k x + b_k)` for
    ``k = 1..layers``, :math:`\psi(x) = w^\top z_{L} + s^\top x + c + \alpha\|x\|^2`; ``A_0`` (no
    bias) and the skips ``S_k, b_k, s, c`` free, ``W_k, w ≥ 0``. With ``dim=1, hidden=50, layers=4``
    it has the paper's 10,502 parameters; β = 10, α = 0 there.
    """

    def __init__(self, dim: int = 1, hidden: int = 50, layers: int = 4, beta: float = 10.0, alpha: float = 0.0):
        super().__init__(beta, alpha)
        self.dim = _check_int("dim", dim, 1)
        hidden = _check_int("hidden", hidden, 1)
        layers = _check_int("layers", layers, 1)
        self.first = nn.Linear(dim, hidden, bias=False)
        self.hidden_layers = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(layers))
        self.skips = nn.ModuleList(nn.Linear(dim, hidden) for _ in range(layers))
        self.out = nn.Linear(hidden, 1, bias=False)
        self.out_skip = nn.Linear(dim, 1)
        self._z_path = [*self.hidden_layers, self.out]
        self.init_weights()

    def _check(self, name, x, where):
        check_shape(name, x, ("B", self.dim), where=where)

    def _psi(self, x):
        z = self._act(self.first(x))
        for layer, skip in zip(self.hidden_layers, self.skips):
            z = self._act(layer(z) + skip(x))
        return (self.out(z) + self.out_skip(x)).squeeze(1) + self._quadratic(x)


LPN1D = LPNFullyConnected


def _stage_sizes(size: tuple[int, int], depth: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Input sizes of the strided convs (stride 2, 1, 2, 1, ...; 3×3, padding 1) and the final size."""
    strides = [2 if k % 2 == 0 else 1 for k in range(depth)]
    sizes = [size]
    for s in strides:
        h, w = sizes[-1]
        sizes.append((math.ceil(h / s), math.ceil(w / s)))
    return sizes, strides


class _ConvBody(LearnedProximalNetwork):
    """Shared convolutional trunk: a free first conv, then ``depth`` z-path convs with strides
    2, 1, 2, ..., each plus a free skip conv (with bias) of the input bilinearly resized to that
    conv's input size."""

    def __init__(self, in_channels, hidden, depth, beta, alpha, first_bias):
        super().__init__(beta, alpha)
        self.in_channels = _check_int("in_channels", in_channels, 1)
        hidden = _check_int("hidden", hidden, 1)
        self.depth = _check_int("depth", depth, 1)
        self.hidden = hidden
        self.strides = [2 if k % 2 == 0 else 1 for k in range(depth)]
        self.first = nn.Conv2d(in_channels, hidden, 3, padding=1, bias=bool(first_bias))
        self.convs = nn.ModuleList(nn.Conv2d(hidden, hidden, 3, stride=s, padding=1, bias=False) for s in self.strides)
        self.skips = nn.ModuleList(nn.Conv2d(in_channels, hidden, 3, stride=s, padding=1) for s in self.strides)

    @staticmethod
    def _resize(x, size):
        if tuple(x.shape[-2:]) == tuple(size):
            return x  # bilinear resize to the same size (align_corners=False) is the identity
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def _trunk(self, x):
        z = self._act(self.first(x))
        for conv, skip in zip(self.convs, self.skips):
            z = self._act(conv(z) + skip(self._resize(x, z.shape[-2:])))
        return z


class LPNConv(_ConvBody):
    r"""Convolutional LPN for images of one fixed size ``(B, C, H, W)`` (the paper's MNIST and 128×128 nets).

    Trunk: conv 3×3 ``C → hidden`` (free), then ``depth`` z-path convs ``hidden → hidden`` with
    strides 2, 1, 2, 1, ... (28 → 14 → 14 → 7 for MNIST), each added to a free skip conv (with
    bias) of the input bilinearly resized to that conv's input size. Head: flatten, z-path
    ``Linear(hidden·h·w → features)`` plus a free skip ``Linear(C·h·w → features)`` of the input
    resized to the final ``h × w``, softplus, then z-path ``Linear(features → 1)``; plus α‖x‖².

    Defaults are the MNIST net (28×28, 1 channel, hidden 64, depth 3, β = 10, α = 0.01): 317,056
    parameters, as the paper's. :meth:`patch128` builds the 128×128 net (5 strided convs, hidden
    256, β = 100, α = 1e-6, biases on the first conv and the output, the 16×16 "conv" head written
    as the equivalent Linear): 7,235,713 parameters for 3 channels (paper: about 7.2 M).
    """

    def __init__(
        self,
        image_size: int | tuple[int, int] = 28,
        in_channels: int = 1,
        hidden: int = 64,
        depth: int = 3,
        features: int = 64,
        beta: float = 10.0,
        alpha: float = 0.01,
        first_bias: bool = False,
        out_bias: bool = False,
    ):
        super().__init__(in_channels, hidden, depth, beta, alpha, first_bias)
        size = (image_size, image_size) if isinstance(image_size, int) and not isinstance(image_size, bool) else image_size
        if not (isinstance(size, (tuple, list)) and len(size) == 2):
            raise TypeError(f"image_size: expected an int or a pair (H, W), got {image_size!r}")
        self.image_size = (_check_int("image_size", size[0], 1), _check_int("image_size", size[1], 1))
        features = _check_int("features", features, 1)
        sizes, _ = _stage_sizes(self.image_size, self.depth)
        self.final_size = sizes[-1]
        h, w = self.final_size
        self.head = nn.Linear(hidden * h * w, features, bias=False)
        self.head_skip = nn.Linear(in_channels * h * w, features)
        self.out = nn.Linear(features, 1, bias=bool(out_bias))
        self._z_path = [*self.convs, self.head, self.out]
        self.init_weights()

    @classmethod
    def patch128(cls, in_channels: int = 3, **overrides) -> LPNConv:
        """The paper's 128×128-patch net (CelebA: 3 channels; Mayo CT: 1 channel)."""
        cfg = dict(image_size=128, in_channels=in_channels, hidden=256, depth=5, features=64, beta=100.0,
                   alpha=1e-6, first_bias=True, out_bias=True)
        cfg.update(overrides)
        return cls(**cfg)

    def _check(self, name, x, where):
        check_shape(name, x, ("B", self.in_channels, *self.image_size), where=where)

    def _psi(self, x):
        z = self._trunk(x).flatten(1)
        xs = self._resize(x, self.final_size).flatten(1)
        z = self._act(self.head(z) + self.head_skip(xs))
        return self.out(z).squeeze(1) + self._quadratic(x)


class LPNFullyConvolutional(_ConvBody):
    r"""Convolutional LPN for images of any size ``(B, C, H, W)``: global average pooling replaces
    the fixed-size linear layers of :class:`LPNConv`.

    Trunk as :class:`LPNConv`; head: z-path conv 3×3 ``hidden → features`` plus a free skip conv
    (with bias) of the input resized to the trunk's output size, softplus, the mean over all
    positions, then z-path ``Linear(features → 1)``; plus α‖x‖².

    Why ψ stays convex: after the softplus every channel at every position is a convex function
    of x (the argument of :mod:`proxlab.priors.lpn`); the global average is a linear map with
    non-negative weights 1/(h·w), so each pooled feature is an average of convex functions,
    hence convex; the output layer combines them with weights ≥ 0. The bilinear resizing of the
    input in the skips is linear in x. None of this depends on the image size.

    ``pool="sum"`` sums over positions instead (also non-negative weights, so also convex). Then the
    prox :math:`f = \nabla\psi` is a local, translation-equivariant map whose value at a pixel does
    not depend on the image size, so a net trained on patches applies to whole images; with the
    mean, the learned part of the gradient shrinks as 1/(h·w) when the image grows.

    Defaults (1 channel, hidden 64, depth 3, features 64): 150,656 parameters.
    """

    def __init__(
        self,
        in_channels: int = 1,
        hidden: int = 64,
        depth: int = 3,
        features: int = 64,
        beta: float = 10.0,
        alpha: float = 0.01,
        first_bias: bool = False,
        pool: str = "mean",
    ):
        super().__init__(in_channels, hidden, depth, beta, alpha, first_bias)
        features = _check_int("features", features, 1)
        if pool not in ("mean", "sum"):
            raise ValueError(f"pool must be 'mean' or 'sum', got {pool!r}")
        self.pool = pool
        self.head = nn.Conv2d(hidden, features, 3, padding=1, bias=False)
        self.head_skip = nn.Conv2d(in_channels, features, 3, padding=1)
        self.out = nn.Linear(features, 1, bias=False)
        self._z_path = [*self.convs, self.head, self.out]
        self.init_weights()

    def _check(self, name, x, where):
        check_shape(name, x, ("B", self.in_channels, None, None), where=where)

    def _psi(self, x):
        z = self._trunk(x)
        z = self._act(self.head(z) + self.head_skip(self._resize(x, z.shape[-2:])))
        pooled = z.mean(dim=(2, 3)) if self.pool == "mean" else z.sum(dim=(2, 3))
        return self.out(pooled).squeeze(1) + self._quadratic(x)
