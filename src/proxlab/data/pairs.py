r"""Measurement pairs :math:`(y, x)` with :math:`y = A x + n` from clean images, as a Dataset."""

from __future__ import annotations

from collections.abc import Callable
from operator import index as _as_index

import torch
from torch.utils.data import Dataset

from ..operators.base import LinearOperator
from ..operators.noise import GaussianNoise
from ._common import check_int, item_seed

__all__ = ["MeasurementPairs"]

NoiseFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


class MeasurementPairs(Dataset):
    r"""A Dataset of :math:`(y_i, x_i)` with :math:`y_i = \mathrm{noise}(A x_i)`, deterministic per index.

    Item ``i`` is computed on access: ``x`` is the ``i``-th clean image ``(C, H, W)``, ``y`` is the
    operator applied to the batch ``x[None]`` and squeezed back to ``out_shape``. Noise for item
    ``i`` comes from a fresh CPU ``torch.Generator`` seeded by ``(seed, i)`` (mixed by NumPy's
    ``SeedSequence``), so the same index always gives a bit-identical ``y``, whatever the order of
    access, the ``DataLoader`` workers or the epoch. (For fresh noise every epoch, build the pairs
    with another ``seed`` per epoch.) Computed under ``torch.no_grad()``.

    Parameters
    ----------
    images:
        A tensor ``(N, C, H, W)`` or a Dataset whose items are ``(C, H, W)`` tensors or tuples whose
        first entry is one (e.g. ``(image, label)``).
    operator:
        A :class:`proxlab.operators.LinearOperator`; its ``in_shape`` must accept ``(C, H, W)``.
    noise:
        ``None`` (noiseless), a float :math:`\sigma \ge 0` for additive Gaussian noise (see
        :class:`proxlab.operators.GaussianNoise`: for complex ``y``
        each part gets :math:`\sigma/\sqrt2`), or a callable ``noise(y, generator) -> y``
        that receives the batch ``(1, *out_shape)`` and a seeded CPU generator.
    seed:
        Base seed, an int ``>= 0``.
    """

    def __init__(
        self,
        images: torch.Tensor | Dataset,
        operator: LinearOperator,
        noise: float | NoiseFn | None = None,
        seed: int = 0,
    ):
        if isinstance(images, torch.Tensor):
            if images.ndim != 4:
                raise ValueError(f"images must have shape (N, C, H, W) (4 dims), got shape {tuple(images.shape)}")
        elif not (hasattr(images, "__getitem__") and hasattr(images, "__len__")):
            raise TypeError(f"images: expected a tensor (N, C, H, W) or a Dataset, got {type(images).__name__}")
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator: expected a proxlab.operators.LinearOperator, got {type(operator).__name__}")
        if noise is None or callable(noise):
            self.sigma = None
        elif isinstance(noise, (int, float)) and not isinstance(noise, bool):
            if not noise >= 0:
                raise ValueError(f"noise: a Gaussian sigma must be >= 0, got {noise!r}")
            self.sigma = float(noise)
            noise = GaussianNoise(self.sigma)
        else:
            raise TypeError(f"noise: expected None, a float sigma or a callable noise(y, generator), got {noise!r}")
        self.images = images
        self.operator = operator
        self.noise = noise
        self.seed = check_int("seed", seed, low=0)
        if len(images) == 0:
            raise ValueError("images is empty")
        operator.check_input(self._image(0)[None], "images[0]")  # shape mismatch fails here, not in a worker

    def __len__(self) -> int:
        return len(self.images)

    def _image(self, index: int) -> torch.Tensor:
        item = self.images[index]
        if isinstance(item, (tuple, list)) and item:
            item = item[0]
        if not isinstance(item, torch.Tensor):
            raise TypeError(
                f"images[{index}]: expected a tensor (C, H, W) or a tuple starting with one, got {type(item).__name__}"
            )
        if item.ndim != 3:
            raise ValueError(f"images[{index}] must have shape (C, H, W), got shape {tuple(item.shape)}")
        return item

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, int):
            try:
                index = _as_index(index)  # numpy ints and 0-d integer tensors from samplers
            except TypeError:
                raise TypeError(f"MeasurementPairs index: expected an int, got {index!r}") from None
        if not -n <= index < n:
            raise IndexError(f"MeasurementPairs index {index} out of range for {n} items")
        index %= n
        x = self._image(index)
        with torch.no_grad():
            y = self.operator(x[None])
            if self.noise is not None:
                g = torch.Generator().manual_seed(item_seed(self.seed, index))
                noisy = self.noise(y, g)
                if not isinstance(noisy, torch.Tensor) or noisy.shape != y.shape:
                    got = tuple(noisy.shape) if isinstance(noisy, torch.Tensor) else type(noisy).__name__
                    raise ValueError(f"noise(y, generator) must return a tensor of shape {tuple(y.shape)}, got {got}")
                y = noisy
        return y[0], x

    def __repr__(self) -> str:
        noise = f"sigma={self.sigma}" if self.sigma is not None else repr(self.noise)
        return f"MeasurementPairs(n={len(self)}, operator={self.operator.name}, noise={noise}, seed={self.seed})"
