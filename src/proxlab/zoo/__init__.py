"""The model zoo: pretrained weights shipped inside the package.

Each entry is ``NAME.safetensors`` (weights) plus ``NAME.json``: the registered model name and
options, the task it was trained for (operator and noise), the data, the command that trained it,
and its measured test metrics beside the classic baselines. ``proxlab zoo`` lists them;
``--method zoo:NAME`` uses one. Loading checks that the weights match the architecture.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import torch

__all__ = ["ZOO_DIR", "list_zoo", "zoo_info", "load_zoo_model", "export_run", "add_entry", "resolve_weights"]

ZOO_DIR = Path(str(resources.files("proxlab.zoo")))


def list_zoo() -> list[str]:
    """Names of the shipped models."""
    return sorted(p.stem for p in ZOO_DIR.glob("*.json") if (ZOO_DIR / f"{p.stem}.safetensors").is_file())


def zoo_info(name: str) -> dict[str, Any]:
    """The metadata of zoo model ``name`` (``ValueError`` with a close-match hint if unknown)."""
    from .._checks import check_choice

    check_choice("zoo model", name, list_zoo())
    return json.loads((ZOO_DIR / f"{name}.json").read_text())


def resolve_weights(spec: str) -> Path:
    """``zoo:NAME`` -> the shipped weights file; anything else is a path to a ``.safetensors`` file."""
    if spec.startswith("zoo:"):
        zoo_info(spec[4:])
        return ZOO_DIR / f"{spec[4:]}.safetensors"
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    return path


def load_zoo_model(name: str, operator=None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build zoo model ``name`` and load its weights. Models that unroll a solver get ``operator``
    (default: the operator of the task they were trained for, built for 28×28 images)."""
    from ..tasks import make_task
    from ..models import NEEDS_OPERATOR
    from ..registry import build_model
    from ..training import load_model_weights

    info = zoo_info(name)
    opts = dict(info["model"]["options"])
    opts.pop("prox_init", None)  # the shipped weights already contain the trained prox
    if info["model"]["name"] in NEEDS_OPERATOR:
        if operator is None:
            task = make_task(info["task"]["name"], **info["task"]["options"])
            operator = task.operator(tuple(info["data"].get("image_size", (28, 28))))
        opts["operator"] = operator
    model = build_model(info["model"]["name"], **opts)
    load_model_weights(ZOO_DIR / f"{name}.safetensors", model)
    return model.eval(), info


def export_run(run_dir: str | Path, name: str, zoo_dir: str | Path | None = None) -> Path:
    """Copy a finished run's evaluated weights (``model.safetensors``) into the zoo with their metadata."""
    from ..experiments.config import config_to_dict, load_config

    run_dir = Path(run_dir)
    zoo_dir = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    for f in ("config.toml", "metrics.json", "model.safetensors"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir} is not a finished run: {f} is missing")
    cfg = load_config(run_dir / "config.toml")
    metrics = _means_only(json.loads((run_dir / "metrics.json").read_text()))
    task = cfg.build_task()
    info = {
        "name": name,
        "description": cfg.description,
        "model": {"name": cfg.model.name, "options": cfg.model.options},
        "task": {"name": task.name, "options": {k: v for k, v in task.options.items() if v is not None}},
        "data": {"source": cfg.data.source, "image_size": list(_image_size(cfg))},
        "training_command": f"proxlab run {cfg.name}",
        "config": config_to_dict(cfg),
        "test_metrics": metrics,
    }
    return add_entry(name, run_dir / "model.safetensors", info, zoo_dir)


def add_entry(name: str, weights: str | Path, info: dict[str, Any], zoo_dir: str | Path | None = None) -> Path:
    """Write a zoo entry: the weights file and its metadata (``model``, ``task``, ``data``,
    ``training_command`` and ``test_metrics`` are required)."""
    missing = [k for k in ("model", "task", "data", "training_command", "test_metrics") if k not in info]
    if missing:
        raise ValueError(f"zoo entry {name!r}: metadata lacks {missing}")
    zoo_dir = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    zoo_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, zoo_dir / f"{name}.safetensors")
    (zoo_dir / f"{name}.json").write_text(json.dumps(dict(info, name=name), indent=2))
    return zoo_dir / f"{name}.json"


def _image_size(cfg) -> tuple[int, int]:
    if cfg.data.size:
        return (cfg.data.size, cfg.data.size)
    return (28, 28) if cfg.data.source == "mnist5k" else (128, 128)


def _means_only(metrics: dict[str, Any]) -> dict[str, Any]:
    """The run's metrics without the per-image lists (they stay in the run folder)."""
    out = {k: v for k, v in metrics.items() if k not in ("model", "baselines")}
    out["model"] = {"mean": metrics["model"]["mean"]}
    out["baselines"] = {m: {"mean": v["mean"]} for m, v in metrics.get("baselines", {}).items()}
    return out
