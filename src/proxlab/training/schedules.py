"""Learning-rate schedules as multipliers of the base rate, ``factor(step)`` for ``LambdaLR``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from .._checks import check_choice

__all__ = ["SCHEDULES", "lr_factor"]

SCHEDULES = ("constant", "cosine", "step", "multistep")


def lr_factor(schedule: str = "constant", steps: int = 1, warmup_steps: int = 0, milestones: Sequence[int] = (),
              gamma: float = 0.1, step_size: int = 0) -> Callable[[int], float]:
    """A pure function of the step (so a resumed run gets exactly the same rates).

    ``constant``: 1; ``cosine``: half-cosine from 1 to 0 over ``steps``; ``step``: ``gamma`` every
    ``step_size`` steps; ``multistep``: ``gamma`` at each milestone. A linear warm-up from 0
    multiplies any of them over the first ``warmup_steps`` steps.
    """
    check_choice("schedule", schedule, SCHEDULES)
    if schedule == "step" and step_size < 1:
        raise ValueError(f"step_size must be >= 1 for the 'step' schedule, got {step_size!r}")
    ms = sorted(int(m) for m in milestones)

    def factor(step: int) -> float:
        if schedule == "cosine":
            f = 0.5 * (1 + math.cos(math.pi * min(step, steps) / max(steps, 1)))
        elif schedule == "step":
            f = gamma ** (step // step_size)
        elif schedule == "multistep":
            f = gamma ** sum(step >= m for m in ms)
        else:
            f = 1.0
        if warmup_steps > 0 and step < warmup_steps:
            f *= (step + 1) / warmup_steps
        return f

    return factor
