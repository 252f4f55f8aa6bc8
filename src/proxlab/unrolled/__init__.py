"""Learned unrolled networks built from the classic solvers' steps (layer 3)."""

from .base import STEPS, Unrolled

__all__ = ["Unrolled", "STEPS"]
