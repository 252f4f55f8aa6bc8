"""Write zoo entries (layer 5): a finished run's weights and metadata into the model zoo.

``proxlab zoo export RUN NAME`` is :func:`export_run`: it reads the run's ``config.toml`` and
``metrics.json`` and copies ``model.safetensors``. :func:`add_entry` writes any entry from a weights
file and its metadata (the experiment programs use it). :mod:`proxlab.zoo` lists and loads entries.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

__all__ = ["export_run", "add_entry"]

REQUIRED = ("model", "task", "data", "training_command", "test_metrics")


def _default_zoo_dir() -> Path:
    from .. import zoo

    return Path(zoo.ZOO_DIR)


def export_run(run_dir: str | Path, name: str, zoo_dir: str | Path | None = None) -> Path:
    """Copy a finished run's evaluated weights (``model.safetensors``) into the zoo with their metadata."""
    from .config import config_to_dict, load_config

    run_dir = Path(run_dir)
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
    """Write a zoo entry into ``zoo_dir`` (default: the zoo's folder): the weights file and its metadata
    (``model``, ``task``, ``data``, ``training_command`` and ``test_metrics`` are required)."""
    missing = [k for k in REQUIRED if k not in info]
    if missing:
        raise ValueError(f"zoo entry {name!r}: metadata lacks {missing}")
    zoo_dir = Path(zoo_dir) if zoo_dir is not None else _default_zoo_dir()
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
