"""Images in and out, and the figures shared by ``proxlab demo`` and the run reports."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import torch

from ..operators import LinearOperator


def load_input(spec: str, size: int | None = None) -> torch.Tensor:
    """``skimage:NAME`` for a bundled image, otherwise an image file; grey ``(1, 1, H, W)`` in [0, 1]."""
    from ..data import load_image, skimage_image

    if spec.startswith("skimage:"):
        return skimage_image(spec.split(":", 1)[1], grey=True, size=size)
    return load_image(spec, grey=True, size=size)


def check_png_path(path: str | Path) -> Path:
    """``path`` as a place a PNG can be written: a ``.png`` name (not a folder) in a folder that exists."""
    path = Path(path)
    if path.suffix.lower() != ".png" or path.is_dir():
        raise ValueError(f"output must be a .png file, got {str(path)!r}")
    if not path.parent.exists():
        raise FileNotFoundError(f"output folder does not exist: {path.parent}")
    return path


def save_png(path: str | Path, x: torch.Tensor) -> Path:
    """Write one image ``(1, C, H, W)`` or ``(C, H, W)`` in [0, 1] (clipped) as an 8-bit PNG."""
    import numpy as np
    from PIL import Image

    path = check_png_path(path)
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


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig, dpi: int = 100, path: str | Path | None = None) -> bytes:
    """Render ``fig`` to PNG bytes, close it, and also write them to ``path`` when given."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    pyplot().close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def comparison_grid(panels: dict[str, dict[str, torch.Tensor]], rows: list[str], cols: list[str],
                    path: str | Path | None = None, truth_key: str = "truth", index: int = 0) -> bytes:
    """A grid of grey images: ``panels[row][col]`` is a batch, image ``index`` is shown; columns after
    the truth and the measurement are labelled with their PSNR against ``panels[row][truth_key]``.
    Returns the PNG bytes (and writes them to ``path`` when given)."""
    from ..metrics import psnr

    plt = pyplot()
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.6 * len(cols), 1.7 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("\n".join(textwrap.wrap(c, 16)), fontsize=7)
            if j == 0:
                ax.set_ylabel("\n".join(textwrap.wrap(r, 18)), fontsize=7)
            if c not in panels[r]:
                for side in ax.spines.values():
                    side.set_visible(False)
                continue
            img = panels[r][c][index : index + 1]
            ax.imshow(img[0, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if c not in (truth_key, "measurement"):
                ax.set_xlabel(f"{float(psnr(img, panels[r][truth_key][index : index + 1])):.1f} dB", fontsize=7)
    fig.tight_layout()
    return png_bytes(fig, dpi=110, path=path)


def tile_rows(rows: list[tuple[str, list[tuple[str, torch.Tensor]]]], path: str | Path | None = None,
              vmax: float = 1.0) -> bytes:
    """One row of captioned grey tiles per entry ``(row label, [(caption, image), ...])``; rows may differ in length
    (a shorter row leaves its last cells empty). Each image is ``(1, 1, H, W)`` or ``(H, W)`` in [0, 1], shown with
    grey levels from 0 to ``vmax`` (a display window for dim images). Returns the PNG bytes (and writes them to
    ``path`` when given)."""
    plt = pyplot()
    n_cols = max(len(tiles) for _, tiles in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(1.75 * n_cols, 1.9 * len(rows)), squeeze=False)
    for i, (label, tiles) in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(tiles):
                ax.set_axis_off()
                continue
            caption, img = tiles[j]
            img = img.detach().cpu().float()
            img = img[0, 0] if img.ndim == 4 else img
            ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_title("\n".join(textwrap.wrap(caption, 22)), fontsize=6.5)
            if j == 0:
                ax.set_ylabel("\n".join(textwrap.wrap(label, 20)), fontsize=7)
    fig.tight_layout()
    return png_bytes(fig, dpi=110, path=path)


def training_curves(history: list[dict[str, float]]) -> bytes:
    """Training loss and the validation measure (PSNR, or the validation loss where a loss validates itself,
    e.g. a flow's bits/dim) against the step, as PNG bytes."""
    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(8, 3))
    tr = [(h["step"], h["loss"]) for h in history if "loss" in h]
    key = "val_psnr" if any("val_psnr" in h for h in history) else "val_loss"
    va = [(h["step"], h[key]) for h in history if key in h]
    if tr:
        ax[0].plot(*zip(*tr), lw=1)
        ax[0].set_yscale("log" if min(v for _, v in tr) > 0 else "linear")  # a loss such as Σ log NMSE can be < 0
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("training loss")
    if va:
        ax[1].plot(*zip(*va), marker="o", ms=3)
    ax[1].set_xlabel("step")
    ax[1].set_ylabel("validation PSNR (dB)" if key == "val_psnr" else "validation loss")
    fig.tight_layout()
    return png_bytes(fig, dpi=100)
