"""Argument checks shared across proxlab, with error messages that name the argument,
what was expected and what came."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["check_tensor", "check_shape", "check_positive", "check_range", "check_choice", "format_shape", "checked_to"]


def format_shape(shape: Sequence[int | None | str]) -> str:
    """``(B, 1, 28, None)`` -> ``"(B, 1, 28, *)"``."""
    parts = ["*" if s is None else str(s) for s in shape]
    return "(" + ", ".join(parts) + (",)" if len(parts) == 1 else ")")


def check_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def check_shape(name: str, value: torch.Tensor, expected: Sequence[int | None | str], where: str = "") -> torch.Tensor:
    """Check ``value.shape`` against ``expected``.

    Entries of ``expected`` are ints (must match), ``None`` (anything) or strings (a named free
    dimension such as ``"B"``; anything). Raises ``ValueError`` naming both shapes.
    """
    check_tensor(name, value)
    prefix = f"{where}: " if where else ""
    if value.ndim != len(expected):
        raise ValueError(
            f"{prefix}{name} must have shape {format_shape(expected)} ({len(expected)} dims), "
            f"got shape {tuple(value.shape)} ({value.ndim} dims)"
        )
    for i, (e, s) in enumerate(zip(expected, value.shape)):
        if isinstance(e, int) and e != s:
            raise ValueError(
                f"{prefix}{name} must have shape {format_shape(expected)}, got shape {tuple(value.shape)} "
                f"(dimension {i} is {s}, expected {e})"
            )
    return value


def check_positive(name: str, value: float, strict: bool = True) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {value!r}") from None
    if v == float("inf"):
        raise ValueError(f"{name} must be finite and {'> 0' if strict else '>= 0'}, got {value!r}")
    if not (v > 0 if strict else v >= 0):  # NaN fails this too
        raise ValueError(f"{name} must be {'> 0' if strict else '>= 0'}, got {value!r}")
    return v


def check_range(name: str, value: float, low: float, high: float, inclusive: tuple[bool, bool] = (True, True)) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number, got {value!r}") from None
    lo_ok = v >= low if inclusive[0] else v > low
    hi_ok = v <= high if inclusive[1] else v < high
    if not (lo_ok and hi_ok):
        lb = "[" if inclusive[0] else "("
        rb = "]" if inclusive[1] else ")"
        raise ValueError(f"{name} must be in {lb}{low}, {high}{rb}, got {value!r}")
    return v


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        import difflib

        close = difflib.get_close_matches(str(value), list(choices), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}")
    return value


def checked_to(parent, module, *args, **kwargs):
    """``parent.to(*args, **kwargs)`` (``parent`` = ``super()`` of ``module``), re-raising torch's error for an
    unknown device string as a ``ValueError`` that names it and the usual choices."""
    try:
        return parent.to(*args, **kwargs)
    except RuntimeError as err:
        if "device" not in str(err) or "Expected one of" not in str(err):
            raise
        given = kwargs.get("device", args[0] if args else None)
        hint = " (did you mean 'cuda'?)" if str(given).lower().startswith("gpu") else ""
        raise ValueError(f"{type(module).__name__}.to: unknown device {given!r}; expected 'cpu', 'cuda', 'cuda:N' "
                         f"or another torch device type{hint}") from None
