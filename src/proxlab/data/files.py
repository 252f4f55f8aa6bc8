r"""Images from files: one image, a folder as a :class:`~torch.utils.data.Dataset`, and Set11.

Pixel values become ``float32`` in ``[0, 1]``: 8-bit values divided by 255, 16-bit ones by 65535.
A palette image (mode ``"P"``) whose palette is grey (R = G = B for every entry) gives the palette's
grey value of each index -- for Set11's ``Parrots.tif`` and ``foreman.tif`` the palette is the
identity, so that is the index itself; other palettes are expanded to RGB. Colour becomes grey by
BT.601 luma :math:`0.299R + 0.587G + 0.114B` (computed on floats, not rounded to 8 bits); an alpha
channel is dropped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ._common import luma, resize, to_unit_tensor

__all__ = ["load_image", "ImageFolder", "load_set11", "SET11_NAMES", "IMAGE_EXTENSIONS"]

#: File extensions :class:`ImageFolder` picks up by default (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm")

#: The 11 test images of Set11 (Kulkarni et al., *ReconNet*, CVPR 2016; used by ISTA-Net), without
#: the ``.tif`` extension, sorted case-insensitively. Nine are 256x256; fingerprint and flinstones
#: are 512x512.
SET11_NAMES = (
    "barbara",
    "boats",
    "cameraman",
    "fingerprint",
    "flinstones",
    "foreman",
    "house",
    "lena256",
    "Monarch",
    "Parrots",
    "peppers256",
)


def _pil_to_array(img, path: Path) -> np.ndarray:
    """A PIL image -> ``(H, W)`` or ``(H, W, 3)`` array of bool, uint8, uint16 or float."""
    mode = img.mode
    if mode == "P":
        palette = np.asarray(img.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
        index = np.asarray(img)
        if palette.size and index.max() < len(palette) and (palette[:, 0] == palette[:, 1]).all() and (
            palette[:, 1] == palette[:, 2]
        ).all():
            return palette[:, 0][index]
        return np.asarray(img.convert("RGB"))
    if mode in ("1", "L"):
        return np.asarray(img)
    if mode in ("LA", "La"):
        return np.asarray(img.convert("L"))
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    if mode == "I":  # 32-bit ints; PIL opens 16-bit PNGs so
        a = np.asarray(img)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(f"image {path}: 32-bit integer pixels outside 0..65535 are not supported")
        return a.astype(np.uint16)
    if mode == "F":
        return np.asarray(img)
    if mode in ("RGB", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(img.convert("RGB"))
    raise ValueError(f"image {path}: unsupported PIL mode {mode!r}")


def load_image(path: str | os.PathLike, grey: bool = True, size: int | Sequence[int] | None = None) -> torch.Tensor:
    r"""Read a PNG/TIFF/JPEG/BMP/PGM file as ``(1, C, H, W)`` ``float32`` in ``[0, 1]``.

    ``grey=True`` gives one channel (luma for colour files), ``grey=False`` three (a grey file is
    repeated). ``size`` (int or ``(H, W)``) resizes with anti-aliased bilinear interpolation. See the
    module docstring for palettes and bit depths. Raises ``FileNotFoundError`` for a missing file
    and ``ValueError`` naming the file when it cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            arr = _pil_to_array(img, path)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from None
    t = to_unit_tensor(arr, f"image {path}")
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    if grey and t.shape[0] == 3:
        t = luma(t)
    elif not grey and t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return resize(t.unsqueeze(0).contiguous(), size)


class ImageFolder(Dataset):
    r"""The image files of one folder (not recursive), sorted by name, as a Dataset of ``(C, H, W)``.

    Items are single images ``(C, H, W)`` (``C = 1`` if ``grey`` else 3) in ``[0, 1]``, so a
    :class:`~torch.utils.data.DataLoader` batches them into ``(B, C, H, W)``; that needs equal sizes,
    which ``size`` (int or ``(H, W)``, anti-aliased bilinear) enforces. ``files`` lists the paths and
    ``names`` their stems. Files are decoded on access; an unreadable one raises ``ValueError``
    naming it.

    Parameters
    ----------
    root: the folder.
    grey: one luma channel (``True``) or RGB.
    size: optional resize target.
    extensions: file name endings to include, case-insensitive (default :data:`IMAGE_EXTENSIONS`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        grey: bool = True,
        size: int | Sequence[int] | None = None,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
    ):
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"ImageFolder: root {root} does not exist")
        if not root.is_dir():
            raise ValueError(f"ImageFolder: root {root} is not a folder")
        if isinstance(extensions, str) or not all(isinstance(e, str) for e in extensions):
            raise TypeError(f"extensions: expected a sequence of strings such as ('.png', '.tif'), got {extensions!r}")
        exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
        self.root = root
        self.files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in exts)
        if not self.files:
            raise ValueError(f"ImageFolder: no files ending in {', '.join(exts)} in {root}")
        self.names = [p.stem for p in self.files]
        self.grey = bool(grey)
        self.size = size
        if size is not None:
            resize(torch.zeros(1, 1, 1, 1), size)  # validates size now, not at the first item

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        n = len(self.files)
        if not -n <= index < n:
            raise IndexError(f"ImageFolder index {index} out of range for {n} files")
        return load_image(self.files[index], grey=self.grey, size=self.size)[0]

    def __repr__(self) -> str:
        return f"ImageFolder(root={str(self.root)!r}, n={len(self)}, grey={self.grey}, size={self.size!r})"


def load_set11(root: str | os.PathLike) -> list[tuple[str, torch.Tensor]]:
    r"""The 11 Set11 images from ``root`` as ``[(name, image (1, 1, H, W)), ...]`` in :data:`SET11_NAMES` order.

    A list, not one tensor: the sizes differ (256x256 and 512x512). ``root`` holds ``<name>.tif``;
    a missing file raises ``FileNotFoundError`` naming it.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"load_set11: folder {root} does not exist")
    missing = [n + ".tif" for n in SET11_NAMES if not (root / f"{n}.tif").is_file()]
    if missing:
        raise FileNotFoundError(f"load_set11: {root} lacks {', '.join(missing)}")
    return [(n, load_image(root / f"{n}.tif", grey=True)) for n in SET11_NAMES]
