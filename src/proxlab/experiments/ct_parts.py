"""Data source ``ct_volume``: the slices of one CT volume, split into train / validation / test slabs.

``[data] source = "ct_volume"`` with ``[data] options = {path = ..., scale = 2000}``. ``path`` is a
``.npy`` / ``.npz`` file (``key`` names the array of an ``.npz`` holding several) or a folder of DICOM
slices (:func:`~proxlab.data.read_dicom_series`, values in Hounsfield units). Values become ``[0, 1]`` by
``scale`` (divide by it; every value must then lie in ``[0, 1]``) or ``window = [low, high]`` (clip and map,
:func:`~proxlab.data.scale_volume`); with neither, the stored values must already lie in ``[0, 1]``.

``train`` / ``val`` / ``test`` are half-open ranges ``[start, end)`` of slice indices along axis 0. They
must follow one another with at least ``min_gap`` slices left out between them: neighbouring CT slices
are nearly the same image, so adjacent or overlapping slabs would score the model on its training
data. ``size`` resizes every slice to ``size × size`` (scikit-image, bilinear, anti-aliased when
shrinking). The splits are images ``(N, 1, H, W)`` in ``[0, 1]``, slice order kept; the test images are
named ``slice-<index>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .datasets import Splits, refuse_generic_keys
from .parts import register_source

__all__ = ["CTVolumeOptions", "SLABS", "ct_volume"]

SLABS = ("train", "val", "test")
_Slab = Annotated[tuple[int, ...], Field(strict=False)]


class CTVolumeOptions(BaseModel):
    """``[data] options`` of source ``ct_volume`` (the defaults fit a 256-slice volume)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    path: Annotated[str, Field(min_length=1)]
    key: str | None = None
    scale: Annotated[float, Field(gt=0)] | None = None
    window: Annotated[tuple[float, ...], Field(strict=False)] | None = None
    train: _Slab = (0, 180)
    val: _Slab = (190, 215)
    test: _Slab = (225, 256)
    min_gap: Annotated[int, Field(ge=0)] = 5
    size: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CTVolumeOptions:
        if self.scale is not None and self.window is not None:
            raise ValueError(f"scale, window: expected one of them (divide by scale, or clip to a window), "
                             f"got scale = {self.scale:g} and window = {list(self.window)}")
        if self.window is not None and not (len(self.window) == 2 and self.window[0] < self.window[1]):
            raise ValueError(f"window: expected [low, high] with low < high, got {list(self.window)}")
        for name in SLABS:
            s = getattr(self, name)
            if not (len(s) == 2 and 0 <= s[0] < s[1]):
                raise ValueError(f"{name}: expected a non-empty slab [start, end] of slice indices (half-open, "
                                 f"0 <= start < end), got {list(s)}")
        for before, after in zip(SLABS, SLABS[1:]):
            end, start = getattr(self, before)[1], getattr(self, after)[0]
            if start - end < self.min_gap:
                raise ValueError(
                    f"{after}: expected a slab starting at least min_gap = {self.min_gap} slices after {before} ends "
                    f"(>= {end + self.min_gap}), got {list(getattr(self, after))} with {before} = "
                    f"{list(getattr(self, before))}; neighbouring CT slices are strongly correlated, so adjacent or "
                    "overlapping slabs would evaluate on near-copies of other slabs' slices")
        return self


def _load(opts: CTVolumeOptions) -> torch.Tensor:
    from ..data import load_volume, read_dicom_series

    path = Path(opts.path).expanduser()
    if path.is_dir():
        if opts.key is not None:
            raise ValueError(f"data.options.key: a DICOM folder has no keys, expected none, got {opts.key!r}")
        return read_dicom_series(path)[0]
    if not path.exists() and path.name == "stent.npz":
        raise FileNotFoundError(f"data.options.path: {path} not found; fetch the stent CT volume with "
                                "python -m proxlab.data.ct_stent (from Debian's python3-imageio)")
    return load_volume(path, opts.key)


def _to_unit(slab: torch.Tensor, opts: CTVolumeOptions) -> torch.Tensor:
    from ..data import scale_volume

    if opts.window is not None:
        return scale_volume(slab, *opts.window)
    x = slab / opts.scale if opts.scale is not None else slab
    lo, hi = float(x.min()), float(x.max())
    if not (0.0 <= lo and hi <= 1.0):
        how = f"dividing by scale = {opts.scale:g}" if opts.scale is not None else "no scale or window"
        raise ValueError(f"data.options.scale: with {how} the slices span [{lo:g}, {hi:g}], expected values in "
                         "[0, 1]; set a larger scale, or window = [low, high] to clip")
    return x


def _resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or tuple(x.shape[-2:]) == (size, size):
        return x
    from skimage.transform import resize

    out = resize(x.numpy(), (x.shape[0], size, size), order=1, mode="reflect", anti_aliasing=True,
                 preserve_range=True)  # the slice axis keeps its length, so it is neither blurred nor resampled
    return torch.from_numpy(out.astype("float32")).clamp_(0.0, 1.0)


@register_source("ct_volume", CTVolumeOptions)
def ct_volume(cfg, seed: int, task=None) -> Splits:
    """Train / validation / test slabs of one CT volume (``.npy``, ``.npz`` or a DICOM folder), in [0, 1]."""
    opts = CTVolumeOptions.model_validate(dict(cfg.options))
    refuse_generic_keys(cfg, "ct_volume", "resize slices with [data] options = {size = N}")
    volume = _load(opts)
    depth = volume.shape[0]
    for name in SLABS:
        start, end = getattr(opts, name)
        if end > depth:
            raise ValueError(f"data.options.{name}: expected a slab inside the volume's {depth} slices "
                             f"(end <= {depth}), got [{start}, {end}]")
    out = {name: _resize(_to_unit(volume[slice(*getattr(opts, name))], opts), opts.size).unsqueeze(1)
           for name in SLABS}
    start, end = opts.test
    return Splits(out["train"], out["val"], out["test"], [f"slice-{i}" for i in range(start, end)],
                  extra={"volume_shape": tuple(volume.shape), "slabs": {n: list(getattr(opts, n)) for n in SLABS}})
