"""Run an experiment: train → evaluate against classic baselines → write one folder with a report.

The folder holds ``config.toml`` (the resolved config), ``checkpoints/`` (training checkpoints,
``best.safetensors``, ``log.jsonl``), ``model.safetensors`` (the evaluated weights), ``metrics.json``, ``run.log`` and ``report.html`` (tables and
figures inline) and ``started_in.txt`` (the working directory it started in). ``proxlab run --resume DIR``
continues an interrupted run from its checkpoint, reading the config's relative paths from where it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..registry import build_model, list_models
from ..training import Trainer, load_model_weights, save_model
from ..training.checkpoint import POINTER
from ..training.trainer import flushing_denormals
from .config import ConfigError, ExperimentConfig, config_to_dict, dump_toml, load_config

__all__ = ["run_experiment", "run_config", "find_experiment", "shipped_experiments", "build_experiment_model", "RunResult"]

@dataclass
class RunResult:
    folder: Path
    metrics: dict[str, Any]
    stop_reason: str


# Experiments that are programs rather than one train-and-evaluate config: name -> module with run(out, overrides, ...).
PROGRAM_EXPERIMENTS: dict[str, str] = {}  # none left: every shipped experiment is a spec


def shipped_experiments() -> list[str]:
    """Names of the experiments that ship with proxlab (``proxlab run NAME``)."""
    root = resources.files("proxlab.experiments") / "configs"
    return sorted([p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml")] + list(PROGRAM_EXPERIMENTS))


def experiment_summary(name: str, width: int = 110) -> str:
    """The first sentence of a shipped experiment's ``description``, cut to ``width`` characters (for listings)."""
    from ._toml import toml_module

    text = toml_module().loads(find_experiment(name).read_text()).get("description", "").strip()
    first = text.split(". ")[0].rstrip(".")
    return first if len(first) <= width else first[:width - 1].rstrip() + "…"


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
    if p.suffix == ".toml" or p.is_file():
        if not p.is_file():
            raise FileNotFoundError(f"experiment file not found: {p}")
        return p
    if p.is_dir() and name_or_path not in shipped_experiments():  # a run folder is not a spec (use --resume DIR)
        raise FileNotFoundError(f"experiment: {p} is a folder, not a TOML file nor a shipped experiment "
                                f"(to continue a run in it: proxlab run --resume {p})")
    from .._checks import check_choice

    check_choice("experiment", name_or_path, shipped_experiments())
    if name_or_path in PROGRAM_EXPERIMENTS:
        raise ValueError(f"experiment {name_or_path!r} is a program, not a config file; run it with 'proxlab run {name_or_path}'")
    return Path(str(resources.files("proxlab.experiments") / "configs" / f"{name_or_path}.toml"))


def build_experiment_model(cfg: ExperimentConfig, operator) -> torch.nn.Module:
    """The config's model; models that unroll a solver receive the task's operator."""
    from ..registry import model_entry

    opts = dict(cfg.model.options)
    entry = model_entry(cfg.model.name)
    if entry.needs_operator or (entry.carries_operator and operator is not None and "operator" not in opts):
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


def _final_weights_losses() -> set[str]:
    from .parts import LOSSES

    return {n for n in LOSSES.names() if LOSSES.get(n).meta.get("evaluate") == "final"}


def _check_devices(cfg: ExperimentConfig) -> None:
    from ..training.distributed import resolve_device

    for i, st in enumerate(cfg.resolved_stages):
        try:
            resolve_device(st.device)
        except (ValueError, RuntimeError) as err:
            key = f"stages[{i}].device" if cfg.stages else "training.device"
            raise ConfigError(key, str(err)) from None


def _with_snapshots(post_step, every: int, holder: list, folder: Path, prefix: str, main_process: bool):
    """``post_step`` that also saves the weights every ``every`` steps (``holder[0]`` is the Trainer)."""
    if not every:
        return post_step

    def step_hook(net):
        if post_step is not None:
            post_step(net)
        step = holder[0].step + 1  # called after the optimizer step, before the Trainer counts it
        if step % every == 0 and main_process:
            save_model(folder / "snapshots" / f"{prefix}step_{step:06d}.safetensors", net, {"step": step})

    return step_hook


def _holds_progress(folder: Path) -> bool:
    """Whether a run folder holds anything worth keeping: a checkpoint, saved weights or results (a run killed
    before its first checkpoint leaves only its config and log, and a fresh run may take the folder over)."""
    return any(f.name in (POINTER, "metrics.json") or f.suffix == ".safetensors" for f in folder.rglob("*") if f.is_file())


def _record_overrides(folder: Path, overrides: list[str]) -> None:
    """``overrides.json``: every ``--set`` the run was started and resumed with, in order (for the zoo's command)."""
    path = folder / "overrides.json"
    before = json.loads(path.read_text()) if path.is_file() else []
    path.write_text(json.dumps(before + list(overrides)))


def _check_model_builds(cfg: ExperimentConfig) -> None:
    """Build the model once (models that take the task's operator are built with the run) so that a value
    its constructor refuses fails before the run folder is made."""
    from ..registry import model_entry

    entry = model_entry(cfg.model.name)
    if entry.needs_operator or entry.carries_operator:
        return
    try:
        build_model(cfg.model.name, **cfg.model.options)
    except (ValueError, TypeError) as err:
        raise ConfigError("model.options", str(err).removeprefix(f"model {cfg.model.name!r}: ")) from None


def _device_of(cfg: ExperimentConfig) -> str:
    from ..training.distributed import resolve_device

    return str(resolve_device(cfg.resolved_stages[-1].device))


def _load_init(spec: str, model: torch.nn.Module, log) -> None:
    """Start from the weights of ``spec`` (``zoo:NAME`` or a file). The run's operator is this run's: the stored
    ``operator.*`` buffers (Φ and the fitted Qinit of another CS ratio, the mask of another MRI ratio) are left out,
    and every other weight must fit; the log says when the stored operator differs."""
    from ..weights import CheckpointError, _load_state_checked, _load_tensors, resolve_weights

    path = resolve_weights(spec)
    stored, _ = _load_tensors(Path(path))
    own = model.state_dict()
    differs = sorted(k for k, t in stored.items() if k.startswith("operator.") and k in own
                     and (t.shape != own[k].shape or not torch.equal(t.to(own[k].dtype), own[k])))
    try:
        _load_state_checked(model, stored, str(path), skip="operator.")
    except CheckpointError as err:
        raise ValueError(f"training.init {spec}: weights do not fit this model ({err})") from None
    note = f" (the file's {', '.join(differs)} differ: this run's used)" if differs else ""
    log(f"weights from {spec} ({path}), operator kept{note}")


def run_experiment(source: str | Path | None = None, out: str | Path | None = None, overrides: list[str] | None = None,
                   resume: str | Path | None = None, progress: bool = True, echo: bool = True) -> RunResult:
    """Train and evaluate an experiment (a shipped name or a TOML path), or resume the run in ``resume``.

    The whole spec is validated (model options against the constructor, every part's options, every
    sweep run, devices) before the run folder is made. Stages run in order, each with its own Trainer
    and checkpoints (``checkpoints/`` for a one-stage run, ``checkpoints/stageK/`` otherwise); a finished
    stage leaves ``stages/stageK.safetensors``, so ``--resume`` skips it. Then each evaluation protocol
    returns a section; :func:`~proxlab.experiments.report.write_run` writes ``metrics.json``, figures and
    ``report.html``. With ``[sweep]`` each run goes to ``runs/LABEL`` (finished ones are kept on resume)
    and the sweep's protocols compare them. Under ``torchrun`` every process trains; only rank 0 writes
    the folder and evaluates.
    """
    resume = None if resume is None else Path(resume).resolve()  # before a move to where the run started
    with flushing_denormals(), _in_start_dir(resume) as moved:  # flush: evaluation as well as training
        return _run_experiment(source, out, overrides, resume, progress, echo, moved)


#: The file of a run folder that records the working directory the run started in.
STARTED_IN = "started_in.txt"


@contextlib.contextmanager
def _in_start_dir(resume: str | Path | None):
    """Resume a run from the directory it started in, so that the relative paths of its ``config.toml``
    (``operator.phi = "../data/phi.mat"``, ``data.path = "photos"``) mean what they meant at the start wherever
    ``--resume`` is typed. Yields the directory it left (None when it stayed); the caller's is restored after."""
    here = Path.cwd()
    record = None if resume is None else Path(resume) / STARTED_IN
    start = Path(record.read_text().strip()) if record is not None and record.is_file() else None
    if start is None or not start.is_dir() or start.resolve() == here.resolve():
        yield None
        return
    os.chdir(start)
    try:
        yield here
    finally:
        os.chdir(here)


def _run_experiment(source, out, overrides, resume, progress: bool, echo: bool,
                    moved: Path | None = None) -> RunResult:
    main_process = int(os.environ.get("RANK", "0")) == 0
    taken_over = False
    if resume is not None:
        folder = Path(resume)
        if not (folder / "config.toml").is_file():
            raise FileNotFoundError(f"cannot resume: {folder / 'config.toml'} not found")
        cfg = load_config(folder / "config.toml", known_models=list_models(), overrides=overrides)
        _check_devices(cfg)
        if overrides and main_process:
            (folder / "config.toml").write_text(dump_toml(cfg))  # the folder's config says what the run does
            _record_overrides(folder, overrides)
    else:
        if source is None:
            raise ValueError("run_experiment needs an experiment name or file (or resume=DIR)")
        if str(source) in PROGRAM_EXPERIMENTS:
            return run_program_experiment(str(source), out, overrides, progress, echo)
        cfg = load_config(find_experiment(str(source)), known_models=list_models(), overrides=overrides)
        _check_devices(cfg)
        _check_model_builds(cfg)
        folder = Path(out) if out is not None else Path("runs") / cfg.name
        if main_process:
            if (folder / "config.toml").exists():
                if _holds_progress(folder):
                    raise FileExistsError(f"run folder {folder} already holds a run; resume it with --resume {folder} "
                                          "or pick --out")
                (folder / "overrides.json").unlink(missing_ok=True)  # a run that never checkpointed: start it anew
                taken_over = True
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "config.toml").write_text(dump_toml(cfg))
            (folder / STARTED_IN).write_text(str(Path.cwd()) + "\n")
            _record_overrides(folder, overrides or [])
    log = _Log(folder / "run.log", echo) if main_process else (lambda msg: None)
    log(f"experiment {cfg.name}: {'resuming' if resume else 'starting'} in {folder}")
    if taken_over:
        log(f"{folder} held a run that stopped before its first checkpoint; starting it anew")
    if moved is not None:
        log(f"relative paths of its config are read from {Path.cwd()}, where the run started ({STARTED_IN})")
    if cfg.sweep is None:
        result, _ = run_config(cfg, folder, resume=resume is not None, progress=progress, log=log)
        return result
    return _run_sweep(cfg, folder, progress, log, main_process)


def _run_sweep(cfg: ExperimentConfig, folder: Path, progress: bool, log, main_process: bool) -> RunResult:
    from .parts import RunContext
    from .report import write_run

    children: dict[str, dict[str, Any]] = {}
    _check_run_inits(cfg, folder)
    for run in cfg.sweep.runs:
        child = cfg.sweep_run(run.label, known_models=list_models())
        sub = folder / "runs" / run.label
        if _finished(sub):
            log(f"sweep run {run.label}: finished earlier, kept")
            model = _built_model(child)
            load_model_weights(sub / "model.safetensors", model)
            children[run.label] = {"cfg": child, "model": model.eval(), "folder": sub,
                                   "metrics": json.loads((sub / "metrics.json").read_text())}
            continue
        if cfg.sweep.only and run.label not in cfg.sweep.only:
            log(f"sweep run {run.label}: not in sweep.only, skipped")
            continue
        if main_process:
            sub.mkdir(parents=True, exist_ok=True)
            (sub / "config.toml").write_text(dump_toml(child))
        child = _resolve_run_inits(child, folder, children, run.label)
        log(f"sweep run {run.label}: {' '.join(run.set) or '(no overrides)'}")
        result, model = run_config(child, sub, resume=(sub / "checkpoints").is_dir(), progress=progress,
                                   log=_Log(sub / "run.log", True) if main_process else log)
        if result.stop_reason == "interrupted" or not main_process:
            return RunResult(folder, {}, result.stop_reason)
        children[run.label] = {"cfg": child, "model": model.eval(), "folder": sub, "metrics": result.metrics}
    ctx = RunContext(cfg=cfg, model=None, task=cfg.build_task(), operator=None, splits=None, folder=folder,
                     device=torch.device("cpu"), log=log, children=children)
    absent = [label for label in (cfg.sweep.only or [r.label for r in cfg.sweep.runs]) if label not in children]
    if absent and cfg.sweep.protocols:
        log(f"sweep protocols skipped: runs {absent} have not finished here")
    sections = _run_protocols(cfg.sweep.protocols, ctx) if not absent else []
    info = {"runs": {k: c["metrics"].get("training", {}) for k, c in children.items()}}
    metrics = write_run(folder, cfg, sections, [], info)
    log(f"sweep done; report: {folder / 'report.html'}")
    return RunResult(folder, metrics, "steps")


def _finished(sub: Path) -> bool:
    return (sub / "metrics.json").is_file() and (sub / "model.safetensors").is_file()


def _check_run_inits(cfg: ExperimentConfig, folder: Path) -> None:
    """Before anything trains: every run this call will train whose ``init`` is ``run:LABEL`` needs that run finished
    in ``folder`` already or trained by this call (``sweep.only``)."""
    labels = [r.label for r in cfg.sweep.runs]
    to_train = [x for x in (cfg.sweep.only or labels) if not _finished(folder / "runs" / x)]
    for label in to_train:
        child = cfg.sweep_run(label)
        for st in (*child.stages, child.training):
            source = st.init[4:] if st.init.startswith("run:") else None
            if source and source not in to_train and not _finished(folder / "runs" / source):
                raise ValueError(f"sweep run {label}: its init {st.init!r} needs run {source!r} to have finished in "
                                 f"{folder / 'runs'} (train it first, or add it to sweep.only)")


def _resolve_run_inits(child: ExperimentConfig, folder: Path, finished: dict, label: str) -> ExperimentConfig:
    """``child`` with each ``init = "run:LABEL"`` replaced by the weights that earlier run kept in ``folder``
    (``_check_run_inits`` has made sure it is there)."""
    def resolve(st):
        if not st.init.startswith("run:"):
            return st
        return st.model_copy(update={"init": str(finished[st.init[4:]]["folder"] / "model.safetensors")})

    return child.model_copy(update={"training": resolve(child.training),
                                    "stages": tuple(resolve(st) for st in child.stages)})


def _run_protocols(protocols, ctx) -> list:
    """``(name, Section)`` of each protocol in order; each sees the metrics of those before it (``ctx.results``)."""
    from .parts import PROTOCOLS

    sections = []
    for p in protocols:
        part = PROTOCOLS.get(p.name)
        sec = part.build(part.validate_options(dict(p.options)), ctx)
        sections.append((p.name, sec))
        ctx.results[p.name] = sec.metrics
    return sections


def _built_model(cfg: ExperimentConfig) -> torch.nn.Module:
    from .parts import SOURCES

    task = cfg.build_task()
    splits = SOURCES.get(cfg.data.source).build(cfg.data, cfg.seed, task=task)
    A = splits.operator if splits.operator is not None else task.operator(tuple(splits.train.shape[-2:]),
                                                                           splits.train.shape[1])
    return build_experiment_model(cfg, A)


def run_config(cfg: ExperimentConfig, folder: Path, resume: bool = False, progress: bool = True,
               log=print) -> tuple[RunResult, torch.nn.Module]:
    """Train and evaluate one validated config in ``folder`` (which holds its ``config.toml``); returns the
    result and the trained model. ``resume``: continue from the checkpoints there."""
    from .parts import LOSSES, SOURCES, LossContext, RunContext
    from .report import write_run

    main_process = int(os.environ.get("RANK", "0")) == 0
    torch.manual_seed(cfg.seed)
    task = cfg.build_task()
    splits = SOURCES.get(cfg.data.source).build(cfg.data, cfg.seed, task=task)
    A = splits.operator if splits.operator is not None else task.operator(tuple(splits.train.shape[-2:]),
                                                                           splits.train.shape[1])
    model = build_experiment_model(cfg, A)
    n_params = sum(p.numel() for p in model.parameters())
    n_train = len(splits.train[0]) if isinstance(splits.train, tuple) else len(splits.train)  # (inputs, targets) pairs
    log(f"data: {n_train} train / {len(splits.val)} val / {len(splits.test)} test images; "
        f"task: {task.describe()}; model {cfg.model.name}: {n_params:,} parameters")

    from ..data import MeasurementPairs
    from ..priors.base import capabilities

    noise = task.options["noise"]
    val = None if splits.validate is not None else _stack(MeasurementPairs(splits.val, A, noise=noise, seed=cfg.seed + 1))
    post_step = (lambda m: m.after_optimizer_step()) if "after_optimizer_step" in capabilities(model) else None
    stages = cfg.resolved_stages
    history: list[dict] = []
    info: dict[str, Any] = {"stages": [], "parameters": n_params}
    if isinstance(splits.test, torch.Tensor) and splits.test.ndim >= 2:  # what `zoo export` records, data-free
        info["test_image_size"] = [int(n) for n in splits.test.shape[-2:]]
    seconds = 0.0
    trainer = result = None
    for k, st in enumerate(stages):
        for note in st._notes:
            log(note)
        ckdir = folder / "checkpoints" if len(stages) == 1 else folder / "checkpoints" / f"stage{k}"
        done = folder / "stages" / f"stage{k}.safetensors"
        label = f"stage {k + 1}/{len(stages)}" + (f" ({st.name})" if st.name else "")
        if len(stages) > 1 and done.is_file():
            load_model_weights(done, model)
            log(f"{label}: finished earlier, weights from {done}")
            info["stages"].append(json.loads((folder / "stages" / f"stage{k}.json").read_text()))
            continue
        if st.threads:
            torch.set_num_threads(st.threads)
        resuming = resume and (ckdir / POINTER).is_file()
        if st.init not in ("fresh", "previous") and not resuming:
            _load_init(st.init, model, log)
        if st.steps == 0:  # evaluation only: the weights as init left them
            info["stages"].append({"stage": k, "name": st.name, "loss": None, "steps": 0, "stop_reason": "no training",
                                   "best_step": None, "best_val": None, "train_seconds": 0.0, "chosen": "init",
                                   "step_evaluated": 0})
            continue
        part = LOSSES.get(st.loss)
        loss_opts = part.validate_options(dict(st.loss_options))
        lctx = LossContext(cfg=cfg, task=task, operator=A, noise=noise, splits=splits, stage=st)
        loss_fn = part.build(loss_opts, lctx)
        # a loss that is its own validation measure (a flow's bits/dim) brings validate(model) -> {"loss": ...}
        own_validate = part.meta.get("validate")
        validate = own_validate(loss_opts, lctx) if own_validate is not None else splits.validate
        stage_val = None if validate is not None else val
        metric = st.metric if st.metric != "loss" or own_validate is not None else "mse"
        train_data = splits.train if splits.sampler is None else torch.zeros(st.batch_size)
        holder: list = []
        trainer = Trainer(model, loss_fn, train_data, val_data=stage_val, validate=validate, steps=st.scaled(st.steps),
                          post_step=_with_snapshots(post_step, st.snapshot_every, holder, folder,
                                                    f"stage{k}_" if len(stages) > 1 else "", main_process),
                          batch_size=st.batch_size, lr=st.lr, lr_groups=dict(st.lr_groups), weight_decay=st.weight_decay,
                          schedule=st.schedule, warmup_steps=st.scaled(st.warmup_steps),
                          milestones=tuple(st.scaled(m) for m in st.milestones), gamma=st.gamma,
                          step_size=st.scaled(st.step_size), grad_clip=st.grad_clip, val_every=st.val_every,
                          checkpoint_every=st.checkpoint_every, log_every=st.log_every, patience=st.patience,
                          metric=metric, out_dir=ckdir,
                          seed=cfg.seed + k, device=st.device, progress=progress, num_workers=st.num_workers,
                          config=config_to_dict(cfg), precision=st.precision, optimizer=st.optimizer,
                          lbfgs_iterations=st.lbfgs_iterations, lbfgs_history=st.lbfgs_history,
                          micro_batch=st.micro_batch)
        holder.append(trainer)
        if resuming:
            trainer.resume()
            log(f"{label}: resumed at step {trainer.step}")
        t0 = time.perf_counter()
        result = trainer.fit()
        seconds += time.perf_counter() - t0
        history += [{**h, "stage": k} for h in trainer.history]
        log(f"{label}: training stopped ({result.stop_reason}) at step {result.step} after {time.perf_counter() - t0:.0f} s; "
            f"best val {trainer.metric} {result.best_metric} at step {result.best_step}")
        if result.stop_reason == "interrupted":
            log(f"interrupted: resume with  proxlab run --resume {folder}")
            return RunResult(folder, {}, result.stop_reason), model
        # the weights a stage hands on: the best validation checkpoint for losses that aim at PSNR; the final
        # weights for proximal matching, whose aim is the MAP prox, not the best PSNR (its l1 warm-up often has more)
        best = ckdir / "best.safetensors"
        use_best = best.is_file() and st.loss not in _final_weights_losses()
        if use_best:
            load_model_weights(best, model)
        summary = {"stage": k, "name": st.name, "loss": st.loss, "steps": result.step, "stop_reason": result.stop_reason,
                   "best_step": result.best_step, "best_val": result.best_metric,
                   "train_seconds": result.train_seconds,
                   "chosen": "best" if use_best else "final", "step_evaluated": result.best_step if use_best else result.step}
        info["stages"].append(summary)
        if len(stages) > 1 and main_process:
            done.parent.mkdir(exist_ok=True)
            save_model(done, model, {"stage": str(k)})
            (folder / "stages" / f"stage{k}.json").write_text(json.dumps(summary))
    if not main_process:
        return RunResult(folder, {}, result.stop_reason if result else "steps"), model
    last = info["stages"][-1]
    if trainer is None:
        model.to(torch.device(_device_of(cfg)))
    save_model(folder / "model.safetensors", model, {"step": last["step_evaluated"], "chosen": last["chosen"]})
    log(f"evaluating the {last['chosen']} weights (step {last['step_evaluated']})")
    info.update({"steps": sum(s["steps"] for s in info["stages"]), "seconds_this_session": seconds,
                 "train_seconds": sum((s.get("train_seconds") or 0.0) for s in info["stages"]),
                 "stop_reason": last["stop_reason"], "best_step": last["best_step"], "best_val": last["best_val"]})
    device = trainer.device if trainer is not None else torch.device(_device_of(cfg))
    model.to(device)
    ctx = RunContext(cfg=cfg, model=model, task=task, operator=A, splits=splits, folder=folder, device=device, log=log,
                     history=history)
    sections = _run_protocols(cfg.evaluation.protocols, ctx)
    metrics = write_run(folder, cfg, sections, history, info)
    if "model" in metrics:
        log(f"test {cfg.model.name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics["model"]["mean"].items())
            + f"; report: {folder / 'report.html'}")
    return RunResult(folder, metrics, last["stop_reason"]), model


def _stack(pairs) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = zip(*(pairs[i] for i in range(len(pairs))))
    return torch.stack(ys), torch.stack(xs)
