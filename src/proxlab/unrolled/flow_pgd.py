r"""Deep unfolding with normalizing-flow priors (Wei, van Gorp, … van Sloun, IEEE TSP 2022): proximal gradient
with a pre-trained GLOW as the proximal step, unrolled for K folds and fine-tuned end to end.

Fold :math:`k = 1, …, K`:

.. math::
    \tilde x_k = x_{k-1} - \mu_k A^\top(A x_{k-1} - y), \qquad
    \tilde z_k = f_k(\tilde x_k), \qquad z_k = \tilde z_k / (1 + \lambda_k), \qquad x_k = g_k(z_k),

from :math:`x_0 = g_1(0)` (the first flow's most likely image); the output is :math:`\hat x = g_K(\tilde z_K)`, the
last fold's latent after data consistency *without* shrinkage. Since :math:`g_K \circ f_K` is the identity,
:math:`\hat x = \tilde x_K` exactly: the last fold is a gradient step, and only the flows of folds
:math:`1, …, K-1` are evaluated (and kept: ``K - 1`` untied copies, or one tied flow). :math:`z / (1 + \lambda)` is the
exact prox of :math:`\tfrac\lambda2\|z\|^2` because every latent of :class:`~proxlab.priors.flow.Glow` is standardised.

:math:`\mu_k` (relative to :math:`1/\|A\|^2`) and :math:`\lambda_k` are positive (softplus) and learned; the
parameter names ``flows.*`` and ``raw_step_size`` / ``raw_shrinkage`` let a spec give them their own learning
rates (the paper: 1e-5 for the flows, 1e-2 for μ, λ). ``memory_saving=True`` runs each flow through
:func:`~proxlab.priors.flow_recompute.encode_recomputed` / :func:`~proxlab.priors.flow_recompute.decode_recomputed`: its activations are
rebuilt from its outputs in the backward pass (Putzky & Welling 2019), so memory does not grow with the flows' depth.
"""

from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from .._checks import check_positive
from ..operators import LinearOperator
from ..priors.flow import ActNorm, Glow
from ..priors.flow_recompute import decode_recomputed, encode_recomputed
from ..solvers.steps import Scalar, gradient_step
from .base import OperatorNormCache

__all__ = ["FlowPGD"]

_STEP = Scalar(1.0, "softplus", "inv_norm")
_SHRINK = Scalar(0.1, "softplus", "none")


class FlowPGD(OperatorNormCache, nn.Module):
    """K folds of proximal gradient with GLOW latent shrinkage (see the module docstring).

    Parameters
    ----------
    operator:
        The forward model :math:`A`.
    flow:
        A pre-trained :class:`~proxlab.priors.flow.Glow` (copied into each fold), or a zero-argument factory.
    folds:
        K (default 4, the paper's).
    tied:
        One flow and one (μ, λ) for every fold, instead of one per fold (the paper found untied better).
    step_size, shrinkage:
        Start values of μ (relative to :math:`1/\\|A\\|^2`) and λ.
    memory_saving:
        Recompute the flows' activations in the backward pass instead of storing them.
    train_flows:
        ``False`` freezes the flows (``requires_grad=False``): only μ and λ are learned — the paper's PnP-GLOW
        baseline (its Table II).

    The folds hold copies of ``flow`` (the caller's module is left as it is). ActNorm's data-dependent
    initialisation is switched off in them: the flow is meant to arrive pre-trained, and an initialisation on the
    first fold's input would change the start ``g(0)`` after it was computed, break the memory-saving rebuild and
    move a frozen flow. An untrained flow keeps its ActNorm layers as they are (the identity, as built).
    """

    def __init__(self, operator: LinearOperator, flow: Glow | Callable[[], Glow], folds: int = 4, tied: bool = False,
                 step_size: float = 1.0, shrinkage: float = 0.1, memory_saving: bool = True, train_flows: bool = True):
        super().__init__()
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator: expected a proxlab LinearOperator, got {type(operator).__name__}")
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
            raise ValueError(f"folds: expected an int >= 1, got {folds!r}")
        first = copy.deepcopy(flow) if isinstance(flow, nn.Module) else flow()  # fine-tuning leaves the caller's flow
        if not isinstance(first, Glow):
            raise TypeError(f"flow: expected a proxlab.priors.flow.Glow (or a factory of one), got {type(first).__name__}")
        make = (lambda: copy.deepcopy(first)) if isinstance(flow, nn.Module) else flow
        n_flows = 1 if tied else max(folds - 1, 1)
        self.operator, self.folds, self.tied, self.memory_saving = operator, folds, bool(tied), bool(memory_saving)
        self.flows = nn.ModuleList([first] + [make() for _ in range(n_flows - 1)])
        for m in self.flows.modules():  # no data-dependent init in the middle of a fold (see the class notes)
            if isinstance(m, ActNorm):
                m.initialized.fill_(1)
        self.flows.requires_grad_(bool(train_flows))
        self.train_flows = bool(train_flows)
        n = 1 if tied else folds
        mu = _STEP.check("step_size", check_positive("step_size", step_size))
        lam = _SHRINK.check("shrinkage", check_positive("shrinkage", shrinkage))
        self.raw_step_size = nn.Parameter(torch.full((n,), _STEP.raw(mu)))
        self.raw_shrinkage = nn.Parameter(torch.full((max(folds - 1, 1) if not tied else 1,), _SHRINK.raw(lam)))
        self._norms: dict[tuple, float] = {}

    # ------------------------------------------------------------------ the learned scalars
    def step_sizes(self) -> torch.Tensor:
        """μ_k, multiples of :math:`1/\\|A\\|^2` (one per fold, or one when tied)."""
        return _STEP.value(self.raw_step_size)

    def shrinkages(self) -> torch.Tensor:
        """λ_k of the folds that shrink (1 … K−1; one when tied)."""
        return _SHRINK.value(self.raw_shrinkage)


    # ------------------------------------------------------------------ the folds
    def _flow(self, k: int) -> Glow:
        return self.flows[0 if self.tied else k]

    def _encode(self, flow: Glow, x: torch.Tensor) -> torch.Tensor:
        if self.memory_saving and torch.is_grad_enabled():
            return encode_recomputed(flow, x)
        return flow.encode(x)

    def _decode(self, flow: Glow, z: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if self.memory_saving and torch.is_grad_enabled():
            return decode_recomputed(flow, z, h, w)
        return flow.inverse(z, h, w)

    def start(self, y: torch.Tensor) -> torch.Tensor:
        """:math:`x_0 = g_1(0)`, one per measurement of the batch ``y``."""
        shape = self.operator.init(y).shape
        flow = self._flow(0)
        zero = y.new_zeros(1, shape[1] * shape[2] * shape[3])
        return self._decode(flow, zero, shape[2], shape[3]).expand(shape[0], -1, -1, -1)

    def forward(self, y: torch.Tensor, return_intermediates: bool = False):
        """:math:`\\hat x` for measurements ``y`` (with ``return_intermediates``: also ``[x_0, …, x_{K-1}]``)."""
        A = self.operator
        x = self.start(y)
        h, w = x.shape[-2:]
        scale = 1.0 / self._norm(x.shape[1:])
        mus, lams = self.step_sizes(), self.shrinkages()
        ATy = A.adjoint(y)
        seen = [x]
        for k in range(self.folds):
            mu = mus[0 if self.tied else k] * scale
            xt = gradient_step(x, A, y, mu, ATy)
            if k == self.folds - 1:
                x = xt  # g_K(f_K(x̃_K)) = x̃_K
                break
            flow = self._flow(k)
            lam = lams[0 if self.tied else k]
            x = self._decode(flow, self._encode(flow, xt) / (1.0 + lam), h, w)
            seen.append(x)
        return (x, seen) if return_intermediates else x

    @torch.no_grad()
    def sample_folds(self, n: int, temperature: float = 0.7, generator: torch.Generator | None = None,
                     size: int | None = None) -> list[torch.Tensor]:
        """``n`` samples from each fold's flow (after fine-tuning: what each fold's prior has become)."""
        return [f.sample(n, temperature, generator=generator, size=size) for f in self.flows]
