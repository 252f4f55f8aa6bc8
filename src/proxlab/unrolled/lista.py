r"""LISTA: learned ISTA for sparse coding (Gregor & LeCun, "Learning Fast Approximations of Sparse
Coding", ICML 2010).

Sparse coding of a signal :math:`X \in \mathbb R^n` over a dictionary :math:`W_d \in \mathbb R^{n\times m}`
solves :math:`Z^* = \operatorname{argmin}_Z \tfrac12\|X - W_d Z\|^2 + \alpha\|Z\|_1`. ISTA from
:math:`Z = 0` with step :math:`1/L`, :math:`L = \|W_d\|_2^2`, is

.. math:: Z_{k+1} = h_\theta(W_e X + S Z_k),\qquad W_e = W_d^\top/L,\quad S = I - W_d^\top W_d/L,
          \quad \theta = \alpha/L,

with the shrinkage :math:`h_\theta(V)_i = \operatorname{sign}(V_i)\max(|V_i| - \theta_i, 0)`
(:func:`proxlab.priors.classic.soft_threshold`). LISTA runs a fixed number of these stages (layers) and learns
:math:`W_e`, :math:`S` and the threshold vector :math:`\theta \in \mathbb R^m` (one threshold per code
entry, as in the paper) by back-propagation, to predict the optimal codes :math:`Z^*`.

Stages are counted as shrinkage layers: ``stages = K`` returns :math:`Z_{K-1}` of
:math:`Z_0 = h_\theta(W_e X)`, :math:`Z_{k+1} = h_\theta(W_e X + S Z_k)`, so at the ISTA initialisation
K stages are exactly K ISTA iterations from :math:`Z = 0` (the convention of the LISTA-CPSS code,
Chen et al., NeurIPS 2018). The paper's ``fprop`` with T iterations applies T + 1 shrinkages.
(``layers=`` is a deprecated alias of ``stages=``: every unrolled network of proxlab says *stages*.)

``tied=True`` is the paper's network (one :math:`W_e`, :math:`S`, :math:`\theta` for all stages);
``tied=False`` gives every stage its own :math:`S_k` and :math:`\theta_k` (the encoder :math:`W_e` stays
shared, as in the LISTA-CPSS code).

LISTA is the one unrolled network that is not an entry of the table of steps
(:data:`proxlab.solvers.STEP_TABLE`), by choice. Written as a step it would be PGD whose gradient map
:math:`Z \mapsto Z - \gamma W_d^\top(W_d Z - X)` is replaced by the learned affine map :math:`S Z + W_e X`;
but what it learns are those matrices themselves, the operator :math:`W_d` drops out after the
initialisation, the first stage has no :math:`S`, and the untied network shares :math:`W_e` across
stages — none of which fits a table whose learnable parts are scalars around a fixed operator and a
prox module. Forcing it in would make the table carry matrix-valued "scalars" and an operator that
the step ignores. Its link to the table is tested instead: at the ISTA initialisation its K stages
equal K iterations of :func:`proxlab.solvers.ista`.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .._checks import check_positive, check_shape, check_tensor
from ..operators.base import match
from ..priors.classic import soft_threshold

__all__ = ["LISTA", "ista_parameters"]


def ista_parameters(dictionary: torch.Tensor, alpha: float, lipschitz: float | None = None):
    r"""The ISTA weights :math:`(W_e, S, \theta, L)` for dictionary :math:`W_d` ``(n, m)`` and weight
    :math:`\alpha`: :math:`W_e = W_d^\top/L` ``(m, n)``, :math:`S = I - W_d^\top W_d/L` ``(m, m)``,
    :math:`\theta = \alpha/L` (a float) and :math:`L` (default :math:`\|W_d\|_2^2`), computed in float64."""
    d = dictionary.detach().to(torch.float64)
    L = float(torch.linalg.matrix_norm(d, ord=2) ** 2) if lipschitz is None else float(lipschitz)
    if not L > 0:
        raise ValueError("dictionary must not be zero (its spectral norm is 0)")
    m = d.shape[1]
    return d.T / L, torch.eye(m, dtype=torch.float64, device=d.device) - d.T @ d / L, alpha / L, L


class LISTA(nn.Module):
    r"""Learned ISTA with ``stages`` shrinkage layers, initialised at ISTA (Gregor & LeCun, 2010).

    Parameters
    ----------
    dictionary:
        :math:`W_d` of shape ``(n, m)``: n = signal size, m = number of atoms (code size). Kept as a
        buffer ``dictionary``; the learned weights start from it and the parameters take its dtype.
    alpha:
        The :math:`\ell_1` weight :math:`\alpha > 0` of the sparse coding problem; :math:`\theta_0 = \alpha/L`.
    stages:
        Number of stages (shrinkage layers) :math:`K \ge 1` (K ISTA iterations from 0 at initialisation);
        ``layers=`` is its deprecated alias.
    tied:
        ``True``: one :math:`S` and one :math:`\theta` for all stages (the paper). ``False``: stage
        :math:`k \ge 1` has its own :math:`S_k` and every stage its own :math:`\theta_k`.
    lipschitz:
        :math:`L` used for the initialisation; default :math:`\|W_d\|_2^2`. (LISTA-CPSS uses
        :math:`1.001\|W_d\|_2^2`.)

    Attributes
    ----------
    encoder:
        :math:`W_e`, shape ``(m, n)``.
    inhibition:
        :math:`S`: a list of ``(m, m)`` parameters, none for one stage, one if tied, ``stages - 1`` if
        untied (separate parameters, so that an optimizer skips the stages a loss does not reach).
    threshold:
        :math:`\theta`, shape ``(n_θ, m)`` with ``n_θ = 1`` if tied, else ``stages``. The shrinkage uses
        :math:`|\theta|` so that no optimizer step can make a threshold negative; at initialisation
        :math:`\theta > 0`, where this is exactly the paper's :math:`h_\theta`.
    """

    def __init__(self, dictionary: torch.Tensor, alpha: float, stages: int | None = None, tied: bool = False,
                 lipschitz: float | None = None, *, layers: int | None = None):
        super().__init__()
        if layers is not None:
            if stages is not None:
                raise ValueError(f"give stages or its deprecated alias layers, not both (stages={stages!r}, "
                                 f"layers={layers!r})")
            warnings.warn("LISTA(layers=) is deprecated; use stages=", DeprecationWarning, stacklevel=2)
            stages = layers
        check_tensor("dictionary", dictionary)
        if dictionary.ndim != 2 or min(dictionary.shape) < 1:
            raise ValueError(f"dictionary must be a matrix W_d of shape (n, m) (signal size, atoms), "
                             f"got shape {tuple(dictionary.shape)}")
        if not dictionary.is_floating_point():
            raise TypeError(f"dictionary must be a real floating-point tensor, got dtype {dictionary.dtype}")
        if not bool(torch.isfinite(dictionary).all()):
            raise ValueError("dictionary must be finite, got a tensor with NaN or inf entries")
        alpha = check_positive("alpha", alpha)
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
            raise ValueError(f"stages must be an int >= 1, got {stages!r}")
        if not isinstance(tied, bool):
            raise TypeError(f"tied must be a bool, got {tied!r}")
        if lipschitz is not None:
            lipschitz = check_positive("lipschitz", lipschitz)
        n, m = dictionary.shape
        We, S, theta, L = ista_parameters(dictionary, alpha, lipschitz)
        dtype = dictionary.dtype
        n_S = 0 if stages == 1 else (1 if tied else stages - 1)
        n_theta = 1 if tied else stages
        self.n, self.m, self.alpha, self.stages, self.tied, self.lipschitz = n, m, alpha, stages, tied, L
        self.register_buffer("dictionary", dictionary.detach().clone())
        self.encoder = nn.Parameter(We.to(dtype).clone())
        self.inhibition = nn.ParameterList([nn.Parameter(S.to(dtype).clone()) for _ in range(n_S)])
        self.threshold = nn.Parameter(torch.full((n_theta, m), theta, dtype=dtype, device=dictionary.device))

    # α and L travel with the weights (as the state_dict's ``_extra_state``, a float64 tensor that dtype casts leave
    # alone), so reset_to_ista() after load_state_dict uses the loaded values
    def get_extra_state(self) -> torch.Tensor:
        return torch.tensor([self.alpha, self.lipschitz], dtype=torch.float64)

    def set_extra_state(self, state: torch.Tensor) -> None:
        self.alpha, self.lipschitz = float(state[0]), float(state[1])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # weights saved before α and L were stored: keep this module's own
        state_dict.setdefault(prefix + "_extra_state", self.get_extra_state())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _theta(self, k: int, like: torch.Tensor) -> torch.Tensor:
        return match(self.threshold[0 if self.tied else k], like).abs().unsqueeze(0)  # (1, m): broadcasts

    def forward(self, x: torch.Tensor, return_all: bool = False) -> torch.Tensor | list[torch.Tensor]:
        r"""Codes :math:`Z` ``(B, m)`` of signals ``x`` ``(B, n)``; ``return_all=True`` gives the list of
        every stage's output :math:`[Z_0, \dots, Z_{K-1}]`."""
        check_shape("x", x, ("B", self.n), where="LISTA.forward")
        if not x.is_floating_point():
            raise TypeError(f"LISTA.forward: x must be a floating-point tensor, got dtype {x.dtype}")
        b = x @ match(self.encoder, x).T  # W_e X, computed once
        z = soft_threshold(b, self._theta(0, b))
        outs = [z]
        for k in range(1, self.stages):
            S = match(self.inhibition[0 if self.tied else k - 1], x)
            z = soft_threshold(b + z @ S.T, self._theta(k, b))
            outs.append(z)
        return outs if return_all else z

    @torch.no_grad()
    def reset_to_ista(self) -> "LISTA":
        """Set :math:`W_e`, :math:`S`, :math:`\\theta` back to their ISTA values."""
        We, S, theta, _ = ista_parameters(self.dictionary, self.alpha, self.lipschitz)
        self.encoder.copy_(We)
        for p in self.inhibition:
            p.copy_(S)
        self.threshold.fill_(theta)
        return self

    def extra_repr(self) -> str:
        return f"n={self.n}, m={self.m}, stages={self.stages}, tied={self.tied}, alpha={self.alpha:g}"

    @property
    def layers(self) -> int:
        """Deprecated: the number of :attr:`stages`."""
        return self.stages
