r"""Signals for sparse coding, the data of LISTA's experiments (:mod:`proxlab.experiments.lista_parts`).

* :func:`natural_patches` / :func:`table1_patches` -- 10×10 patches of scikit-image's natural photographs,
  mean-removed and normalised as in Table 1 of Gregor & LeCun (ICML 2010).
* :func:`synthetic_problem` / :func:`sparse_samples` -- the LISTA-CPSS problem (Chen et al., NeurIPS 2018): a
  random matrix with unit-norm columns and Bernoulli × Gaussian codes.
"""

from __future__ import annotations

import torch

from .patches import random_patches
from .sources import skimage_image

__all__ = ["NATURAL_IMAGES", "natural_patches", "table1_patches", "synthetic_problem", "sparse_samples"]

#: The bundled scikit-image photographs of natural scenes used for the patches.
NATURAL_IMAGES = ("astronaut", "brick", "camera", "chelsea", "coffee", "grass", "gravel", "moon", "rocket")


def natural_patches(n: int, seed: int, size: int = 10) -> torch.Tensor:
    """``n`` random ``size``×``size`` patches of :data:`NATURAL_IMAGES` (grey, in [0, 1]), flattened ``(n, size²)``."""
    images = [skimage_image(name, grey=True) for name in NATURAL_IMAGES]
    return random_patches(images, n, size, seed=seed).reshape(n, -1)


def table1_patches(n_train: int, n_test: int, seed: int, per_patch: bool = False):
    """Train / validation / test patches (``n_train``, ``n_test``, ``n_test`` rows) for the Table 1 protocol, each
    patch's mean removed. Divided by one constant, the training pixel std (the protocol), or with ``per_patch``
    each patch to unit pixel variance (flat patches, std < 0.1 × median, dropped). Returns ``(splits, std)``
    (``std`` is ``None`` per patch)."""
    n = n_train + 2 * n_test
    raw = natural_patches(3 * n if per_patch else n, seed)
    raw = raw - raw.mean(dim=1, keepdim=True)
    if per_patch:
        sd = raw.std(1)
        raw = raw[sd > 0.1 * sd.median()][:n]
        if raw.shape[0] < n:
            raise RuntimeError(f"only {raw.shape[0]} non-flat patches of the {n} asked for")
        return raw.div(raw.std(1, keepdim=True)).split([n_train, n_test, n_test]), None
    std = float(raw[:n_train].std())
    return (raw / std).split([n_train, n_test, n_test]), std


def synthetic_problem(seed: int, m: int = 250, n: int = 500) -> torch.Tensor:
    """The LISTA-CPSS matrix: N(0, 1/m) entries, then columns scaled to unit norm, ``(m, n)``."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, n, generator=g, dtype=torch.float64) / m**0.5
    return (A / A.norm(dim=0, keepdim=True)).float()


def sparse_samples(count: int, size: int, generator: torch.Generator, p: float = 0.1) -> torch.Tensor:
    """``count`` codes ``(count, size)`` with Bernoulli(``p``) × N(0, 1) entries."""
    return (torch.rand(count, size, generator=generator) < p).float() * torch.randn(count, size, generator=generator)
