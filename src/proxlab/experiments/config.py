"""The experiment spec: a TOML file validated as a whole by pydantic before anything runs.

An experiment names registered parts (:mod:`proxlab.experiments.parts`, :mod:`proxlab.registry`)::

    name = "my-run"                 # required; also description, seed
    [data]                          # a registered source and its options
    source = "mnist5k"
    [operator]                      # the task (a discriminated union on `task`) and its noise
    task = "deblur"
    blur_sigma = 1.0
    [[operator.variants]]           # test-time variants (out-of-distribution noise, masks, blur)
    label = "sigma 0.04"
    noise = 0.04
    [model]                         # a registered model; options checked against its constructor
    name = "dncnn"
    [model.options]
    depth = 5
    [training]                      # the defaults of every stage
    steps = 1000
    loss = "mse"
    [[stages]]                      # optional: several stages, each overriding [training] keys
    loss = "l1"                     #   and saying where its weights start: init = "fresh" |
    steps = 500                     #   "previous" | "zoo:NAME" | "path.safetensors"
    [evaluation]
    baselines = ["init", "fista-tv"]
    [[evaluation.protocols]]        # each returns a section of the report
    name = "test_split"

:func:`load_config` reads the file (or a dict), applies ``"section.key=value"`` overrides
(``stages.1.steps=50`` for an array of tables), validates every key — the model's options against
its constructor's signature, each loss's, protocol's and source's options against its own pydantic
model — and returns a frozen :class:`ExperimentConfig`. :func:`dump_toml` writes the resolved spec
back with tomli-w, so that ``load_config(dump_toml(cfg)) == cfg``.

Every problem raises :class:`ConfigError` (a ``ValueError``) with one line naming the full key path,
what was expected and what came, e.g. ``training.lr: expected a number > 0, got -1`` or
``training.stpes: unknown key; did you mean 'steps'?``. Booleans are never ints; ints are accepted
(and stored as floats) where numbers are expected.
"""

from __future__ import annotations

import inspect
import os
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model, field_validator, model_validator

from ..data.sources import MNIST5K_SPLITS, SKIMAGE_IMAGES
from ..methods import CLASSIC_METHODS
from ..tasks import TASKS, Task, make_task, task_options
from ..training.schedules import SCHEDULES
from . import _toml as v
from ._errors import _choices, _Fail, _validate, _validate_part_options
from ._toml import ConfigError
from .parts import LOSSES as _LOSS_PARTS
from .parts import PROTOCOLS as _PROTOCOL_PARTS
from .parts import SOURCES as _SOURCE_PARTS

__all__ = [
    "ConfigError",
    "ExperimentConfig",
    "DataConfig",
    "OperatorConfig",
    "TaskVariant",
    "ModelConfig",
    "TrainingConfig",
    "ProtocolConfig",
    "EvaluationConfig",
    "SweepRun",
    "SweepConfig",
    "load_config",
    "loads_config",
    "config_to_dict",
    "dump_toml",
    "check_model_options",
    "DATA_SOURCES",
    "SOURCE_KEYS",
    "SCHEDULES",
    "BEST_METRICS",
    "EVAL_METRICS",
    "PRECISIONS",
]

DATA_SOURCES = ("mnist5k", "skimage", "ellipses", "image_folder", "idx", "lfw")  # the built-in image sources
#: Keys of ``[data]`` that only some sources use; a non-default value with another source is an error.
SOURCE_KEYS: dict[str, tuple[str, ...]] = {
    "names": ("skimage",),
    "test_names": ("skimage",),
    "path": ("image_folder", "idx"),
    "labels_path": ("idx",),
    "test_path": ("idx",),
    "count": ("ellipses",),
    "val_count": ("ellipses",),
    "test_count": ("ellipses",),
}
BEST_METRICS = ("psnr", "ssim", "loss")
EVAL_METRICS = ("psnr", "ssim", "mse", "nmse")
PRECISIONS = ("fp32", "bf16")
_DEVICE = re.compile(r"(auto|cpu|cuda|cuda:\d+|mps)\Z")
_NAME = re.compile(r"[a-z0-9._-]+\Z")

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
# lists from TOML become tuples (lax only for the container; items stay strict)
StrTuple = Annotated[tuple[str, ...], Field(strict=False)]
IntTuple = Annotated[tuple[int, ...], Field(strict=False)]
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class _Section(BaseModel):
    model_config = _STRICT


_TOML_SCALARS = (bool, int, float, str, __import__("datetime").date, __import__("datetime").time)


def _toml_values(x: Any, key: str = "") -> Any:
    """A free-form table's value as TOML can hold it (tuples become lists); anything else fails."""
    if isinstance(x, Mapping):
        return {k: _toml_values(y, f"{key}.{k}" if key else str(k)) for k, y in x.items()}
    if isinstance(x, (list, tuple)):
        return [_toml_values(y, f"{key}[{i}]") for i, y in enumerate(x)]
    if not isinstance(x, _TOML_SCALARS):
        raise _Fail(key, f"expected a TOML value (bool, int, float, string, date, array or table), got {v.show(x)}")
    return x


FreeTable = Annotated[dict[str, Any], Field(strict=False)]


def _free(cls_field: str):
    def check(cls, value):
        return _toml_values(value)  # a _Fail's key is relative to the field (pydantic adds the field)

    return field_validator(cls_field)(classmethod(check))


# ---------------------------------------------------------------- [data]
class DataConfig(_Section):
    """``[data]``: where images come from and how training samples are cut from them.

    ``source`` is a registered data source (:data:`~proxlab.experiments.parts.SOURCES`; the built-in
    image sources are :data:`DATA_SOURCES`). For those, ``train``/``val``/``test`` are split names (for
    ``mnist5k`` one of ``train``, ``val``, ``test``); ``names``/``test_names`` scikit-image image names
    (``skimage``); ``path``/``labels_path`` files or folders (``image_folder``, ``idx``);
    ``count``/``val_count``/``test_count`` image counts (``ellipses``); ``test_path`` a separate test file
    for ``idx`` (then ``path`` gives train and validation, e.g. Fashion-MNIST's 60,000 / 10,000). ``size``
    resizes to ``size × size`` (0: native), ``pad`` zero-pads every side by ``pad`` pixels after that
    (28×28 MNIST → 32×32 with ``pad = 2``), ``patch_size`` > 0 trains on random patches (``patches_per_image`` per image),
    ``augment`` adds dihedral flips/rotations. A registered source's own keys go to ``options``,
    validated by its options model.
    """

    source: str
    train: Annotated[str, Field(min_length=1)] = "train"
    val: Annotated[str, Field(min_length=1)] = "val"
    test: Annotated[str, Field(min_length=1)] = "test"
    names: StrTuple = ()
    test_names: StrTuple = ()
    path: str = ""
    labels_path: str = ""
    test_path: str = ""
    count: NonNegInt = 0
    val_count: NonNegInt = 0
    test_count: NonNegInt = 0
    size: NonNegInt = 0
    pad: NonNegInt = 0
    patch_size: NonNegInt = 0
    patches_per_image: NonNegInt = 0
    augment: bool = False
    options: FreeTable = Field(default_factory=dict)
    _options_toml = _free("options")

    @field_validator("names", "test_names")
    @classmethod
    def _skimage_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for i, n in enumerate(names):
            if n not in SKIMAGE_IMAGES:
                raise _Fail(f"[{i}]", f"expected one of {_choices(SKIMAGE_IMAGES)}, got {n!r}{v.hint(n, SKIMAGE_IMAGES)}")
        return names

    @model_validator(mode="after")
    def _consistent(self) -> DataConfig:
        part = _part(_SOURCE_PARTS, self.source, "source")
        defaults = DataConfig.model_fields
        for key, sources in SOURCE_KEYS.items():
            if getattr(self, key) != defaults[key].default and self.source not in sources:
                raise _Fail(key, f"only used with source {' or '.join(map(repr, sources))}, not {self.source!r}")
        if self.source == "mnist5k":
            for split in ("train", "val", "test"):
                got = getattr(self, split)
                if got not in MNIST5K_SPLITS:
                    raise _Fail(split, f"expected one of {_choices(MNIST5K_SPLITS)}, got {got!r}"
                                       f"{v.hint(got, MNIST5K_SPLITS)}")
        need = {"image_folder": "path", "idx": "path", "skimage": "names", "ellipses": "count"}.get(self.source)
        if need and not getattr(self, need):
            if need in self.model_fields_set:
                what = {"path": "a non-empty path", "names": "a non-empty list", "count": "an int >= 1"}[need]
                raise _Fail(need, f"expected {what} for source {self.source!r}, got {v.show(getattr(self, need), typed=False)}")
            raise _Fail("", f"missing required key {need!r} (source {self.source!r} needs it)")
        if self.patch_size > 0 and 0 < self.size < self.patch_size:
            raise _Fail("patch_size", f"expected an int <= size ({self.size}), got {self.patch_size}")
        if self.patches_per_image > 0 and self.patch_size == 0:
            raise _Fail("patches_per_image", f"expected 0 when patch_size = 0 (no patches), got {self.patches_per_image}")
        if self.source not in DATA_SOURCES or self.options:
            _validate_part_options(part, self.options, "options")
        return self


# ---------------------------------------------------------------- [operator]: a discriminated union of tasks
_OPTION_TYPES: dict[str, Any] = {
    "noise": NonNegFloat,
    "blur_sigma": PosFloat,
    "ratio": float,
    "box_size": NonNegInt,
    "angles": PosInt,
    "mask": str,
    "mask_file": Annotated[str, Field(min_length=1)],
    "phi": Annotated[str, Field(min_length=1)],
    "qinit": Annotated[str, Field(min_length=1)],
}


def _task_model(name: str) -> type[BaseModel]:
    fields: dict[str, Any] = {"task": (Literal[name], ...), "label": (str, "")}
    for k in task_options(name):
        fields[k] = (_OPTION_TYPES[k], None)  # unset: None (defaults are not validated)
    return create_model(f"{name.capitalize()}TaskOptions", __config__=_STRICT, **fields)


_TASK_MODELS = {t: _task_model(t) for t in TASKS}
_TaskUnion = Annotated[Union[tuple(_TASK_MODELS.values())], Field(discriminator="task")]


class TaskVariant(_Section):
    """A test-time variant of the task (``[[operator.variants]]``): a ``label`` and the options it changes
    (out-of-distribution noise, masks, blur); the test protocol scores the model on each."""

    label: Annotated[str, Field(min_length=1)]
    options: dict[str, Any] = Field(default_factory=dict, strict=False)

    def build_task(self, base: OperatorConfig, seed: int = 0) -> Task:
        return make_task(base.task, seed=seed, **{**base.options, "noise": base.noise, **self.options})


class OperatorConfig(_Section):
    """``[operator]``: the task (:data:`~proxlab.tasks.TASKS`), its noise level and its other options,
    resolved by :func:`~proxlab.tasks.make_task` (unset ones take the task's defaults; ``noise`` too,
    e.g. 0.1 for ``denoise``, 0.01 for ``deblur``), and its test-time ``variants``."""

    task: str
    noise: float
    options: dict[str, Any] = Field(default_factory=dict, strict=False)
    variants: tuple[TaskVariant, ...] = Field(default=(), strict=False)

    def build_task(self, seed: int = 0) -> Task:
        """The :class:`~proxlab.tasks.Task` this section describes."""
        return make_task(self.task, seed=seed, noise=self.noise, **self.options)


def _resolve_task(raw: Any, where: str) -> tuple[str, float, dict]:
    """Validate one task table (the union member picked by ``task``) and resolve it with make_task."""
    if not isinstance(raw, Mapping):
        raise ConfigError(where, f"expected a table, got {v.show(raw)}")
    if "task" not in raw:
        raise ConfigError(where, "missing required key 'task'")
    task = raw["task"]
    if task not in TASKS:
        raise ConfigError(f"{where}.task", f"expected one of {_choices(TASKS)}, got "
                                           f"{repr(task) if isinstance(task, str) else v.show(task)}"
                                           f"{v.hint(str(task), TASKS)}")
    every = sorted({k for t in TASKS for k in task_options(t)})
    for k in raw:
        if k not in ("task", "label", *task_options(task)):
            if k in every:
                raise ConfigError(f"{where}.{k}", f"not an option of task {task!r} "
                                                  f"(its options: {', '.join(task_options(task))})")
            raise v.unknown_key(where, k, ("task", *task_options(task)))
    _validate(_TASK_MODELS[task], raw, where)
    opts = {k: (float(x) if k in ("noise", "blur_sigma", "ratio") and isinstance(x, int) else x)
            for k, x in raw.items() if k not in ("task", "label")}
    try:
        resolved = dict(make_task(task, **opts).options)
    except (ValueError, TypeError) as e:
        msg = str(e)
        for k in sorted(opts, key=len, reverse=True):
            for sep in (" must be ", ": "):
                if msg.startswith(k + sep):
                    rest = msg[len(k) + len(sep):]
                    rest = "a number " + rest if rest.startswith(("in [", "in (")) else rest
                    raise ConfigError(f"{where}.{k}", ("expected " if sep != ": " else "") + rest) from None
        raise ConfigError(where, msg) from None
    return task, float(resolved.pop("noise")), resolved


def _operator(raw: Any) -> OperatorConfig:
    raw = _table("operator", raw)
    raw = dict(raw)
    variants_raw = raw.pop("variants", [])
    task, noise, options = _resolve_task(raw, "operator")
    if not isinstance(variants_raw, list):
        raise ConfigError("operator.variants", f"expected an array of tables, got {v.show(variants_raw)}")
    variants = []
    for i, var in enumerate(variants_raw):
        where = f"operator.variants[{i}]"
        var = _table(where, var)
        if "label" not in var:
            raise ConfigError(where, "missing required key 'label'")
        changes = {k: x for k, x in var.items() if k != "label"}
        _resolve_task({"task": task, **options, "noise": noise, **changes}, where)
        variants.append(TaskVariant(label=var["label"], options=changes))
    return OperatorConfig(task=task, noise=noise, options=options, variants=tuple(variants))


# ---------------------------------------------------------------- [model]
class ModelConfig(_Section):
    """``[model]``: a registered model ``name`` and keyword ``options`` for its constructor."""

    name: Annotated[str, Field(min_length=1)]
    options: FreeTable = Field(default_factory=dict)
    _options_toml = _free("options")


def _annotation_type(hint: Any) -> Any:
    """A constructor's type hint as pydantic checks it (containers lax, scalars strict; torch types: any)."""
    origin = typing.get_origin(hint)
    if hint is inspect.Parameter.empty or hint is Any:
        return Any
    if origin in (Union, getattr(__import__("types"), "UnionType", Union)):
        return Union[tuple(_annotation_type(a) for a in typing.get_args(hint))]
    if hint in (int, float, str, bool, type(None)):
        return hint
    if origin in (tuple, list, dict) or hint in (tuple, list, dict):
        return Annotated[hint, Field(strict=False)]
    if origin is Literal:
        return hint
    return Any


def check_model_options(name: str, options: Mapping[str, Any], where: str = "model.options") -> None:
    """Check ``options`` against the registered model's constructor: every key a parameter, every value
    of its annotated type, every required parameter given (``operator`` is the runner's to pass)."""
    from ..registry import model_entry

    info = model_entry(name)
    factory = info.factory
    target = factory.__init__ if inspect.isclass(factory) else factory
    sig = inspect.signature(target)
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # an annotation that cannot be resolved: check names only
        hints = {}
    fields: dict[str, Any] = {}
    accepts_any = False
    for p in sig.parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.VAR_KEYWORD:
            accepts_any = True
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        if p.name == "operator" and info.needs_operator:
            continue
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (_annotation_type(hints.get(p.name, inspect.Parameter.empty)), default)
    model = create_model(f"{name}Options", __config__=ConfigDict(extra="allow" if accepts_any else "forbid",
                                                                    strict=True), **fields)
    _validate(model, dict(options), where)


# ---------------------------------------------------------------- [training] and [[stages]]
class TrainingConfig(_Section):
    """``[training]`` (and each ``[[stages]]`` entry, which overrides these keys): optimiser, schedule,
    loss, loop cadence, early stopping, hardware, and where the weights start.

    ``loss`` is a registered loss (:data:`~proxlab.experiments.parts.LOSSES`) with ``loss_options``
    checked by its options model. ``lr_groups`` maps a parameter-name substring to its own learning
    rate; ``warmup_steps`` are linear warm-up steps; ``milestones``/``gamma`` drive ``multistep``,
    ``step_size``/``gamma`` drive ``step``. ``metric`` says what the best checkpoint is; ``patience``
    counts validations without improvement before stopping (0: never); ``grad_clip`` 0 means no
    clipping; ``snapshot_every`` > 0 also saves the weights every that many steps to
    ``snapshots/[stageK_]step_NNNNNN.safetensors`` (for learning curves); ``steps = 0`` trains nothing (the model is evaluated as ``init`` leaves it, e.g. a zoo
    entry); ``threads`` > 0 sets torch's intra-op threads for the stage (0: leave them). ``init``: ``fresh`` (the model as built), ``previous`` (the weights the previous stage
    ended with; the default of every stage after the first), ``zoo:NAME``, a ``.safetensors`` path, or in a sweep
    ``run:LABEL``, the weights an earlier run of the same sweep kept (its ``model.safetensors``: a pre-training run).
    ``optimizer``: ``adam`` or ``lbfgs`` (:class:`torch.optim.LBFGS` with a strong-Wolfe line search, ``lr`` its
    first trial step, ``lbfgs_iterations`` per step on one batch, ``lbfgs_history`` stored pairs; full-batch when
    ``batch_size`` is the training set). ``micro_batch`` > 0 runs each batch through the loss in pieces of that many
    samples with the gradients accumulated (a large batch in the memory of a small one).
    ``steps_scale`` shortens (or lengthens) a schedule: ``steps``, ``warmup_steps``, ``milestones``,
    ``step_size`` and a loss's own step counts are run as :meth:`scaled` of them (``--set training.steps_scale=0.25``).
    """

    name: str = ""
    steps: NonNegInt = 1000
    batch_size: PosInt = 32
    lr: PosFloat = 1e-3
    lr_groups: dict[str, PosFloat] = Field(default_factory=dict, strict=False)
    weight_decay: NonNegFloat = 0.0
    schedule: str = "constant"
    warmup_steps: NonNegInt = 0
    milestones: IntTuple = ()
    gamma: Annotated[float, Field(gt=0, le=1)] = 0.1
    step_size: NonNegInt = 0
    loss: str = "mse"
    loss_options: FreeTable = Field(default_factory=dict)
    _loss_options_toml = _free("loss_options")
    grad_clip: NonNegFloat = 0.0
    val_every: PosInt = 100
    checkpoint_every: PosInt = 100
    log_every: PosInt = 10
    patience: NonNegInt = 0
    metric: Literal["psnr", "ssim", "loss"] = "psnr"
    num_workers: NonNegInt = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16"] = "fp32"
    threads: NonNegInt = 0
    snapshot_every: NonNegInt = 0
    init: str = "fresh"
    steps_scale: PosFloat = 1.0
    _notes: list[str] = PrivateAttr(default_factory=list)  # what validation adjusted, for the run's log
    optimizer: Literal["adam", "lbfgs"] = "adam"
    lbfgs_iterations: PosInt = 1
    lbfgs_history: PosInt = 10
    micro_batch: NonNegInt = 0

    def scaled(self, n: int) -> int:
        """``n`` steps under ``steps_scale``: ``round(n * steps_scale)``, at least 1 (0 stays 0)."""
        return 0 if n == 0 else max(1, round(n * self.steps_scale))

    @model_validator(mode="after")
    def _consistent(self) -> TrainingConfig:
        if self.schedule not in SCHEDULES:
            raise _Fail("schedule", f"expected one of {_choices(SCHEDULES)}, got {self.schedule!r}"
                                    f"{v.hint(self.schedule, SCHEDULES)}")
        if not _DEVICE.match(self.device):
            raise _Fail("device", f"expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
                                  f"{v.hint(self.device, ('auto', 'cpu', 'cuda'))}")
        if self.optimizer == "lbfgs":
            for key, why in (("lr_groups", "one parameter group"), ("weight_decay", "no weight decay"),
                             ("grad_clip", "no clipping (its line search needs the true gradient)")):
                if getattr(self, key):
                    raise _Fail(key, f"optimizer 'lbfgs' takes {why}, expected it unset, got {getattr(self, key)!r}")
        if self.steps > 0:  # steps = 0 evaluates only: the schedule is not used (an evaluation needs one override)
            self._check_schedule()
        _validate_part_options(_part(_LOSS_PARTS, self.loss, "loss"), self.loss_options, "loss_options")
        if not (self.init in ("fresh", "previous") or self.init.startswith(("zoo:", "run:"))
                or self.init.endswith(".safetensors")):
            raise _Fail("init", f"expected 'fresh', 'previous', 'zoo:NAME', 'run:LABEL' or a .safetensors path, "
                                f"got {self.init!r}")
        return self

    def _check_schedule(self) -> None:
        """The schedule keys against the steps (for a stage that trains)."""
        if self.warmup_steps and self.warmup_steps >= self.steps:  # e.g. --set training.steps=30 on a long recipe
            clipped = self.steps // 10
            self._notes.append(f"training.warmup_steps: {self.warmup_steps} is not below steps = {self.steps}; the "
                              f"warm-up is clipped to {clipped} steps (a tenth of the run)")
            object.__setattr__(self, "warmup_steps", clipped)
        for i, m in enumerate(self.milestones):
            if not 0 < m < self.steps:
                raise _Fail(f"milestones[{i}]", f"expected an int in (0, steps={self.steps}), got {m} (to shorten "
                                                f"the whole schedule, set training.steps_scale instead of steps)")
            if i and m <= self.milestones[i - 1]:
                raise _Fail("milestones", f"expected strictly increasing ints, got {list(self.milestones)}")
        ms = [self.scaled(m) for m in self.milestones]
        if self.steps_scale != 1 and (any(b <= a for a, b in zip(ms, ms[1:])) or (ms and ms[-1] >= self.scaled(self.steps))):
            raise _Fail("steps_scale", f"expected a factor that keeps the milestones apart and below the steps, got "
                                       f"{self.steps_scale:g} (milestones {ms} of {self.scaled(self.steps)} steps)")
        if self.schedule == "multistep" and not self.milestones:
            raise _Fail("milestones", "expected at least one milestone for schedule 'multistep', got []")
        if self.schedule == "step" and self.step_size < 1:
            raise _Fail("step_size", f"expected an int >= 1 for schedule 'step', got {self.step_size}")


# ---------------------------------------------------------------- [evaluation]
class ProtocolConfig(_Section):
    """One ``[[evaluation.protocols]]`` entry: a registered protocol ``name`` and its options."""

    name: str
    options: FreeTable = Field(default_factory=dict)
    _options_toml = _free("options")


class EvaluationConfig(_Section):
    """``[evaluation]``: test metrics, classic baselines (names of :data:`~proxlab.methods.CLASSIC_METHODS`),
    a cap on test images (0: all) and the evaluation ``protocols`` (default: the test split)."""

    metrics: Annotated[tuple[Literal["psnr", "ssim", "mse", "nmse"], ...], Field(strict=False, min_length=1)] = \
        ("psnr", "ssim")
    baselines: StrTuple = ("init", "fista-tv")
    max_test_images: NonNegInt = 0
    protocols: tuple[ProtocolConfig, ...] = Field(default=(ProtocolConfig(name="test_split"),), strict=False)

    @model_validator(mode="after")
    def _consistent(self) -> EvaluationConfig:
        for key in ("metrics", "baselines"):
            vals = getattr(self, key)
            twice = next((x for i, x in enumerate(vals) if x in vals[:i]), None)
            if twice is not None:
                raise _Fail(key, f"expected no repeated entries, got {v.show(twice, typed=False)} twice")
        for i, b in enumerate(self.baselines):
            if b not in CLASSIC_METHODS:
                raise _Fail(f"baselines[{i}]", f"expected one of {_choices(CLASSIC_METHODS)}, got {b!r}"
                                               f"{v.hint(b, tuple(CLASSIC_METHODS))}")
        for i, p in enumerate(self.protocols):
            _validate_part_options(_part(_PROTOCOL_PARTS, p.name, f"protocols[{i}].name"), p.options,
                                   f"protocols[{i}].options")
        return self


# ---------------------------------------------------------------- [sweep]
class SweepRun(_Section):
    """One run of a sweep: a ``label`` (its folder name) and the overrides (``section.key=value``) it applies."""

    label: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")]
    set: StrTuple = ()


class SweepConfig(_Section):
    """``[sweep]``: the same experiment run once per entry of ``runs`` (each with its overrides, in its own
    folder ``runs/LABEL``), then ``protocols`` that compare the runs (they see every run's model and metrics).
    ``only`` (labels; empty: all) trains just those runs, e.g. ``--set "sweep.only=['adam']"``; the others are
    kept if they finished earlier in the same folder. The protocols run once every run of ``only`` (all runs when
    it is empty) has finished, over the finished runs."""

    runs: Annotated[tuple[SweepRun, ...], Field(strict=False, min_length=1)]
    protocols: tuple[ProtocolConfig, ...] = Field(default=(), strict=False)
    only: StrTuple = ()

    @model_validator(mode="after")
    def _consistent(self) -> SweepConfig:
        labels = [r.label for r in self.runs]
        twice = next((x for i, x in enumerate(labels) if x in labels[:i]), None)
        if twice is not None:
            raise _Fail("runs", f"expected unique labels, got {twice!r} twice")
        for i, label in enumerate(self.only):
            if label not in labels:
                raise _Fail(f"only[{i}]", f"expected one of the runs' labels {labels}, got {label!r}")
        for i, p in enumerate(self.protocols):
            _validate_part_options(_part(_PROTOCOL_PARTS, p.name, f"protocols[{i}].name"), p.options,
                                   f"protocols[{i}].options")
        return self


# ---------------------------------------------------------------- the whole spec
class ExperimentConfig(_Section):
    """A whole experiment; build it with :func:`load_config`. ``stages`` are resolved: each is a full
    :class:`TrainingConfig` (``[training]`` updated by that stage's keys); without ``[[stages]]`` there
    is one stage, ``[training]`` itself."""

    name: str
    description: str = ""
    seed: NonNegInt = 0
    data: DataConfig
    operator: OperatorConfig
    model: ModelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    stages: tuple[TrainingConfig, ...] = ()
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    sweep: SweepConfig | None = None

    def build_task(self) -> Task:
        """The task of ``[operator]``, seeded with the experiment's ``seed``."""
        return self.operator.build_task(self.seed)

    @property
    def resolved_stages(self) -> tuple[TrainingConfig, ...]:
        return self.stages or (self.training,)

    def sweep_run(self, label: str, known_models: Sequence[str] | None = None) -> ExperimentConfig:
        """The config of the sweep's run ``label``: this spec without ``[sweep]``, its overrides applied."""
        if self.sweep is None:
            raise ValueError(f"experiment {self.name!r} has no [sweep]")
        run = next((r for r in self.sweep.runs if r.label == label), None)
        if run is None:
            raise ValueError(f"sweep run {label!r} not found; runs: {[r.label for r in self.sweep.runs]}")
        raw = config_to_dict(self)
        raw.pop("sweep")
        raw["name"] = f"{self.name}.{label}"
        return _build(v.apply_overrides(raw, list(run.set)), known_models)


_ROOT = ("name", "description", "seed", "data", "operator", "model", "training", "stages", "evaluation", "sweep")


def _part(registry, name: str, key: str):
    _ensure_builtins()
    if name not in registry:
        known = registry.names()
        raise _Fail(key, f"expected one of {_choices(known)}, got {name!r}{v.hint(name, known)}")
    return registry.get(name)


def _ensure_builtins() -> None:
    from . import builtin  # noqa: F401  (registers the built-in sources, losses and protocols)


def _table(where: str, raw: Any) -> Mapping:
    if not isinstance(raw, Mapping):
        raise ConfigError(where, f"expected a table, got {v.show(raw)}")
    return raw


def _build(raw: Mapping, known_models: Sequence[str] | None) -> ExperimentConfig:
    raw = _table("config", raw)
    for k in raw:
        if k not in _ROOT:
            raise v.unknown_key("", k, _ROOT)
    if "name" not in raw:
        raise ConfigError("config", "missing required key 'name'")
    name = raw["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError("name", f"expected a str matching [a-z0-9._-]+, got {v.show(name, typed=False)}")
    if "description" in raw and not isinstance(raw["description"], str):
        raise ConfigError("description", f"expected a string, got {v.show(raw['description'])}")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError("seed", f"expected an int >= 0, got {v.show(seed)}")
    data = _validate(DataConfig, _table("data", raw.get("data", {})), "data")
    operator = _operator(raw.get("operator", {}))
    model = _validate(ModelConfig, _table("model", raw.get("model", {})), "model")
    if known_models is not None:
        if model.name not in known_models:
            raise ConfigError("model.name", f"expected one of {_choices(known_models)}, got {model.name!r}"
                                            f"{v.hint(model.name, known_models)}")
        check_model_options(model.name, model.options)
    training_raw = dict(_table("training", raw.get("training", {})))
    training = _validate(TrainingConfig, training_raw, "training")
    stages_raw = raw.get("stages", [])
    if not isinstance(stages_raw, list):
        raise ConfigError("stages", f"expected an array of tables ([[stages]]), got {v.show(stages_raw)}")
    stages = []
    for i, st in enumerate(stages_raw):
        st = dict(_table(f"stages[{i}]", st))
        if i and "init" not in st:
            st["init"] = "previous"
        if i == 0 and st.get("init") == "previous":
            raise ConfigError("stages[0].init", "expected 'fresh', 'zoo:NAME' or a path: the first stage has no previous one")
        merged = {**training_raw, **st}
        if "loss" in st and "loss_options" not in st:
            merged.pop("loss_options", None)  # a stage with its own loss does not inherit another loss's options
        stages.append(_validate(TrainingConfig, merged, f"stages[{i}]"))
    evaluation = _validate(EvaluationConfig, _table("evaluation", raw.get("evaluation", {})), "evaluation")
    sweep = None
    if "sweep" in raw:
        sweep = _validate(SweepConfig, _table("sweep", raw["sweep"]), "sweep")
        base = {k: x for k, x in raw.items() if k != "sweep"}
        for i, run in enumerate(sweep.runs):  # every run's config is checked now, not when its turn comes
            try:
                child = _build(v.apply_overrides(base, list(run.set)), known_models)
            except ConfigError as e:
                raise ConfigError(f"sweep.runs[{i}] ({run.label}): {e.key}", str(e)[len(e.key) + 2:]) from None
            earlier = [r.label for r in sweep.runs[:i]]
            for key, st in _inits(child.training, child.stages):
                if st.init.startswith("run:") and st.init[4:] not in earlier:
                    raise ConfigError(f"sweep.runs[{i}] ({run.label}): {key}",
                                      f"expected 'run:LABEL' of an earlier run of the sweep {earlier}, got {st.init!r}")
    return ExperimentConfig(name=name, description=raw.get("description", ""), seed=seed, data=data,
                            operator=operator, model=model, training=training, stages=tuple(stages),
                            evaluation=evaluation, sweep=sweep)


def _inits(training: TrainingConfig, stages) -> list[tuple[str, TrainingConfig]]:
    """``(key, stage)`` of each stage (``training`` when there are no ``[[stages]]``), for ``init`` checks."""
    if stages:
        return [(f"stages[{k}].init", st) for k, st in enumerate(stages)]
    return [("training.init", training)]


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
        Registered model names; ``model.name`` must be one of them and ``model.options`` must fit its
        constructor (``None``: neither is checked).
    overrides:
        ``"section.key=value"`` strings applied before validation, the value parsed as TOML
        (``"training.steps=50"``, ``'data.names=["coffee"]'``, ``stages.1.lr=1e-4``); a bare word such
        as ``training.device=cuda:1`` is taken as a string.

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
    cfg = _build(v.apply_overrides(raw, overrides), known_models)
    if cfg.sweep is None:
        for key, st in _inits(cfg.training, cfg.stages):
            if st.init.startswith("run:"):
                raise ConfigError(key, f"'run:LABEL' names a run of a sweep and this experiment has no [sweep], "
                                       f"got {st.init!r}")
    return cfg


def loads_config(
    text: str, known_models: Sequence[str] | None = None, overrides: Sequence[str] | None = None
) -> ExperimentConfig:
    """:func:`load_config` for TOML text (syntax errors are reported as ``<string>: invalid TOML``)."""
    return load_config(v.parse_toml(text, "<string>"), known_models, overrides)


# ---------------------------------------------------------------- back to dict / TOML
def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as nested dicts and lists of TOML values (JSON-friendly; task options that
    are unset, ``None``, are left out); ``load_config(config_to_dict(cfg)) == cfg``."""
    d = cfg.model_dump(mode="python")

    def plain(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return [plain(y) for y in x]
        if isinstance(x, Mapping):
            return {k: plain(y) for k, y in x.items()}
        return x

    d = plain(d)
    op = d["operator"]
    d["operator"] = {"task": op["task"], "noise": op["noise"],
                     **{k: x for k, x in op["options"].items() if x is not None}}
    if op["variants"]:
        d["operator"]["variants"] = [{"label": var["label"], **var["options"]} for var in op["variants"]]
    if not d["stages"]:
        del d["stages"]
    if d["sweep"] is None:
        del d["sweep"]
    if not d["data"]["options"]:
        del d["data"]["options"]
    return d


def dump_toml(cfg: ExperimentConfig) -> str:
    """The resolved config as TOML text (tomli-w), every key written."""
    import tomli_w

    return f"# proxlab experiment {cfg.name!r}, resolved: every key is written\n" + tomli_w.dumps(config_to_dict(cfg))
