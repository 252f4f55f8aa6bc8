r"""Parts of plug-and-play experiments: a learned prox beside the classic methods, every weight chosen on
validation images (``configs/lpn-pnp.toml``: the LPN paper's Section 5.2 with the zoo LPNs).

- source ``ellipse_sets``: random ellipse phantoms in a validation and a test set drawn from their own
  seeds (offsets from the experiment's seed); no training images.
- protocol ``validated_methods``: for each method, the weight that gives the best mean PSNR on the
  validation images (from a small grid), then PSNR / SSIM on the test images. The grid values are
  relative to ‖A‖² (1 for blur and block CS, thousands for CT); the chosen value is stored and
  reported as it stands in the grid, and scaled by ‖A‖² only when the solver is called. PnP-ADMM's ρ
  is passed as it is: :func:`proxlab.methods.pnp` makes it relative to ‖A‖² itself.
- protocol ``pnp_convergence``: the relative change :math:`\|x_{k+1} - x_k\| / \|x_k\|` of PnP-ADMM and
  PnP-PGD per iteration (at the PnP-ADMM ρ chosen by ``validated_methods``, or a given one).
- sweep protocol ``pnp_table``: the runs of a sweep (one setting each) side by side, with their
  convergence curves in one figure.

The model of the run (``training.steps = 0``, ``training.init = "zoo:NAME"``) is the learned prox.
"""

from __future__ import annotations

import html
import time
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..methods import CLASSIC_METHODS
from .datasets import Splits
from .parts import RunContext, Section, register_protocol, register_source

__all__ = ["DEFAULT_METHODS", "DEFAULT_GRIDS", "run_method", "choose_weight", "measure", "convergence"]

_OPTS = ConfigDict(extra="forbid", strict=True, frozen=True)
PosInt = Annotated[int, Field(ge=1)]

DEFAULT_METHODS = ("init", "tikhonov", "fista-tv", "admm-tv", "fista-wavelet", "pnp-admm", "pnp-pgd")
#: Validation grids, relative to ‖A‖²: Tikhonov's ρ, the TV / wavelet λ (ADMM's penalty is 30 λ), PnP-ADMM's ρ.
DEFAULT_GRIDS: dict[str, tuple[float, ...]] = {
    "tikhonov": (1e-3, 1e-2, 1e-1, 1.0),
    "fista-tv": (1e-3, 3e-3, 1e-2, 3e-2),
    "admm-tv": (1e-3, 3e-3, 1e-2, 3e-2),
    "fista-wavelet": (1e-3, 3e-3, 1e-2, 3e-2),
    "pnp-admm": (0.03, 0.1, 0.3, 1.0),
}


# ---------------------------------------------------------------- source
class EllipseSetsOptions(BaseModel):
    """``[data] options`` of source ``ellipse_sets`` (seeds are offsets from the experiment's seed)."""

    model_config = _OPTS
    size: PosInt = 128
    val_count: PosInt = 4
    test_count: PosInt = 8
    val_seed: Annotated[int, Field(ge=0)] = 500
    test_seed: Annotated[int, Field(ge=0)] = 900

    @model_validator(mode="after")
    def _apart(self) -> EllipseSetsOptions:
        if self.val_seed == self.test_seed:
            raise ValueError(f"test_seed: expected a seed other than val_seed ({self.val_seed}) (the test images would be "
                             f"the validation images), got {self.test_seed}")
        return self


@register_source("ellipse_sets", EllipseSetsOptions)
def _ellipse_sets(cfg, seed: int, task=None) -> Splits:
    """Validation and test ellipse phantoms from their own seeds; no training images (evaluation only)."""
    from ..data import random_ellipses

    opts = EllipseSetsOptions.model_validate(dict(cfg.options))
    val = random_ellipses(opts.val_count, opts.size, seed=seed + opts.val_seed)
    test = random_ellipses(opts.test_count, opts.size, seed=seed + opts.test_seed)
    return Splits(val[:0], val, test)


# ---------------------------------------------------------------- methods with validated weights
def run_method(method: str, A, y: torch.Tensor, task, weight: float | None, prior, iters: int, shape) -> torch.Tensor:
    """Reconstruct with ``method`` at grid value ``weight`` (``None``: its default). Every weight but
    PnP-ADMM's ρ is multiplied by ‖A‖² here (``shape``: the image shape (C, H, W)); PnP-ADMM's ρ is
    made relative to ‖A‖² by :func:`~proxlab.methods.pnp`."""
    from ..methods import reconstruct

    if weight is not None and method != "pnp-admm":
        weight = weight * A.norm(tuple(shape))
    if method.startswith("pnp-"):
        return reconstruct(method, A, y, task, rho=weight, prior=prior, max_iter=iters)
    if method == "tikhonov":
        return reconstruct(method, A, y, task, rho=weight)
    if method == "init":
        return reconstruct(method, A, y, task)
    return reconstruct(method, A, y, task, lam=weight, rho=None if weight is None else weight * 30)


def measure(task, x: torch.Tensor, seed: int):
    """The task's operator for images like ``x`` and the measurements ``y`` of ``x`` (noise seeded by ``seed``)."""
    from ..data import MeasurementPairs

    A = task.operator(tuple(x.shape[-2:]), x.shape[1])
    pairs = MeasurementPairs(x, A, noise=task.options["noise"], seed=seed)
    return A, torch.stack([pairs[i][0] for i in range(len(pairs))])


def choose_weight(method: str, grid, A, y, x, task, prior, iters: int) -> tuple[float | None, dict]:
    """The grid value with the best mean PSNR on ``(y, x)`` (the value itself, never a product) and every score."""
    from ..metrics import psnr

    scores = {w: float(psnr(run_method(method, A, y, task, w, prior, iters, x.shape[1:]).clamp(0, 1), x).mean())
              for w in (grid or [None])}
    return max(scores, key=scores.get), scores


_METHOD = Literal[tuple(CLASSIC_METHODS)]
_WEIGHTED = Literal[tuple(m for m in CLASSIC_METHODS if m not in ("init", "pnp-pgd"))]  # the methods with a weight


class MethodsOptions(BaseModel):
    """Options of ``validated_methods``. ``grids`` add to / replace :data:`DEFAULT_GRIDS` per method (an
    empty list: the method's default weight; ``init`` and ``pnp-pgd`` have no weight); ``iters``: PnP iterations."""

    model_config = _OPTS
    methods: Annotated[tuple[_METHOD, ...], Field(strict=False, min_length=1)] = DEFAULT_METHODS
    grids: Annotated[dict[_WEIGHTED, Annotated[tuple[Annotated[float, Field(gt=0)], ...], Field(strict=False)]],
                     Field(strict=False)] = Field(default_factory=dict)
    val_images: PosInt = 16
    test_images: PosInt = 32
    iters: PosInt = 20

    @field_validator("methods")
    @classmethod
    def _once(cls, methods: tuple[str, ...]) -> tuple[str, ...]:
        twice = next((m for i, m in enumerate(methods) if m in methods[:i]), None)
        if twice is not None:
            raise ValueError(f"expected no repeated methods, got {twice!r} twice")
        return methods


@register_protocol("validated_methods", MethodsOptions)
def _validated_methods(opts: MethodsOptions, ctx: RunContext) -> Section:
    """Each method at the weight chosen on validation images, scored on the test images."""
    from ..metrics import psnr, ssim

    prior = ctx.model.cpu().eval() if ctx.model is not None else None
    if any(m.startswith("pnp-") for m in opts.methods):
        from ..priors.base import require

        require(prior, "prox", "protocol validated_methods (PnP)")
    seed, task = ctx.cfg.seed, ctx.task
    x_val, x_test = ctx.splits.val[: opts.val_images], ctx.splits.test[: opts.test_images]
    A_val, y_val = measure(task, x_val, seed + 2)
    A, y = measure(task, x_test, seed + 1)
    grids = {**DEFAULT_GRIDS, **opts.grids}
    row = {}
    for method in opts.methods:
        w, scan = choose_weight(method, grids.get(method, ()), A_val, y_val, x_val, task, prior, opts.iters)
        t0 = time.perf_counter()
        rec = run_method(method, A, y, task, w, prior, opts.iters, x_test.shape[1:]).clamp(0, 1)
        row[method] = {"psnr": float(psnr(rec, x_test).mean()), "ssim": float(ssim(rec, x_test).mean()),
                       "weight": w, "seconds": time.perf_counter() - t0, "validation_scan": scan}
    ctx.log(f"{task.describe()}: " + ", ".join(f"{m} {v['psnr']:.2f}" for m, v in row.items()))
    shown = {m: "default" if v["weight"] is None else f"{v['weight']:g}" for m, v in row.items()}
    body = "".join(f"<tr><td>{html.escape(m)}</td><td>{shown[m]}</td><td>{v['psnr']:.2f}</td><td>{v['ssim']:.3f}</td>"
                   "</tr>" for m, v in row.items())
    return Section(f"Methods at validated weights: {task.describe()}", metrics=row,
                   html=f"<p>{len(x_val)} validation and {len(x_test)} test images; weights relative to ‖A‖².</p>"
                        f"<table><tr><th>method</th><th>weight</th><th>PSNR</th><th>SSIM</th></tr>{body}</table>")


# ---------------------------------------------------------------- convergence
def convergence(A, y, prior, rho: float, iters: int = 100, solvers=("admm", "pgd")) -> dict[str, list[float]]:
    """``‖x_{k+1} − x_k‖ / ‖x_k‖`` per iteration of each PnP solver (no early stop)."""
    from ..methods import pnp

    return {f"pnp-{s}": pnp(s, A, y, prior, rho=rho, max_iter=iters, tol=0).series("rel_change") for s in solvers}


def _plot_convergence(curves: dict[str, dict[str, list[float]]]) -> bytes:
    from .figures import png_bytes, pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.2), squeeze=False)
    for ax, (setting, per) in zip(axes[0], curves.items()):
        for name, v in per.items():
            ax.semilogy(range(1, len(v) + 1), v, label=name)
        ax.set_title(setting, fontsize=9)
        ax.set_xlabel("iteration k")
        ax.set_ylabel("‖x_{k+1} − x_k‖ / ‖x_k‖")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig, dpi=100)


class ConvergenceOptions(BaseModel):
    """Options of ``pnp_convergence``; ``rho`` unset: the PnP-ADMM weight chosen by ``validated_methods``."""

    model_config = _OPTS
    solvers: Annotated[tuple[Literal["admm", "pgd"], ...], Field(strict=False, min_length=1)] = ("admm", "pgd")
    images: PosInt = 8
    iters: PosInt = 100
    rho: Annotated[float, Field(gt=0)] | None = None


@register_protocol("pnp_convergence", ConvergenceOptions)
def _pnp_convergence(opts: ConvergenceOptions, ctx: RunContext) -> Section:
    """The relative change per iteration of PnP-ADMM and PnP-PGD on the first test images."""
    from ..priors.base import require

    prior = ctx.model.cpu().eval()
    require(prior, "prox", "protocol pnp_convergence")
    rho = opts.rho
    if rho is None:
        chosen = ctx.results.get("validated_methods", {}).get("pnp-admm", {})
        if chosen.get("weight") is None:
            raise ValueError("pnp_convergence: options.rho is not set and no validated_methods protocol with "
                             "'pnp-admm' (and a grid) ran before it")
        rho = chosen["weight"]
    x = ctx.splits.test[: opts.images]
    A, y = measure(ctx.task, x, ctx.cfg.seed + 1)
    curves = convergence(A, y, prior, rho, opts.iters, opts.solvers)
    last = {m: v[-1] for m, v in curves.items()}
    return Section(f"Convergence (ρ = {rho:g})", metrics={"rho": rho, "curves": curves, "last_rel_change": last},
                   html="<p>Last relative change: " + ", ".join(f"{m} {v:.2e}" for m, v in last.items()) + "</p>",
                   figures={"convergence.png": _plot_convergence({ctx.task.describe(): curves})})


# ---------------------------------------------------------------- the sweep's table
def _title(cfg) -> str:
    return f"{cfg.build_task().describe()} ({cfg.resolved_stages[0].init})"


@register_protocol("pnp_table")
def _pnp_table(opts, ctx: RunContext) -> Section:
    """Every run of the sweep (one setting each): PSNR / SSIM of each method at its validated weight."""
    results = {label: c["metrics"]["validated_methods"] for label, c in ctx.children.items()
               if "validated_methods" in c["metrics"]}
    if not results:
        raise ValueError("pnp_table: no run of the sweep has a validated_methods protocol")
    methods = list(dict.fromkeys(m for row in results.values() for m in row))
    head = "<tr><th>setting</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in methods) + "</tr>"
    body = "".join(f"<tr><td>{html.escape(_title(ctx.children[k]['cfg']))}</td>"
                   + "".join(f"<td>{r[m]['psnr']:.2f} / {r[m]['ssim']:.3f}</td>" if m in r else "<td></td>"
                             for m in methods) + "</tr>" for k, r in results.items())
    curves = {_title(c["cfg"]): c["metrics"]["pnp_convergence"]["curves"] for c in ctx.children.values()
              if "pnp_convergence" in c["metrics"]}
    last = {label: c["metrics"]["pnp_convergence"]["last_rel_change"] for label, c in ctx.children.items()
            if "pnp_convergence" in c["metrics"]}
    return Section("Plug-and-play beside the classic methods",
                   metrics={"results": results, "convergence_last_rel_change": last},
                   html="<p>PSNR dB / SSIM, mean over the test images; weights chosen on validation images.</p>"
                        f"<table>{head}{body}</table>",
                   figures={"convergence.png": _plot_convergence(curves)} if curves else {})
