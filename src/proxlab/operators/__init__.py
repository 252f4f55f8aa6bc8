"""Forward models ``y = A x``: linear operators, noise, and measurement simulation (layer 0)."""

from .base import AdjointOperator, ComposedOperator, LinearOperator, adjoint_test, conjugate_gradient, inner
from .blur import Convolution, GaussianBlur, gaussian_kernel
from .ct import FBP_FILTERS, ParallelBeamCT
from .compressed_sensing import BlockCompressedSensing, CompressedSensing, fit_qinit, load_mat_array
from .denoising import Denoising
from .inpainting import Inpainting
from .mri import MRI, cartesian_mask, radial_mask
from .noise import GaussianNoise, Measurement


__all__ = [
    "LinearOperator",
    "ComposedOperator",
    "AdjointOperator",
    "adjoint_test",
    "conjugate_gradient",
    "inner",
    "Denoising",
    "Inpainting",
    "Convolution",
    "GaussianBlur",
    "gaussian_kernel",
    "CompressedSensing",
    "BlockCompressedSensing",
    "fit_qinit",
    "load_mat_array",
    "MRI",
    "radial_mask",
    "cartesian_mask",
    "ParallelBeamCT",
    "FBP_FILTERS",
    "GaussianNoise",
    "Measurement",
]
