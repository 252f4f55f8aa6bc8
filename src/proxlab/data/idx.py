r"""Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzip-compressed).

An IDX file (LeCun et al., http://yann.lecun.com/exdb/mnist/) is big-endian:

* bytes 0-1: zero; byte 2: the element type code; byte 3: the number of dimensions ``d``;
* ``d`` unsigned 32-bit sizes;
* the data, ``prod(sizes)`` elements in C (row-major) order.

Type codes: ``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32,
``0x0E`` float64. Gzip files are recognised by their magic bytes ``1f 8b``, whatever their name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np
import torch

from ._common import to_unit_tensor

__all__ = ["read_idx", "load_idx_images", "IDX_DTYPES"]

#: IDX element type code -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"IDX file not found: {path}")
    if not path.is_file():
        raise ValueError(f"IDX path {path} is not a file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"IDX file {path}: corrupt or truncated gzip stream ({err})") from None
    return raw


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) into a NumPy array of its shape, in native byte order.

    Raises ``FileNotFoundError`` if ``path`` is missing, and ``ValueError`` naming the file for a bad
    magic number, an unknown type code, a truncated header or data, or trailing bytes.
    """
    path = Path(path).expanduser()
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"IDX file {path}: {len(raw)} bytes, too short for the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"IDX file {path}: bad magic number 0x{raw[:4].hex()} (the first two bytes must be zero); "
            "not an IDX file"
        )
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"IDX file {path}: unknown element type code 0x{code:02X} (known: {known})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"IDX file {path}: truncated header ({len(raw)} bytes, {ndim} dims need {header})")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got < expected:
        raise ValueError(
            f"IDX file {path}: truncated data, shape {shape} of {dtype.name} needs {expected} bytes, found {got}"
        )
    if got > expected:
        raise ValueError(f"IDX file {path}: {got - expected} trailing bytes after the data of shape {shape}")
    data = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def load_idx_images(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """IDX images as ``(N, 1, H, W)`` ``float32`` in ``[0, 1]`` and, if given, labels ``(N,)`` ``int64``.

    ``images_path`` must hold a 3-d array ``(N, H, W)`` of uint8 (divided by 255) or of floats
    already in ``[0, 1]``; ``labels_path`` a 1-d integer array of length ``N``. Returns the images
    alone when ``labels_path`` is ``None``, else ``(images, labels)``.
    """
    arr = read_idx(images_path)
    if arr.ndim != 3:
        raise ValueError(f"IDX images {images_path}: expected 3 dims (N, H, W), got shape {arr.shape}")
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"IDX images {images_path}: expected uint8 or float pixels, got {arr.dtype}")
    images = to_unit_tensor(arr, f"IDX images {images_path}").unsqueeze(1)
    if labels_path is None:
        return images
    labels = read_idx(labels_path)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"IDX labels {labels_path}: expected a 1-d integer array, got {labels.dtype} of shape {labels.shape}"
        )
    if labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"IDX labels {labels_path} hold {labels.shape[0]} labels but {images_path} holds {images.shape[0]} images"
        )
    return images, torch.from_numpy(labels.astype(np.int64))
