r"""Training losses, and adapters that turn them into the Trainer's ``loss_fn(model, batch, generator)``.

- :func:`mse`, :func:`l1`: per-batch means.
- :func:`supervised`: batches of pairs ``(y, x)``: ``criterion(model(y), x)``.
- :func:`simulated`: batches of clean ``x``: draws :math:`y = A x + \sigma n` with the Trainer's
  generator (fresh noise every step, reproducible on resume), then ``criterion(model(y), x)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._checks import check_choice, check_positive

__all__ = ["mse", "l1", "LOSSES", "get_loss", "supervised", "simulated"]


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac1N\sum (\hat x - x)^2` over all entries."""
    return (pred - target).pow(2).mean()


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac1N\sum |\hat x - x|` over all entries."""
    return (pred - target).abs().mean()


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"mse": mse, "l1": l1}


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    check_choice("loss", name, list(LOSSES))
    return LOSSES[name]


def supervised(criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mse):
    """``loss_fn`` for batches of pairs ``(y, x)``."""

    def loss_fn(model: nn.Module, batch, generator: torch.Generator) -> torch.Tensor:
        y, x = batch
        return criterion(model(y), x)

    return loss_fn


def simulated(operator: nn.Module, sigma: float, criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mse):
    r"""``loss_fn`` for batches of clean images: :math:`y = A x + \sigma n`, :math:`n` from the Trainer's generator."""
    sigma = check_positive("sigma", sigma, strict=False)

    def loss_fn(model: nn.Module, batch, generator: torch.Generator) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        with torch.no_grad():
            y = operator(x)
            if sigma > 0:
                n = torch.randn(y.shape, generator=generator, dtype=torch.float32)
                y = y + sigma * n.to(device=y.device, dtype=y.dtype)
        return criterion(model(y), x)

    return loss_fn
