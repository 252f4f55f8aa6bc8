"""Registered parts of an experiment: data sources, losses and evaluation protocols.

An experiment spec (:mod:`proxlab.experiments.config`) names its parts; each part is registered here
once, with a pydantic model of its options, so that the whole spec is validated before a run folder
is made. A new method family plugs in from outside the package the same way::

    from pydantic import BaseModel
    from proxlab.experiments.parts import register_loss, register_protocol, Section

    class HuberOptions(BaseModel, extra="forbid"):
        delta: float = 0.1

    @register_loss("huber", HuberOptions)
    def huber(opts, ctx):                        # ctx: LossContext (task, operator, noise, splits)
        def loss_fn(model, batch, step):        # the Trainer's loss_fn(model, batch, ctx)
            ...
        return loss_fn

    @register_protocol("my-table")
    def my_table(opts, ctx):                     # ctx: RunContext (cfg, model, task, splits, folder, log …)
        return Section("My table", metrics={...}, html="<table>…</table>")

The three kinds:

- **source** ``build(cfg, seed) -> Splits``: train / validation / test images (or a ``Sampler`` for
  training data drawn fresh each step).
- **loss** ``make(opts, ctx) -> loss_fn(model, batch, step_ctx)``: the Trainer's loss; it may return a
  tensor or ``(tensor, {name: float})`` with terms to log.
- **protocol** ``run(opts, ctx) -> Section``: an evaluation that returns a section of the report (its
  title, metrics for ``metrics.json``, HTML, figures as PNG bytes, and the paper's numbers where they exist).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

__all__ = ["Registry", "SOURCES", "LOSSES", "PROTOCOLS", "register_source", "register_loss", "register_protocol",
           "Section", "LossContext", "RunContext", "Part"]


@dataclass(frozen=True)
class Part:
    """A registered part: its name, its builder and the pydantic model of its options (``None``: no options)."""

    name: str
    build: Callable[..., Any]
    options: type[BaseModel] | None = None
    doc: str = ""
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. a loss's {"evaluate": "final"}

    def validate_options(self, raw: dict[str, Any]) -> BaseModel | None:
        if self.options is None:
            if raw:
                raise ValueError(f"takes no options, got {sorted(raw)}")
            return None
        return self.options.model_validate(raw)


class Registry:
    """Parts of one kind by name; ``get`` fails with the known names and a close match."""

    def __init__(self, kind: str):
        self.kind = kind
        self._parts: dict[str, Part] = {}

    def register(self, name: str, options: type[BaseModel] | None = None, *, replace: bool = False,
                 **meta: Any) -> Callable:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} name: expected a non-empty str, got {name!r}")
        if options is not None and not (isinstance(options, type) and issubclass(options, BaseModel)):
            raise TypeError(f"{self.kind} {name!r}: options must be a pydantic BaseModel subclass, got {options!r}")

        def wrap(fn: Callable) -> Callable:
            if name in self._parts and not replace and self._parts[name].build is not fn:
                raise ValueError(f"{self.kind} {name!r} is already registered (pass replace=True to override it)")
            doc = (fn.__doc__ or "").strip().splitlines()
            self._parts[name] = Part(name, fn, options, doc[0] if doc else "", dict(meta))
            return fn

        return wrap

    def unregister(self, name: str) -> None:
        self._parts.pop(name, None)

    def names(self) -> list[str]:
        """Registered names, in the order they were registered."""
        return list(self._parts)

    def __contains__(self, name: object) -> bool:
        return name in self._parts

    def get(self, name: str) -> Part:
        if name not in self._parts:
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}{hint}")
        return self._parts[name]


SOURCES = Registry("data source")
LOSSES = Registry("loss")
PROTOCOLS = Registry("protocol")


def register_source(name: str, options: type[BaseModel] | None = None, **kw) -> Callable:
    """Register ``build(cfg: DataConfig, seed: int) -> Splits`` as data source ``name``."""
    return SOURCES.register(name, options, **kw)


def register_loss(name: str, options: type[BaseModel] | None = None, **kw) -> Callable:
    """Register ``make(opts, ctx: LossContext) -> loss_fn`` as loss ``name`` (``[[stages]] loss = name``).
    ``evaluate="final"``: a stage trained with it hands on its final weights, not the best-validation ones.
    ``validate=make_validate``: ``make_validate(opts, ctx) -> validate(model) -> {"loss": value}`` is the
    stage's validation (lower is better, ``metric = "loss"``) instead of the task's measurement pairs."""
    return LOSSES.register(name, options, **kw)


def register_protocol(name: str, options: type[BaseModel] | None = None, **kw) -> Callable:
    """Register ``run(opts, ctx: RunContext) -> Section`` as evaluation protocol ``name``."""
    return PROTOCOLS.register(name, options, **kw)


@dataclass
class Section:
    """One section of a run's report: what a protocol returns."""

    title: str
    metrics: dict[str, Any] = field(default_factory=dict)
    html: str = ""
    figures: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes (written beside the report)
    paper: dict[str, Any] | None = None  # the paper's numbers for the same protocol, shown beside ours


@dataclass
class LossContext:
    """What a loss builder may use: the config, the task and its operator at the training size, the splits."""

    cfg: Any
    task: Any
    operator: Any
    noise: float
    splits: Any
    stage: Any  # the resolved stage (a TrainingConfig)


@dataclass
class RunContext:
    """What a protocol may use: the trained model (eval mode, on ``device``), its task and data, the run folder."""

    cfg: Any
    model: Any
    task: Any
    operator: Any
    splits: Any
    folder: Any
    device: Any
    log: Callable[[str], None]
    history: list = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)  # metrics of the protocols run before this one
    children: dict[str, dict[str, Any]] = field(default_factory=dict)  # a sweep's runs: label -> cfg, model, metrics, folder
