r"""Phantoms for computed tomography: the modified Shepp--Logan head and random ellipses.

An ellipse with centre :math:`(x_0, y_0)`, semi-axes :math:`(a, b)` and angle :math:`\theta` is the set

.. math:: \Big(\frac{x'}{a}\Big)^2 + \Big(\frac{y'}{b}\Big)^2 \le 1,\qquad
          x' = (x - x_0)\cos\theta + (y - y_0)\sin\theta,\quad
          y' = -(x - x_0)\sin\theta + (y - y_0)\cos\theta,

on the square :math:`[-1, 1]^2` sampled at pixel centres, :math:`x` to the right and :math:`y` up (row 0
is :math:`y \approx 1`). A phantom is a sum of such indicator functions times intensities
(Shepp & Logan, *The Fourier reconstruction of a head section*, IEEE TNS 1974).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ._common import as_size, check_int, item_seed, resize, to_unit_tensor

__all__ = ["shepp_logan", "random_ellipses", "rasterize_ellipses"]

_CHUNK = 64


def shepp_logan(size: int | Sequence[int] = 256) -> torch.Tensor:
    r"""The modified Shepp--Logan phantom (Toft, 1996) as ``(1, 1, H, W)`` ``float32`` in ``[0, 1]``.

    ``skimage.data.shepp_logan_phantom()`` (400x400, intensities 0, 0.1, 0.2, 0.3, 0.4 and 1: the
    "modified" contrast of Toft's thesis, readable on a [0, 1] scale) resized to ``size`` (an int
    or ``(H, W)``) by anti-aliased bilinear interpolation; ``size=400`` returns it unchanged.
    """
    hw = as_size("size", size)
    try:
        import skimage.data
    except ImportError:
        raise ImportError("shepp_logan needs the 'scikit-image' package ('pip install scikit-image')") from None
    img = to_unit_tensor(np.asarray(skimage.data.shepp_logan_phantom()), "skimage.data.shepp_logan_phantom")
    return resize(img[None, None].contiguous(), hw)


def rasterize_ellipses(params: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    r"""Sum of ellipse indicators, batched: ``params (N, E, 6) -> (N, 1, H, W)``.

    Each row of ``params`` is ``(intensity, a, b, x0, y0, theta)`` (``theta`` in radians,
    counter-clockwise), in the coordinates of the module docstring. A few tensor operations per
    ellipse index ``e`` over a chunk of 64 images (no loop over pixels or images); no clipping.
    Ellipses with zero intensity (padding) are skipped.
    """
    if not isinstance(params, torch.Tensor) or params.ndim != 3 or params.shape[-1] != 6:
        got = tuple(params.shape) if isinstance(params, torch.Tensor) else type(params).__name__
        raise ValueError(f"params must have shape (N, E, 6), got {got}")
    h, w = as_size("size", size)
    dtype = params.dtype if params.is_floating_point() else torch.float32
    p = params.to(dtype)
    xs = (2 * torch.arange(w, dtype=dtype, device=p.device) + 1) / w - 1
    ys = 1 - (2 * torch.arange(h, dtype=dtype, device=p.device) + 1) / h
    out = torch.zeros(p.shape[0], h, w, dtype=dtype, device=p.device)
    for lo in range(0, p.shape[0], _CHUNK):  # chunks of images keep the temporaries small
        pc = p[lo : lo + _CHUNK]
        oc = out[lo : lo + _CHUNK]
        for e in range(pc.shape[1]):
            v, a, b, x0, y0, th = (pc[:, e, k].view(-1, 1, 1) for k in range(6))
            if not bool((v != 0).any()):
                continue
            # (x'/a)^2 + (y'/b)^2 = A dx^2 + B dx dy + C dy^2 with dx, dy broadcast along one axis each
            c2, s2, cs = torch.cos(th) ** 2, torch.sin(th) ** 2, torch.sin(th) * torch.cos(th)
            ia, ib = 1 / a**2, 1 / b**2
            dx = xs.view(1, 1, w) - x0
            dy = ys.view(1, h, 1) - y0
            q = dx * dy
            q.mul_(2 * cs * (ia - ib)).add_((c2 * ia + s2 * ib) * dx**2).add_((s2 * ia + c2 * ib) * dy**2)
            oc.addcmul_((q <= 1).to(dtype), v)
    return out.unsqueeze(1)


def _ellipse_params(n: int, seed: int, counts: tuple[int, int], intensity: tuple[float, float]) -> torch.Tensor:
    """``(n, max_count, 6)`` float64 parameters; image ``i`` from a generator seeded by ``(seed, i)``."""
    e_max = counts[1]
    out = torch.zeros(n, e_max, 6, dtype=torch.float64)
    for i in range(n):  # per image so that image i does not depend on n (cheap: parameters only)
        g = torch.Generator().manual_seed(item_seed(seed, i))
        k = int(torch.randint(counts[0], counts[1] + 1, (1,), generator=g))
        u = torch.rand(e_max, 6, generator=g, dtype=torch.float64)
        v = intensity[0] + (intensity[1] - intensity[0]) * u[:, 0]
        v[0] = 0.5 + 0.5 * u[0, 0]  # the first ellipse is always bright
        v[k:] = 0.0  # only k ellipses are active
        out[i, :, 0] = v
        out[i, :, 1] = 0.05 + 0.45 * u[:, 1]  # semi-axes in [0.05, 0.5]
        out[i, :, 2] = 0.05 + 0.45 * u[:, 2]
        out[i, :, 3] = -0.6 + 1.2 * u[:, 3]  # centres in [-0.6, 0.6]^2
        out[i, :, 4] = -0.6 + 1.2 * u[:, 4]
        out[i, :, 5] = torch.pi * u[:, 5]  # angle in [0, pi)
    return out


def random_ellipses(
    n: int,
    size: int | Sequence[int] = 128,
    seed: int = 0,
    counts: tuple[int, int] = (5, 15),
    intensity: tuple[float, float] = (-0.5, 1.0),
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    r"""Random ellipse phantoms ``(n, 1, H, W)`` in ``[0, 1]``: training data for CT.

    Image ``i`` sums :math:`k_i \sim \mathcal U\{counts\}` ellipses with semi-axes in
    :math:`[0.05, 0.5]`, centres in :math:`[-0.6, 0.6]^2`, angles in :math:`[0, \pi)` and intensities
    uniform in ``intensity`` (negative ones carve holes), except the first, whose intensity is in
    :math:`[0.5, 1]`. The sum is clipped below at 0 and divided by its maximum, so an image spans
    :math:`[0, 1]` exactly (one whose sum is nowhere positive, which needs holes covering every
    bright ellipse, would stay 0). This follows the random-ellipse training sets of Adler & Öktem,
    *Learned primal-dual reconstruction* (IEEE TMI 2018), with its own distribution.

    Deterministic: image ``i`` uses a generator seeded by ``(seed, i)``, so
    ``random_ellipses(10, s, seed)`` equals the first 10 of ``random_ellipses(100, s, seed)``.
    Parameters are drawn on the CPU in float64; the images are rasterised on ``device``.
    """
    n = check_int("n", n, low=1)
    seed = check_int("seed", seed, low=0)
    hw = as_size("size", size)
    if not (isinstance(counts, Sequence) and len(counts) == 2):
        raise TypeError(f"counts: expected a pair (min, max) of ints, got {counts!r}")
    lo = check_int("counts[0]", counts[0], low=1)
    hi = check_int("counts[1]", counts[1], low=1)
    if hi < lo:
        raise ValueError(f"counts must satisfy min <= max, got {counts!r}")
    if not (isinstance(intensity, Sequence) and len(intensity) == 2):
        raise TypeError(f"intensity: expected a pair (low, high) of numbers, got {intensity!r}")
    v_lo, v_hi = float(intensity[0]), float(intensity[1])
    if not v_lo <= v_hi:
        raise ValueError(f"intensity must satisfy low <= high, got {intensity!r}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
    params = _ellipse_params(n, seed, (lo, hi), (v_lo, v_hi)).to(device=device, dtype=dtype)
    img = rasterize_ellipses(params, hw).clamp_(min=0.0)
    peak = img.amax(dim=(1, 2, 3), keepdim=True)
    return img / peak.clamp_min(torch.finfo(dtype).tiny)
