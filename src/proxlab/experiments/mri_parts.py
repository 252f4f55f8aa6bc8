"""Data source ``mri_images``: MR images from two folders, one to train on and one held out for testing.

``[data] source = "mri_images"`` with ``[data] options = {train = FOLDER, test = FOLDER}``. Each folder holds
one image per file, read in name order: MATLAB ``.mat`` files (v5 or v7.3, the array named ``key``; Deep
ADMM-Net's training images keep theirs in ``im_ori``) or image files (PNG, TIFF, …; 8-bit grey is divided by
255). Every image must be real, 2-D, of one size, with values in ``[0, 1]``. ``val_count`` images of the training
folder (a seeded draw) are set aside for validation; ``test_count`` keeps the first that many test images (0: all).

The training and test folders are different sets of people and organs (Deep ADMM-Net trains on 100 chest slices,
its and ISTA-Net's brain test sets are other scans), so nothing of the test folder is seen in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
from pydantic import BaseModel, ConfigDict, Field

from .datasets import Splits, refuse_generic_keys
from .parts import register_source

__all__ = ["MRIImagesOptions", "mri_images", "load_image_folder"]

_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm")


class MRIImagesOptions(BaseModel):
    """``[data] options`` of source ``mri_images``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    train: Annotated[str, Field(min_length=1)]
    test: Annotated[str, Field(min_length=1)]
    key: Annotated[str, Field(min_length=1)] = "im_ori"
    val_count: Annotated[int, Field(ge=1)] = 10
    test_count: Annotated[int, Field(ge=0)] = 0


def _read(path: Path, key: str) -> torch.Tensor:
    if path.suffix.lower() == ".mat":
        from ..operators.compressed_sensing import load_mat_array

        x = load_mat_array(path, [key])
    else:
        from ..data import load_image

        x = load_image(path, grey=True)[0, 0].double()
    if x.ndim != 2 or x.is_complex():
        raise ValueError(f"{path}: expected a real 2-D image, got shape {tuple(x.shape)} and dtype {x.dtype}")
    lo, hi = float(x.min()), float(x.max())
    if not (0.0 <= lo and hi <= 1.0):
        raise ValueError(f"{path}: expected values in [0, 1], got [{lo:g}, {hi:g}]")
    return x.float()


def load_image_folder(folder: str | Path, key: str = "im_ori", where: str = "folder") -> tuple[torch.Tensor, list[str]]:
    """The images of ``folder`` (``.mat`` arrays named ``key``, or image files) in name order, as ``(N, 1, H, W)``
    float32, and their file stems. ``where`` names the setting in error messages."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{where}: expected a folder of MR images (.mat arrays named {key!r}, or image "
                                f"files), got {str(folder)!r}, which is not a folder")
    files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in (".mat", *_IMAGE_SUFFIXES))
    if not files:
        raise ValueError(f"{where}: {folder} holds no .mat or image files")
    images = [_read(f, key) for f in files]
    shapes = sorted({tuple(x.shape) for x in images})
    if len(shapes) > 1:
        raise ValueError(f"{where}: expected images of one size (the sampling mask's), got sizes {shapes} in {folder}")
    return torch.stack(images).unsqueeze(1), [f.stem for f in files]


@register_source("mri_images", MRIImagesOptions)
def mri_images(cfg, seed: int, task=None) -> Splits:
    """Training and validation images from ``options.train``, test images from ``options.test``."""
    opts = MRIImagesOptions.model_validate(dict(cfg.options))
    refuse_generic_keys(cfg, "mri_images", "the images keep the mask's size")
    pool, _ = load_image_folder(opts.train, opts.key, "data.options.train")
    if opts.val_count >= pool.shape[0]:
        raise ValueError(f"data.options.val_count: expected fewer than the {pool.shape[0]} training images, "
                         f"got {opts.val_count}")
    test, names = load_image_folder(opts.test, opts.key, "data.options.test")
    if test.shape[-2:] != pool.shape[-2:]:
        raise ValueError(f"data.options.test: test images are {tuple(test.shape[-2:])}, training images "
                         f"{tuple(pool.shape[-2:])}; expected one size")
    if opts.test_count:
        test, names = test[:opts.test_count], names[:opts.test_count]
    order = torch.randperm(pool.shape[0], generator=torch.Generator().manual_seed(seed))
    val, train = pool[order[:opts.val_count]], pool[order[opts.val_count:]]
    return Splits(train, val, test, names, extra={"train_folder": str(opts.train), "test_folder": str(opts.test)})
