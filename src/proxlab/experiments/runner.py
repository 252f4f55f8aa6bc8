"""Run an experiment: train → evaluate against classic baselines → write one folder with a report.

The folder holds ``config.toml`` (the resolved config), ``checkpoints/`` (training checkpoints,
``best.safetensors``, ``log.jsonl``), ``model.safetensors`` (the evaluated weights), ``metrics.json``, ``run.log`` and ``report.html`` (tables and
figures inline). ``proxlab run --resume DIR`` continues an interrupted run from its checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..data import MeasurementPairs
from ..losses import SCHEDULED_LOSSES, ProximalMatchingSchedule, denoising_schedule_loss, get_loss, simulated
from ..metrics import mse, nmse, psnr, ssim
from ..registry import build_model, list_models
from ..training import Trainer, load_model_weights, save_model
from .config import ExperimentConfig, config_to_dict, dump_toml, load_config
from .datasets import build_splits
from .methods import reconstruct

__all__ = ["run_experiment", "find_experiment", "shipped_experiments", "build_experiment_model", "RunResult"]

METRIC_FNS = {"psnr": psnr, "ssim": ssim, "mse": mse, "nmse": nmse}


@dataclass
class RunResult:
    folder: Path
    metrics: dict[str, Any]
    stop_reason: str


# Experiments that are programs rather than one train-and-evaluate config: name -> module with run(out, overrides, ...).
PROGRAM_EXPERIMENTS = {
    "lpn-laplacian": "proxlab.experiments.lpn_laplacian",
    "lpn-pnp": "proxlab.experiments.lpn_pnp",
    **{name: "proxlab.experiments.lista" for name in ("lista", "lista-table1", "lista-synthetic")},
    **{name: "proxlab.experiments.istanet" for name in (f"{m}-cs{r}" for m in ("istanet-plus", "istanet", "resnet-pgd")
                                                         for r in (10, 25, 40))},
}


def shipped_experiments() -> list[str]:
    """Names of the experiments that ship with proxlab (``proxlab run NAME``)."""
    root = resources.files("proxlab.experiments") / "configs"
    return sorted([p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml")] + list(PROGRAM_EXPERIMENTS))


def run_program_experiment(name: str, out: str | Path | None, overrides: list[str] | None, progress: bool,
                           echo: bool = True) -> RunResult:
    """Run one of :data:`PROGRAM_EXPERIMENTS`; ``overrides`` are ``key=value`` settings it documents."""
    import importlib

    settings = {}
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r}: expected key=value")
        k, v = item.split("=", 1)
        settings[k.strip()] = v.strip()
    folder = Path(out) if out is not None else Path("runs") / name
    folder.mkdir(parents=True, exist_ok=True)
    # under torchrun only rank 0 writes the log (the experiment's Trainer makes the other ranks train only)
    log = _Log(folder / "run.log", echo) if int(os.environ.get("RANK", "0")) == 0 else (lambda msg: None)
    module = importlib.import_module(PROGRAM_EXPERIMENTS[name])
    settings = {**getattr(module, "PRESETS", {}).get(name, {}), **settings}  # a named preset, then the overrides
    log(f"experiment {name}: starting in {folder}")
    summary = module.run(folder, settings, progress=progress, log=log)
    log(f"done; report: {folder / 'report.html'}")
    return RunResult(folder, summary, "steps")


def find_experiment(name_or_path: str) -> Path:
    """A shipped experiment by name, or a path to a TOML file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise FileNotFoundError(f"experiment file not found: {p}")
        return p
    from .._checks import check_choice

    check_choice("experiment", name_or_path, shipped_experiments())
    if name_or_path in PROGRAM_EXPERIMENTS:
        raise ValueError(f"experiment {name_or_path!r} is a program, not a config file; run it with 'proxlab run {name_or_path}'")
    return Path(str(resources.files("proxlab.experiments") / "configs" / f"{name_or_path}.toml"))


def build_experiment_model(cfg: ExperimentConfig, operator) -> torch.nn.Module:
    """The config's model; models that unroll a solver receive the task's operator."""
    from ..models import NEEDS_OPERATOR

    opts = dict(cfg.model.options)
    if cfg.model.name in NEEDS_OPERATOR:
        opts["operator"] = operator
    return build_model(cfg.model.name, **opts)


class _Log:
    def __init__(self, path: Path, echo: bool):
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        with open(self.path, "a") as f:
            f.write(line + "\n")
        if self.echo:
            print(line, flush=True)


def _stack(pairs: MeasurementPairs) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = zip(*(pairs[i] for i in range(len(pairs))))
    return torch.stack(ys), torch.stack(xs)


def run_experiment(source: str | Path | None = None, out: str | Path | None = None, overrides: list[str] | None = None,
                   resume: str | Path | None = None, progress: bool = True, echo: bool = True) -> RunResult:
    """Train and evaluate an experiment (a shipped name or a TOML path), or resume the run in ``resume``.

    Under ``torchrun`` every process trains; only rank 0 writes the folder and evaluates.
    """
    main_process = int(os.environ.get("RANK", "0")) == 0
    if resume is not None:
        folder = Path(resume)
        if not (folder / "config.toml").is_file():
            raise FileNotFoundError(f"cannot resume: {folder / 'config.toml'} not found")
        cfg = load_config(folder / "config.toml", known_models=list_models(), overrides=overrides)
    else:
        if source is None:
            raise ValueError("run_experiment needs an experiment name or file (or resume=DIR)")
        if str(source) in PROGRAM_EXPERIMENTS:
            return run_program_experiment(str(source), out, overrides, progress, echo)
        cfg = load_config(find_experiment(str(source)), known_models=list_models(), overrides=overrides)
        folder = Path(out) if out is not None else Path("runs") / cfg.name
        if main_process:
            if (folder / "config.toml").exists():
                raise FileExistsError(f"run folder {folder} already holds a run; resume it with --resume {folder} or pick --out")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "config.toml").write_text(dump_toml(cfg))
    log = _Log(folder / "run.log", echo) if main_process else (lambda msg: None)
    log(f"experiment {cfg.name}: {'resuming' if resume else 'starting'} in {folder}")

    torch.manual_seed(cfg.seed)
    splits = build_splits(cfg.data, cfg.seed)
    task = cfg.build_task()
    A = task.operator(tuple(splits.train.shape[-2:]), splits.train.shape[1])
    model = build_experiment_model(cfg, A)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"data: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test images; "
        f"task: {task.describe()}; model {cfg.model.name}: {n_params:,} parameters")

    t = cfg.training
    noise = task.options["noise"]
    val = _stack(MeasurementPairs(splits.val, A, noise=noise, seed=cfg.seed + 1))
    post_step = (lambda m: m.clamp_weights()) if hasattr(model, "clamp_weights") else None
    trainer = Trainer(model, make_loss(cfg, task, A), splits.train, val_data=val, steps=t.steps, post_step=post_step,
                      batch_size=t.batch_size, lr=t.lr, lr_groups=dict(t.lr_groups), weight_decay=t.weight_decay,
                      schedule=t.schedule, warmup_steps=t.warmup_steps, milestones=t.milestones, gamma=t.gamma,
                      step_size=t.step_size, grad_clip=t.grad_clip, val_every=t.val_every,
                      checkpoint_every=t.checkpoint_every, log_every=t.log_every, patience=t.patience,
                      metric=t.metric if t.metric != "loss" else "mse", out_dir=folder / "checkpoints",
                      seed=cfg.seed, device=t.device, progress=progress, num_workers=t.num_workers,
                      config=config_to_dict(cfg), precision=t.precision)
    if resume is not None:
        trainer.resume()
        log(f"resumed at step {trainer.step}")
    t0 = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - t0
    log(f"training stopped ({result.stop_reason}) at step {result.step} after {seconds:.0f} s; "
        f"best val {trainer.metric} {result.best_metric} at step {result.best_step}")
    if result.stop_reason == "interrupted":
        log(f"interrupted: resume with  proxlab run --resume {folder}")
        return RunResult(folder, {}, result.stop_reason)
    if not main_process:
        return RunResult(folder, {}, result.stop_reason)

    # The evaluated (and exported) weights: the best validation checkpoint for MSE/l1 training; the final
    # weights for proximal matching, whose aim is the MAP prox, not the best PSNR (its l1 warm-up often has more).
    best = folder / "checkpoints" / "best.safetensors"
    use_best = best.is_file() and t.loss not in SCHEDULED_LOSSES
    if use_best:
        load_model_weights(best, model)
    save_model(folder / "model.safetensors", model, {"step": result.best_step if use_best else result.step,
                                                      "chosen": "best" if use_best else "final"})
    log(f"evaluating the {'best' if use_best else 'final'} weights "
        f"(step {result.best_step if use_best else result.step})")
    metrics, panels = evaluate(cfg, task, model, splits, trainer.device)
    metrics["training"] = {"steps": result.step, "seconds_this_session": seconds, "stop_reason": result.stop_reason,
                           "best_step": result.best_step, "best_val": result.best_metric, "parameters": n_params}
    sections = []
    if hasattr(model, "regularizer") and task.name == "denoise":
        from .lpn_analysis import analysis_section

        log("evaluating the learned prior R on perturbed test images")
        n = min(64, len(splits.test))
        metrics["prior_perturbation"], html = analysis_section(model.cpu().eval(), splits.test[:n], seed=cfg.seed)
        sections.append(("The learned prior under perturbation", html))
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    from .report import write_report

    write_report(folder, cfg, metrics, panels, trainer.history, extra_sections=sections)
    log(f"test {cfg.model.name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics["model"]["mean"].items())
        + f"; report: {folder / 'report.html'}")
    return RunResult(folder, metrics, result.stop_reason)


def make_loss(cfg: ExperimentConfig, task, A):
    """The Trainer's ``loss_fn`` for the config: ``mse``/``l1`` on simulated measurements, or LPN's
    proximal-matching schedule (denoising only, options from ``training.loss_options``)."""
    t = cfg.training
    noise = task.options["noise"]
    if t.loss in SCHEDULED_LOSSES:
        if task.name != "denoise" or noise <= 0:
            raise ValueError(f"training.loss: {t.loss!r} trains a prox as a denoiser; it needs operator.task = 'denoise' "
                             f"with noise > 0, got task {task.name!r} with noise {noise}")
        opts = dict(t.loss_options)
        if "factors" in opts:
            opts["factors"] = tuple(opts["factors"])
        try:
            schedule = ProximalMatchingSchedule(**opts)
        except TypeError as err:
            raise ValueError(f"training.loss_options: {err} (keys: l1_steps, stage_steps, gamma_min, factors)") from None
        return denoising_schedule_loss(noise, schedule)
    if t.loss_options:
        raise ValueError(f"training.loss_options: the {t.loss!r} loss takes no options, got {sorted(t.loss_options)}")
    return simulated(A, noise, get_loss(t.loss))


def evaluate(cfg: ExperimentConfig, task, model: torch.nn.Module, splits, device) -> tuple[dict, dict]:
    """Test-set metrics of the model and of the classic baselines; also the first images for figures."""
    test = splits.test
    if cfg.evaluation.max_test_images:
        test = test[: cfg.evaluation.max_test_images]
    A = task.operator(tuple(test.shape[-2:]), test.shape[1])
    y, x = _stack(MeasurementPairs(test, A, noise=task.options["noise"], seed=cfg.seed + 2))
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(y), cfg.training.batch_size):
            outs.append(model(y[i: i + cfg.training.batch_size].to(device)).cpu())
    results = {"model": _scores(torch.cat(outs).clamp(0, 1), x, cfg.evaluation.metrics)}
    panels = {"truth": x[:4], "measurement": _show(A, y[:4], x[:4]), cfg.model.name: torch.cat(outs)[:4].clamp(0, 1)}
    results["baselines"] = {}
    for method in cfg.evaluation.baselines:
        rec = reconstruct(method, A, y, task).clamp(0, 1)
        results["baselines"][method] = _scores(rec, x, cfg.evaluation.metrics)
        panels[method] = rec[:4]
    results["test_images"] = len(x)
    return results, panels


def _show(A, y, x):
    from .figures import measurement_image

    return measurement_image(A, y, tuple(x.shape))


def _scores(rec: torch.Tensor, x: torch.Tensor, metrics) -> dict[str, Any]:
    per = {m: [float(v) for v in METRIC_FNS[m](rec, x)] for m in metrics}
    return {"mean": {m: sum(v) / len(v) for m, v in per.items()}, "per_image": per}
