r"""Unrolled networks: K stages of one algorithm's step with learnable per-stage parameters.

The step functions are those of the classic solvers (:mod:`proxlab.solvers.steps`); an unrolled
network only decides which parameters are learned. Step sizes and penalties are kept positive by
a softplus; the PGD/FISTA step is :math:`\gamma_k = \mathrm{softplus}(s_k)/\|A\|_2^2`, initialised
at ``step_size / ‖A‖²``.

Example — unrolled PGD with one CNN prox shared by 5 stages::

    net = Unrolled(GaussianBlur(1.0), DnCNN(), step="pgd", stages=5, tied=True)
    x_hat = net(y)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.functional import softplus

from .._checks import check_choice, check_positive
from ..operators.base import LinearOperator
from ..solvers.steps import ADMMState, FISTAState, HQSState, admm_step, fista_step, hqs_step, pgd_step

__all__ = ["Unrolled", "STEPS"]

STEPS = ("pgd", "fista", "admm", "hqs")


def _inv_softplus(v: float) -> float:
    return v + math.log(-math.expm1(-v))


class Unrolled(nn.Module):
    """K stages of ``step`` (``pgd``, ``fista``, ``admm`` or ``hqs``) with a learned prox.

    Parameters
    ----------
    operator:
        The forward model :math:`A` (not trained; its buffers move with the module).
    prox:
        A module ``prox(v, tau)``, or a zero-argument factory. ``tied=True`` shares one prox and one
        set of scalars across stages; otherwise each stage gets its own (deep copies of ``prox``).
    step_size:
        Initial PGD/FISTA step as a multiple of :math:`1/\\|A\\|^2`; ``rho`` the initial ADMM/HQS penalty.
    """

    def __init__(self, operator: LinearOperator, prox: nn.Module | Callable[[], nn.Module], step: str = "pgd",
                 stages: int = 5, tied: bool = False, step_size: float = 1.0, rho: float = 1.0):
        super().__init__()
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator must be a proxlab LinearOperator, got {type(operator).__name__}")
        check_choice("step", step, STEPS)
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
            raise ValueError(f"stages must be an int >= 1, got {stages!r}")
        check_positive("step_size", step_size)
        check_positive("rho", rho)
        make = prox if not isinstance(prox, nn.Module) else (lambda: copy.deepcopy(prox))
        first = prox if isinstance(prox, nn.Module) else prox()
        n_params = 1 if tied else stages
        self.operator, self.step, self.stages, self.tied = operator, step, stages, tied
        self.proxes = nn.ModuleList([first] + [make() for _ in range(n_params - 1)])
        init = step_size if step in ("pgd", "fista") else rho
        self.raw_step_size = nn.Parameter(torch.full((n_params,), _inv_softplus(float(init))))
        self._lipschitz: dict[tuple, float] = {}  # 1/‖A‖² per input shape: a Python float inside forward

    def _index(self, k: int) -> int:
        return 0 if self.tied else k

    def step_sizes(self) -> torch.Tensor:
        """The positive per-stage scalars (PGD/FISTA: multiples of 1/‖A‖²; ADMM/HQS: penalties)."""
        return softplus(self.raw_step_size)

    def _inv_lipschitz(self, shape) -> float:
        key = tuple(shape)
        if key not in self._lipschitz:
            self._lipschitz[key] = 1.0 / self.operator.norm(key)
        return self._lipschitz[key]

    def _load_from_state_dict(self, *args, **kwargs):
        # the operator's buffers (Φ, a mask) arrive with the weights and may change ‖A‖²
        self._lipschitz.clear()
        super()._load_from_state_dict(*args, **kwargs)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        A = self.operator
        ATy = A.adjoint(y)
        x = A.init(y)
        scalars = self.step_sizes()
        if self.step in ("pgd", "fista"):
            scale = self._inv_lipschitz(x.shape[1:])
            state = x if self.step == "pgd" else FISTAState(x=x, z=x)
            for k in range(self.stages):
                i = self._index(k)
                gamma = scalars[i] * scale
                if self.step == "pgd":
                    state = pgd_step(state, A, y, self.proxes[i], gamma, ATy)
                else:
                    state = fista_step(state, A, y, self.proxes[i], gamma, ATy=ATy)
            return state if self.step == "pgd" else state.x
        state = ADMMState(x=x, z=x, u=torch.zeros_like(x)) if self.step == "admm" else HQSState(x=x, z=x)
        for k in range(self.stages):
            i = self._index(k)
            if self.step == "admm":
                state = admm_step(state, A, y, self.proxes[i], scalars[i], ATy)
            else:
                state = hqs_step(state, A, y, self.proxes[i], scalars[i], ATy)
        return state.z

    def extra_repr(self) -> str:
        return f"step={self.step!r}, stages={self.stages}, tied={self.tied}"
