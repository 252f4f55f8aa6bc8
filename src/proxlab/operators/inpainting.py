r"""Inpainting: a fixed pixel mask, :math:`A x = M \odot x`."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .._checks import check_range, check_tensor
from .base import LinearOperator, match, rho_tensor

__all__ = ["Inpainting"]


def _size2(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return value  # type: ignore[return-value]


class Inpainting(LinearOperator):
    r"""Pixel masking :math:`A x = M \odot x` with a fixed 0/1 mask :math:`M` (1 = observed).

    :math:`A` is self-adjoint and idempotent, :math:`\|A\|_2^2 = 1`, and
    :math:`(A^\top A + \rho I)^{-1} b = b / (M + \rho)` is exact (entries with :math:`M + \rho = 0`
    get the minimum-norm value 0).

    Parameters
    ----------
    mask:
        Tensor of shape ``(H, W)``, ``(1, H, W)`` or ``(C, H, W)``; broadcast over the batch (and
        over channels when its first dimension is 1). Values are used as weights, so a soft mask is
        allowed, but 0/1 is the intended use.
    """

    def __init__(self, mask: torch.Tensor):
        mask = check_tensor("mask", mask)
        if mask.ndim == 2:
            mask = mask[None]
        if mask.ndim != 3:
            raise ValueError(f"mask must have shape (H, W), (1, H, W) or (C, H, W), got shape {tuple(mask.shape)}")
        mask = mask.to(torch.float32) if not mask.is_floating_point() else mask
        channels = None if mask.shape[0] == 1 else mask.shape[0]
        shape = (channels, mask.shape[1], mask.shape[2])
        super().__init__(shape, shape)
        self.register_buffer("mask", mask)

    @classmethod
    def box(cls, image_size: int | Sequence[int], box_size: int | Sequence[int], center: Sequence[int] | None = None) -> "Inpainting":
        """Mask with a missing ``box_size`` rectangle, centred in the image unless ``center`` is given."""
        H, W = _size2("image_size", image_size)
        bh, bw = _size2("box_size", box_size)
        if bh > H or bw > W:
            raise ValueError(f"box_size {(bh, bw)} does not fit in image_size {(H, W)}")
        cy, cx = (H // 2, W // 2) if center is None else tuple(center)
        top, left = cy - bh // 2, cx - bw // 2
        if top < 0 or left < 0 or top + bh > H or left + bw > W:
            raise ValueError(f"box of size {(bh, bw)} at center {(cy, cx)} leaves the image of size {(H, W)}")
        mask = torch.ones(H, W)
        mask[top : top + bh, left : left + bw] = 0
        return cls(mask)

    @classmethod
    def random(cls, image_size: int | Sequence[int], ratio: float, seed: int = 0, channels: int = 1) -> "Inpainting":
        """Random pixel mask keeping a fraction ``ratio`` of the pixels (exactly ``round(ratio·H·W)``)."""
        H, W = _size2("image_size", image_size)
        check_range("ratio", ratio, 0.0, 1.0)
        if not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive int, got {channels!r}")
        g = torch.Generator().manual_seed(seed)
        keep = round(ratio * H * W)
        order = torch.randperm(H * W, generator=g)
        mask = torch.zeros(H * W)
        mask[order[:keep]] = 1
        return cls(mask.view(1, H, W).expand(channels, H, W).clone())

    @property
    def ratio(self) -> float:
        """Fraction of observed entries."""
        return float(self.mask.mean())

    def _forward(self, x):
        return match(self.mask, x) * x

    def _adjoint(self, y):
        return match(self.mask, y) * y

    def gram(self, x):
        m = match(self.mask, self.check_input(x))
        return m * m * x

    def solve_normal(self, b, rho, tol=None, max_iter=None, x0=None):
        self.check_input(b, "b")
        m = match(self.mask, b)
        denom = m * m + rho_tensor(rho, b)
        return torch.where(denom > 0, b / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(b))

    def norm(self, shape=None, **kwargs) -> float:
        return float(self.mask.abs().max()) ** 2
