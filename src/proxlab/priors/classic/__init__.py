"""Classic (parameter-free) priors and their proximal maps.

Convention: a prior is a :class:`proxlab.priors.base.Prior` (an ``nn.Module``) whose ``forward(x, tau=1.0)`` returns
:math:`\\operatorname{prox}_{\\tau g}(x) = \\operatorname{argmin}_z \\tfrac12\\|z - x\\|^2 + \\tau g(z)`, where ``g``
includes the module's weight; ``regularizer(x)`` returns :math:`g(x)` per sample, shape ``(B,)``. ``tau`` is a
number or a per-sample tensor ``(B,)`` / ``(B, 1, 1, 1)``. Each module wraps a pure function. Their capabilities
are ``prox`` and ``regularizer``.
"""

from .constraints import Box, project_box
from .sparsity import L1, soft_threshold, soft_threshold_unchecked
from .tv import TV, image_gradient, image_gradient_adjoint, prox_tv, total_variation
from .wavelet import WAVELETS, WaveletL1, WaveletTransform, prox_wavelet_l1, wavelet_filter

__all__ = [
    "soft_threshold",
    "soft_threshold_unchecked",
    "L1",
    "project_box",
    "Box",
    "image_gradient",
    "image_gradient_adjoint",
    "total_variation",
    "prox_tv",
    "TV",
    "WAVELETS",
    "wavelet_filter",
    "WaveletTransform",
    "prox_wavelet_l1",
    "WaveletL1",
]
