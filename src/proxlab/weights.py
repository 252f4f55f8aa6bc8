"""Model weights on disk (layer 0): read a ``.safetensors`` file into a module, and resolve ``zoo:NAME``.

This is the reading half of :mod:`proxlab.training.checkpoint`, kept below every model so that a model
factory may start from pretrained weights (``prox_init="zoo:dncnn-mnist-s0.1"``) without importing the
training engine or the zoo. Nothing is unpickled: tensors come from safetensors, metadata from JSON.

The zoo's weights are package data in the folder ``proxlab/zoo`` (:data:`ZOO_DIR`), found with
:mod:`importlib.resources` without importing :mod:`proxlab.zoo`; that package lists and loads entries.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["ZOO_DIR", "CheckpointError", "load_model_weights", "resolve_weights", "zoo_names"]

# The shipped zoo: NAME.safetensors + NAME.json in the package folder proxlab/zoo.
ZOO_DIR = Path(str(resources.files("proxlab").joinpath("zoo")))


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or belongs to another architecture."""


def zoo_names(zoo_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the entries in ``zoo_dir`` (default :data:`ZOO_DIR`): a ``.json`` beside a ``.safetensors``."""
    folder = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    return sorted(p.stem for p in folder.glob("*.json") if (folder / f"{p.stem}.safetensors").is_file())


def resolve_weights(spec: str | os.PathLike, zoo_dir: str | os.PathLike | None = None) -> Path:
    """``zoo:NAME`` -> that entry's weights file in ``zoo_dir`` (default :data:`ZOO_DIR`); anything else
    is a path to a ``.safetensors`` file. An unknown name raises ``ValueError`` with a close match;
    a missing file ``FileNotFoundError``."""
    from ._checks import check_choice

    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"weights: expected 'zoo:NAME' or a path, got {type(spec).__name__}")
    text = os.fspath(spec)
    if text.startswith("zoo:"):
        folder = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
        check_choice("zoo model", text[4:], zoo_names(folder))
        return folder / f"{text[4:]}.safetensors"
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    return path


def load_model_weights(path: str | os.PathLike, model: nn.Module, prefix: str = "") -> dict[str, Any]:
    """Load weights saved by :func:`proxlab.training.save_model` (or the ``prefix``-ed part of a training
    checkpoint) into ``model``, checking that every name and shape matches; returns the stored metadata."""
    path = Path(path)
    tensors, meta = _load_tensors(path)
    if prefix:
        tensors = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    _load_state_checked(_unwrap(model), tensors, str(path))
    try:
        return json.loads(meta.get("proxlab", "{}"))
    except json.JSONDecodeError:
        return {}


def _unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper, or ``model`` itself."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def _load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    try:
        out = {}
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            for k in f.keys():
                out[k] = f.get_tensor(k)
        return out, meta
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"corrupt checkpoint {path}: {err}") from None


def _load_state_checked(model: nn.Module, tensors: dict[str, torch.Tensor], source: str, skip: str = "") -> None:
    """Load ``tensors`` into ``model`` when every name and shape matches; ``skip``: a name prefix (e.g.
    ``"operator."``) whose tensors are neither loaded nor required, so the model keeps its own."""
    if skip:
        tensors = {k: v for k, v in tensors.items() if not k.startswith(skip)}
    expected = {k: v for k, v in model.state_dict().items() if not (skip and k.startswith(skip))}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [(k, tuple(tensors[k].shape), tuple(v.shape)) for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s), e.g. {missing[0]!r}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[0]!r}")
        if wrong:
            k, got, want = wrong[0]
            parts.append(f"shape mismatch for {k!r}: file has {got}, model expects {want}")
        raise CheckpointError(f"weights in {source} do not match {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=not skip)
