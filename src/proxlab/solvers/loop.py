"""One iteration loop for every solver: max iterations, relative-change tolerance, NaN stop,
callback, and a history of the objective and residual."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["SolveResult", "solve"]


@dataclass
class SolveResult:
    """What a solver returns.

    ``x`` is the final estimate; ``state`` the last algorithm state; ``history`` one dict per
    iteration (``iteration``, ``rel_change`` and whatever ``monitor`` returned, e.g. ``objective``,
    ``residual``); ``stop_reason`` is ``"tolerance"``, ``"max_iter"``, ``"nan"`` or ``"callback"``.
    """

    x: torch.Tensor
    state: Any
    history: list[dict[str, float]] = field(default_factory=list)
    iterations: int = 0
    stop_reason: str = "max_iter"

    @property
    def converged(self) -> bool:
        return self.stop_reason == "tolerance"

    def series(self, key: str) -> list[float]:
        """The values of one history entry over the iterations."""
        return [h[key] for h in self.history if key in h]


def _rel_change(new: torch.Tensor, old: torch.Tensor) -> float:
    """max over the batch of ``‖new − old‖ / max(‖old‖, tiny)``."""
    diff = (new - old).flatten(1).norm(dim=1)
    base = old.flatten(1).norm(dim=1).clamp_min(torch.finfo(old.real.dtype).tiny)
    return float((diff / base).max())


def solve(
    step: Callable[[Any], Any],
    state: Any,
    *,
    get_x: Callable[[Any], torch.Tensor] = lambda s: s.x,
    max_iter: int = 100,
    tol: float = 1e-5,
    monitor: Callable[[torch.Tensor], dict[str, float]] | None = None,
    callback: Callable[[int, Any], bool | None] | None = None,
    progress: bool = False,
) -> SolveResult:
    """Iterate ``state = step(state)``.

    Stops after ``max_iter`` steps, when the relative change of ``get_x(state)`` falls to ``tol``
    or below (``tol=0`` disables it), when the iterate stops being finite (the last finite state is
    returned, ``stop_reason="nan"``), or when ``callback(k, state)`` returns True.
    ``monitor(x)`` adds entries (objective, residual, ...) to each history record.
    """
    if not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    history: list[dict[str, float]] = []
    x = get_x(state)
    reason = "max_iter"
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc="solve", leave=False)
    k = 0
    with torch.no_grad():
        for k in range(1, max_iter + 1):
            new_state = step(state)
            x_new = get_x(new_state)
            if not bool(torch.isfinite(x_new).all()):
                reason = "nan"
                k -= 1
                break
            record = {"iteration": float(k), "rel_change": _rel_change(x_new, x)}
            if monitor is not None:
                record.update(monitor(x_new))
            history.append(record)
            state, x = new_state, x_new
            if bar is not None:
                bar.update(1)
                bar.set_postfix(rel_change=f"{record['rel_change']:.2e}")
            if callback is not None and callback(k, state):
                reason = "callback"
                break
            if tol > 0 and record["rel_change"] <= tol:
                reason = "tolerance"
                break
    if bar is not None:
        bar.close()
    return SolveResult(x=x, state=state, history=history, iterations=k, stop_reason=reason)
