"""Helpers shared by the commands: reading inputs, writing PNGs, showing measurements."""

from __future__ import annotations

from pathlib import Path

import torch

from ..operators import LinearOperator


def load_input(spec: str, size: int | None = None) -> torch.Tensor:
    """``skimage:NAME`` for a bundled image, otherwise an image file; grey ``(1, 1, H, W)`` in [0, 1]."""
    from ..data import load_image, skimage_image

    if spec.startswith("skimage:"):
        return skimage_image(spec.split(":", 1)[1], grey=True, size=size)
    return load_image(spec, grey=True, size=size)


def save_png(path: str | Path, x: torch.Tensor) -> Path:
    """Write one image ``(1, C, H, W)`` or ``(C, H, W)`` in [0, 1] (clipped) as an 8-bit PNG."""
    import numpy as np
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"output must be a .png file, got {str(path)!r}")
    if not path.parent.exists():
        raise FileNotFoundError(f"output folder does not exist: {path.parent}")
    x = x.detach().cpu().float()
    x = x[0] if x.ndim == 4 else x
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else np.ascontiguousarray(arr)).save(path)
    return path


def measurement_image(A: LinearOperator, y: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """Something to look at for a measurement: the image itself when ``y`` has the image's shape,
    the log-magnitude of k-space for MRI, the sinogram (rescaled) for CT, ``Aᵀy`` otherwise."""
    if y.is_complex():
        mag = torch.log1p(torch.fft.fftshift(y.abs(), dim=(-2, -1)) * 50)
        return mag / mag.amax().clamp_min(1e-12)
    if tuple(y.shape) == tuple(shape):
        return y.clamp(0, 1)
    if y.ndim == 4:  # a sinogram (B, 1, angles, detectors)
        return (y - y.amin()) / (y.amax() - y.amin()).clamp_min(1e-12)
    return A.adjoint(y).clamp(0, 1)
