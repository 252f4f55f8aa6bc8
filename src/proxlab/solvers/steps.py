r"""One iteration of each algorithm, written once as a pure function of the state, and the table of steps.

Convention: minimise :math:`F(x) = f(x) + g(x)` with the smooth data term
:math:`f(x) = \tfrac12\|Ax - y\|^2` (gradient step) and the prior :math:`g` (prox step). A prox is
any callable ``prox(v, tau)`` returning :math:`\operatorname{prox}_{\tau g}(v)`; classic priors carry
their weight inside :math:`g`, learned denoisers may ignore ``tau`` (plug-and-play).

A classic solver (:mod:`proxlab.solvers.algorithms`) loops a step until a tolerance; an unrolled
network (:class:`proxlab.unrolled.Unrolled`) runs the same step K times with per-stage learnable scalars
and prox. Both find a step in :data:`STEP_TABLE`: its state initialiser, the step function, its read-out
and its learnable scalars (:class:`Scalar`: start value, range parametrisation, scale). A new algorithm
plugs in from outside the package with :func:`register_step`.

Step sizes and penalties. The step functions take *absolute* values (the :math:`\gamma` and :math:`\rho`
of the formulas below), and so do the classic solvers (``pgd(step_size=)``, ``admm(rho=)``,
``hqs(mu=)``), whose defaults and tuned weights are absolute. Where a value is chosen for an operator
not known in advance — plug-and-play (:func:`proxlab.methods.pnp`) and unrolled networks — it
is given *relative to* :math:`L = \|A\|_2^2`: a step size :math:`\gamma = s/L` (``s = 1`` is the classic
:math:`1/L`) and a penalty :math:`\rho = r\,L`, so that one value means the same balance for a mask or a
blur (:math:`L = 1`) and for CT (:math:`L` in the thousands). :attr:`Scalar.scale` records which of the two
a scalar is (``"inv_norm"``, ``"norm"``, or ``"none"`` for dimensionless ones such as FISTA's momentum).
Scalars may be floats or tensors (learnable parameters), broadcast per sample.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch.nn import functional as F

from .._checks import check_choice

from ..operators.base import LinearOperator

__all__ = [
    "Prox",
    "gradient_step",
    "pgd_step",
    "FISTAState",
    "fista_step",
    "fista_momentum",
    "ADMMState",
    "admm_step",
    "HQSState",
    "hqs_step",
    "beck_teboulle_momentum",
    "Scalar",
    "StepEntry",
    "STEP_TABLE",
    "PARAMETRISATIONS",
    "register_step",
    "get_step",
]

Prox = Callable[[torch.Tensor, "float | torch.Tensor"], torch.Tensor]


def gradient_step(x: torch.Tensor, A: LinearOperator, y: torch.Tensor, step_size, ATy: torch.Tensor | None = None) -> torch.Tensor:
    r""":math:`x - \gamma A^\top(Ax - y)`; with ``ATy`` given, :math:`x - \gamma(A^\top A x - A^\top y)`."""
    if ATy is None:
        return x - step_size * A.adjoint(A(x) - y)
    return x - step_size * (A.gram(x) - ATy)


def pgd_step(x: torch.Tensor, A: LinearOperator, y: torch.Tensor, prox: Prox, step_size, ATy: torch.Tensor | None = None) -> torch.Tensor:
    r"""Proximal gradient / ISTA: :math:`x^+ = \operatorname{prox}_{\gamma g}(x - \gamma A^\top(Ax - y))`."""
    return prox(gradient_step(x, A, y, step_size, ATy), step_size)


@dataclass
class FISTAState:
    """``x``: current iterate; ``z``: extrapolated point; ``t``: momentum counter (Beck & Teboulle)."""

    x: torch.Tensor
    z: torch.Tensor
    t: float = 1.0


def fista_momentum(t: float) -> tuple[float, float]:
    r"""Beck–Teboulle: :math:`t^+ = (1 + \sqrt{1 + 4t^2})/2`, momentum :math:`(t - 1)/t^+`."""
    t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t) ** 0.5)
    return t_next, (t - 1.0) / t_next


def fista_step(state: FISTAState, A: LinearOperator, y: torch.Tensor, prox: Prox, step_size,
               momentum=None, ATy: torch.Tensor | None = None) -> FISTAState:
    r"""FISTA (Beck & Teboulle, SIAM J. Imaging Sci. 2009):
    :math:`x^+ = \operatorname{prox}_{\gamma g}(z - \gamma\nabla f(z))`, :math:`z^+ = x^+ + \beta(x^+ - x)`.

    ``momentum`` overrides :math:`\beta` (a learned value in FISTA-Net); otherwise the Beck–Teboulle
    sequence is used.
    """
    x_new = pgd_step(state.z, A, y, prox, step_size, ATy)
    if momentum is None:
        t_next, momentum = fista_momentum(state.t)
    else:
        t_next = state.t
    z_new = x_new + momentum * (x_new - state.x)
    return FISTAState(x=x_new, z=z_new, t=t_next)


@dataclass
class ADMMState:
    """Scaled-form ADMM variables: ``x`` (data), ``z`` (prior), ``u`` (scaled multiplier)."""

    x: torch.Tensor
    z: torch.Tensor
    u: torch.Tensor


def admm_step(state: ADMMState, A: LinearOperator, y: torch.Tensor, prox: Prox, rho, ATy: torch.Tensor | None = None,
              **solve_kwargs) -> ADMMState:
    r"""ADMM for :math:`\min f(x) + g(z)` s.t. :math:`x = z` (Boyd et al., 2011, scaled form):

    .. math::
        x^+ = (A^\top A + \rho I)^{-1}(A^\top y + \rho(z - u)),\quad
        z^+ = \operatorname{prox}_{g/\rho}(x^+ + u),\quad u^+ = u + x^+ - z^+.

    The x-update is ``A.solve_normal`` warm-started from the previous ``x``; ``solve_kwargs``
    (``tol``, ``max_iter``) reach its CG where the operator has no closed form.
    """
    if ATy is None:
        ATy = A.adjoint(y)
    x = A.solve_normal(ATy + rho * (state.z - state.u), _flat_scalar(rho), x0=state.x, **solve_kwargs)
    z = prox(x + state.u, 1.0 / rho)
    return ADMMState(x=x, z=z, u=state.u + x - z)


@dataclass
class HQSState:
    """Half-quadratic splitting variables: ``x`` (data), ``z`` (prior)."""

    x: torch.Tensor
    z: torch.Tensor


def hqs_step(state: HQSState, A: LinearOperator, y: torch.Tensor, prox: Prox, mu, ATy: torch.Tensor | None = None,
             **solve_kwargs) -> HQSState:
    r"""Half-quadratic splitting (Geman & Yang, 1995; as in DPIR, Zhang et al. 2021):

    .. math:: x^+ = (A^\top A + \mu I)^{-1}(A^\top y + \mu z),\quad z^+ = \operatorname{prox}_{g/\mu}(x^+).
    """
    if ATy is None:
        ATy = A.adjoint(y)
    x = A.solve_normal(ATy + mu * state.z, _flat_scalar(mu), x0=state.x, **solve_kwargs)
    return replace(state, x=x, z=prox(x, 1.0 / mu))


def _flat_scalar(v):
    """A per-sample tensor of shape (B, 1, 1, 1) becomes (B,) for ``solve_normal``; scalars pass."""
    if isinstance(v, torch.Tensor) and v.ndim > 1:
        return v.reshape(v.shape[0])
    return v


def beck_teboulle_momentum(k: int) -> float:
    r"""The momentum :math:`\beta_k = (t_k - 1)/t_{k+1}` that :func:`fista_step` uses at its ``k``-th call
    (``k = 0, 1, ...``; :math:`t_0 = 1`, so :math:`\beta_0 = 0`, :math:`\beta_1 \approx 0.28`, rising to 1)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    t, beta = 1.0, 0.0
    for _ in range(k + 1):
        t, beta = fista_momentum(t)
    return beta


# ---- the table of steps ---------------------------------------------------------------------------


def _inv_softplus(v: float) -> float:
    return v + math.log(-math.expm1(-v))


#: name -> (map from the raw parameter to the value, its inverse on floats, the range in words, range test)
PARAMETRISATIONS: dict[str, tuple[Callable, Callable, str, Callable[[float], bool]]] = {
    "softplus": (F.softplus, _inv_softplus, "> 0", lambda v: v > 0),
    "sigmoid": (torch.sigmoid, lambda v: math.log(v / (1.0 - v)), "in (0, 1)", lambda v: 0 < v < 1),
    "tanh": (torch.tanh, math.atanh, "in (-1, 1)", lambda v: -1 < v < 1),
    "identity": (lambda t: t, lambda v: v, "finite", math.isfinite),
}
_SCALES = ("none", "inv_norm", "norm")


@dataclass(frozen=True)
class Scalar:
    r"""A learnable scalar of a step.

    ``init``: the start value (a number, or a function of the stage index ``k = 0, 1, ...`` for a
    stage-dependent start); ``parametrisation``: how a raw, unconstrained parameter :math:`s` maps into
    the scalar's range (``softplus``: :math:`> 0`; ``sigmoid``: :math:`(0, 1)`; ``tanh``: :math:`(-1, 1)`;
    ``identity``); ``scale``: what the step receives, relative to :math:`L = \|A\|_2^2` (``inv_norm``:
    value / L, a step size; ``norm``: value · L, a penalty; ``none``: the value itself); ``per_stage``:
    one value per stage even in a network whose other parameters are tied (a stage-dependent ``init``
    needs it); ``missing_ok``: weights saved without this scalar (from before it was learnable) load
    with its start values, which must then be what the step did without it.
    """

    init: float | Callable[[int], float]
    parametrisation: str = "softplus"
    scale: str = "none"
    per_stage: bool = False
    missing_ok: bool = False

    def __post_init__(self):
        check_choice("parametrisation", self.parametrisation, list(PARAMETRISATIONS))
        check_choice("scale", self.scale, list(_SCALES))
        if not callable(self.init):
            self.check("init", self.init)

    def start(self, k: int) -> float:
        """The start value at stage ``k``."""
        return self.check("init", self.init(k) if callable(self.init) else self.init)

    def check(self, name: str, value) -> float:
        """``value`` as a float, or a ``ValueError`` naming ``name`` when it lies outside the range."""
        if isinstance(value, bool):
            raise TypeError(f"{name}: expected a number, got {value!r}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: expected a number, got {value!r}") from None
        _, _, words, ok = PARAMETRISATIONS[self.parametrisation]
        if not ok(v):
            raise ValueError(f"{name} must be {words}, got {value!r}")
        return v

    def raw(self, value: float) -> float:
        """The raw parameter that maps to ``value``."""
        return PARAMETRISATIONS[self.parametrisation][1](value)

    def value(self, raw: torch.Tensor) -> torch.Tensor:
        """The scalar's value for the raw parameter(s) ``raw``."""
        return PARAMETRISATIONS[self.parametrisation][0](raw)


@dataclass(frozen=True)
class StepEntry:
    """One row of :data:`STEP_TABLE` (see :func:`register_step`)."""

    name: str
    init: Callable[..., Any]
    step: Callable[..., Any]
    readout: Callable[[Any], torch.Tensor]
    scalars: Mapping[str, Scalar] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, name: str) -> str | None:
        """The scalar called ``name`` directly or through an alias; ``None`` when the step has none."""
        name = self.aliases.get(name, name)
        return name if name in self.scalars else None


#: The registered steps by name: ``pgd``, ``fista``, ``admm``, ``hqs`` and whatever :func:`register_step` added.
STEP_TABLE: dict[str, StepEntry] = {}
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def register_step(name: str, *, init: Callable[..., Any], step: Callable[..., Any],
                  readout: Callable[[Any], torch.Tensor], scalars: Mapping[str, Scalar] | None = None,
                  aliases: Mapping[str, str] | None = None, replace: bool = False) -> StepEntry:
    r"""Add an algorithm to :data:`STEP_TABLE`; returns its entry.

    ``init(x0, A, y, prox)`` builds the state from the first estimate ``x0 = A.init(y)`` (``prox``: the
    first stage's); ``step(state, A, y, prox, ATy=ATy, **scalars)`` is one iteration (``ATy`` :math:`= A^\top y`,
    computed once); ``readout(state)`` is the estimate. ``scalars`` names the step's keyword arguments that
    a network learns (:class:`Scalar`); they become parameters ``raw_<name>``. ``aliases`` maps other
    names to them (``{"rho": "mu"}`` lets ``Unrolled(rho=...)`` set HQS's ``mu``). Registering a taken
    name raises unless ``replace=True``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    if name in STEP_TABLE and not replace:
        raise ValueError(f"step {name!r} is already registered; pass replace=True to replace it")
    for what, fn in (("init", init), ("step", step), ("readout", readout)):
        if not callable(fn):
            raise TypeError(f"{what} must be callable, got {type(fn).__name__}")
    scalars = dict(scalars or {})
    for key, sc in scalars.items():
        if not isinstance(key, str) or not _IDENTIFIER.match(key):
            raise ValueError(f"scalar names must be Python identifiers (they name parameters raw_<name>), got {key!r}")
        if not isinstance(sc, Scalar):
            raise TypeError(f"scalars[{key!r}] must be a Scalar, got {type(sc).__name__}")
    aliases = dict(aliases or {})
    for alias, target in aliases.items():
        if target not in scalars:
            raise ValueError(f"alias {alias!r} points to {target!r}, which is not among the scalars {sorted(scalars)}")
    entry = StepEntry(name, init, step, readout, scalars, aliases)
    STEP_TABLE[name] = entry
    return entry


def get_step(name: str) -> StepEntry:
    """The entry of :data:`STEP_TABLE` called ``name`` (a ``ValueError`` listing the registered ones otherwise)."""
    check_choice("step", name, list(STEP_TABLE))
    return STEP_TABLE[name]


_STEP = Scalar(1.0, "softplus", "inv_norm")  # γ = s / ‖A‖², s = 1 is the classic 1/L
_PENALTY = Scalar(1.0, "softplus", "norm")  # ρ = r · ‖A‖²

# Named functions, not lambdas: a network keeps its entry, and stays picklable.
def _same(x0, A=None, y=None, prox=None):
    return x0


def _fista_init(x0, A=None, y=None, prox=None) -> FISTAState:
    return FISTAState(x=x0, z=x0.clone())


def _admm_init(x0, A=None, y=None, prox=None) -> ADMMState:
    return ADMMState(x=x0, z=x0.clone(), u=torch.zeros_like(x0))


def _hqs_init(x0, A=None, y=None, prox=None) -> HQSState:
    return HQSState(x=x0, z=x0.clone())


def _read_x(state) -> torch.Tensor:
    return state.x


def _read_z(state) -> torch.Tensor:
    return state.z


register_step("pgd", init=_same, step=pgd_step, readout=_same, scalars={"step_size": _STEP})
# PGD whose step size is learned unconstrained (any sign), as ISTA-Net's code learns its lambda_k: some of the
# authors' released nets hold a negative one, which "pgd" (softplus, > 0) cannot represent
register_step("pgd-free", init=_same, step=pgd_step, readout=_same,
              scalars={"step_size": Scalar(1.0, "identity", "inv_norm")})
# The momentum is bounded in (-1, 1) by a tanh (not a sigmoid into (0, 1)): tanh(0) = 0 makes the
# Beck–Teboulle start exact, β_0 = 0 included, with a non-zero gradient there.
register_step("fista", init=_fista_init, step=fista_step, readout=_read_x,
              scalars={"step_size": _STEP,
                       "momentum": Scalar(beck_teboulle_momentum, "tanh", "none", per_stage=True, missing_ok=True)})
register_step("admm", init=_admm_init, step=admm_step, readout=_read_z, scalars={"rho": _PENALTY})
register_step("hqs", init=_hqs_init, step=hqs_step, readout=_read_z, scalars={"mu": _PENALTY}, aliases={"rho": "mu"})
