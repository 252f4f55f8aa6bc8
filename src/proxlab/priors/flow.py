r"""GLOW (Kingma & Dhariwal, 2018): an invertible network with an exact likelihood, as an image prior.

The flow :math:`f` maps an image :math:`x \in [0, 1]^{C \times H \times W}` to a latent :math:`z = f(x)` of
the same dimension :math:`D = CHW` whose base distribution is *exactly* :math:`\mathcal N(0, I)`:

.. math:: \log p(x) = \log \mathcal N(f(x); 0, I) + \log \lvert\det \partial f / \partial x\rvert .

**Architecture.** ``levels`` levels; each squeezes (2×2 space-to-depth), runs ``steps`` flow steps
(:class:`ActNorm` → :class:`InvConv1x1` → :class:`AffineCoupling`) and, except the last, splits half of
the channels off as a latent. Each split latent is *standardised* by :class:`SplitPrior`
(:math:`\epsilon = (z - \mu(h)) e^{-\log\sigma(h)}`, a conditional affine map with its log-det), so every
latent — split ones included — is :math:`\mathcal N(0, I)` under the model. Then

.. math:: \operatorname{argmin}_z \tfrac12\|z - \tilde z\|^2 + \tfrac\lambda2 \|z\|^2 = \tilde z / (1 + \lambda)

is the exact proximal map of the latent prior, which :meth:`Glow.prox` (and the flow-unrolled method)
relies on. The latents of all levels are returned as one flat tensor ``(B, D)``.

**Likelihood convention** (that of Glow and RealNVP, so bits/dim compare with published numbers):
images are 8-bit, ``k / 255`` with ``k`` in 0..255. Dequantisation maps them to ``(k + u) / 256``,
``u ~ U[0, 1)``; the flow sees ``x - 1/2`` (a shift: log-det 0). :meth:`Glow.log_prob` is the continuous
density of :math:`x \in [0, 1]^D`; :meth:`Glow.bits_per_dim` is the discrete code length per dimension,
:math:`-\log_2 p(x_{\text{deq}}) / D + \log_2 256`, an upper bound on :math:`-\log_2 P(k) / D`.

**Numerics.** The coupling scale is bounded, :math:`s = \sigmoid(r + 2) \in (0, 1)`; the split prior's
log-scale is soft-clamped to :math:`\pm 4`; the 1×1 convolution is LU-parametrised with the sign of
the diagonal fixed, so it cannot become singular; a zero-variance channel at ActNorm's data-dependent
initialisation keeps scale 1 (only its mean is removed). With ``check_finite`` (the default) a NaN or
Inf after any layer raises a ``FloatingPointError`` naming the layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_positive
from .base import Prior

__all__ = [
    "ActNorm",
    "InvConv1x1",
    "AffineCoupling",
    "Squeeze",
    "SplitPrior",
    "FlowStep",
    "Glow",
    "FlowPrior",
    "COUPLINGS",
    "dequantize",
    "bits_per_dim",
    "log_prob_from_latent",
]

COUPLINGS = ("affine", "additive")
_LOG2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _sum_per_sample(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """8-bit images ``k/255`` in [0, 1] → ``(k + u)/256``, ``u ~ U[0, 1)`` (``generator`` makes it reproducible)."""
    k = torch.round(x.clamp(0, 1) * 255.0)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    return (k + u) / 256.0


_dequantize = dequantize  # for methods whose flag of the same name shadows it


def log_prob_from_latent(z: torch.Tensor, logdet: torch.Tensor) -> torch.Tensor:
    r""":math:`\log \mathcal N(z; 0, I) + \log|\det J|` per sample, from a flow's ``forward`` output (nats)."""
    return -0.5 * (z * z).sum(1) - z.shape[1] * _HALF_LOG_2PI + logdet


def bits_per_dim(z: torch.Tensor, logdet: torch.Tensor) -> torch.Tensor:
    r"""Bits per dimension ``(B,)`` of dequantised 8-bit images from the flow's ``(z, logdet)``:
    :math:`-\log_2 p / D + 8` (the ``+ 8 = \log_2 256`` turns the density on [0, 1] into the code length
    of the 256-level bins)."""
    return -log_prob_from_latent(z, logdet) / (z.shape[1] * _LOG2) + 8.0


class ActNorm(nn.Module):
    r""":math:`y = (x + b) \odot e^{s}` per channel; log-det :math:`HW \sum_c s_c`.

    Data-dependent initialisation (Glow): on the first forward pass in training mode, ``b`` and ``s`` are
    set so that the output has zero mean and unit variance per channel on that batch. A channel of zero
    variance keeps ``s = 0`` (only its mean is removed): no division by zero, no NaN.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set ``b``, ``s`` from the batch ``x``. Under ``torch.distributed`` the channel moments are averaged over
        the processes first, so that every process starts from the same weights (DDP broadcasts weights only when
        it wraps the model, before this first forward pass)."""
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()

        def average(t: torch.Tensor) -> torch.Tensor:  # over the processes (equal batch slices)
            if distributed:
                torch.distributed.all_reduce(t)
                t /= torch.distributed.get_world_size()
            return t

        mean = average(x.mean(dim=(0, 2, 3), keepdim=True))
        std = average(((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)).sqrt()  # two passes: no cancellation
        tiny = torch.finfo(x.dtype).eps ** 0.5
        self.bias.copy_(-mean)
        self.log_scale.copy_(torch.where(std > tiny, -torch.log(std.clamp_min(tiny)), torch.zeros_like(std)))
        self.initialized.fill_(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        y = (x + self.bias) * torch.exp(self.log_scale)
        logdet = x.shape[2] * x.shape[3] * self.log_scale.sum()
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(-self.log_scale) - self.bias


class InvConv1x1(nn.Module):
    r"""Invertible 1×1 convolution, LU-parametrised: :math:`W = P L (U + \operatorname{diag}(\sigma e^{s}))`.

    ``P`` (a permutation) and the signs ``σ`` are fixed at initialisation from a random rotation; ``L`` is unit
    lower-triangular, ``U`` strictly upper-triangular. Log-det :math:`HW \sum_i s_i`; the inverse uses two
    triangular solves, so neither needs a general determinant or inverse.
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator, dtype=torch.float64))
        p, lower, upper = torch.linalg.lu(q)
        diag = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign", torch.sign(diag).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_diag = nn.Parameter(torch.log(diag.abs()).float())

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        eye = torch.eye(self.lower.shape[0], dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_diag))
        return lower, upper

    def weight(self) -> torch.Tensor:
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = x.shape[1]
        y = F.conv2d(x, self.weight().view(c, c, 1, 1))
        logdet = x.shape[2] * x.shape[3] * self.log_diag.sum()
        return y, logdet.expand(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, c, h, w = y.shape
        lower, upper = self._factors()
        cols = (self.perm.T @ y.permute(1, 0, 2, 3).reshape(c, -1))  # W x = y  <=>  L U x = P^T y
        cols = torch.linalg.solve_triangular(lower, cols, upper=False, unitriangular=True)
        cols = torch.linalg.solve_triangular(upper, cols, upper=True)
        return cols.reshape(c, b, h, w).permute(1, 0, 2, 3)


class _ZeroConv(nn.Conv2d):
    """A 3×3 convolution whose weights and bias start at zero (the coupling is the identity map's kin at start)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 3, padding=1)
        nn.init.zeros_(self.weight)
        nn.init.zeros_(self.bias)


class AffineCoupling(nn.Module):
    r"""Affine coupling: split channels ``x = (x_a, x_b)``; :math:`(t, r) = \mathrm{NN}(x_a)`,
    :math:`y_b = (x_b + t) \odot s`, :math:`s = s_{\min} + (1 - s_{\min}) \sigmoid(r + 2)`; log-det
    :math:`\sum \log s`. ``min_scale`` :math:`s_{\min} = 0` is Glow's form; :math:`s_{\min} > 0` bounds the
    inverse's amplification :math:`1/s` per coupling (off the data, Glow's scales can reach 1e-10).

    ``additive=True``: :math:`y_b = x_b + t` (volume-preserving, log-det 0). ``NN`` is a 3×3 conv, ReLU, a
    1×1 conv, ReLU, and a zero-initialised 3×3 conv.
    """

    def __init__(self, channels: int, hidden: int, additive: bool = False, min_scale: float = 0.0):
        super().__init__()
        if channels < 2:
            raise ValueError(f"channels: a coupling needs at least 2 channels, got {channels}")
        if not 0.0 <= min_scale < 1.0:
            raise ValueError(f"min_scale: expected a number in [0, 1), got {min_scale!r}")
        self.additive, self.min_scale = bool(additive), float(min_scale)
        self.split = channels // 2
        out = channels - self.split
        self.net = nn.Sequential(
            nn.Conv2d(self.split, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            _ZeroConv(hidden, out if self.additive else 2 * out),
        )
        # channels-last convolutions are ~20 % faster per training step on CPU (benchmarks/glow_speed.py)
        self.net.to(memory_format=torch.channels_last)

    def _shift_scale(self, xa: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.net(xa.contiguous(memory_format=torch.channels_last))
        if self.additive:
            return h, None
        scale = torch.sigmoid(h[:, 1::2] + 2.0)
        return h[:, 0::2], scale if self.min_scale == 0.0 else self.min_scale + (1.0 - self.min_scale) * scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa, xb = x[:, : self.split], x[:, self.split:]
        shift, scale = self._shift_scale(xa)
        if scale is None:
            return torch.cat([xa, xb + shift], 1), x.new_zeros(x.shape[0])
        return torch.cat([xa, (xb + shift) * scale], 1), _sum_per_sample(torch.log(scale))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        ya, yb = y[:, : self.split], y[:, self.split:]
        shift, scale = self._shift_scale(ya)
        xb = yb - shift if scale is None else yb / scale - shift
        return torch.cat([ya, xb], 1)


class Squeeze(nn.Module):
    """2×2 space-to-depth, ``(B, C, H, W) -> (B, 4C, H/2, W/2)``; log-det 0."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.pixel_unshuffle(x, 2), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(y, 2)


class SplitPrior(nn.Module):
    r"""Standardise the half ``z`` split off a level given the half ``h`` kept:
    :math:`\epsilon = (z - \mu(h))\, e^{-\log\sigma(h)}`, :math:`(\mu, \log\sigma) = \mathrm{ZeroConv}(h)`,
    :math:`\log\sigma` soft-clamped to :math:`\pm 4`. Log-det :math:`-\sum \log\sigma`. ``ε`` is
    :math:`\mathcal N(0, I)` under the model, so latent shrinkage is an exact prox for split latents too.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.keep = channels - channels // 2
        self.net = _ZeroConv(self.keep, 2 * (channels // 2))

    def _mean_logscale(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.net(h)
        return p[:, 0::2], 4.0 * torch.tanh(p[:, 1::2] / 4.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x -> (h, ε, logdet)``."""
        h, z = x[:, : self.keep], x[:, self.keep:]
        mean, log_sigma = self._mean_logscale(h)
        return h, (z - mean) * torch.exp(-log_sigma), -_sum_per_sample(log_sigma)

    def inverse(self, h: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        mean, log_sigma = self._mean_logscale(h)
        return torch.cat([h, eps * torch.exp(log_sigma) + mean], 1)


class FlowStep(nn.Module):
    """One step of flow: :class:`ActNorm` → :class:`InvConv1x1` → :class:`AffineCoupling`."""

    def __init__(self, channels: int, hidden: int, additive: bool = False, generator: torch.Generator | None = None,
                 min_scale: float = 0.0):
        super().__init__()
        self.actnorm = ActNorm(channels)
        self.invconv = InvConv1x1(channels, generator)
        self.coupling = AffineCoupling(channels, hidden, additive, min_scale)

    def layers(self) -> list[tuple[str, nn.Module]]:
        return [("actnorm", self.actnorm), ("invconv", self.invconv), ("coupling", self.coupling)]


def _finite(t: torch.Tensor, where: str) -> None:
    if not bool(torch.isfinite(t).all()):
        bad = int((~torch.isfinite(t)).sum())
        raise FloatingPointError(f"{where}: {bad} non-finite value(s) (NaN or Inf) in its output")


class Glow(nn.Module):
    r"""GLOW on images ``(B, C, H, W)`` in [0, 1], with ``H`` and ``W`` divisible by ``2**levels``.

    Parameters
    ----------
    in_channels:
        Image channels ``C`` (1 for grey).
    levels, steps:
        Number of levels (squeeze, ``steps`` flow steps, split) and of flow steps per level.
    hidden:
        Channels of the coupling networks.
    coupling:
        ``"affine"`` (bounded scale) or ``"additive"``.
    image_size:
        The side of images drawn by :meth:`sample` (the flow itself takes any admissible size).
    check_finite:
        Raise ``FloatingPointError`` naming the layer when a NaN or Inf appears (a reduction per layer).
    min_scale:
        Lower bound of the affine couplings' scales (0: Glow's ``sigmoid(r + 2)``); see :class:`AffineCoupling`.
    seed:
        Seeds the random rotations that initialise the 1×1 convolutions.

    ``forward(x) -> (z, logdet)`` with ``z`` flat ``(B, D)``; ``inverse(z) -> x``. See the module docstring
    for the likelihood convention. The :class:`~proxlab.priors.Prior` protocol (where calling the module
    is the prox) is :class:`FlowPrior`, ``glow.as_prior()``.
    """

    def __init__(self, in_channels: int = 1, levels: int = 3, steps: int = 8, hidden: int = 128,
                 coupling: str = "affine", image_size: int = 32, check_finite: bool = True, seed: int = 0,
                 min_scale: float = 0.0):
        super().__init__()
        for name, val in (("in_channels", in_channels), ("levels", levels), ("steps", steps), ("hidden", hidden),
                          ("image_size", image_size)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {val!r}")
        check_choice("coupling", coupling, COUPLINGS)
        if image_size % (2 ** levels):
            raise ValueError(f"image_size: expected a multiple of 2**levels = {2 ** levels}, got {image_size}")
        self.in_channels, self.levels, self.steps, self.hidden = in_channels, levels, steps, hidden
        self.coupling, self.image_size, self.check_finite = coupling, image_size, bool(check_finite)
        gen = torch.Generator().manual_seed(seed)
        self.squeeze = Squeeze()
        self.blocks = nn.ModuleList()
        self.splits = nn.ModuleList()
        c = in_channels
        for level in range(levels):
            c *= 4
            self.blocks.append(nn.ModuleList(FlowStep(c, hidden, coupling == "additive", gen, min_scale)
                                             for _ in range(steps)))
            if level < levels - 1:
                self.splits.append(SplitPrior(c))
                c -= c // 2

    # ------------------------------------------------------------------ shapes
    def _check_input(self, x: torch.Tensor, what: str = "x") -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{what}: expected a tensor (B, {self.in_channels}, H, W), got {got}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"{what}: expected {self.in_channels} channel(s), got {x.shape[1]} (shape {tuple(x.shape)})")
        m = 2 ** self.levels
        if x.shape[2] % m or x.shape[3] % m:
            raise ValueError(f"{what}: height and width must be divisible by 2**levels = {m}, got "
                             f"{x.shape[2]}×{x.shape[3]} (pad the images, e.g. 28×28 MNIST to 32×32)")

    def latent_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """The ``(C, H, W)`` of each level's latent, in the order they appear in the flat ``z``."""
        shapes, c, h, w = [], self.in_channels, height, width
        for level in range(self.levels):
            c, h, w = 4 * c, h // 2, w // 2
            if level < self.levels - 1:
                shapes.append((c // 2, h, w))
                c -= c // 2
        shapes.append((c, h, w))
        return shapes

    # ------------------------------------------------------------------ the flow
    def _run_layer(self, name: str, layer: nn.Module, x: torch.Tensor, logdet: torch.Tensor):
        y, ld = layer(x)
        if self.check_finite:
            _finite(y, f"Glow.forward at {name}")
        return y, logdet + ld

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` in [0, 1] ``(B, C, H, W)`` → ``(z, logdet)``: ``z`` flat ``(B, D)``, ``logdet`` ``(B,)``."""
        self._check_input(x)
        if self.check_finite:
            _finite(x, "Glow.forward input")
        h = x - 0.5
        logdet = h.new_zeros(h.shape[0])
        latents = []
        for level, block in enumerate(self.blocks):
            h, logdet = self._run_layer(f"level{level}.squeeze", self.squeeze, h, logdet)
            for i, step in enumerate(block):
                for lname, layer in step.layers():
                    h, logdet = self._run_layer(f"level{level}.step{i}.{lname}", layer, h, logdet)
            if level < self.levels - 1:
                h, eps, ld = self.splits[level](h)
                if self.check_finite:
                    _finite(eps, f"Glow.forward at level{level}.split")
                logdet = logdet + ld
                latents.append(eps.flatten(1))
        latents.append(h.flatten(1))
        return torch.cat(latents, 1), logdet

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`f(x)`: the flat latent only."""
        return self.forward(x)[0]

    def inverse(self, z: torch.Tensor, height: int | None = None, width: int | None = None) -> torch.Tensor:
        """:math:`g(z) = f^{-1}(z)`: flat ``z`` ``(B, D)`` → image ``(B, C, H, W)`` (``H = W = image_size`` unless given)."""
        height = self.image_size if height is None else height
        width = height if width is None else width
        shapes = self.latent_shapes(height, width)
        d = sum(c * h * w for c, h, w in shapes)
        if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != d:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z: expected a flat latent (B, {d}) for {height}×{width} images, got {got}")
        if self.check_finite:
            _finite(z, "Glow.inverse input")
        pieces, start = [], 0
        for c, h, w in shapes:
            pieces.append(z[:, start:start + c * h * w].reshape(z.shape[0], c, h, w))
            start += c * h * w
        h = pieces[-1]
        for level in reversed(range(self.levels)):
            if level < self.levels - 1:
                h = self.splits[level].inverse(h, pieces[level])
                if self.check_finite:
                    _finite(h, f"Glow.inverse at level{level}.split")
            for i, step in reversed(list(enumerate(self.blocks[level]))):
                for lname, layer in reversed(step.layers()):
                    h = layer.inverse(h)
                    if self.check_finite:
                        _finite(h, f"Glow.inverse at level{level}.step{i}.{lname}")
            h = self.squeeze.inverse(h)
        return h + 0.5

    decode = inverse

    # ------------------------------------------------------------------ likelihood
    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x)` per sample ``(B,)``: the continuous density of ``x`` in :math:`[0, 1]^D` (nats)."""
        return log_prob_from_latent(*self.forward(x))

    def bits_per_dim(self, x: torch.Tensor, dequantize: bool = True,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        r"""Code length per dimension ``(B,)``: :math:`-\log_2 p(x_{\text{deq}}) / D + 8`.

        ``dequantize=True`` (published numbers' convention) first maps 8-bit ``x`` to ``(k + u)/256``; with
        ``False`` ``x`` is used as it is (a continuous image, e.g. a reconstruction).
        """
        xd = _dequantize(x, generator) if dequantize else x
        return bits_per_dim(*self.forward(xd))

    def grad_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\nabla_x \log p(x)` (autograd), the shape of ``x``."""
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.log_prob(xg).sum(), xg)
        return g

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None,
               size: int | None = None) -> torch.Tensor:
        """``n`` images ``g(T ε)``, ``ε ~ N(0, I)``, at ``temperature`` ``T`` (``size``: side, default ``image_size``)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n: expected an int >= 1, got {n!r}")
        check_positive("temperature", temperature, strict=False)
        size = self.image_size if size is None else size
        d = self.in_channels * size * size
        p = next(self.parameters())
        eps = torch.randn(n, d, generator=generator, dtype=p.dtype).to(p.device)
        return self.inverse(temperature * eps, size, size)

    # ------------------------------------------------------------------ prior use
    def prox(self, v: torch.Tensor, tau: float | torch.Tensor = 1.0) -> torch.Tensor:
        r"""Latent shrinkage :math:`g(f(v) / (1 + \tau))`: the exact prox of :math:`\tfrac\tau2\|z\|^2` in
        latent coordinates, carried to image space by :math:`g` (a prox in image space only where :math:`f`
        is an isometry). ``tau``: a number or a per-sample tensor ``(B,)``, ``>= 0``."""
        z = self.encode(v)
        if isinstance(tau, torch.Tensor) and tau.dim() > 0:
            if tau.numel() != z.shape[0]:
                raise ValueError(f"tau: expected a number or one value per sample ({z.shape[0]}), got shape {tuple(tau.shape)}")
            tau = tau.reshape(-1, 1).to(z)
        elif not isinstance(tau, torch.Tensor):
            tau = check_positive("tau", tau, strict=False)
        return self.inverse(z / (1.0 + tau), v.shape[2], v.shape[3])

    def as_prior(self, weight: float = 1.0) -> FlowPrior:
        """This flow behind the :class:`~proxlab.priors.Prior` protocol (latent shrinkage of ``weight · τ``)."""
        return FlowPrior(self, weight)

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, levels={self.levels}, steps={self.steps}, hidden={self.hidden}, "
                f"coupling={self.coupling!r}")


class FlowPrior(Prior):
    r"""A :class:`Glow` as a :class:`~proxlab.priors.Prior`: ``prior(v, tau)`` is the latent shrinkage
    ``flow.prox(v, weight * tau)``, the exact prox of :math:`\text{weight} \cdot \tfrac12\|f(x)\|^2` in latent
    coordinates (solvers pass their own τ: PGD its step, ADMM 1/ρ); capabilities ``prox``, ``log_prob``,
    ``grad_log_prob``. The prox records a graph only when ``v`` requires a gradient: a plug-in prior in a PnP loop
    then keeps no chain of graphs from one iteration to the next."""

    def __init__(self, flow: Glow, weight: float = 1.0):
        super().__init__()
        if not isinstance(flow, Glow):
            raise TypeError(f"flow: expected a proxlab.priors.flow.Glow, got {type(flow).__name__}")
        self.flow, self.weight = flow, check_positive("weight", weight)

    def forward(self, v: torch.Tensor, tau: float | torch.Tensor = 1.0) -> torch.Tensor:
        with torch.set_grad_enabled(torch.is_grad_enabled() and v.requires_grad):
            return self.flow.prox(v, self.weight * tau)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow.log_prob(x)

    def grad_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow.grad_log_prob(x)
