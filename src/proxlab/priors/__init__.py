"""Priors: proximal maps and regularizers (layer 1). ``classic`` holds the parameter-free ones.

Every prior follows the :class:`Prior` protocol (:mod:`proxlab.priors.base`): a prox ``prior(v, tau)`` and
declared capabilities, read with :func:`capabilities` and checked with :func:`require`.
"""

from . import classic
from .base import CAPABILITIES, Prior, capabilities, require

__all__ = ["classic", "Prior", "CAPABILITIES", "capabilities", "require"]
