"""Priors: proximal maps and regularizers (layer 1). ``classic`` holds the parameter-free ones."""

from . import classic

__all__ = ["classic"]
