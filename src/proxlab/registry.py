"""A registry of models by name, so that configs, the model zoo and the command line speak the same names.

    @register_model("dncnn")
    class DnCNN(nn.Module): ...

    model = build_model("dncnn", depth=8)

Registration happens when the defining module is imported; :func:`build_model` imports the
modules that define proxlab's own models first, so their names are always known.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from torch import nn

from ._checks import check_choice

__all__ = ["register_model", "build_model", "get_model", "list_models"]

_MODELS: dict[str, Callable[..., nn.Module]] = {}

# Modules that register proxlab's own models; imported on first lookup.
_BUILTIN_MODULES = ("proxlab.models",)
_loaded = False


def register_model(name: str) -> Callable:
    """Class or factory decorator: make ``name`` buildable by :func:`build_model`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")

    def wrap(factory):
        if name in _MODELS and _MODELS[name] is not factory:
            raise ValueError(f"model name {name!r} is already registered to {_MODELS[name]!r}")
        _MODELS[name] = factory
        return factory

    return wrap


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for mod in _BUILTIN_MODULES:
            importlib.import_module(mod)


def list_models() -> list[str]:
    """All registered names, sorted."""
    _load_builtins()
    return sorted(_MODELS)


def get_model(name: str) -> Callable[..., nn.Module]:
    """The class or factory registered as ``name`` (``ValueError`` with a close-match hint if unknown)."""
    _load_builtins()
    check_choice("model", name, sorted(_MODELS))
    return _MODELS[name]


def build_model(name: str, **options) -> nn.Module:
    """Instantiate the model registered as ``name`` with keyword ``options``.

    A wrong option raises ``TypeError`` naming the model and the option.
    """
    factory = get_model(name)
    try:
        return factory(**options)
    except TypeError as err:
        raise TypeError(f"model {name!r}: {err}") from None
