"""Train / validation / test images for an experiment, from its ``[data]`` section.

Splits per source (all deterministic from the experiment's seed):

- ``mnist5k``: the named splits of :func:`proxlab.data.mnist5k` (4,000 / 500 / 500).
- ``skimage``: ``names`` are cut into training patches (10 % of them held out for validation);
  ``test_names`` are the test images (whole).
- ``ellipses``: ``count`` / ``val_count`` / ``test_count`` phantoms from disjoint seeds.
- ``image_folder``, ``idx``, ``lfw``: one pool, split 80 / 10 / 10 by a seeded permutation.

``size`` resizes every image first; ``patch_size`` then cuts ``patches_per_image`` random patches
per training image (validation images are cut the same way, test images stay whole).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import data as D
from ..data._common import resize

__all__ = ["Splits", "build_splits"]


@dataclass
class Splits:
    """What a data source hands the runner.

    ``train``/``val``/``test``: images ``(N, C, H, W)``; ``train`` may instead be a tuple of tensors of N rows
    each, supervised pairs such as ``(signals, codes)``, batched for the loss as tuples. A source may also
    bring: ``sampler`` — training data drawn fresh every step, ``sampler(n, generator) -> x`` (then
    ``train`` only sets the batch count of an epoch); ``operator`` — the forward model the data defines (e.g. Φ with a Qinit fitted on
    training blocks), used instead of the task's; ``validate`` — the Trainer's validation,
    ``validate(model) -> {metric: value}``, instead of the task's measurement pairs of ``val``;
    ``extra`` — anything a protocol of the same family needs.
    """

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    test_names: list[str] = field(default_factory=list)
    sampler: Callable[[int, torch.Generator], torch.Tensor] | None = None
    operator: Any = None
    validate: Callable[[Any], dict] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _split_pool(pool: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n = pool.shape[0]
    if n < 3:
        raise ValueError(f"data: need at least 3 images to split into train/val/test, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, n // 10)
    n_test = max(1, n // 10)
    return pool[order[n_val + n_test:]], pool[order[:n_val]], pool[order[n_val:n_val + n_test]]


def _split_train_val(pool: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = pool.shape[0]
    if n < 2:
        raise ValueError(f"data: need at least 2 training images to split into train/val, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = max(1, n // 12)  # Fashion-MNIST: 55,000 train / 5,000 validation of its 60,000
    return pool[order[n_val:]], pool[order[:n_val]]


def _pad(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Zero-pad each side by ``pad`` pixels (e.g. 28×28 MNIST to 32×32 for a 3-level flow)."""
    return torch.nn.functional.pad(images, (pad, pad, pad, pad)) if pad > 0 else images


def _patches(images: torch.Tensor, cfg, seed: int) -> torch.Tensor:
    if cfg.patch_size <= 0:
        return images
    per = cfg.patches_per_image or 1
    return D.random_patches(images, per * images.shape[0], cfg.patch_size, seed=seed)


#: ``[data]`` keys of the built-in image sources that a registered source with its own options may not use.
GENERIC_KEYS = ("size", "pad", "patch_size", "patches_per_image")


def refuse_generic_keys(cfg, source: str, instead: str) -> None:
    """A source that does not use the generic ``[data]`` keys refuses them, saying what to do ``instead``."""
    for k in GENERIC_KEYS:
        if getattr(cfg, k, 0):
            raise ValueError(f"data.{k}: source {source!r} does not use it ({instead}), expected it unset, "
                             f"got {getattr(cfg, k)!r}")


def build_splits(cfg, seed: int = 0) -> Splits:
    """Images ``(N, C, H, W)`` in [0, 1] for training, validation and test, from a ``DataConfig``."""
    src = cfg.source
    size = cfg.size or None
    names: list[str] | None = None
    if src == "mnist5k":
        train, val, test = (D.mnist5k(s, seed=seed)[0] for s in (cfg.train, cfg.val, cfg.test))
    elif src == "skimage":
        imgs = [D.skimage_image(n, grey=True, size=size) for n in cfg.names]
        per = cfg.patches_per_image or 64
        patches = D.random_patches(imgs, per * len(imgs), cfg.patch_size or 64, seed=seed)
        n_val = max(1, patches.shape[0] // 10)
        train, val = patches[n_val:], patches[:n_val]
        test_imgs = [D.skimage_image(n, grey=True, size=size) for n in cfg.test_names]
        shapes = {tuple(t.shape) for t in test_imgs}
        if len(shapes) > 1:
            raise ValueError(f"data.test_names: test images must share one size (set data.size), got {sorted(shapes)}")
        test = torch.cat(test_imgs) if test_imgs else val[:0]
        names = list(cfg.test_names)
        return Splits(*(_pad(t, cfg.pad) for t in (train, val, test)), names)
    elif src == "ellipses":
        side = size or 128
        train = D.random_ellipses(cfg.count, side, seed=seed)
        val = D.random_ellipses(max(cfg.val_count, 1), side, seed=seed + 10_000)
        test = D.random_ellipses(max(cfg.test_count, 1), side, seed=seed + 20_000)
    elif src == "lfw":
        train, val, test = _split_pool(D.lfw_faces(size=size), seed)
    elif src == "idx":
        loaded = D.load_idx_images(cfg.path, cfg.labels_path or None)  # (images, labels) only with labels_path
        pool = loaded[0] if cfg.labels_path else loaded
        pool = resize(pool, size) if size else pool
        if cfg.test_path:  # a separate test file: validation is cut from the training file
            test = D.load_idx_images(cfg.test_path)
            test = resize(test, size) if size else test
            train, val = _split_train_val(pool, seed)
        else:
            train, val, test = _split_pool(pool, seed)
    elif src == "image_folder":
        folder = D.ImageFolder(cfg.path, grey=True, size=size)
        pool = torch.stack([folder[i] for i in range(len(folder))])
        train, val, test = _split_pool(pool, seed)
    else:  # unreachable: the config validates the source
        raise ValueError(f"data.source: unknown source {src!r}")
    if size and src == "mnist5k":
        train, val, test = resize(train, size), resize(val, size), resize(test, size)
    train, val, test = (_pad(t, cfg.pad) for t in (train, val, test))
    train = _patches(train, cfg, seed)
    val = _patches(val, cfg, seed + 1)
    names = names or [f"{src}-{cfg.test if src == 'mnist5k' else 'test'}-{i}" for i in range(test.shape[0])]
    return Splits(train, val, test, names)
