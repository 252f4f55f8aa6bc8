"""Typed, validated experiment configs read from TOML.

An experiment is a TOML file with top-level ``name`` (required), ``description`` and ``seed`` and
the tables ``[data]``, ``[operator]``, ``[model]`` (with free-form ``[model.options]``),
``[training]`` and ``[evaluation]``. :func:`load_config` reads it (or a dict of the same shape),
applies ``"section.key=value"`` overrides, checks every type and value, and returns a frozen
:class:`ExperimentConfig`; :func:`dump_toml` writes the resolved config (every key) back, so that
``load_config(path_of(dump_toml(cfg))) == cfg``.

Every problem raises :class:`ConfigError` (a ``ValueError``) with one line naming the full key path,
what was expected and what came, e.g. ``training.lr: expected a number > 0, got -1`` or
``training.stpes: unknown key; did you mean 'steps'?``. ``bool`` is never accepted as an int; ints
are accepted (and stored as floats) where numbers are expected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..data.sources import MNIST5K_SPLITS, SKIMAGE_IMAGES
from ..losses import LOSSES as _LOSSES
from ..losses import SCHEDULED_LOSSES as _SCHEDULED
from ..training.schedules import SCHEDULES
from . import _validate as v
from ._validate import ConfigError
from .methods import CLASSIC_METHODS
from ..tasks import TASKS, Task, make_task, task_options

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "DataConfig",
    "OperatorConfig",
    "ModelConfig",
    "TrainingConfig",
    "EvaluationConfig",
    "load_config",
    "loads_config",
    "config_to_dict",
    "dump_toml",
    "DATA_SOURCES",
    "SOURCE_KEYS",
    "SCHEDULES",
    "LOSSES",
    "BEST_METRICS",
    "EVAL_METRICS",
    "PRECISIONS",
]

DATA_SOURCES = ("mnist5k", "skimage", "ellipses", "image_folder", "idx", "lfw")
#: Keys of ``[data]`` that only some sources use; a non-default value with another source is an error.
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "names": ("skimage",),
    "test_names": ("skimage",),
    "path": ("image_folder", "idx"),
    "labels_path": ("idx",),
    "count": ("ellipses",),
    "val_count": ("ellipses",),
    "test_count": ("ellipses",),
}
LOSSES = tuple(_LOSSES) + tuple(_SCHEDULED)  # the losses the runner can train with
BEST_METRICS = ("psnr", "ssim", "loss")
EVAL_METRICS = ("psnr", "ssim", "mse", "nmse")
PRECISIONS = ("fp32", "bf16")
# Types of the task options of proxlab.tasks; make_task checks their values.
_TASK_OPTION_CHECKS = {
    "noise": v.number(0.0),
    "blur_sigma": v.number(0.0, strict=True),
    "ratio": v.number(),
    "box_size": v.integer(0),
    "angles": v.integer(1),
    "mask": v.string(),
    "mask_file": v.string(nonempty=True),
    "phi": v.string(nonempty=True),
    "qinit": v.string(nonempty=True),
}


def _f(default: Any = MISSING, check: v.Check | None = None, factory: Any = MISSING) -> Any:
    return field(default=default, default_factory=factory, metadata={"check": check})


@dataclass(frozen=True)
class DataConfig:
    """``[data]``: where images come from and how training samples are cut from them.

    ``train``/``val``/``test`` are split names (for ``mnist5k`` one of ``train``, ``val``, ``test``);
    ``names``/``test_names`` are scikit-image image names (``skimage``); ``path``/``labels_path``
    files or folders (``image_folder``, ``idx``); ``count``/``val_count``/``test_count`` image counts
    (``ellipses``). ``size`` resizes to ``size × size`` (0: native), ``patch_size`` > 0 trains on
    random patches (``patches_per_image`` per image), ``augment`` adds dihedral flips/rotations.
    """

    source: str = _f(check=v.choice(DATA_SOURCES))
    train: str = _f("train", v.string(nonempty=True))
    val: str = _f("val", v.string(nonempty=True))
    test: str = _f("test", v.string(nonempty=True))
    names: tuple[str, ...] = _f((), v.array(v.choice(SKIMAGE_IMAGES)))
    test_names: tuple[str, ...] = _f((), v.array(v.choice(SKIMAGE_IMAGES)))
    path: str = _f("", v.string())
    labels_path: str = _f("", v.string())
    count: int = _f(0, v.integer(0))
    val_count: int = _f(0, v.integer(0))
    test_count: int = _f(0, v.integer(0))
    size: int = _f(0, v.integer(0))
    patch_size: int = _f(0, v.integer(0))
    patches_per_image: int = _f(0, v.integer(0))
    augment: bool = _f(False, v.boolean)


@dataclass(frozen=True)
class OperatorConfig:
    """``[operator]``: the task (:data:`~proxlab.tasks.TASKS`), its noise level and its
    other options, resolved by :func:`~proxlab.tasks.make_task` (unset ones take the
    task's defaults; ``noise`` too, e.g. 0.1 for ``denoise``, 0.01 for ``deblur``)."""

    task: str
    noise: float
    options: dict[str, Any] = field(default_factory=dict)

    def build_task(self, seed: int = 0) -> Task:
        """The :class:`~proxlab.tasks.Task` this section describes."""
        return make_task(self.task, seed=seed, noise=self.noise, **self.options)


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: a registered model ``name`` and keyword ``options`` for its constructor."""

    name: str = _f(check=v.string(nonempty=True))
    options: dict[str, Any] = _f(check=v.free_table, factory=dict)


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: optimiser, schedule, loss, loop cadence, early stopping and hardware.

    ``lr_groups`` maps a parameter-name substring to its own learning rate; ``warmup_steps`` are
    linear warm-up steps; ``milestones``/``gamma`` drive ``multistep``, ``step_size``/``gamma``
    drive ``step``. ``metric`` says what the best checkpoint is; ``patience`` counts validations
    without improvement before stopping (0: never); ``grad_clip`` 0 means no clipping.
    """

    steps: int = _f(1000, v.integer(1))
    batch_size: int = _f(32, v.integer(1))
    lr: float = _f(1e-3, v.number(0.0, strict=True))
    lr_groups: dict[str, float] = _f(check=v.table_of(v.number(0.0, strict=True)), factory=dict)
    weight_decay: float = _f(0.0, v.number(0.0))
    schedule: str = _f("constant", v.choice(SCHEDULES))
    warmup_steps: int = _f(0, v.integer(0))
    milestones: tuple[int, ...] = _f((), v.array(v.integer()))
    gamma: float = _f(0.1, v.number(0.0, strict=True, high=1.0))
    step_size: int = _f(0, v.integer(0))
    loss: str = _f("mse", v.choice(LOSSES))
    loss_options: dict[str, Any] = _f(check=v.free_table, factory=dict)
    grad_clip: float = _f(0.0, v.number(0.0))
    val_every: int = _f(100, v.integer(1))
    checkpoint_every: int = _f(100, v.integer(1))
    log_every: int = _f(10, v.integer(1))
    patience: int = _f(0, v.integer(0))
    metric: str = _f("psnr", v.choice(BEST_METRICS))
    num_workers: int = _f(0, v.integer(0))
    device: str = _f("auto", v.device)
    precision: str = _f("fp32", v.choice(PRECISIONS))


@dataclass(frozen=True)
class EvaluationConfig:
    """``[evaluation]``: test metrics, classic baselines (names of
    :data:`~proxlab.experiments.methods.CLASSIC_METHODS`) and a cap on test images (0: all)."""

    metrics: tuple[str, ...] = _f(("psnr", "ssim"), v.array(v.choice(EVAL_METRICS), nonempty=True, unique=True))
    baselines: tuple[str, ...] = _f(("init", "fista-tv"), v.array(v.choice(tuple(CLASSIC_METHODS)), unique=True))
    max_test_images: int = _f(0, v.integer(0))


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A whole experiment; build it with :func:`load_config`."""

    name: str
    description: str = ""
    seed: int = 0
    data: DataConfig
    operator: OperatorConfig
    model: ModelConfig
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    def build_task(self) -> Task:
        """The task of ``[operator]``, seeded with the experiment's ``seed``."""
        return self.operator.build_task(self.seed)


_DATA_DEFAULTS = {f.name: f.default for f in fields(DataConfig)}
_NAME = v.string(r"[a-z0-9._-]+")
_ROOT_CHECKS: dict[str, v.Check] = {"name": _NAME, "description": v.string(), "seed": v.integer(0)}
_SECTIONS = ("data", "operator", "model", "training", "evaluation")


# ---------------------------------------------------------------- building from a dict
def _section(cls: type, path: str, raw: Any) -> Any:
    """Build dataclass ``cls`` from table ``raw`` using each field's ``check``."""
    raw = v.table(path, raw)
    names = [f.name for f in fields(cls)]
    for k in raw:
        if k not in names:
            raise v.unknown_key(path, k, names)
    kwargs = {}
    for f in fields(cls):
        if f.name in raw:
            kwargs[f.name] = f.metadata["check"](f"{path}.{f.name}", raw[f.name])
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(path, f"missing required key {f.name!r}")
    return cls(**kwargs)


def _data(raw: Any) -> DataConfig:
    d = _section(DataConfig, "data", raw)
    if d.source == "mnist5k":
        for split in ("train", "val", "test"):
            v.choice(tuple(MNIST5K_SPLITS))(f"data.{split}", getattr(d, split))
    for key, sources in SOURCE_KEYS.items():
        if getattr(d, key) != _DATA_DEFAULTS[key] and d.source not in sources:
            users = " or ".join(map(repr, sources))
            raise ConfigError(f"data.{key}", f"only used with source {users}, not {d.source!r}")
    need = {"image_folder": "path", "idx": "path", "skimage": "names", "ellipses": "count"}.get(d.source)
    if need and not getattr(d, need):
        if need in raw:
            what = {"path": "a non-empty path", "names": "a non-empty list", "count": "an int >= 1"}[need]
            got = v.show(raw[need], typed=False)
            raise ConfigError(f"data.{need}", f"expected {what} for source {d.source!r}, got {got}")
        raise ConfigError("data", f"missing required key {need!r} (source {d.source!r} needs it)")
    if d.patch_size > 0 and d.size > 0 and d.patch_size > d.size:
        raise ConfigError("data.patch_size", f"expected an int <= size ({d.size}), got {d.patch_size}")
    if d.patches_per_image > 0 and d.patch_size == 0:
        raise ConfigError(
            "data.patches_per_image", f"expected 0 when patch_size = 0 (no patches), got {d.patches_per_image}"
        )
    return d


def _operator(raw: Any) -> OperatorConfig:
    raw = v.table("operator", raw)
    if "task" not in raw:
        raise ConfigError("operator", "missing required key 'task'")
    task = v.choice(TASKS)("operator.task", raw["task"])
    allowed = task_options(task)
    every = sorted({k for t in TASKS for k in task_options(t)})
    opts = {}
    for k, x in raw.items():
        if k == "task":
            continue
        if k not in allowed:
            if k in every:
                its = ", ".join(allowed)
                raise ConfigError(f"operator.{k}", f"not an option of task {task!r} (its options: {its})")
            raise v.unknown_key("operator", k, ("task", *allowed))
        opts[k] = _TASK_OPTION_CHECKS[k](f"operator.{k}", x)
    try:
        resolved = make_task(task, **opts).options
    except (ValueError, TypeError) as e:
        msg = str(e)
        for k in sorted(opts, key=len, reverse=True):
            for sep in (" must be ", ": "):
                if msg.startswith(k + sep):
                    rest = msg[len(k) + len(sep):]
                    rest = "a number " + rest if rest.startswith(("in [", "in (")) else rest
                    raise ConfigError(f"operator.{k}", ("expected " if sep != ": " else "") + rest) from None
        raise ConfigError("operator", msg) from None
    resolved = dict(resolved)
    return OperatorConfig(task, float(resolved.pop("noise")), resolved)


def _training(raw: Any) -> TrainingConfig:
    t = _section(TrainingConfig, "training", raw)
    if t.warmup_steps >= t.steps:
        raise ConfigError("training.warmup_steps", f"expected an int < steps ({t.steps}), got {t.warmup_steps}")
    for i, m in enumerate(t.milestones):
        if not 0 < m < t.steps:
            raise ConfigError(f"training.milestones[{i}]", f"expected an int in (0, steps={t.steps}), got {m}")
        if i and m <= t.milestones[i - 1]:
            raise ConfigError("training.milestones", f"expected strictly increasing ints, got {list(t.milestones)}")
    if t.schedule == "multistep" and not t.milestones:
        raise ConfigError("training.milestones", "expected at least one milestone for schedule 'multistep', got []")
    if t.schedule == "step" and t.step_size < 1:
        raise ConfigError("training.step_size", f"expected an int >= 1 for schedule 'step', got {t.step_size}")
    return t


def _build(raw: Mapping, known_models: Sequence[str] | None) -> ExperimentConfig:
    raw = v.table("config", raw)
    for k in raw:
        if k not in _ROOT_CHECKS and k not in _SECTIONS:
            raise v.unknown_key("", k, (*_ROOT_CHECKS, *_SECTIONS))
    if "name" not in raw:
        raise ConfigError("config", "missing required key 'name'")
    top = {k: check(k, raw[k]) for k, check in _ROOT_CHECKS.items() if k in raw}
    data = _data(raw.get("data", {}))
    operator = _operator(raw.get("operator", {}))
    model = _section(ModelConfig, "model", raw.get("model", {}))
    if known_models is not None:
        v.choice(tuple(known_models))("model.name", model.name)
    training = _training(raw.get("training", {}))
    evaluation = _section(EvaluationConfig, "evaluation", raw.get("evaluation", {}))
    return ExperimentConfig(**top, data=data, operator=operator, model=model, training=training, evaluation=evaluation)


# ---------------------------------------------------------------- TOML in, overrides
def load_config(
    source: str | os.PathLike | Mapping[str, Any],
    known_models: Sequence[str] | None = None,
    overrides: Sequence[str] | None = None,
) -> ExperimentConfig:
    """Read, override and validate an experiment config.

    Parameters
    ----------
    source:
        Path of a ``.toml`` file, or a dict of the same shape (for tests and shipped configs).
    known_models:
        Registered model names; ``model.name`` must be one of them (``None``: not checked).
    overrides:
        ``"section.key=value"`` strings applied before validation, the value parsed as TOML
        (``"training.steps=50"``, ``'data.names=["coffee"]'``); a bare word such as
        ``training.device=cuda:1`` is taken as a string.

    Raises
    ------
    ConfigError
        One line naming the key path, what was expected and what came.
    FileNotFoundError
        When ``source`` is a path that does not exist.
    """
    if isinstance(source, Mapping):
        raw = source
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            tip = " (load_config takes a path; use loads_config for TOML text)" if "\n" in str(source) else ""
            raise FileNotFoundError(f"experiment config not found: {str(source)!r}{tip}")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(str(path), f"invalid TOML: not UTF-8 ({e.reason} at byte {e.start})") from None
        raw = v.parse_toml(text, str(path))
    else:
        raise TypeError(f"source: expected a path or a dict, got {type(source).__name__}")
    if known_models is not None and (isinstance(known_models, str) or not isinstance(known_models, Sequence)):
        raise TypeError(f"known_models: expected a list of names, got {type(known_models).__name__}")
    return _build(v.apply_overrides(raw, overrides), known_models)


def loads_config(
    text: str, known_models: Sequence[str] | None = None, overrides: Sequence[str] | None = None
) -> ExperimentConfig:
    """:func:`load_config` for TOML text (syntax errors are reported as ``<string>: invalid TOML``)."""
    return load_config(v.parse_toml(text, "<string>"), known_models, overrides)


# ---------------------------------------------------------------- back to dict / TOML
def _plain(x: Any) -> Any:
    if isinstance(x, (list, tuple)):
        return [_plain(y) for y in x]
    if isinstance(x, Mapping):
        return {k: _plain(y) for k, y in x.items()}
    return x


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as nested dicts and lists of TOML values (JSON-friendly; task options
    that are unset, ``None``, are left out); ``load_config(config_to_dict(cfg)) == cfg``."""
    out: dict[str, Any] = {"name": cfg.name, "description": cfg.description, "seed": cfg.seed}
    for sec in _SECTIONS:
        obj = getattr(cfg, sec)
        if sec == "operator":
            opts = {k: x for k, x in obj.options.items() if x is not None}
            out[sec] = {"task": obj.task, "noise": obj.noise, **_plain(opts)}
        else:
            out[sec] = {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}
    return out


def dump_toml(cfg: ExperimentConfig) -> str:
    """The resolved config as TOML text, every key written (nested tables as ``[a.b]`` headers)."""
    lines = [f"# proxlab experiment {cfg.name!r}, resolved: every key is written"]
    v.emit_toml(lines, [], config_to_dict(cfg))
    return "\n".join(lines) + "\n"
