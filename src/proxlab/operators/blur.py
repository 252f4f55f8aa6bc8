r"""Convolution with circular boundary, applied in the Fourier domain.

:math:`A x = k \circledast x` (circular convolution, the kernel's centre at pixel ``(kh // 2, kw // 2)``),
:math:`A^\top y = \tilde k \circledast y` with the flipped kernel, and the normal equations
:math:`(A^\top A + \rho I) x = b` are solved exactly: :math:`\hat x = \hat b / (|\hat k|^2 + \rho)`.
"""

from __future__ import annotations

import math

import torch

from .._checks import check_positive, check_tensor
from .base import LinearOperator, rho_tensor

__all__ = ["Convolution", "GaussianBlur", "gaussian_kernel"]


def gaussian_kernel(sigma: float, kernel_size: int | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    r"""Normalised isotropic Gaussian kernel :math:`k_{ij} \propto \exp(-(i^2 + j^2) / 2\sigma^2)`.

    ``kernel_size`` defaults to :math:`2\lceil 3\sigma\rceil + 1` and must be odd.
    """
    sigma = check_positive("sigma", sigma)
    if kernel_size is None:
        kernel_size = 2 * math.ceil(3 * sigma) + 1
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    r = torch.arange(kernel_size, dtype=dtype) - kernel_size // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = g[:, None] * g[None, :]
    return k / k.sum()


_HALF = (torch.float16, torch.bfloat16)

class Convolution(LinearOperator):
    r"""Circular 2-D convolution with a fixed kernel, the same for every channel.

    Parameters
    ----------
    kernel:
        Tensor of shape ``(kh, kw)``; its centre is ``(kh // 2, kw // 2)``. It must fit in the image.

    The Fourier transfer function depends on the image size; it is computed on first use for a
    given ``(H, W, dtype, device)`` and cached.
    """

    def __init__(self, kernel: torch.Tensor):
        kernel = check_tensor("kernel", kernel)
        if kernel.ndim != 2:
            raise ValueError(f"kernel must have shape (kh, kw), got shape {tuple(kernel.shape)}")
        if not torch.isfinite(kernel).all():
            raise ValueError("kernel must be finite")
        super().__init__((None, None, None), (None, None, None))
        self.register_buffer("kernel", kernel.to(torch.float64 if kernel.dtype == torch.float64 else torch.float32))
        self._otf_cache: dict[tuple, torch.Tensor] = {}

    def otf(self, H: int, W: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        r"""Optical transfer function :math:`\hat k` of shape ``(H, W // 2 + 1)`` (``rfft2`` layout)."""
        key = (H, W, dtype, device)
        cached = self._otf_cache.get(key)
        if cached is None:
            kh, kw = self.kernel.shape
            if kh > H or kw > W:
                raise ValueError(f"{self.name}: kernel of size {(kh, kw)} is larger than the image {(H, W)}")
            pad = torch.zeros(H, W, dtype=torch.float64, device=device)
            pad[:kh, :kw] = self.kernel.to(device=device, dtype=torch.float64)
            pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
            real = dtype if dtype in (torch.float32, torch.float64) else torch.float32
            cached = torch.fft.rfft2(pad).to(torch.complex128 if real == torch.float64 else torch.complex64)
            self._otf_cache[key] = cached
        return cached

    def _buffers_loaded(self) -> None:  # a loaded kernel makes the cached transfer functions stale
        self._otf_cache = {}

    def _apply(self, fn, recurse=True):  # keep the cache consistent with .to()/.double()
        self._otf_cache = {}
        self._norm_cache = {}
        return super()._apply(fn, recurse) if recurse else super()._apply(fn)

    def _filter(self, x: torch.Tensor, conj: bool) -> torch.Tensor:
        if x.dtype in _HALF:  # the FFT has no half-precision kernels on CPU: filter in float32, hand back x's dtype
            return self._filter(x.float(), conj).to(x.dtype)
        H, W = x.shape[-2:]
        k = self.otf(H, W, x.dtype, x.device)
        if conj:
            k = k.conj()
        return torch.fft.irfft2(torch.fft.rfft2(x) * k, s=(H, W))

    def _forward(self, x):
        return self._filter(x, conj=False)

    def _adjoint(self, y):
        return self._filter(y, conj=True)

    def gram(self, x):
        x = self.check_input(x)
        if x.dtype in _HALF:
            return self.gram(x.float()).to(x.dtype)
        H, W = x.shape[-2:]
        k = self.otf(H, W, x.dtype, x.device)
        return torch.fft.irfft2(torch.fft.rfft2(x) * (k.real**2 + k.imag**2), s=(H, W))

    def solve_normal(self, b, rho, tol=None, max_iter=None, x0=None):
        b = self.check_input(b, "b")
        if b.dtype in _HALF:
            return self.solve_normal(b.float(), rho, tol, max_iter, x0).to(b.dtype)
        H, W = b.shape[-2:]
        k = self.otf(H, W, b.dtype, b.device)
        rho_t = rho_tensor(rho, b)
        denom = k.real**2 + k.imag**2 + rho_t
        if bool((denom <= 0).any()):
            raise ValueError(f"rho must be > 0 where the kernel's spectrum vanishes, got rho={rho!r}")
        return torch.fft.irfft2(torch.fft.rfft2(b) / denom, s=(H, W))

    def norm(self, shape=None, **kwargs) -> float:
        """:math:`\\|A\\|_2^2 = \\max |\\hat k|^2`, exact for the given image size (default 256×256)."""
        H, W = (shape[-2], shape[-1]) if shape is not None else (256, 256)
        k = self.otf(H, W, torch.float64, self.kernel.device)
        return float((k.real**2 + k.imag**2).max())

    def extra_repr(self) -> str:
        return f"kernel_size={tuple(self.kernel.shape)}"


class GaussianBlur(Convolution):
    r"""Circular Gaussian blur with standard deviation ``sigma`` pixels (see :func:`gaussian_kernel`)."""

    def __init__(self, sigma: float, kernel_size: int | None = None):
        super().__init__(gaussian_kernel(sigma, kernel_size, dtype=torch.float64))
        self.sigma = float(sigma)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, kernel_size={tuple(self.kernel.shape)}"
