"""Iteration steps and the classic solvers built from them (layer 2)."""

from ..operators.base import conjugate_gradient
from .algorithms import admm, cg, fista, hqs, ista, least_squares_objective, pgd
from .loop import SolveResult, solve
from .steps import (
    STEP_TABLE,
    ADMMState,
    FISTAState,
    HQSState,
    Scalar,
    StepEntry,
    admm_step,
    beck_teboulle_momentum,
    fista_momentum,
    fista_step,
    get_step,
    gradient_step,
    hqs_step,
    pgd_step,
    register_step,
)

__all__ = [
    "solve",
    "SolveResult",
    "pgd",
    "ista",
    "fista",
    "admm",
    "hqs",
    "cg",
    "conjugate_gradient",
    "least_squares_objective",
    "gradient_step",
    "pgd_step",
    "fista_step",
    "fista_momentum",
    "admm_step",
    "hqs_step",
    "FISTAState",
    "ADMMState",
    "HQSState",
    "beck_teboulle_momentum",
    "STEP_TABLE",
    "Scalar",
    "StepEntry",
    "register_step",
    "get_step",
]
