r"""Image-quality metrics on batches ``(B, C, H, W)``: MSE, NMSE, PSNR and SSIM, one value per sample.

``psnr`` and ``ssim`` reproduce ``skimage.metrics.peak_signal_noise_ratio`` and
``skimage.metrics.structural_similarity`` (``channel_axis`` set for colour images) on each sample,
including scikit-image's SSIM defaults; they run in torch on any device and are differentiable.
``x`` is the estimate and ``y`` the reference (only ``nmse`` is asymmetric).
"""

from __future__ import annotations

import math

import torch

__all__ = ["mse", "nmse", "psnr", "ssim"]

_REDUCTIONS = ("none", "mean")


def _check_pair(x: torch.Tensor, y: torch.Tensor, where: str) -> None:
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{where}: {name} must have shape (B, C, H, W) (4 dims), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{where}: {name} must be a real floating-point tensor, got dtype {t.dtype}")
        if t.shape[0] == 0:
            raise ValueError(f"{where}: {name} is an empty batch (shape {tuple(t.shape)}); expected at least one image")
    if x.shape != y.shape:
        raise ValueError(f"{where}: x and y must have the same shape, got x {tuple(x.shape)} and y {tuple(y.shape)}")


def _reduce(values: torch.Tensor, reduction: str, where: str) -> torch.Tensor:
    if reduction not in _REDUCTIONS:
        import difflib

        close = difflib.get_close_matches(str(reduction), _REDUCTIONS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: reduction must be one of 'none', 'mean', got {reduction!r}{hint}")
    return values.mean() if reduction == "mean" else values


def _data_range(data_range: float | torch.Tensor, x: torch.Tensor, where: str) -> float | torch.Tensor:
    """A positive number, or a per-sample tensor ``(B,)`` (returned as ``(B,)``)."""
    if isinstance(data_range, torch.Tensor):
        r = data_range.to(device=x.device, dtype=x.dtype)
        if r.ndim == 0:
            r = r.expand(x.shape[0])
        if r.shape != (x.shape[0],):
            raise ValueError(
                f"{where}: data_range must be a number or a tensor of shape ({x.shape[0]},), got shape {tuple(r.shape)}"
            )
        if bool(((r <= 0) | ~torch.isfinite(r)).any()):
            raise ValueError(f"{where}: data_range must be > 0 and finite, got a tensor with min {float(r.min())}")
        return r
    try:
        v = float(data_range)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: data_range must be a number, got {data_range!r}") from None
    if not (v > 0) or math.isinf(v):
        raise ValueError(f"{where}: data_range must be > 0 and finite, got {data_range!r}")
    return v


def mse(x: torch.Tensor, y: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    r"""Mean squared error per sample, :math:`\frac{1}{CHW}\|x - y\|^2`, shape ``(B,)`` (or a scalar with ``"mean"``)."""
    _check_pair(x, y, "mse")
    return _reduce((x - y).pow(2).flatten(1).mean(dim=1), reduction, "mse")


def nmse(x: torch.Tensor, y: torch.Tensor, reduction: str = "none") -> torch.Tensor:
    r"""Normalised MSE per sample, :math:`\|x - y\|^2 / \|y\|^2` with ``y`` the reference (``inf`` if ``y = 0``)."""
    _check_pair(x, y, "nmse")
    err = (x - y).pow(2).flatten(1).sum(dim=1)
    ref = y.pow(2).flatten(1).sum(dim=1)
    return _reduce(err / ref, reduction, "nmse")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float | torch.Tensor = 1.0, reduction: str = "none") -> torch.Tensor:
    r"""Peak signal-to-noise ratio in dB per sample, :math:`10\log_{10}(R^2 / \mathrm{MSE}(x, y))`.

    The MSE is over all channels and pixels of each sample, as ``skimage.metrics.peak_signal_noise_ratio``
    on that sample. ``data_range`` :math:`R > 0` is a number or a per-sample tensor ``(B,)``. Identical
    images give ``inf``.
    """
    _check_pair(x, y, "psnr")
    r = _data_range(data_range, x, "psnr")
    err = (x - y).pow(2).flatten(1).mean(dim=1)
    return _reduce(10.0 * torch.log10(torch.as_tensor(r, dtype=x.dtype, device=x.device) ** 2 / err), reduction, "psnr")


def _gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r = (size - 1) // 2
    k = torch.arange(-r, r + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (k / sigma) ** 2)
    return (w / w.sum()).to(dtype=dtype, device=device)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float | torch.Tensor = 1.0,
    win_size: int = 7,
    gaussian_weights: bool = False,
    sigma: float = 1.5,
    use_sample_covariance: bool = True,
    K1: float = 0.01,  # noqa: N803 - the paper's names
    K2: float = 0.03,  # noqa: N803
    reduction: str = "none",
) -> torch.Tensor:
    r"""Mean structural similarity per sample (Wang, Bovik, Sheikh & Simoncelli, 2004, IEEE TIP 13(4)).

    With local (windowed) means :math:`\mu`, variances :math:`\sigma^2` and covariance :math:`\sigma_{xy}`,

    .. math:: \mathrm{SSIM} = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
              {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)},\quad C_i = (K_i R)^2,

    averaged over the interior pixels (a border of ``(win - 1) // 2`` is left out: only windows that fit
    inside the image count), then over channels. This is ``skimage.metrics.structural_similarity`` with the
    same arguments: by default a uniform ``win_size`` × ``win_size`` window and sample covariances
    (normalised by :math:`N_P / (N_P - 1)`, :math:`N_P` the window's pixel count). ``gaussian_weights=True``
    uses a Gaussian window of std ``sigma`` truncated at :math:`3.5\sigma` (11 × 11 for 1.5); then
    ``win_size`` is ignored, as scikit-image documents. Wang et al.'s setting is ``gaussian_weights=True,
    use_sample_covariance=False``.

    Parameters
    ----------
    x, y:
        ``(B, C, H, W)`` real tensors of equal shape.
    data_range:
        :math:`R > 0`, number or per-sample tensor ``(B,)``.
    reduction:
        ``"none"`` (per-sample, ``(B,)``) or ``"mean"``.
    """
    _check_pair(x, y, "ssim")
    R = _data_range(data_range, x, "ssim")
    if gaussian_weights:
        if not (float(sigma) > 0):
            raise ValueError(f"ssim: sigma must be > 0, got {sigma!r}")
        win_size = 2 * int(3.5 * float(sigma) + 0.5) + 1
    elif isinstance(win_size, bool) or not isinstance(win_size, int) or win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"ssim: win_size must be an odd int >= 3, got {win_size!r}")
    if win_size > min(x.shape[-2:]):
        raise ValueError(
            f"ssim: win_size {win_size} exceeds the image size {tuple(x.shape[-2:])}; use a smaller odd win_size"
        )
    for name, k in (("K1", K1), ("K2", K2)):
        if not (float(k) >= 0):
            raise ValueError(f"ssim: {name} must be >= 0, got {k!r}")

    B, C, H, W = x.shape
    if gaussian_weights:
        w1 = _gaussian_window(win_size, float(sigma), x.dtype, x.device)
    else:
        w1 = torch.full((win_size,), 1.0 / win_size, dtype=x.dtype, device=x.device)
    npix = win_size * win_size
    cov_norm = npix / (npix - 1) if use_sample_covariance else 1.0

    # Variances from data centred per sample and channel: mathematically identical, but avoids the
    # cancellation in E[x^2] - E[x]^2 for float32 images with data_range 255.
    shift = y.mean(dim=(-2, -1), keepdim=True).detach()
    xc, yc = x - shift, y - shift
    stack = torch.cat((xc, yc, xc * xc, yc * yc, xc * yc), dim=1).reshape(B * 5 * C, 1, H, W)
    # Separable "valid" filtering = the filter of scikit-image evaluated on the interior it averages over.
    f = torch.nn.functional.conv2d(stack, w1.view(1, 1, win_size, 1))
    f = torch.nn.functional.conv2d(f, w1.view(1, 1, 1, win_size)).reshape(B, 5, C, H - win_size + 1, W - win_size + 1)
    ux, uy, uxx, uyy, uxy = f.unbind(dim=1)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    ux, uy = ux + shift, uy + shift

    Rt = R.view(B, 1, 1, 1) if isinstance(R, torch.Tensor) else R
    C1 = (K1 * Rt) ** 2
    C2 = (K2 * Rt) ** 2
    s = ((2 * ux * uy + C1) * (2 * vxy + C2)) / ((ux * ux + uy * uy + C1) * (vx + vy + C2))
    return _reduce(s.mean(dim=(-2, -1)).mean(dim=1), reduction, "ssim")
