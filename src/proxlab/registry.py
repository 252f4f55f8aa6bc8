"""A registry of models by name, so that configs, the model zoo and the command line speak the same names.

    @register_model("dncnn")
    class DnCNN(nn.Module): ...

    @register_model("unrolled", needs_operator=True)
    def unrolled(operator, ...): ...

    model = build_model("dncnn", depth=8)

Each entry records how the model relates to the forward operator (:class:`ModelEntry`):

- ``needs_operator``: the model is built around the task's operator (an unrolled solver), so whoever
  builds it passes ``operator=A``;
- ``carries_operator``: the model brings its own operator in its weights (block compressed sensing:
  Φ and Qinit), so data for it is measured with *its* operator, not the task's.

A model may do neither (a denoiser, applied to ``A.init(y)``), not both.

Layer 3 (beside :mod:`proxlab.models`): registration happens when the defining module is imported;
lookups import :mod:`proxlab.models` first, so proxlab's own names are always known.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ._checks import check_choice

__all__ = ["ModelEntry", "register_model", "build_model", "get_model", "model_entry", "list_models"]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its ``factory`` (class or function) and its relation to the operator."""

    name: str
    factory: Callable[..., nn.Module]
    needs_operator: bool = False
    carries_operator: bool = False


_MODELS: dict[str, ModelEntry] = {}
_loaded = False


def register_model(name: str, *, needs_operator: bool = False, carries_operator: bool = False) -> Callable:
    """Class or factory decorator: make ``name`` buildable by :func:`build_model`.

    ``needs_operator=True``: the factory takes the task's operator as ``operator``.
    ``carries_operator=True``: the model's weights hold its own operator (the factory's ``operator``
    argument is optional; a placeholder is built without it).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    for arg, value in (("needs_operator", needs_operator), ("carries_operator", carries_operator)):
        if not isinstance(value, bool):
            raise TypeError(f"{arg} must be a bool, got {type(value).__name__}")
    if needs_operator and carries_operator:
        raise ValueError(f"model {name!r}: needs_operator and carries_operator exclude each other "
                         "(a model either takes the task's operator or brings its own)")

    def wrap(factory):
        if name in _MODELS and _MODELS[name].factory is not factory:
            raise ValueError(f"model name {name!r} is already registered to {_MODELS[name].factory!r}")
        if needs_operator or carries_operator:
            _check_operator_parameter(name, factory, required=needs_operator)
        _MODELS[name] = ModelEntry(name, factory, needs_operator, carries_operator)
        return factory

    return wrap


def _check_operator_parameter(name: str, factory, required: bool) -> None:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return
    what = "needs_operator" if required else "carries_operator"
    if "operator" not in params:
        raise TypeError(f"model {name!r} is registered with {what}=True, but {factory!r} has no 'operator' argument")
    if not required and params["operator"].default is inspect.Parameter.empty:
        raise TypeError(f"model {name!r} is registered with carries_operator=True, so its 'operator' argument "
                        "needs a default (None: a placeholder that the weights replace)")


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module("proxlab.models")


def list_models() -> list[str]:
    """All registered names, sorted."""
    _load_builtins()
    return sorted(_MODELS)


def model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` registered as ``name`` (``ValueError`` with a close-match hint if unknown)."""
    _load_builtins()
    check_choice("model", name, sorted(_MODELS))
    return _MODELS[name]


def get_model(name: str) -> Callable[..., nn.Module]:
    """The class or factory registered as ``name`` (``ValueError`` with a close-match hint if unknown)."""
    return model_entry(name).factory


def build_model(name: str, **options) -> nn.Module:
    """Instantiate the model registered as ``name`` with keyword ``options``.

    A wrong option raises ``TypeError`` naming the model and the option.
    """
    factory = get_model(name)
    try:
        return factory(**options)
    except TypeError as err:
        raise TypeError(f"model {name!r}: {err}") from None
