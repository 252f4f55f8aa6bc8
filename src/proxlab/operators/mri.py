r"""Single-coil Cartesian MRI: :math:`y = M \odot F x` with the orthonormal 2-D DFT :math:`F`.

Real images in, complex k-space out (full grid, zeros where not sampled). The mask is stored in
``torch.fft.fft2`` layout (DC at index ``[0, 0]``). With the real inner product on k-space,
:math:`A^\top y = \operatorname{Re}(F^H M y)` and :math:`A^\top A = F^H M_s F` with the symmetrised
mask :math:`M_s(k) = (M(k) + M(-k))/2`, so :math:`(A^\top A + \rho I)x = b` is solved exactly by
:math:`x = \operatorname{Re} F^H [F b / (M_s + \rho)]`.

Mask files: ISTA-Net's ``mask_matrix`` (uint8, DC at the corner) is used as is; Deep ADMM-Net's
``mask`` (MATLAB v7.3, DC at the centre) is ``ifftshift``-ed, as its code does before multiplying
``fft2(x)``. The two sets are the same masks (one is ``fftshift`` of the other).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .._checks import check_range, check_tensor
from .base import LinearOperator, match, rho_tensor
from .compressed_sensing import load_mat_array

__all__ = ["MRI", "radial_mask", "cartesian_mask", "mask_sha256"]


def _square(name: str, size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    size = tuple(size)
    if len(size) != 2 or not all(isinstance(s, int) and s > 1 for s in size):
        raise ValueError(f"{name} must be an int > 1 or a pair of them, got {size!r}")
    return size  # type: ignore[return-value]


def _radial_lines(H: int, W: int, n_lines: int) -> torch.Tensor:
    """Centred (DC in the middle) mask of ``n_lines`` equispaced lines through the centre."""
    cy, cx = H // 2, W // 2
    angles = torch.arange(n_lines, dtype=torch.float64) * (math.pi / n_lines)
    r = torch.arange(-max(H, W), max(H, W) + 1, 0.5, dtype=torch.float64)
    ys = torch.round(cy + r[None, :] * torch.sin(angles)[:, None]).long()
    xs = torch.round(cx + r[None, :] * torch.cos(angles)[:, None]).long()
    keep = (ys >= 0) & (ys < H) & (xs >= 0) & (xs < W)
    mask = torch.zeros(H, W)
    mask[ys[keep], xs[keep]] = 1
    return mask


def mask_sha256(mask: torch.Tensor) -> str:
    """A fingerprint of a sampling mask (which entries are sampled, and the shape), in the layout it is given: two
    masks have the same one exactly when they sample the same frequencies. Zoo MRI models record theirs."""
    mask = check_tensor("mask", mask)
    import hashlib

    h = hashlib.sha256(repr(tuple(mask.shape)).encode())
    h.update((mask.detach().cpu() != 0).to(torch.uint8).contiguous().numpy().tobytes())
    return h.hexdigest()


def radial_mask(size: int | Sequence[int], ratio: float) -> torch.Tensor:
    """Pseudo-radial mask (fft2 layout) with the fewest equispaced lines that sample at least ``ratio``."""
    H, W = _square("size", size)
    check_range("ratio", ratio, 0.0, 1.0, inclusive=(False, True))
    lo, hi = 1, 4 * max(H, W)
    while lo < hi:  # smallest line count reaching the ratio (coverage grows with the count)
        mid = (lo + hi) // 2
        if float(_radial_lines(H, W, mid).mean()) >= ratio:
            hi = mid
        else:
            lo = mid + 1
    return torch.fft.ifftshift(_radial_lines(H, W, lo))


def cartesian_mask(size: int | Sequence[int], ratio: float, center_fraction: float = 0.08, seed: int = 0) -> torch.Tensor:
    """Random Cartesian mask (fft2 layout): fully sampled low-frequency columns (``center_fraction`` of
    the width) plus uniformly random other columns, ``round(ratio·W)`` columns in all."""
    H, W = _square("size", size)
    check_range("ratio", ratio, 0.0, 1.0, inclusive=(False, True))
    check_range("center_fraction", center_fraction, 0.0, 1.0)
    total = max(1, round(ratio * W))
    n_center = min(total, round(center_fraction * W))
    cols = torch.zeros(W, dtype=torch.bool)
    c0 = W // 2 - n_center // 2
    cols[c0 : c0 + n_center] = True
    g = torch.Generator().manual_seed(seed)
    rest = torch.nonzero(~cols).flatten()
    cols[rest[torch.randperm(rest.numel(), generator=g)[: total - n_center]]] = True
    return torch.fft.ifftshift(cols.float()[None, :].expand(H, W).clone())


class MRI(LinearOperator):
    r"""Masked orthonormal 2-D Fourier transform (see the module docstring).

    Parameters
    ----------
    mask:
        ``(H, W)`` sampling mask in ``fft2`` layout (DC at ``[0, 0]``); pass ``centered=True`` for a
        mask with DC in the middle (it is ``ifftshift``-ed).
    """

    def __init__(self, mask: torch.Tensor, centered: bool = False):
        mask = check_tensor("mask", mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must have shape (H, W), got shape {tuple(mask.shape)}")
        mask = mask.to(torch.float32)
        if centered:
            mask = torch.fft.ifftshift(mask)
        H, W = mask.shape
        super().__init__((None, H, W), (None, H, W))
        self.register_buffer("mask", mask)
        sym = 0.5 * (mask + torch.roll(torch.flip(mask, dims=(0, 1)), shifts=(1, 1), dims=(0, 1)))
        self.register_buffer("_mask_sym", sym, persistent=False)

    @classmethod
    def from_mat(cls, path) -> "MRI":
        """Load an ISTA-Net (``mask_matrix``, DC at the corner) or Deep ADMM-Net (``mask``, DC at the
        centre) mask file."""
        try:
            return cls(load_mat_array(path, ["mask_matrix"]), centered=False)
        except ValueError as err:
            if "expected a variable" not in str(err):
                raise
        return cls(load_mat_array(path, ["mask"]), centered=True)

    @classmethod
    def radial(cls, size: int | Sequence[int], ratio: float) -> "MRI":
        return cls(radial_mask(size, ratio))

    @classmethod
    def cartesian(cls, size: int | Sequence[int], ratio: float, center_fraction: float = 0.08, seed: int = 0) -> "MRI":
        return cls(cartesian_mask(size, ratio, center_fraction, seed))

    @property
    def ratio(self) -> float:
        return float(self.mask.mean())

    def check_input(self, x, arg="x"):
        x = super().check_input(x, arg)
        if x.is_complex():
            raise TypeError(f"{self.name}.forward: {arg} must be a real image, got dtype {x.dtype}")
        return x

    def check_output(self, y, arg="y"):
        y = super().check_output(y, arg)
        if not y.is_complex():
            raise TypeError(f"{self.name}.adjoint: {arg} must be complex k-space, got dtype {y.dtype}")
        return y

    def _forward(self, x):
        return match(self.mask, x) * torch.fft.fft2(x, norm="ortho")

    def _adjoint(self, y):
        return torch.fft.ifft2(match(self.mask, y.real) * y, norm="ortho").real

    def gram(self, x):
        x = self.check_input(x)
        return torch.fft.ifft2(match(self._mask_sym, x) * torch.fft.fft2(x, norm="ortho"), norm="ortho").real

    def init(self, y):
        """Zero-filled inverse FFT :math:`\\operatorname{Re} F^H M y`."""
        return self.adjoint(y)

    def solve_normal(self, b, rho, tol=None, max_iter=None, x0=None):
        b = self.check_input(b, "b")
        rho_t = rho_tensor(rho, b)
        denom = match(self._mask_sym, b) + rho_t
        if bool((denom <= 0).any()):
            raise ValueError(f"rho must be > 0 when the mask leaves frequencies unsampled, got rho={rho!r}")
        return torch.fft.ifft2(torch.fft.fft2(b, norm="ortho") / denom, norm="ortho").real

    def norm(self, shape=None, **kwargs) -> float:
        return float(self._mask_sym.max())

    def extra_repr(self) -> str:
        return f"size={tuple(self.mask.shape)}, ratio={self.ratio:.4f}"
