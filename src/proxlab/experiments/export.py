"""Write zoo entries (layer 5): a finished run's weights and metadata into the model zoo.

``proxlab zoo export RUN NAME`` is :func:`export_run`: it reads the run's ``config.toml`` and
``metrics.json`` and copies ``model.safetensors``. :func:`add_entry` writes any entry from a weights
file and its metadata (the experiment programs use it). :mod:`proxlab.zoo` lists and loads entries.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any

__all__ = ["export_run", "add_entry"]

REQUIRED = ("model", "task", "data", "training_command", "test_metrics")


def _default_zoo_dir() -> Path:
    from .. import zoo

    return Path(zoo.ZOO_DIR)


def export_run(run_dir: str | Path, name: str, zoo_dir: str | Path | None = None, force: bool = False,
               description: str | None = None) -> Path:
    """Copy a finished run's evaluated weights (``model.safetensors``) into the zoo with their metadata. An entry
    ``name`` that exists already is replaced only with ``force=True``. ``description`` (default: the experiment's)
    is the entry's; the experiment's text describes the experiment as shipped, so when the run had ``--set``
    overrides and no ``description`` is given, it is marked as such (the overrides are in ``training_command``)."""
    if description is not None and (not isinstance(description, str) or not description.strip()):
        raise ValueError(f"description must be a non-empty string, got {description!r}")
    from .config import config_to_dict, load_config

    run_dir = Path(run_dir)
    _refuse_overwrite(name, zoo_dir, force)
    for f in ("config.toml", "metrics.json", "model.safetensors"):
        if not (run_dir / f).is_file():
            raise FileNotFoundError(f"{run_dir} is not a finished run: {f} is missing")
    cfg = load_config(run_dir / "config.toml")
    raw = json.loads((run_dir / "metrics.json").read_text())
    task = cfg.build_task()
    command = f"proxlab run {cfg.name}"
    made_by = run_dir
    sweep = run_dir.parent.parent
    if "." in cfg.name and run_dir.parent.name == "runs" and (sweep / "config.toml").is_file():
        parent, label = cfg.name.rsplit(".", 1)  # a sweep's run: the sweep's command made it (this run's label)
        command, made_by = f"proxlab run {parent}", sweep
    overrides = json.loads((made_by / "overrides.json").read_text()) if (made_by / "overrides.json").is_file() else []
    command += "".join(f" --set {shlex.quote(o)}" for o in overrides)  # the --set overrides it was made with
    if made_by is not run_dir:
        command += f"  # sweep run {label}"
    options = dict(cfg.model.options)
    info = {
        "name": name,
        "description": description or (cfg.description + (
            " [The experiment's description, as shipped; this run changed it with --set overrides: see "
            "training_command.]" if overrides else "")),
        "model": {"name": cfg.model.name, "options": options},
        "task": {"name": task.name, "options": {k: v for k, v in task.options.items() if v is not None}},
        "data": {"source": cfg.data.source, "image_size": list(raw.get("training", {}).get("test_image_size")
                                                                or _image_size(cfg))},
        "training_command": command,
        "config": config_to_dict(cfg),
        "training_seconds": raw.get("training", {}).get("train_seconds"),
    }
    if "set11" in raw and "model" not in raw:  # block CS: the model carries its Φ/Qinit; scored on Set11
        s11 = raw["set11"]
        if "mean" not in s11:
            raise ValueError(f"{run_dir}: Set11 was not evaluated ({s11.get('skipped')}); rerun with PROXLAB_SET11")
        m, paper = s11["mean"], raw.get("paper", {}).get("set11") or {}
        info["model"]["options"] = {**options, "ratio": task.options["ratio"]}
        info["data"] = {"source": f"{cfg.data.source} 33x33 blocks", "image_size": [33, 33], "test_set": "Set11"}
        info["test_metrics"] = {"dataset": "Set11 (PSNR 0-255, skimage SSIM data_range 255)",
                                "model": {"mean": {"psnr": m["psnr"], "ssim": m["ssim"]}},
                                "baselines": {"qinit": {"mean": {"psnr": m["qinit_psnr"]}}},
                                "paper_psnr": paper.get("paper_table1"),
                                "released_weights_psnr": paper.get("released_weights")}
        info["seconds_per_image"] = m["seconds"]
        info["seconds_per_image_threads"] = s11.get("threads")
    elif "flow_likelihood" in raw and "model" not in raw:  # a normalizing flow: scored by its test likelihood
        fl = raw["flow_likelihood"]
        side = int(options.get("image_size", 32)) - 2 * cfg.data.pad  # the images before padding to the flow's size
        info["data"]["image_size"] = [side, side]
        info["test_metrics"] = {"dataset": f"{fl['test_images']} test images of {cfg.data.source} (dequantised 8-bit)",
                                "bits_per_dim": fl["bits_per_dim"],
                                "bits_per_original_pixel": fl.get("bits_per_original_pixel"),
                                "published_bits_per_dim": fl.get("published")}
    else:
        info["test_metrics"] = _means_only(raw)
    if task.name == "mri":
        info["data"].update(_mask_geometry(run_dir / "model.safetensors"))
    return add_entry(name, run_dir / "model.safetensors", info, zoo_dir, force=force)


def _refuse_overwrite(name: str, zoo_dir: str | Path | None, force: bool) -> None:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name: expected a zoo entry name (no '/', not starting with '.'), got {name!r}")
    folder = Path(zoo_dir) if zoo_dir is not None else _default_zoo_dir()
    if not force and ((folder / f"{name}.json").exists() or (folder / f"{name}.safetensors").exists()):
        raise FileExistsError(f"zoo entry {name!r} exists already in {folder}; pick another name, or replace it "
                              "with --force (force=True)")


def add_entry(name: str, weights: str | Path, info: dict[str, Any], zoo_dir: str | Path | None = None,
              force: bool = False) -> Path:
    """Write a zoo entry into ``zoo_dir`` (default: the zoo's folder): the weights file and its metadata
    (``model``, ``task``, ``data``, ``training_command`` and ``test_metrics`` are required). An existing entry
    ``name`` is replaced only with ``force=True``."""
    missing = [k for k in REQUIRED if k not in info]
    if missing:
        raise ValueError(f"zoo entry {name!r}: metadata lacks {missing}")
    _refuse_overwrite(name, zoo_dir, force)
    zoo_dir = Path(zoo_dir) if zoo_dir is not None else _default_zoo_dir()
    zoo_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, zoo_dir / f"{name}.safetensors")
    (zoo_dir / f"{name}.json").write_text(json.dumps(dict(info, name=name), indent=2))
    return zoo_dir / f"{name}.json"


def _mask_geometry(weights: Path) -> dict[str, Any]:
    """An MRI model's sampling mask, from the 2-D ``mask`` buffer in its weights: the image size it runs on, the
    mask's fingerprint (:func:`~proxlab.operators.mri.mask_sha256`) and its sampling ratio."""
    from safetensors.torch import load_file

    from ..operators.mri import mask_sha256

    masks = [v for k, v in load_file(weights).items() if k.rsplit(".", 1)[-1] == "mask" and v.ndim == 2]
    if not masks:
        raise ValueError(f"{weights}: an MRI model's weights should hold its 2-D sampling mask (a 'mask' buffer), "
                         "found none")
    m = masks[0]
    return {"image_size": list(m.shape), "mask_sha256": mask_sha256(m), "mask_ratio": float((m != 0).float().mean())}


def _image_size(cfg) -> tuple[int, ...]:
    """The size of the run's test images, as its data source builds them (padding and resizing included): for
    runs made before ``metrics.json`` recorded it (``training.test_image_size``); needs the run's data."""
    from .parts import SOURCES

    return tuple(int(n) for n in SOURCES.get(cfg.data.source).build(cfg.data, cfg.seed, task=cfg.build_task()).test.shape[-2:])


def _means_only(metrics: dict[str, Any]) -> dict[str, Any]:
    """The run's metrics without the per-image lists (they stay in the run folder)."""
    out = {k: v for k, v in metrics.items() if k not in ("model", "baselines")}
    out["model"] = {"mean": metrics["model"]["mean"]}
    out["baselines"] = {m: {"mean": v["mean"]} for m, v in metrics.get("baselines", {}).items()}
    return out
