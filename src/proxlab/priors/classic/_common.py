"""Helpers shared by the classic priors: the step ``tau`` of a prox and the weight of a regularizer."""

from __future__ import annotations

import torch

from ..._checks import check_positive, check_tensor

__all__ = ["as_threshold", "check_weight"]


def check_weight(name: str, value: float) -> float:
    """A regularisation weight: a finite number ``>= 0``."""
    v = check_positive(name, value, strict=False)
    if v == float("inf"):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def as_threshold(name: str, value: float | torch.Tensor, x: torch.Tensor) -> float | torch.Tensor:
    r"""Turn a step or threshold into something that broadcasts against ``x`` of shape ``(B, ...)``.

    A number stays a number (checked ``>= 0``). A tensor may be a scalar, per-sample ``(B,)`` (reshaped to
    ``(B, 1, ..., 1)``) or already broadcastable to ``x`` (e.g. ``(B, 1, 1, 1)``); it is moved to ``x``'s
    device and real dtype and checked ``>= 0`` and finite.
    """
    if not isinstance(value, torch.Tensor):
        return check_weight(name, value)
    check_tensor(name, value)
    if value.is_complex():
        raise TypeError(f"{name}: expected a real tensor, got dtype {value.dtype}")
    t = value.to(device=x.device, dtype=x.real.dtype if x.is_floating_point() or x.is_complex() else value.dtype)
    if t.ndim == 1 and t.shape[0] == x.shape[0] and x.ndim > 1:
        t = t.reshape((-1,) + (1,) * (x.ndim - 1))
    elif t.ndim > x.ndim or any(s not in (1, n) for s, n in zip(t.shape[::-1], x.shape[::-1])):
        raise ValueError(
            f"{name} must be a number, a scalar tensor, a per-sample tensor of shape ({x.shape[0]},) or a tensor "
            f"broadcastable to {tuple(x.shape)}, got shape {tuple(t.shape)}"
        )
    if bool(((t < 0) | ~torch.isfinite(t)).any()):
        raise ValueError(f"{name} must be >= 0 and finite, got a tensor with min {float(t.min())}")
    return t
