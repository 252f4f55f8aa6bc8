"""The six inverse problems of proxlab as named tasks: an operator and a noise level built for an image.

A :class:`Task` holds the options a user gives (``--blur-sigma``, ``--ratio`` ...), validated once,
and builds the forward model for a given clean image with :meth:`Task.measure`. The classic
methods' default weights live beside each task (``weights``): they were chosen by
``python benchmarks/tune_classic.py`` on scikit-image images that are *not* the demo's test images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ._checks import check_choice, check_positive, check_range
from .operators import (
    MRI,
    BlockCompressedSensing,
    Denoising,
    GaussianBlur,
    Inpainting,
    LinearOperator,
    Measurement,
)

__all__ = ["TASKS", "Task", "make_task", "task_options"]

TASKS = ("denoise", "inpaint", "deblur", "cs", "mri", "ct")

# Defaults per task: options, then classic-method weights (lam for the prior, rho for ADMM/HQS).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "denoise": {"noise": 0.1},
    "inpaint": {"noise": 0.01, "mask": "random", "ratio": 0.5, "box_size": 0},
    "deblur": {"noise": 0.01, "blur_sigma": 1.5},
    "cs": {"noise": 0.0, "ratio": 0.25, "phi": None, "qinit": None},
    "mri": {"noise": 0.01, "mask": "radial", "ratio": 0.2, "mask_file": None},
    "ct": {"noise": 0.5, "angles": 60},
}


@dataclass
class Task:
    """A named inverse problem with validated options (see :func:`make_task`)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    def operator(self, image_size: tuple[int, int], channels: int = 1) -> LinearOperator:
        """The forward operator for images of ``image_size``."""
        o, (H, W) = self.options, image_size
        if self.name == "denoise":
            return Denoising()
        if self.name == "inpaint":
            if o["mask"] == "box":
                box = o["box_size"] or max(1, min(H, W) // 4)
                return Inpainting.box((H, W), box)
            return Inpainting.random((H, W), o["ratio"], seed=self.seed)
        if self.name == "deblur":
            return GaussianBlur(o["blur_sigma"])
        if self.name == "cs":
            if o["phi"] is not None:
                return BlockCompressedSensing.from_mat(o["phi"], o["qinit"], image_size=(H, W))
            return BlockCompressedSensing(o["ratio"], image_size=(H, W), seed=self.seed)
        if self.name == "mri":
            if o["mask_file"] is not None:
                op = MRI.from_mat(o["mask_file"])
                if tuple(op.mask.shape) != (H, W):
                    raise ValueError(f"mask_file {o['mask_file']}: mask is {tuple(op.mask.shape)}, image is {(H, W)}")
                return op
            if o["mask"] == "radial":
                return MRI.radial((H, W), o["ratio"])
            return MRI.cartesian((H, W), o["ratio"], seed=self.seed)
        if self.name == "ct":
            if H != W:
                raise ValueError(f"the ct task needs a square image, got {H}x{W}")
            from .operators.ct import ParallelBeamCT

            return ParallelBeamCT(H, o["angles"])
        raise AssertionError(self.name)  # unreachable: names are validated in make_task

    def measure(self, x: torch.Tensor, seed: int | None = None) -> tuple[LinearOperator, torch.Tensor]:
        """Build the operator for ``x`` (``(B, C, H, W)``) and simulate ``y = A x + n`` from ``seed``."""
        A = self.operator(tuple(x.shape[-2:]), x.shape[1]).to(x.device)
        meas = Measurement(A, self.options["noise"])
        with torch.no_grad():
            y = meas(x, seed=self.seed if seed is None else seed)
        return A, y

    def describe(self) -> str:
        """A short human-readable setting, e.g. ``deblur σ_blur=1.5 σ=0.01``."""
        o = self.options
        if self.name == "denoise":
            return f"denoise σ={o['noise']}"
        if self.name == "inpaint":
            what = f"random ratio={o['ratio']}" if o["mask"] == "random" else "box"
            return f"inpaint {what} σ={o['noise']}"
        if self.name == "deblur":
            return f"deblur σ_blur={o['blur_sigma']} σ={o['noise']}"
        if self.name == "cs":
            return f"block CS ratio={o['ratio'] if o['phi'] is None else 'file'} σ={o['noise']}"
        if self.name == "mri":
            what = "file" if o["mask_file"] is not None else f"{o['mask']} ratio={o['ratio']}"
            return f"MRI {what} σ={o['noise']}"
        return f"CT {o['angles']} angles σ={o['noise']}"


def task_options(name: str) -> tuple[str, ...]:
    """The option names task ``name`` accepts."""
    check_choice("task", name, TASKS)
    return tuple(_DEFAULTS[name])


def make_task(name: str, seed: int = 0, **options: Any) -> Task:
    """Validate ``options`` for task ``name`` (unset options take the defaults) and return a :class:`Task`.

    Unknown options raise ``ValueError`` naming the option and listing the valid ones.
    """
    check_choice("task", name, TASKS)
    defaults = _DEFAULTS[name]
    unknown = [k for k, v in options.items() if k not in defaults and v is not None]
    if unknown:
        raise ValueError(f"task {name!r} has no option {unknown[0]!r}; its options are: {', '.join(sorted(defaults))}")
    o = {k: (options[k] if options.get(k) is not None else v) for k, v in defaults.items()}
    check_positive("noise", o["noise"], strict=False)
    if name == "inpaint":
        check_choice("mask", o["mask"], ("random", "box"))
        check_range("ratio", o["ratio"], 0.0, 1.0, inclusive=(False, True))  # the fraction of pixels observed
        if int(o["box_size"]) < 0:
            raise ValueError(f"box_size must be >= 0, got {o['box_size']!r}")
    elif name == "deblur":
        check_positive("blur_sigma", o["blur_sigma"])
    elif name == "cs":
        if o["phi"] is None:
            check_range("ratio", o["ratio"], 0.01, 0.5)
    elif name == "mri":
        check_choice("mask", o["mask"], ("radial", "cartesian"))
        check_range("ratio", o["ratio"], 0.0, 1.0, inclusive=(False, True))
    elif name == "ct":
        if not isinstance(o["angles"], int) or o["angles"] < 1:
            raise ValueError(f"angles must be a positive int, got {o['angles']!r}")
    return Task(name, o, seed)
