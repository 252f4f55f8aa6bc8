"""proxlab: imaging inverse problems ``y = A x + noise`` with learned priors.

Layers (nothing imports upward; ``tests/test_layers.py`` checks it): ``operators``, ``metrics`` and the
helpers ``_checks``, ``weights`` (0); ``priors``, ``tasks`` (1); ``solvers`` (2); ``unrolled``, ``losses``,
``methods``, ``registry``, ``models`` (3); ``data``, ``training`` (4); ``experiments``, ``zoo``,
``reconstruction`` (5); ``cli`` (6). Heavy optional libraries (matplotlib, scikit-image, scipy, mlxtend)
are imported only where used.

``proxlab.reconstruct(method_or_model, y, operator)`` and ``proxlab.measure(method_or_model, x, task)``
(:mod:`proxlab.reconstruction`) are loaded on first use, so ``import proxlab`` stays light.
"""

__version__ = "0.1.0"

from . import data, metrics, operators, priors, solvers  # noqa: E402

__all__ = ["operators", "metrics", "priors", "solvers", "data", "reconstruct", "measure", "__version__"]

_LAZY = {"reconstruct": "reconstruction", "measure": "reconstruction"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
