r"""ISTA-Net and ISTA-Net+ (Zhang & Ghanem, CVPR 2018) and a ResNet-prox baseline for block CS.

Each stage (the paper's *phase*) is one proximal-gradient step of :class:`~proxlab.unrolled.Unrolled`:

.. math::
    r^{(k)} = x^{(k-1)} - \rho_k \Phi^\top(\Phi x^{(k-1)} - y),\qquad
    x^{(k)} = \tilde{\mathcal F}_k\big(\operatorname{soft}(\mathcal F_k(r^{(k)}), \theta_k)\big)

with a learned transform :math:`\mathcal F_k` (conv–ReLU–conv, 32 channels, 3×3, no biases), its
learned left inverse :math:`\tilde{\mathcal F}_k`, and ISTA-Net+'s residual form
:math:`x^{(k)} = r^{(k)} + \mathcal G_k(\tilde{\mathcal H}_k(\operatorname{soft}(\mathcal H_k(\mathcal D_k(r^{(k)})), \theta_k)))`.
The symmetry (invertibility) residual :math:`\tilde{\mathcal F}_k(\mathcal F_k(\cdot)) - \cdot` of every stage
comes back with the output, ``net(y, return_aux=True).aux["symmetry"]`` (one tensor per stage), for the loss
:func:`proxlab.losses.istanet_loss`. The step :math:`\rho_k` and
threshold :math:`\theta_k` are softplus-parameterised, so they stay positive (init
:math:`\rho_k = 0.5/\|\Phi\|_2^2` and :math:`\theta_k = 0.01`: the authors' 0.5 and 0.01 for their Φ with
orthonormal rows); weights use Xavier-normal initialisation.

As in the paper, every 33×33 block is reconstructed on its own: :class:`BlockUnrolled` folds the
block grid of ``y (B, C, Hb, Wb, m)`` into the batch, runs the unrolled network on single blocks, and
tiles the result back (``Qinit`` gives :math:`x^{(0)}`).
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
from torch import nn
from torch.nn import functional as F

from .._checks import check_choice
from ..operators.compressed_sensing import BlockCompressedSensing
from ..priors.classic.sparsity import soft_threshold_unchecked
from ..solvers.steps import _inv_softplus
from .base import AuxProx, Unrolled, UnrolledOutput

__all__ = ["BlockUnrolled", "ISTANetProx", "ResNetProx", "ISTANet", "resnet_unrolled", "conv_macs_per_pixel"]


class ISTANetProx(AuxProx):
    """One ISTA-Net (``plus=False``) or ISTA-Net+ (``plus=True``) stage's transform–shrink–inverse.

    ``forward(v, tau)`` ignores ``tau``: the threshold :math:`\\theta_k` is learned. ``forward_aux(v, tau)``
    also returns ``{"symmetry": residual}`` (two more convolutions, so the plain call skips them).
    ``threshold_param``: ``"softplus"`` (default) keeps :math:`\\theta_k > 0`; ``"free"`` learns it unconstrained,
    as the authors' code does (a negative :math:`\\theta` then pushes every value away from zero by
    :math:`|\\theta|`; one of their released CS-MRI nets has one, see :func:`~proxlab.unrolled.istanet_from_pytorch`).
    """

    def __init__(self, channels: int = 32, plus: bool = True, threshold: float = 0.01, zero_residual: bool = False,
                 threshold_param: str = "softplus"):
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not threshold > 0:
            raise ValueError(f"threshold must be a number > 0, got {threshold!r}")
        if threshold_param not in ("softplus", "free"):
            raise ValueError(f"threshold_param must be 'softplus' or 'free', got {threshold_param!r}")
        c = channels
        self.plus = plus
        self.threshold_param = threshold_param
        conv = lambda i, o: nn.Conv2d(i, o, 3, padding=1, bias=False)  # noqa: E731
        if plus:
            self.conv_D = conv(1, c)
            self.conv1_forward, self.conv2_forward = conv(c, c), conv(c, c)
            self.conv1_backward, self.conv2_backward = conv(c, c), conv(c, c)
            self.conv_G = conv(c, 1)
        else:
            self.conv1_forward, self.conv2_forward = conv(1, c), conv(c, c)
            self.conv1_backward, self.conv2_backward = conv(c, c), conv(c, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
        if zero_residual:  # start as a plain ISTA step; see ISTANet
            if plus:
                nn.init.zeros_(self.conv_G.weight)
            else:
                self._split_identity()
        self.raw_threshold = nn.Parameter(torch.tensor(
            _inv_softplus(threshold) if threshold_param == "softplus" else float(threshold)))

    @torch.no_grad()
    def _split_identity(self) -> None:
        r"""Plain ISTA-Net: make channels 0/1 carry :math:`v^+` and :math:`v^-` through both transforms and the
        output :math:`v^+ - v^-`, so the stage starts as :math:`\operatorname{soft}(v, \theta)` with an exact left
        inverse (zero symmetry residual); the other channels keep their Xavier weights but start unused."""
        if self.conv1_forward.out_channels < 2:
            raise ValueError("zero_residual for plain ISTA-Net needs channels >= 2")
        w1, w4 = self.conv1_forward.weight, self.conv2_backward.weight
        w1[:2] = 0
        w1[0, 0, 1, 1], w1[1, 0, 1, 1] = 1.0, -1.0  # v+ and v- after the ReLU
        for conv in (self.conv2_forward, self.conv1_backward):  # carried through unchanged
            conv.weight[:2] = 0
            conv.weight[0, 0, 1, 1] = conv.weight[1, 1, 1, 1] = 1.0
        w4.zero_()
        w4[0, 0, 1, 1], w4[0, 1, 1, 1] = 1.0, -1.0  # out = soft(v+) - soft(v-) = soft(v)

    @property
    def threshold(self) -> torch.Tensor:
        return F.softplus(self.raw_threshold) if self.threshold_param == "softplus" else self.raw_threshold

    def _backward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv2_backward(F.relu(self.conv1_backward(z)))

    def _stage(self, v: torch.Tensor, symmetry: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        if v.ndim != 4 or v.shape[1] != 1:
            raise ValueError(f"ISTANetProx expects (N, 1, H, W) blocks, got shape {tuple(v.shape)}")
        src = self.conv_D(v) if self.plus else v
        z = self.conv2_forward(F.relu(self.conv1_forward(src)))
        out = self._backward(soft_threshold_unchecked(z, self.threshold))
        out = v + self.conv_G(out) if self.plus else out
        return out, (self._backward(z) - src if symmetry else None)

    def forward(self, v: torch.Tensor, tau=None) -> torch.Tensor:
        return self._stage(v, False)[0]

    def forward_aux(self, v: torch.Tensor, tau=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r"""The stage's output and ``{"symmetry": }`` :math:`\tilde{\mathcal F}(\mathcal F(s)) - s` (``s`` = ``v``, or
        :math:`\mathcal D(v)` for ISTA-Net+)."""
        out, sym = self._stage(v, True)
        return out, {"symmetry": sym}


class ResNetProx(nn.Module):
    """Residual prox (Mardani et al., 2018 style): lift to ``channels`` maps, ``blocks`` residual blocks of two
    3×3 convolutions with a ReLU between, project back; the whole net is a residual ``v + net(v)``."""

    def __init__(self, channels: int = 128, blocks: int = 2):
        super().__init__()
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        if not isinstance(blocks, int) or blocks < 1:
            raise ValueError(f"blocks must be a positive int, got {blocks!r}")
        self.head = nn.Conv2d(1, channels, 3, padding=1)
        self.body = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                          nn.Conv2d(channels, channels, 3, padding=1)) for _ in range(blocks))
        self.tail = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, v: torch.Tensor, tau=None) -> torch.Tensor:
        h = F.relu(self.head(v))
        for blk in self.body:
            h = h + blk(h)
        return v + self.tail(h)


class BlockUnrolled(Unrolled):
    """An :class:`Unrolled` PGD network that reconstructs every block of a block-CS measurement separately.

    ``operator`` is a :class:`~proxlab.operators.BlockCompressedSensing` (its ``image_size`` is dropped:
    the network accepts any block grid). ``forward(y)`` takes ``y (B, C, Hb, Wb, m)`` and returns the
    tiled image ``(B, C, Hb·block, Wb·block)``; ``forward(y, image_size=(H, W))`` crops to ``H × W``;
    ``return_aux=True`` returns an :class:`~proxlab.unrolled.UnrolledOutput` whose extra terms are per block.
    """

    def __init__(self, operator: BlockCompressedSensing, prox, stages: int = 9, tied: bool = False,
                 step_size: float = 0.5, step: str = "pgd"):
        if not isinstance(operator, BlockCompressedSensing):
            raise TypeError(f"operator must be a BlockCompressedSensing, got {type(operator).__name__}")
        check_choice("step", step, ["pgd", "pgd-free"])
        # a copy of Φ/Qinit: loading weights into the network must not overwrite the caller's operator
        super().__init__(operator.resized(None, copy=True), prox, step=step, stages=stages, tied=tied,
                         step_size=step_size)

    @property
    def ratio(self) -> float:
        return self.operator.ratio

    def forward(self, y: torch.Tensor, image_size=None, return_aux: bool = False) -> torch.Tensor | UnrolledOutput:
        if y.ndim != 5 or y.shape[-1] != self.operator.m:
            raise ValueError(f"y must have shape (B, C, Hb, Wb, {self.operator.m}), got shape {tuple(y.shape)}")
        B, C, hb, wb, m = y.shape
        out = super().forward(y.reshape(B * C * hb * wb, 1, 1, 1, m), return_aux=return_aux)
        blocks = out.x if return_aux else out
        x = self.operator.from_blocks(blocks.reshape(B, C, hb, wb, -1))
        if image_size is not None:
            x = x[..., : image_size[0], : image_size[1]]
        return UnrolledOutput(x, out.aux) if return_aux else x


class ISTANet(BlockUnrolled):
    r"""ISTA-Net (``plus=False``) or ISTA-Net+ (``plus=True``): ``stages`` untied PGD stages (the paper's phases)
    with the learned transform prox, 32 channels, ρ₀ = 0.5/‖Φ‖² (0.5 for the shared Φ files, whose rows are
    orthonormal), θ₀ = 0.01; ``stages`` defaults to the paper's 9, ``phases=`` is its deprecated alias.

    ``step="pgd-free"`` and ``threshold_param="free"`` learn :math:`\\rho_k` and :math:`\\theta_k` unconstrained, as
    the authors' code does (see :func:`~proxlab.unrolled.istanet_from_pytorch`).

    ``zero_residual=True`` starts every stage as a plain ISTA step. ISTA-Net+: :math:`\mathcal G_k` starts at
    zero instead of Xavier, so the untrained network is 9 plain gradient steps from Qinit; with a short
    training budget this converges much faster (31.6 vs 26.9 dB validation PSNR after 50 steps at 25 %).
    Plain ISTA-Net has no residual; two of its 32 channels start as the split :math:`v = v^+ - v^-`
    through both transforms (see :meth:`ISTANetProx._split_identity`), so a stage starts as
    :math:`\operatorname{soft}(r^{(k)}, \theta_k)` and the learned transform grows from there.
    """

    def __init__(self, operator: BlockCompressedSensing, stages: int | None = None, plus: bool = True,
                 channels: int = 32, zero_residual: bool = False, *, phases: int | None = None, step: str = "pgd",
                 threshold_param: str = "softplus"):
        if phases is not None:
            if stages is not None:
                raise ValueError(f"give stages or its deprecated alias phases, not both (stages={stages!r}, "
                                 f"phases={phases!r})")
            warnings.warn("ISTANet(phases=) is deprecated; use stages=", DeprecationWarning, stacklevel=2)
            stages = phases
        stages = 9 if stages is None else stages
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
            raise ValueError(f"stages must be an int >= 1, got {stages!r}")
        super().__init__(operator, lambda: ISTANetProx(channels, plus=plus, zero_residual=zero_residual,
                                                       threshold_param=threshold_param),
                         stages=stages, tied=False, step_size=0.5, step=step)
        self.plus = plus

    @property
    def phases(self) -> int:
        """Deprecated: the number of :attr:`stages`."""
        return self.stages


def resnet_unrolled(operator: BlockCompressedSensing, stages: int = 5, channels: int = 128, blocks: int = 1,
                    tied: bool = True) -> BlockUnrolled:
    """Unrolled PGD with a shared :class:`ResNetProx` (the recurrent form of Mardani et al.)."""
    return BlockUnrolled(operator, ResNetProx(channels, blocks), stages=stages, tied=tied, step_size=1.0)


def conv_macs_per_pixel(model: nn.Module) -> int:
    """Multiply–accumulates per pixel of all 3×3 (stride 1, same padding) convolutions run in one forward pass,
    counting a tied module once per stage (``model.stages``)."""
    per_module = sum(m.in_channels * m.out_channels * math.prod(m.kernel_size) // m.groups
                     for m in model.modules() if isinstance(m, nn.Conv2d))
    if getattr(model, "tied", False):
        per_module *= model.stages
    return per_module
