"""The model zoo (layer 5): pretrained weights shipped inside the package, listed and loaded by name.

Each entry is ``NAME.safetensors`` (weights) plus ``NAME.json``: the registered model name and
options, the task it was trained for (operator and noise), the data, the command that trained it,
and its measured test metrics beside the classic baselines. ``proxlab zoo`` lists them;
``--method zoo:NAME`` uses one. Loading checks that the weights match the architecture.

This package only lists and loads entries; writing one from a finished run is
:mod:`proxlab.experiments.export`, and reading weights is :mod:`proxlab.weights`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .. import weights as _weights

__all__ = ["ZOO_DIR", "list_zoo", "zoo_info", "load_zoo_model", "resolve_weights"]

# The folder these functions read (tests point it at a private zoo).
ZOO_DIR = _weights.ZOO_DIR


def list_zoo() -> list[str]:
    """Names of the shipped models."""
    return _weights.zoo_names(ZOO_DIR)


def zoo_info(name: str) -> dict[str, Any]:
    """The metadata of zoo model ``name`` (``ValueError`` with a close-match hint if unknown)."""
    from .._checks import check_choice

    check_choice("zoo model", name, list_zoo())
    return json.loads((ZOO_DIR / f"{name}.json").read_text())


def resolve_weights(spec: str) -> Path:
    """``zoo:NAME`` -> the entry's weights file in :data:`ZOO_DIR`; anything else is a path to a
    ``.safetensors`` file (see :func:`proxlab.weights.resolve_weights`)."""
    return _weights.resolve_weights(spec, zoo_dir=ZOO_DIR)


def load_zoo_model(name: str, operator=None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build zoo model ``name`` and load its weights.

    A model registered with ``needs_operator`` (it unrolls a solver around the task's operator) gets
    ``operator`` (default: the operator of the task it was trained for, built for its training image
    size). A model that ``carries_operator`` ignores ``operator``: its weights bring its own.
    """
    from ..registry import build_model, model_entry
    from ..tasks import make_task

    info = zoo_info(name)
    opts = dict(info["model"]["options"])
    opts.pop("prox_init", None)  # the shipped weights already contain the trained prox
    if model_entry(info["model"]["name"]).needs_operator:
        if operator is None:
            task = make_task(info["task"]["name"], **info["task"]["options"])
            operator = task.operator(tuple(info["data"].get("image_size", (28, 28))))
        opts["operator"] = operator
    model = build_model(info["model"]["name"], **opts)
    _weights.load_model_weights(ZOO_DIR / f"{name}.safetensors", model)
    return model.eval(), info
