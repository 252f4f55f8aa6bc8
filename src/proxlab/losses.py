r"""Training losses, and adapters that turn them into the Trainer's ``loss_fn(model, batch, ctx)``.

- :func:`mse`, :func:`l1`: per-batch means.
- :func:`supervised`: batches of pairs ``(y, x)``: ``criterion(model(y), x)``.
- :func:`simulated`: batches of clean ``x``: draws :math:`y = A x + \sigma n` with the Trainer's
  generator ``ctx.generator`` (fresh noise every step, reproducible on resume), then ``criterion(model(y), x)``.
- :func:`istanet_loss`: MSE plus ISTA-Net's symmetry term, from the extra terms a network returns with
  its output (``net(y, return_aux=True)``); :func:`fistanet_loss`: MSE plus FISTA-Net's symmetry and sparsity terms.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ._checks import check_choice, check_positive

__all__ = [
    "mse",
    "l1",
    "proximal_matching_loss",
    "ProximalMatchingSchedule",
    "LOSSES",
    "nmse",
    "get_loss",
    "supervised",
    "simulated",
    "denoising_schedule_loss",
    "istanet_loss",
    "fistanet_loss",
    "simulate_batch",
]


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac1N\sum (\hat x - x)^2` over all entries."""
    return (pred - target).pow(2).mean()


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac1N\sum |\hat x - x|` over all entries."""
    return (pred - target).abs().mean()


def nmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Normalised MSE, :math:`\operatorname{mean}_i \|\hat x_i - x_i\|^2 / \|x_i\|^2` over the batch (ADMM-Net's loss)."""
    dims = tuple(range(1, target.ndim))
    num = (pred - target).pow(2).sum(dims)
    return (num / target.pow(2).sum(dims).clamp_min(torch.finfo(target.dtype).tiny)).mean()


def proximal_matching_loss(pred: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    r"""Proximal matching (Fang et al., ICLR 2024): the batch mean of
    :math:`1 - \exp(-(\|\hat x - x\|_2 / \gamma)^2)`, the norm over the whole sample.

    As :math:`\gamma \to 0` its minimiser approaches the MAP denoiser (the prox of
    :math:`-\log p`), where the MSE gives the MMSE denoiser and ℓ1 something in between.
    """
    gamma = check_positive("gamma", gamma)
    d = (pred - target).flatten(1).norm(dim=1)
    return (1 - torch.exp(-(d / gamma) ** 2)).mean()


def _l1_per_sample(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The LPN code's ℓ1 stage: mean over the batch of the per-sample ℓ1 norm."""
    return (pred - target).abs().flatten(1).sum(dim=1).mean()


class ProximalMatchingSchedule:
    r"""LPN's training schedule as a function of the step (Fang et al., 2024).

    Steps ``[0, l1_steps)``: ℓ1 loss (per-sample norm, batch mean). Then proximal matching in
    stages of ``stage_steps`` with :math:`\gamma = f\,\gamma_{\min}` for ``f`` in ``factors``
    (default 8, 4, 2, 1: halved each stage), the last value kept to the end. ``gamma_min`` defaults
    to the paper's :math:`0.08\sqrt{\#\text{pixels}}` of the first batch (2.24 for MNIST).
    Learning rates are the optimizer's business (the paper drops 1e-3 → 1e-4 at the switch: a
    ``multistep`` schedule with one milestone at ``l1_steps``).
    """

    def __init__(self, l1_steps: int, stage_steps: int, gamma_min: float | None = None,
                 factors: tuple[float, ...] = (8.0, 4.0, 2.0, 1.0)):
        for name, v in (("l1_steps", l1_steps), ("stage_steps", stage_steps)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be an int >= 0, got {v!r}")
        if stage_steps < 1:
            raise ValueError(f"stage_steps must be >= 1, got {stage_steps!r}")
        if gamma_min is not None:
            check_positive("gamma_min", gamma_min)
        if not factors or any(not f > 0 for f in factors):
            raise ValueError(f"factors must be a non-empty sequence of positive numbers, got {factors!r}")
        self.l1_steps, self.stage_steps, self.gamma_min, self.factors = l1_steps, stage_steps, gamma_min, tuple(factors)

    def gamma(self, step: int, numel: int) -> float | None:
        """γ at ``step`` (``None`` during the ℓ1 stage) for samples of ``numel`` entries."""
        if step < self.l1_steps:
            return None
        stage = min((step - self.l1_steps) // self.stage_steps, len(self.factors) - 1)
        gmin = self.gamma_min if self.gamma_min is not None else 0.08 * numel**0.5
        return self.factors[stage] * gmin

    def __call__(self, pred: torch.Tensor, target: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        g = self.gamma(step, target[0].numel())
        if g is None:
            return _l1_per_sample(pred, target), {"gamma": 0.0}
        return proximal_matching_loss(pred, target, g), {"gamma": g}


def denoising_schedule_loss(sigma: float, schedule: ProximalMatchingSchedule):
    r"""``loss_fn`` for training a denoiser/prox on clean samples with a step-dependent loss:
    :math:`y = x + \sigma n` (noise from ``ctx.generator``), loss ``schedule(model(y), x, ctx.step)``."""
    sigma = check_positive("sigma", sigma)

    def loss_fn(model: nn.Module, batch, ctx):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        n = torch.randn(x.shape, generator=ctx.generator, dtype=torch.float32).to(device=x.device, dtype=x.dtype)
        return schedule(model(x + sigma * n), x, ctx.step)

    return loss_fn


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"mse": mse, "l1": l1, "nmse": nmse}
# Losses that need more than (pred, target): built by the runner from ``loss_options``.
SCHEDULED_LOSSES = ("proximal_matching",)


def get_loss(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    check_choice("loss", name, list(LOSSES))
    return LOSSES[name]


def supervised(criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mse):
    """``loss_fn`` for batches of pairs ``(y, x)``."""

    def loss_fn(model: nn.Module, batch, ctx) -> torch.Tensor:
        y, x = batch
        return criterion(model(y), x)

    return loss_fn


def simulated(operator: nn.Module, sigma: float, criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mse):
    r"""``loss_fn`` for batches of clean images: :math:`y = A x + \sigma n`, :math:`n` from the Trainer's generator."""
    sigma = check_positive("sigma", sigma, strict=False)

    def loss_fn(model: nn.Module, batch, ctx) -> torch.Tensor:
        x, y = simulate_batch(operator, sigma, batch, ctx.generator)
        return criterion(model(y), x)

    return loss_fn


def simulate_batch(operator: nn.Module, sigma: float, batch, generator: torch.Generator | None):
    r"""``(x, y)`` for a batch of clean images (or a ``(x, ...)`` tuple): :math:`y = A x + \sigma n`, without
    gradient, :math:`n` drawn in float32 from ``generator`` (so a resumed run draws the same noise)."""
    x = batch[0] if isinstance(batch, (tuple, list)) else batch
    with torch.no_grad():
        y = operator(x)
        if sigma > 0:
            n = torch.randn(y.shape, generator=generator, dtype=torch.float32)
            y = y + sigma * n.to(device=y.device, dtype=y.dtype)
    return x, y


def istanet_loss(pred: torch.Tensor, target: torch.Tensor, aux=None, gamma: float = 0.01) -> torch.Tensor:
    r"""ISTA-Net's loss (Zhang & Ghanem, 2018): :math:`\operatorname{mean}(\hat x - x)^2 + \gamma \sum_k
    \operatorname{mean}(\text{sym}_k^2)`, the sum over the stages' symmetry residuals ``aux["symmetry"]``
    (what ``ISTANet(y, return_aux=True)`` returns beside :math:`\hat x`)::

        out = net(y, return_aux=True)
        loss = istanet_loss(out.x, x, out.aux)

    Without a ``"symmetry"`` term (``aux=None``, or a network such as ResNet-PGD that has none) it is
    the MSE alone.
    """
    gamma = check_positive("gamma", gamma, strict=False)
    loss = nn.functional.mse_loss(pred, target)
    terms = () if aux is None else aux.get("symmetry", ())
    if gamma and terms:
        loss = loss + gamma * torch.stack([t.pow(2).mean() for t in terms]).sum()
    return loss


def fistanet_loss(pred: torch.Tensor, target: torch.Tensor, aux=None, symmetry: float = 0.01,
                  sparsity: float = 0.001) -> torch.Tensor:
    r"""FISTA-Net's loss (Xiang, Dong & Yang, 2021): :math:`\operatorname{mean}(\hat x - x)^2
    + \alpha \sum_k \operatorname{mean}(\text{sym}_k^2) + \beta \sum_k \operatorname{mean}|c_k|`, the sums over the
    phases' symmetry residuals ``aux["symmetry"]`` and thresholded codes ``aux["sparsity"]`` (what
    ``FISTANet(y, return_aux=True)`` returns), :math:`\alpha` = ``symmetry``, :math:`\beta` = ``sparsity``::

        out = net(y, return_aux=True)
        loss = fistanet_loss(out.x, x, out.aux)

    A term the network does not return (or ``aux=None``) adds nothing.
    """
    symmetry = check_positive("symmetry", symmetry, strict=False)
    sparsity = check_positive("sparsity", sparsity, strict=False)
    loss = nn.functional.mse_loss(pred, target)
    aux = aux or {}
    if symmetry and aux.get("symmetry"):
        loss = loss + symmetry * torch.stack([t.pow(2).mean() for t in aux["symmetry"]]).sum()
    if sparsity and aux.get("sparsity"):
        loss = loss + sparsity * torch.stack([t.abs().mean() for t in aux["sparsity"]]).sum()
    return loss
