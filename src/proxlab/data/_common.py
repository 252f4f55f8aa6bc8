r"""Helpers shared by the data sources: size parsing, anti-aliased resizing, array -> [0, 1] tensor,
luma, and per-item seeds.

Conventions of :mod:`proxlab.data`: a function that returns images returns a batch
``(N, C, H, W)`` of ``float32`` values in ``[0, 1]`` (``N = 1`` for a single image); a
:class:`torch.utils.data.Dataset` returns single samples ``(C, H, W)``, which a
:class:`~torch.utils.data.DataLoader` stacks back into ``(B, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["as_size", "resize", "to_unit_tensor", "luma", "item_seed", "LUMA_WEIGHTS"]

#: ITU-R BT.601 luma weights :math:`Y' = 0.299 R + 0.587 G + 0.114 B` (as PIL's ``"L"`` mode and
#: MATLAB's ``rgb2gray``), applied to ``[0, 1]`` floats without rounding.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def as_size(name: str, size: int | Sequence[int]) -> tuple[int, int]:
    """``size`` as ``(H, W)``: an int ``s`` means ``(s, s)``; both entries must be positive ints."""
    if isinstance(size, bool):
        raise TypeError(f"{name}: expected an int or a pair (H, W) of ints, got {size!r}")
    if isinstance(size, (int, np.integer)):
        pair = (int(size), int(size))
    elif isinstance(size, Sequence) and len(size) == 2 and all(
        isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size
    ):
        pair = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"{name}: expected an int or a pair (H, W) of ints, got {size!r}")
    if pair[0] <= 0 or pair[1] <= 0:
        raise ValueError(f"{name} must be positive, got {size!r}")
    return pair


def resize(images: torch.Tensor, size: int | Sequence[int] | None) -> torch.Tensor:
    """Resize a batch ``(N, C, H, W)`` to ``size`` with anti-aliased bilinear interpolation.

    Bilinear weights are non-negative and sum to one, so values stay in ``[0, 1]``. When
    downsampling, ``antialias=True`` widens the kernel by the scale factor (a box-like low-pass).
    ``size=None`` or the current size returns ``images`` unchanged.
    """
    if size is None:
        return images
    hw = as_size("size", size)
    if tuple(images.shape[-2:]) == hw:
        return images
    out = F.interpolate(images, size=hw, mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(0.0, 1.0)


def to_unit_tensor(array: np.ndarray, what: str) -> torch.Tensor:
    """An integer, boolean or float array as ``float32`` in ``[0, 1]``.

    ``bool`` -> {0, 1}; ``uint8`` / ``int8`` ranges divide by 255; ``uint16`` by 65535; floats must
    already lie in ``[0, 1]``. ``what`` names the source in error messages.
    """
    a = np.asarray(array)
    if a.dtype == np.bool_:
        return torch.from_numpy(a.astype(np.float32))
    if a.dtype == np.uint8:
        return torch.from_numpy(a.astype(np.float32) / np.float32(255.0))
    if a.dtype == np.uint16:
        return torch.from_numpy(a.astype(np.float32) / np.float32(65535.0))
    if np.issubdtype(a.dtype, np.floating):
        if a.size and not np.isfinite(a).all():
            raise ValueError(f"{what}: float values must lie in [0, 1], got NaN or infinite values")
        if a.size and (a.min() < 0.0 or a.max() > 1.0):
            raise ValueError(f"{what}: float values must lie in [0, 1], got range [{a.min():.4g}, {a.max():.4g}]")
        return torch.from_numpy(a.astype(np.float32))
    raise ValueError(f"{what}: unsupported pixel type {a.dtype} (expected bool, uint8, uint16 or float in [0, 1])")


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of ``(..., 3, H, W)`` -> ``(..., 1, H, W)``; see :data:`LUMA_WEIGHTS`."""
    w = torch.tensor(LUMA_WEIGHTS, dtype=rgb.dtype, device=rgb.device).view(3, 1, 1)
    return (rgb * w).sum(dim=-3, keepdim=True).clamp_(0.0, 1.0)


def item_seed(seed: int, index: int) -> int:
    """A 63-bit seed derived from ``(seed, index)`` by NumPy's ``SeedSequence`` (well mixed, stable)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def check_int(name: str, value: object, low: int | None = None) -> int:
    """``value`` as an int (not bool), optionally ``>= low``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {value!r}")
    v = int(value)
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {v}")
    return v
