"""The Trainer: one loop for every learned model in proxlab.

It trains any ``nn.Module`` against ``loss_fn(model, batch, ctx)`` on a dataset of training
samples — ``(y, x)`` pairs or clean images (the loss then simulates the measurement, drawing its
noise from ``ctx.generator``, whose state is checkpointed). ``ctx.step`` is the number of optimizer
steps done so far, for losses that change during training (LPN's proximal-matching schedule).

Features: parameter groups with their own learning rates, a schedule that is a pure function of
the step, gradient clipping, a hook after
each optimizer step, validation every N steps, best-model tracking, early stopping, a progress bar,
JSONL logs (and TensorBoard where installed), atomic checkpoints every N steps, exact resume
(bit-for-bit on CPU), a clean stop on Ctrl-C or SIGTERM (what timeout, schedulers and docker stop send), a clear stop on a non-finite loss, and data-parallel
training under ``torchrun``.

Data order: epoch ``e`` visits the samples in ``randperm(n)`` drawn from a generator seeded with
``(seed, e)``; batches are consecutive slices of it (the last incomplete one is dropped), so the
position ``(epoch, batch)`` alone restores the order after a resume.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import check_choice
from .checkpoint import (
    CheckpointError,
    load_training_checkpoint,
    save_model,
    save_training_checkpoint,
)
from .distributed import DistributedContext, resolve_device, setup_distributed
from .schedules import lr_factor

__all__ = ["Trainer", "TrainResult", "TrainingDiverged", "StepContext", "default_validate", "flushing_denormals"]


@contextmanager
def flushing_denormals():
    """Flush subnormal floats to zero on the CPU inside the block (``torch.set_flush_denormal``), and turn it off
    after (PyTorch's default; it has no getter to restore another setting). A network whose activations or
    gradients decay towards zero runs far slower on subnormals: one training step of a FISTA-Net with dead features
    on a dim CT slice took 1.46 s with them and 0.66 s flushed (``benchmarks/fistanet_code_activity.py --weights``).
    Values under 1.2e-38 become 0. Yields whether the CPU supports flushing."""
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported:
            torch.set_flush_denormal(False)

@dataclass
class StepContext:
    """What a loss may need besides the model and the batch."""

    step: int
    generator: torch.Generator


LossFn = Callable[[nn.Module, Any, StepContext], "torch.Tensor | tuple[torch.Tensor, dict]"]
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "loss": False, "mse": False, "nmse": False}


class TrainingDiverged(RuntimeError):
    """The loss stopped being finite; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    step: int
    stop_reason: str  # "steps", "early_stopping" or "interrupted"
    best_metric: float | None = None
    best_step: int | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path | None = None
    train_seconds: float | None = 0.0  # wall time spent in fit(), summed over resumed runs (None: unknown)


def _mix(seed: int, *parts: int) -> int:
    h = seed & 0xFFFFFFFF
    for p in parts:
        h = (h * 0x9E3779B1 + p + 0x7F4A7C15) & 0xFFFFFFFFFFFF
    return h


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(b, device) for b in batch)
    return batch


def _slice(batch, lo: int, hi: int):
    if isinstance(batch, torch.Tensor):
        return batch[lo:hi]
    return type(batch)(_slice(b, lo, hi) for b in batch)


def default_validate(model: nn.Module, data, batch_size: int, device: torch.device,
                     predict: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
    """PSNR / SSIM / MSE of ``predict(model, y)`` (default ``model(y)``) against ``x`` over pairs ``(y, x)``."""
    from ..metrics import psnr, ssim

    sums = {"psnr": 0.0, "ssim": 0.0, "mse": 0.0}
    n = 0
    total = Trainer._length(data)
    model.eval()
    for start in range(0, total, batch_size):
        y, x = _to_device(_collate(data, range(start, min(start + batch_size, total))), device)
        with torch.no_grad():
            out = model(y) if predict is None else predict(model, y)
        out = out.detach().float().clamp(0, 1)
        x = x.float()
        sums["psnr"] += float(psnr(out, x).sum())
        sums["ssim"] += float(ssim(out, x).sum()) if min(x.shape[-2:]) >= 7 else float("nan")
        sums["mse"] += float((out - x).pow(2).flatten(1).mean(1).sum())
        n += x.shape[0]
    return {k: v / max(n, 1) for k, v in sums.items()}


def _collate(data, indices):
    """Batch ``data[indices]``: one indexing op for tensors (and tuples of tensors), stacking otherwise."""
    idx = list(indices)
    if isinstance(data, torch.Tensor):
        return data[idx]
    if isinstance(data, (tuple, list)) and data and all(isinstance(d, torch.Tensor) for d in data):
        return tuple(d[idx] for d in data)
    items = [data[i] for i in idx]
    return torch.utils.data.default_collate(items)


def _batch_len(batch) -> int:
    return len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch)


def _split_batch(batch, size: int) -> list:
    """``batch`` (a tensor, or a tuple of tensors of one length) in pieces of at most ``size`` samples."""
    if isinstance(batch, torch.Tensor):
        return list(batch.split(size))
    if isinstance(batch, (tuple, list)) and batch and all(isinstance(b, torch.Tensor) for b in batch):
        return [tuple(p) for p in zip(*(b.split(size) for b in batch))]
    raise TypeError(f"micro_batch: batches of {type(batch).__name__} cannot be split; expected a tensor or a tuple "
                    "of tensors")


#: Optimisers the Trainer runs: Adam (per-group learning rates, weight decay, clipping) and L-BFGS (one group, a
#: strong-Wolfe line search; each step runs ``lbfgs_iterations`` iterations on one batch).
OPTIMIZERS = ("adam", "lbfgs")


class Trainer:
    """Train ``model`` by minimising ``loss_fn(model, batch, ctx)`` (``ctx``: :class:`StepContext`).

    Parameters (the less common ones)
    ----------
    train_data:
        A tensor (clean samples; batches are slices), a tuple of tensors (e.g. ``(y, x)``), or a
        ``Dataset`` (batches through a ``DataLoader`` with ``num_workers``).
    val_data, validate, predict:
        ``validate(model) -> dict`` is called every ``val_every`` steps; by default it computes
        PSNR/SSIM of ``predict(model, y)`` on ``val_data`` pairs ``(y, x)``.
    lr_groups:
        ``{substring: lr}``: parameters whose name contains the substring get that learning rate
        (first match wins), e.g. ``{"step_size": 1e-2, "threshold": 1e-2}``.
    precision:
        ``fp32``, or ``bf16`` to run the loss under ``torch.autocast`` (weights and optimizer stay fp32).
    schedule:
        A name (``constant``, ``cosine``, ``step``, ``multistep``, see :func:`~proxlab.training.lr_factor`)
        or any function ``factor(step) -> float`` multiplying every group's base learning rate.
    post_step:
        ``post_step(model)`` after every optimizer step (e.g. LPN's clamp to non-negative weights).
    metric:
        Which validation entry decides the best model (``psnr``/``ssim`` higher, ``loss``/``mse`` lower).
    patience:
        Stop after this many validations without improvement (0: never).
    micro_batch:
        > 0: each batch goes through the loss in pieces of this many samples, gradients accumulated (the same
        gradient as the whole batch's for batch-mean losses, in the memory of one piece); 0: whole batches.
    optimizer:
        ``adam`` (default) or ``lbfgs``: :class:`torch.optim.LBFGS` with a strong-Wolfe line search, ``lr`` its
        first trial step (1 is usual), ``lbfgs_iterations`` iterations per step on the step's batch (every
        evaluation sees the same batch and noise) and ``lbfgs_history`` stored pairs; one parameter group, no weight
        decay, no clipping. With ``batch_size`` = the training set it is full-batch L-BFGS, as Deep ADMM-Net's
        authors trained. Its history is checkpointed, so a resume continues the same iterations.
    out_dir:
        Where checkpoints, ``best.safetensors`` and ``log.jsonl`` go; ``None`` keeps everything in memory.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, train_data, *, val_data=None,
                 validate: Callable[[nn.Module], dict[str, float]] | None = None,
                 predict: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
                 steps: int = 1000, batch_size: int = 32, lr: float = 1e-3, lr_groups: dict[str, float] | None = None,
                 weight_decay: float = 0.0, schedule: "str | Callable[[int], float]" = "constant", warmup_steps: int = 0,
                 milestones=(), gamma: float = 0.1, step_size: int = 0, grad_clip: float = 0.0,
                 post_step: Callable[[nn.Module], None] | None = None, val_every: int = 100,
                 checkpoint_every: int = 100, log_every: int = 10, patience: int = 0, metric: str = "psnr",
                 out_dir: str | Path | None = None, seed: int = 0, device: str | torch.device = "cpu",
                 progress: bool = True, num_workers: int = 0, config: dict | None = None, keep_checkpoints: int = 1,
                 precision: str = "fp32", optimizer: str = "adam", lbfgs_iterations: int = 1, lbfgs_history: int = 10,
                 micro_batch: int = 0):
        for name, v, lo in [("steps", steps, 1), ("batch_size", batch_size, 1), ("val_every", val_every, 1),
                            ("checkpoint_every", checkpoint_every, 1), ("log_every", log_every, 1),
                            ("patience", patience, 0), ("num_workers", num_workers, 0), ("seed", seed, 0),
                            ("micro_batch", micro_batch, 0)]:
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not grad_clip >= 0:
            raise ValueError(f"grad_clip must be >= 0, got {grad_clip!r}")
        check_choice("metric", metric, list(HIGHER_IS_BETTER))
        check_choice("precision", precision, ["fp32", "bf16"])
        check_choice("optimizer", optimizer, list(OPTIMIZERS))
        for name, v in [("lbfgs_iterations", lbfgs_iterations), ("lbfgs_history", lbfgs_history)]:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        if optimizer == "lbfgs":
            for name, v, why in [("lr_groups", lr_groups, "one parameter group"), ("weight_decay", weight_decay, "no decay"),
                                 ("grad_clip", grad_clip, "its line search needs the true gradient")]:
                if v:
                    raise ValueError(f"{name}: optimizer 'lbfgs' takes {why}, expected it unset, got {v!r}")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable as loss_fn(model, batch, ctx), got {type(loss_fn).__name__}")
        self.device = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))  # one GPU per process
        self.dist: DistributedContext = setup_distributed(self.device)
        if self.dist.enabled and batch_size % self.dist.world_size:
            raise ValueError(f"batch_size={batch_size} must be divisible by the number of processes ({self.dist.world_size})")
        n = self._length(train_data)
        if n < batch_size:
            raise ValueError(f"train_data has {n} samples, fewer than batch_size={batch_size}; lower the batch size or add data")
        self.model = model.to(self.device)
        self.loss_fn, self.train_data, self.val_data = loss_fn, train_data, val_data
        self.validate_fn, self.predict = validate, predict
        self.steps, self.batch_size, self.grad_clip, self.post_step = steps, batch_size, grad_clip, post_step
        self.val_every, self.checkpoint_every, self.log_every = val_every, checkpoint_every, log_every
        self.patience, self.metric, self.seed, self.progress = patience, metric, seed, progress
        self.num_workers, self.config, self.keep = num_workers, dict(config or {}), keep_checkpoints
        self.precision, self.micro_batch = precision, micro_batch
        self.out_dir = Path(out_dir) if out_dir is not None else None
        if callable(schedule):
            self.lr_factor = schedule
        else:
            self.lr_factor = lr_factor(schedule, steps, warmup_steps, milestones, gamma, step_size)
        self.optimizer_name = optimizer
        if optimizer == "lbfgs":  # full-memory steps with a strong-Wolfe line search; lr is its first trial step
            # max_eval: torch's default (1.25 × max_iter) leaves the line search no evaluation at all when
            # max_iter = 1 (it then returns a zero step on real problems); give each iteration up to 25
            self.optimizer = torch.optim.LBFGS(self._param_groups(lr, {}), lr=lr, max_iter=lbfgs_iterations,
                                               max_eval=25 * lbfgs_iterations, history_size=lbfgs_history,
                                               line_search_fn="strong_wolfe")
        else:
            self.optimizer = torch.optim.Adam(self._param_groups(lr, lr_groups or {}), lr=lr, weight_decay=weight_decay)
        self.ddp_model = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.generator = torch.Generator(device="cpu").manual_seed(_mix(seed, 1, self.dist.rank))
        torch.manual_seed(_mix(seed, 2, self.dist.rank))
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        self.best_metric: float | None = None
        self.best_step: int | None = None
        self.bad_validations = 0
        self.train_seconds: float | None = 0.0  # wall time in fit(), carried through checkpoints; None: unknown
        self.history: list[dict[str, float]] = []
        self._stop_requested = False
        self._tb = None

    # ---- set-up helpers --------------------------------------------------------------------
    @staticmethod
    def _length(data) -> int:
        if isinstance(data, (tuple, list)) and data and isinstance(data[0], torch.Tensor):
            lengths = {len(d) for d in data}
            if len(lengths) != 1:
                raise ValueError(f"train_data tensors must have the same length, got {sorted(lengths)}")
            return lengths.pop()
        try:
            return len(data)
        except TypeError:
            raise TypeError(f"train_data must be a tensor, a tuple of tensors or a Dataset, got {type(data).__name__}") from None

    def _param_groups(self, lr: float, lr_groups: dict[str, float]) -> list[dict]:
        groups: dict[str, list] = {k: [] for k in lr_groups}
        rest = []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            key = next((k for k in lr_groups if k in name), None)
            (groups[key] if key is not None else rest).append(p)
        out = [{"params": rest, "lr": lr, "base_lr": lr, "name": "default"}]
        for k, v in lr_groups.items():
            if not v > 0:
                raise ValueError(f"lr_groups[{k!r}] must be > 0, got {v!r}")
            if not groups[k]:
                raise ValueError(f"lr_groups[{k!r}]: no parameter name contains {k!r}")
            out.append({"params": groups[k], "lr": v, "base_lr": v, "name": k})
        return [g for g in out if g["params"]]

    # ---- data ------------------------------------------------------------------------------
    def _epoch_order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(_mix(self.seed, 3, epoch))
        return torch.randperm(self._length(self.train_data), generator=g)

    def _batches(self):
        """Yield this rank's part of each global batch, from the current (epoch, batch) position on."""
        n = self._length(self.train_data)
        per_epoch = n // self.batch_size
        share = self.batch_size // self.dist.world_size
        lo, hi = self.dist.rank * share, (self.dist.rank + 1) * share
        while True:
            order = self._epoch_order(self.epoch)
            starts = range(self.batch_in_epoch, per_epoch)
            index_lists = [order[b * self.batch_size: (b + 1) * self.batch_size][lo:hi].tolist() for b in starts]
            if isinstance(self.train_data, torch.utils.data.Dataset) and self.num_workers > 0:
                loader = torch.utils.data.DataLoader(self.train_data, batch_sampler=index_lists,
                                                     num_workers=self.num_workers, persistent_workers=False)
                for batch in loader:
                    yield batch
            else:
                for idx in index_lists:
                    yield _collate(self.train_data, idx)
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    # ---- checkpointing ---------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "best_metric": self.best_metric, "best_step": self.best_step,
                "bad_validations": self.bad_validations, "config": self.config, "seed": self.seed,
                "train_seconds": self.train_seconds}

    def save_checkpoint(self) -> Path | None:
        """Write the checkpoint (rank 0 only); returns the pointer file path."""
        if self.out_dir is None or not self.dist.is_main:
            return None
        rng = {"generator": self.generator.get_state(), "torch": torch.get_rng_state()}
        return save_training_checkpoint(self.out_dir, self.model, self.optimizer, self._state(), rng, keep=self.keep)

    def resume(self, folder: str | Path | None = None) -> "Trainer":
        """Continue from the checkpoint in ``folder`` (default ``out_dir``): weights, optimizer, RNG, position."""
        folder = Path(folder) if folder is not None else self.out_dir
        if folder is None:
            raise ValueError("resume needs a folder (or out_dir)")
        state, rng = load_training_checkpoint(folder, self.model, self.optimizer)
        if state.get("seed", self.seed) != self.seed:
            raise CheckpointError(f"checkpoint in {folder} was made with seed={state['seed']}, this trainer has seed={self.seed}")
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.best_metric, self.best_step = state["best_metric"], state["best_step"]
        self.bad_validations = state.get("bad_validations", 0)
        # None: a checkpoint from before the time was recorded (the total is unknown, not this process's share)
        self.train_seconds = None if state.get("train_seconds") is None else float(state["train_seconds"])
        if "generator" in rng:
            self.generator.set_state(rng["generator"])
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if self.dist.rank:  # the checkpoint holds rank 0's streams; other ranks continue on streams of their own
            self.generator.manual_seed(_mix(self.seed, 1, self.dist.rank, self.step))
            torch.manual_seed(_mix(self.seed, 2, self.dist.rank, self.step))
        self.history = [h for h in self._read_log() if h.get("step", 0) <= self.step]
        if self.out_dir is not None and self.dist.is_main:  # drop log lines past the checkpoint
            (self.out_dir / "log.jsonl").write_text("".join(json.dumps(h) + "\n" for h in self.history))
        return self

    def _read_log(self) -> list[dict]:
        if self.out_dir is None or not (self.out_dir / "log.jsonl").is_file():
            return []
        return [json.loads(line) for line in (self.out_dir / "log.jsonl").read_text().splitlines() if line.strip()]

    def _log(self, record: dict[str, float]) -> None:
        self.history.append(record)
        if self.out_dir is None or not self.dist.is_main:
            return
        with open(self.out_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in record.items():
                if k != "step" and isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, record["step"])

    # ---- validation ------------------------------------------------------------------------
    def run_validation(self) -> dict[str, float]:
        if self.validate_fn is not None:
            return dict(self.validate_fn(self.model))
        if self.val_data is None:
            return {}
        return default_validate(self.model, self.val_data, self.batch_size, self.device, self.predict)

    def _improved(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best_metric is None:
            return True
        return value > self.best_metric if HIGHER_IS_BETTER[self.metric] else value < self.best_metric

    # ---- the loop --------------------------------------------------------------------------
    #: The first checkpoint of a fit is written after this many seconds of training at the latest (then every
    #: ``checkpoint_every`` steps), so a run killed early still has one to resume from.
    early_checkpoint_seconds: float = 60.0

    def _stop_signal(self, signum, frame):  # first Ctrl-C or SIGTERM: finish the step, checkpoint, stop
        self._stop_requested = True
        if signum == signal.SIGINT:
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once
        else:
            signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM ends the process at once

    def fit(self) -> TrainResult:
        """Train until ``steps`` (or early stopping, or Ctrl-C / SIGTERM); returns a :class:`TrainResult`.

        Subnormal floats are flushed to zero while it runs (:func:`flushing_denormals`)."""
        with flushing_denormals():
            return self._fit()

    def _fit(self) -> TrainResult:
        if self.out_dir is not None and self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self._open_tensorboard()
        in_main = threading.current_thread() is threading.main_thread()
        old_handlers = {sig: signal.signal(sig, self._stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)} \
            if in_main else {}
        from tqdm.auto import tqdm

        bar = tqdm(total=self.steps, initial=self.step, desc="train", unit="step",
                   disable=not (self.progress and self.dist.is_main), dynamic_ncols=True)
        reason, last_val, loss_avg, t_last, s_last = "steps", None, None, time.perf_counter(), self.step
        batches = self._batches()
        t_fit, seconds_before = time.perf_counter(), self.train_seconds
        saved_in_fit = False
        try:
            while self.step < self.steps:
                batch = _to_device(next(batches), self.device)
                self.batch_in_epoch += 1
                loss, extras = self._train_step(batch)
                self.step += 1
                if seconds_before is not None:
                    self.train_seconds = seconds_before + time.perf_counter() - t_fit
                loss_avg = loss if loss_avg is None else 0.9 * loss_avg + 0.1 * loss
                if self.step % self.log_every == 0 or self.step == self.steps:
                    now = time.perf_counter()
                    rate = (self.step - s_last) / max(now - t_last, 1e-9)
                    t_last, s_last = now, self.step
                    self._log({"step": self.step, "loss": loss, "lr": self.optimizer.param_groups[0]["lr"],
                               "steps_per_s": rate, **extras})
                if self.step % self.val_every == 0 or self.step == self.steps:
                    val = self.run_validation()
                    if val:
                        last_val = val
                        self._log({"step": self.step, **{f"val_{k}": v for k, v in val.items()}})
                        if self._improved(val.get(self.metric, float("nan"))):
                            self.best_metric, self.best_step, self.bad_validations = val[self.metric], self.step, 0
                            if self.out_dir is not None and self.dist.is_main:
                                save_model(self.out_dir / "best.safetensors", self.model,
                                           {"step": self.step, self.metric: val[self.metric], "config": self.config})
                        else:
                            self.bad_validations += 1
                if (self.step % self.checkpoint_every == 0 or self.step == self.steps
                        or not saved_in_fit and time.perf_counter() - t_fit >= self.early_checkpoint_seconds):
                    self.save_checkpoint()
                    saved_in_fit = True
                post = {"loss": f"{loss_avg:.4g}"}
                if last_val and "psnr" in last_val:
                    post["val_psnr"] = f"{last_val['psnr']:.2f}"
                elif last_val and self.metric in last_val:
                    post[f"val_{self.metric}"] = f"{last_val[self.metric]:.4g}"
                bar.set_postfix(post, refresh=False)
                bar.update(1)
                if self.patience and self.bad_validations >= self.patience:
                    reason = "early_stopping"
                    self.save_checkpoint()
                    break
                if self._stop_requested:
                    reason = "interrupted"
                    self.save_checkpoint()
                    break
        finally:
            bar.close()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        return TrainResult(self.step, reason, self.best_metric, self.best_step, self.history, self.out_dir,
                           self.train_seconds)

    def _train_step(self, batch) -> tuple[float, dict[str, float]]:
        self.ddp_model.train()
        f = self.lr_factor(self.step)
        for g in self.optimizer.param_groups:
            g["lr"] = g["base_lr"] * f
        if self.optimizer_name == "lbfgs":
            loss, extras = self._lbfgs_step(batch)
        else:
            loss, extras = self._backward(batch)
            if self.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            self.optimizer.step()
        if self.post_step is not None:
            with torch.no_grad():
                self.post_step(self.model)
        return float(loss.detach()), {k: float(v) for k, v in extras.items()}

    def _evaluate_loss(self, batch) -> tuple[torch.Tensor, dict]:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.loss_fn(self.ddp_model, batch, StepContext(self.step, self.generator))
        loss, extras = (out if isinstance(out, tuple) else (out, {}))
        if not torch.isfinite(loss.detach()).all():
            where = f"the last good checkpoint is in {self.out_dir}" if self.out_dir is not None else "no checkpoint folder was set"
            raise TrainingDiverged(f"loss became {float(loss.detach())} at step {self.step + 1}; training stopped ({where})")
        return loss, extras

    def _backward(self, batch) -> tuple[torch.Tensor, dict]:
        """The loss on ``batch`` and its gradient (zeroed first). With ``micro_batch`` > 0 the batch goes through in
        pieces of that many samples, each piece's loss weighted by its share, so the gradient is the whole batch's
        in the memory of one piece (the losses are batch means)."""
        self.optimizer.zero_grad(set_to_none=True)
        pieces = _split_batch(batch, self.micro_batch) if self.micro_batch else [batch]
        if len(pieces) == 1:
            loss, extras = self._evaluate_loss(batch)
            loss.backward()
            return loss.detach(), extras
        n = sum(_batch_len(b) for b in pieces)
        total, extras = torch.zeros((), device=self.device), {}
        for piece in pieces:
            w = _batch_len(piece) / n
            loss, ex = self._evaluate_loss(piece)
            (loss * w).backward()
            total = total + loss.detach() * w
            for k, v in ex.items():
                extras[k] = extras.get(k, 0.0) + float(v) * w
        return total, extras

    def _lbfgs_step(self, batch) -> tuple[torch.Tensor, dict]:
        """One L-BFGS step on ``batch``: every evaluation of its line search sees the same batch and the same noise
        (the generator is rewound to where the step began), so the step minimises one fixed objective. Returns the
        loss at the step's start point, as Adam's steps do."""
        start = self.generator.get_state()
        first: list = []

        def closure():
            self.generator.set_state(start)
            loss, extras = self._backward(batch)
            if not first:
                first.append((loss.detach(), extras))
            return loss

        self.optimizer.step(closure)
        return first[0]

    def _open_tensorboard(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # TensorBoard is optional
            return
        self._tb = SummaryWriter(log_dir=str(self.out_dir / "tensorboard"))
