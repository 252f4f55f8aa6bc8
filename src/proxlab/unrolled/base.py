r"""Unrolled networks: K stages of one registered step with learnable per-stage (or tied) parameters.

:class:`Unrolled` runs any entry of the table of steps (:data:`proxlab.solvers.STEP_TABLE`: ``pgd``,
``fista``, ``admm``, ``hqs``, and whatever :func:`proxlab.solvers.register_step` adds): the entry's
initialiser builds the state from :math:`x^{(0)} = A.\mathrm{init}(y)`, its step function — the classic
solvers' own — runs K times with stage k's prox and scalars, and its read-out gives :math:`\hat x`.
The network only decides which parameters are learned: the prox modules and the entry's scalars.

Scalars. Each scalar ``name`` of the entry is a parameter ``raw_<name>`` (one value, or one per stage)
mapped into its range by the entry's parametrisation and given to the step relative to
:math:`L = \|A\|_2^2`, the convention of plug-and-play as well:

- PGD / FISTA step size :math:`\gamma_k = \mathrm{softplus}(s_k)/L` (start ``step_size = 1``: the classic
  :math:`1/L`);
- ADMM penalty :math:`\rho_k = \mathrm{softplus}(r_k)\,L`, HQS penalty :math:`\mu_k = \mathrm{softplus}(r_k)\,L`
  (start ``rho = 1``);
- FISTA momentum :math:`\beta_k = \tanh(m_k) \in (-1, 1)`, one per stage even when the rest is tied,
  started at the Beck–Teboulle values :math:`\beta_k = (t_k - 1)/t_{k+1}` (:math:`\beta_0 = 0`), so the
  untrained network is K classic FISTA iterations.

Extra loss terms. A stage module that is an :class:`AuxProx` also returns named tensors (ISTA-Net's
symmetry residuals); ``net(y)`` returns the image tensor alone, ``net(y, return_aux=True)`` an
:class:`UnrolledOutput` ``(x, aux)`` with ``aux[name]`` the tuple of the stages' tensors. Nothing is left
on the module, so the terms come back through ``DistributedDataParallel`` and ``torch.compile`` wrappers
like the image does.

Example — unrolled PGD with one CNN prox shared by 5 stages::

    net = Unrolled(GaussianBlur(1.0), DnCNN(), step="pgd", stages=5, tied=True)
    x_hat = net(y)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import torch
from torch import nn

from .._checks import check_positive
from ..operators.base import LinearOperator
from ..priors.base import require
from ..solvers.steps import StepEntry, get_step

__all__ = ["Unrolled", "UnrolledOutput", "AuxProx", "STEPS"]

#: The built-in steps (the table may hold more: :data:`proxlab.solvers.STEP_TABLE`).
STEPS = ("pgd", "fista", "admm", "hqs")

class OperatorNormCache:
    """For a network around ``self.operator``: :math:`\\|A\\|^2` per input shape, computed once and kept as a Python
    float (``forward`` runs no power iteration after the first call, and ``torch.compile`` sees a constant), dropped
    when weights are loaded (the operator's buffers, Φ or a mask, may arrive with them) and when ``operator`` is
    assigned (a test-time variant runs the network on another operator). Put it before ``nn.Module`` in the bases."""

    def __setattr__(self, name, value):
        if name == "operator":
            self.__dict__.setdefault("_norms", {}).clear()
        super().__setattr__(name, value)

    def _norm(self, shape) -> float:
        norms = self.__dict__.setdefault("_norms", {})
        key = tuple(shape)
        if key not in norms:
            norms[key] = self.operator.norm(key)
        return norms[key]

    def _load_from_state_dict(self, *args, **kwargs):
        self.__dict__.setdefault("_norms", {}).clear()
        super()._load_from_state_dict(*args, **kwargs)


class UnrolledOutput(NamedTuple):
    """What ``Unrolled(y, return_aux=True)`` returns: the estimate ``x`` and the extra loss terms ``aux``
    (term name -> one tensor per stage, in stage order). A named tuple, so DDP and ``torch.compile`` pass it
    through as they pass a tensor."""

    x: torch.Tensor
    aux: dict[str, tuple[torch.Tensor, ...]]


class AuxProx(nn.Module):
    """A stage module that can also return extra loss terms.

    Subclasses implement :meth:`forward_aux`; ``forward(v, tau)`` (the plain prox) returns its first
    element, and may be overridden where the terms cost extra work that the plain call should skip.
    """

    def forward_aux(self, v: torch.Tensor, tau=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError(f"{type(self).__name__} must implement forward_aux(v, tau)")

    def forward(self, v: torch.Tensor, tau=None) -> torch.Tensor:
        return self.forward_aux(v, tau)[0]


class Unrolled(OperatorNormCache, nn.Module):
    """K stages of a registered ``step`` (``pgd``, ``fista``, ``admm``, ``hqs``, ...) with a learned prox.

    Parameters
    ----------
    operator:
        The forward model :math:`A` (not trained; its buffers move with the module).
    prox:
        A module ``prox(v, tau)``, or a zero-argument factory. ``tied=True`` shares one prox and one
        set of scalars across stages (a scalar marked ``per_stage``, FISTA's momentum, keeps one per
        stage); otherwise each stage gets its own (deep copies of ``prox``).
    step:
        The name of an entry of :data:`proxlab.solvers.STEP_TABLE`.
    stages:
        K, the number of stages.
    step_size, rho:
        Start values of the entry's ``step_size`` (PGD/FISTA; relative to :math:`1/\\|A\\|^2`) and of its
        penalty (ADMM's ``rho``, HQS's ``mu``; relative to :math:`\\|A\\|^2`); ``None``: the entry's
        default (1). Ignored by a step that has no such scalar, so one configuration can name both.
    scalars:
        Start values by scalar name (a number for every stage, or one per stage), e.g.
        ``{"momentum": 0.5}``; these override ``step_size`` / ``rho``.
    step_options:
        Extra keyword arguments for every step call (e.g. ``{"tol": 1e-6, "max_iter": 50}`` for the
        conjugate-gradient x-update of ADMM/HQS on an operator without a closed-form ``solve_normal``).
    """

    def __init__(self, operator: LinearOperator, prox: nn.Module | Callable[[], nn.Module], step: str = "pgd",
                 stages: int = 5, tied: bool = False, step_size: float | None = None, rho: float | None = None,
                 scalars: Mapping[str, float | Sequence[float]] | None = None, step_options: Mapping | None = None):
        super().__init__()
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator must be a proxlab LinearOperator, got {type(operator).__name__}")
        entry = get_step(step)
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 1:
            raise ValueError(f"stages must be an int >= 1, got {stages!r}")
        if not isinstance(tied, bool):
            raise TypeError(f"tied must be a bool, got {tied!r}")
        if not isinstance(prox, nn.Module) and not callable(prox):
            raise TypeError(f"prox must be an nn.Module or a zero-argument factory, got {type(prox).__name__}")
        starts = self._start_values(entry, step_size, rho, scalars)
        make = prox if not isinstance(prox, nn.Module) else (lambda: copy.deepcopy(prox))
        first = require(prox if isinstance(prox, nn.Module) else prox(), "prox", "Unrolled", why="every stage")
        self.operator, self.step, self.stages, self.tied, self.entry = operator, step, stages, tied, entry
        self.step_options = dict(step_options or {})
        clash = sorted(set(self.step_options) & (set(entry.scalars) | {"ATy"}))
        if clash:
            raise ValueError(f"step_options must not set {', '.join(clash)}: the network passes them itself")
        self.proxes = nn.ModuleList([first] + [make() for _ in range(self._count(None) - 1)])
        for name, sc in entry.scalars.items():
            n = self._count(name)
            given = starts.get(name)
            if given is None:
                values = [sc.start(k) for k in range(n)]
            elif isinstance(given, Sequence) and not isinstance(given, str):
                if len(given) != n:
                    raise ValueError(f"scalars[{name!r}] must have {n} values (one per stage), got {len(given)}")
                values = [sc.check(name, v) for v in given]
            else:
                values = [sc.check(name, given)] * n
            self.register_parameter(f"raw_{name}", nn.Parameter(torch.tensor([sc.raw(v) for v in values])))
        self._norms: dict[tuple, float] = {}  # ‖A‖² per input shape: a Python float inside forward

    @staticmethod
    def _start_values(entry: StepEntry, step_size, rho, scalars) -> dict:
        starts = {}
        for key, value in (("step_size", step_size), ("rho", rho)):
            if value is not None:
                check_positive(key, value)
                if entry.resolve(key) is not None:
                    starts[entry.resolve(key)] = value
        for key, value in (scalars or {}).items():
            target = entry.resolve(key)
            if target is None:
                raise ValueError(f"scalars: step {entry.name!r} has no scalar {key!r}; its scalars: "
                                 f"{', '.join(entry.scalars) or 'none'}")
            starts[target] = value
        return starts

    def _count(self, name: str | None) -> int:
        """How many values the scalar ``name`` (``None``: the prox) has."""
        per_stage = name is not None and self.entry.scalars[name].per_stage
        return self.stages if (per_stage or not self.tied) else 1

    def scalar(self, name: str) -> torch.Tensor:
        """The values of scalar ``name`` (one, or one per stage), in the relative convention of the module
        docstring (before the factor :math:`\\|A\\|^{\\mp 2}`)."""
        target = self.entry.resolve(name)
        if target is None:
            raise ValueError(f"step {self.step!r} has no scalar {name!r}; its scalars: {', '.join(self.entry.scalars)}")
        return self.entry.scalars[target].value(getattr(self, f"raw_{target}"))

    def step_sizes(self) -> torch.Tensor:
        """The step sizes, multiples of :math:`1/\\|A\\|^2` (PGD, FISTA, ISTA-Net; :meth:`scalar` for others)."""
        return self.scalar("step_size")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "raw_step_size" in state_dict and "step_size" not in self.entry.scalars and self.entry.scalars:
            raise ValueError(f"these weights hold 'raw_step_size' for step {self.step!r}: saved before its penalty "
                             f"became relative to ‖A‖² (now 'raw_{next(iter(self.entry.scalars))}', the old value "
                             "divided by ‖A‖² for the image size it was trained on)")
        # weights saved before a scalar was learned (they hold the step's other scalars): its start values
        for name, sc in self.entry.scalars.items():
            if sc.missing_ok and any(prefix + f"raw_{other}" in state_dict for other in self.entry.scalars):
                state_dict.setdefault(prefix + f"raw_{name}", getattr(self, f"raw_{name}").detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _stage_prox(self, i: int, sink: dict | None):
        prox = self.proxes[i]
        if sink is None or not isinstance(prox, AuxProx):
            return prox

        def collect(v, tau):
            out, terms = prox.forward_aux(v, tau)
            for key, term in terms.items():
                sink.setdefault(key, []).append(term)
            return out

        return collect

    def forward(self, y: torch.Tensor, return_aux: bool = False) -> torch.Tensor | UnrolledOutput:
        """:math:`\\hat x` from ``y``; with ``return_aux=True`` an :class:`UnrolledOutput` ``(x, aux)``."""
        A, entry = self.operator, self.entry
        ATy = A.adjoint(y)
        x = A.init(y)
        factor = {"none": None}
        if any(sc.scale != "none" for sc in entry.scalars.values()):
            L = self._norm(x.shape[1:])
            factor.update(inv_norm=1.0 / L, norm=L)
        values = {name: sc.value(getattr(self, f"raw_{name}")) for name, sc in entry.scalars.items()}
        shared = {name: self._count(name) == 1 for name in entry.scalars}
        sink: dict | None = {} if return_aux else None
        state = entry.init(x, A, y, self.proxes[0])
        for k in range(self.stages):
            kwargs = dict(self.step_options)
            for name, sc in entry.scalars.items():
                v = values[name][0 if shared[name] else k]
                f = factor[sc.scale]
                kwargs[name] = v if f is None else v * f
            state = entry.step(state, A, y, self._stage_prox(0 if self.tied else k, sink), ATy=ATy, **kwargs)
        x = entry.readout(state)
        if not return_aux:
            return x
        return UnrolledOutput(x, {key: tuple(terms) for key, terms in sink.items()})

    def extra_repr(self) -> str:
        return f"step={self.step!r}, stages={self.stages}, tied={self.tied}"
