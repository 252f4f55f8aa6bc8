"""Checkpoints that a kill at any moment cannot corrupt: tensors in safetensors, the rest in JSON.

A training checkpoint in folder ``D`` is two files:

- ``D/ckpt-<step>.safetensors``: model weights (``model.*``), optimizer tensors (``optimizer.*``) and
  RNG states (``rng.*``);
- ``D/checkpoint.json``: step, epoch position, scheduler and optimizer hyper-parameters, best metric,
  config — and the name of the safetensors file it belongs to.

Each file is written to a temporary name in the same folder, flushed and ``os.replace``-d into
place; ``checkpoint.json`` is written last, so it always points at a complete weights file. It records
that file's SHA-256 and the checkpoint before it (``previous``), whose file is kept: a resume whose newest
file fails the check (damaged on disk, or missing) falls back to the previous one with a warning. Older
weights files are removed only after the new pointer is in place. Nothing is unpickled on load.

Reading model weights (:func:`load_model_weights`, ``zoo:NAME`` resolution) lives in :mod:`proxlab.weights`,
below the models that start from pretrained weights; it is re-exported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..weights import CheckpointError, _load_state_checked, _load_tensors, _unwrap, load_model_weights, resolve_weights

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "save_model",
    "load_model_weights",
    "resolve_weights",
    "save_training_checkpoint",
    "load_training_checkpoint",
    "CheckpointError",
]

POINTER = "checkpoint.json"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None,
                  digest: bool = False):
    """Write ``tensors`` atomically; returns the path, or with ``digest=True`` the SHA-256 of the bytes written."""
    from safetensors.torch import save

    clean = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    data = save(clean, metadata=metadata)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest() if digest else path


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(path: str | os.PathLike, model: nn.Module, metadata: dict[str, Any] | None = None) -> Path:
    """Model weights (``state_dict``) as safetensors; ``metadata`` is stored as JSON in its header."""
    meta = {"proxlab": json.dumps(metadata or {})}
    return _save_tensors(Path(path), dict(_unwrap(model).state_dict()), meta)


# ---- optimizer state <-> flat tensors + JSON -----------------------------------------------------
_LIST = "__list__"  # a scalars entry {_LIST: n} stands for a list of n tensors (or None) stored as NAME.i


def _optimizer_to_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for name, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"optimizer.{pid}.{name}"] = val
            elif isinstance(val, (list, tuple)) and all(v is None or isinstance(v, torch.Tensor) for v in val):
                # L-BFGS keeps its history as lists of tensors (None where a slot is unused): one tensor per entry
                for i, v in enumerate(val):
                    if v is not None:
                        tensors[f"optimizer.{pid}.{name}.{i}"] = v
                scalars[f"{pid}.{name}"] = {_LIST: len(val)}
            else:
                scalars[f"{pid}.{name}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_from_flat(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    lists = {key for key, val in info["scalars"].items() if isinstance(val, dict) and _LIST in val}
    for key, val in info["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = [None] * int(val[_LIST]) if key in lists else val
    for key, val in tensors.items():
        if key.startswith("optimizer."):
            _, pid, name = key.split(".", 2)
            head, _, index = name.rpartition(".")
            if f"{pid}.{head}" in lists and index.isdigit():
                state[int(pid)][head][int(index)] = val
            else:
                state.setdefault(int(pid), {})[name] = val
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})


def _read_pointer(ptr: Path) -> dict[str, Any] | None:
    try:
        state = json.loads(ptr.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    ok = isinstance(state, dict) and state.get("format") == "proxlab-checkpoint-1" and "weights" in state
    return state if ok else None


def save_training_checkpoint(folder: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer,
                             state: dict[str, Any], rng: dict[str, torch.Tensor], keep: int = 1) -> Path:
    """Write ``ckpt-<step>.safetensors`` then the ``checkpoint.json`` pointer, which records the file's SHA-256
    and, under ``previous``, the checkpoint before it (whose file is kept, so a resume can fall back to it).
    Besides those two, the newest ``keep`` files are kept."""
    folder = Path(folder)
    step = int(state["step"])
    tensors = {f"model.{k}": v for k, v in _unwrap(model).state_dict().items()}
    opt_tensors, opt_info = _optimizer_to_flat(optimizer)
    tensors.update(opt_tensors)
    tensors.update({f"rng.{k}": v for k, v in rng.items()})
    name = f"ckpt-{step:08d}.safetensors"
    before = _read_pointer(folder / POINTER)
    digest = _save_tensors(folder / name, tensors, digest=True)
    pointer = dict(state, weights=name, sha256=digest, optimizer=opt_info, format="proxlab-checkpoint-1")
    if before is not None and before["weights"] == name:  # the same step again (after a fall-back): keep its previous
        before = before.get("previous") if isinstance(before.get("previous"), dict) else None
    if before is not None and (folder / before["weights"]).is_file():
        pointer["previous"] = {k: v for k, v in before.items() if k != "previous"}
    atomic_write_text(folder / POINTER, json.dumps(pointer, indent=1, default=_json_default))
    protected = {name, pointer.get("previous", {}).get("weights")}
    old = sorted(folder.glob("ckpt-*.safetensors"))
    for f in old[:-keep] if keep > 0 else []:
        if f.name not in protected:
            f.unlink(missing_ok=True)
    return folder / POINTER


def load_training_checkpoint(folder: str | os.PathLike, model: nn.Module,
                             optimizer: torch.optim.Optimizer | None = None) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore model (and optimizer) from ``folder``; returns ``(state, rng_tensors)``."""
    folder = Path(folder)
    ptr = folder / POINTER
    if not ptr.is_file():
        raise CheckpointError(f"no checkpoint in {folder} ({POINTER} not found)")
    try:
        state = json.loads(ptr.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"corrupt checkpoint pointer {ptr}: {err}") from None
    if not isinstance(state, dict) or state.get("format") != "proxlab-checkpoint-1" or "weights" not in state:
        raise CheckpointError(f"{ptr} is not a proxlab training checkpoint")
    candidates = [state] + ([state["previous"]] if isinstance(state.get("previous"), dict) else [])
    failures = []
    for cand in candidates:
        path = folder / cand["weights"]
        if not path.is_file():
            failures.append(f"{path.name} is missing")
            continue
        if "sha256" in cand and _file_sha256(path) != cand["sha256"]:
            failures.append(f"{path.name} fails its SHA-256 check (the file was changed or damaged after it was "
                            "written)")
            continue
        try:
            tensors, _ = _load_tensors(path)
        except CheckpointError as err:  # an older checkpoint without a checksum, damaged
            failures.append(str(err))
            continue
        if failures:
            warnings.warn(f"checkpoint in {folder}: {failures[0]}; resuming from the previous checkpoint "
                          f"({path.name}, step {cand['step']})", RuntimeWarning, stacklevel=2)
        break
    else:
        raise CheckpointError(f"no usable checkpoint in {folder}: " + "; ".join(failures))
    state = cand
    _load_state_checked(_unwrap(model), {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, str(path))
    if optimizer is not None:
        try:
            _optimizer_from_flat(optimizer, tensors, state["optimizer"])
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"optimizer state in {folder} does not fit this optimizer: {err}") from None
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    return state, rng


def _json_default(o):
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot store {type(o).__name__} in a checkpoint's JSON")
