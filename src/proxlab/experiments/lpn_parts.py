r"""Parts of the 1-D Laplacian experiment of the LPN paper (Fang et al., ICLR 2024, Figure 1).

``configs/lpn-laplacian.toml`` trains three LPNs as denoisers of :math:`x \sim \mathrm{Laplace}(0, b)`
at noise :math:`\sigma`: with the MSE, the ℓ1 loss and proximal matching. The MAP denoiser is the
prox of :math:`\sigma^2 (-\log p) = (\sigma^2 / b)\,|x| + c`, soft-thresholding at :math:`t = \sigma^2 / b`,
so the prior a learned prox should find is :math:`R(x) = t\,|x|` up to a constant.

- source ``laplace``: a fixed pool of Laplace samples ``(N, 1)`` (batches drawn from it without
  replacement per epoch); no validation (the paper evaluates the final weights).
- protocol ``laplacian_errors``: the error of the learned R against :math:`t|x|` on [−3, 3] (RMS and
  max, best constant removed, only where the inversion of the prox converged) and of the learned
  prox against soft-thresholding on [−4, 4].
- sweep protocol ``laplacian_comparison``: the same errors for every run of the sweep, which one is
  closest to the truth, and the paper's Figure 1 (``figure_laplacian.png``).

:func:`export_laplacian_to_zoo` puts a finished sweep's proximal-matching model into the zoo.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from .datasets import Splits
from .parts import RunContext, Section, register_protocol, register_source

__all__ = ["laplace_samples", "laplacian_curves", "laplacian_errors", "laplacian_figure", "export_laplacian_to_zoo"]

_OPTS = ConfigDict(extra="forbid", strict=True, frozen=True)
CURVES_FILE = "laplacian_curves.safetensors"


class LaplaceOptions(BaseModel):
    """``[data] options`` of source ``laplace``: the pool size and the scale ``b`` of Laplace(0, b)."""

    model_config = _OPTS
    samples: Annotated[int, Field(ge=1)] = 400_000
    scale: Annotated[float, Field(gt=0)] = 1.0


def laplace_samples(n: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    """``n`` samples of Laplace(0, ``scale``) as a float32 ``(n, 1)`` tensor, by inverting the CDF in float64."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5
    return (-scale * torch.sign(u) * torch.log1p(-2 * u.abs())).float()


def _no_validation(model) -> dict[str, float]:
    return {}


@register_source("laplace", LaplaceOptions)
def _laplace(cfg, seed: int, task=None) -> Splits:
    """1-D Laplace(0, b) samples (a fixed pool) to denoise (the identity on vectors of one entry); no validation
    or test samples (the protocols use grids)."""
    from ..operators import Denoising

    opts = LaplaceOptions.model_validate(dict(cfg.options))
    pool = laplace_samples(opts.samples, seed, opts.scale)
    return Splits(pool, pool[:0], pool[:0], operator=Denoising((1,)), validate=_no_validation)


def _threshold(cfg) -> float:
    """σ²/b: the soft threshold of the MAP denoiser (and the slope of the true R)."""
    if cfg.data.source != "laplace" or cfg.operator.task != "denoise":
        raise ValueError(f"the Laplacian protocols need data.source = 'laplace' and operator.task = 'denoise', got "
                         f"{cfg.data.source!r} and {cfg.operator.task!r}")
    scale = LaplaceOptions.model_validate(dict(cfg.data.options)).scale
    return cfg.operator.noise**2 / scale


def laplacian_curves(model, threshold: float = 1.0, max_iter: int = 1000) -> dict[str, torch.Tensor]:
    """The learned prox on [−4, 4] and the learned R on [−3, 3] (with the residuals of the inversion of the prox,
    at most ``max_iter`` L-BFGS iterations), beside the truth."""
    x = torch.linspace(-3, 3, 601, dtype=torch.float32)[:, None]
    R, res = model.regularizer(x, tol=1e-6, max_iter=max_iter, return_residual=True)
    y = torch.linspace(-4, 4, 801)[:, None]
    with torch.no_grad():
        f = model(y)
    soft = torch.sign(y) * (y.abs() - threshold).clamp_min(0)
    return {"x": x[:, 0], "R": R.detach(), "residual": res, "R_true": threshold * x.abs()[:, 0],
            "y": y[:, 0], "prox": f[:, 0], "soft": soft[:, 0]}


def laplacian_errors(curves: dict[str, torch.Tensor]) -> dict[str, float]:
    """RMS and max error of R (best constant removed, where R is defined: inversion residual < 1e-3) and
    RMS error of the prox against soft-thresholding."""
    ok = curves["residual"] < 1e-3  # points in the range of the learned prox, where R is defined
    prox_err = float((curves["prox"] - curves["soft"]).pow(2).mean().sqrt())
    out = {"R_rms_error": float("nan"), "R_max_error": float("nan"), "prox_rms_error": prox_err,
           "R_defined_fraction": float(ok.float().mean()), "inversion_residual_max": float("nan")}
    if bool(ok.any()):  # (R is defined nowhere when the inversion fails everywhere)
        diff = (curves["R"] - curves["R_true"])[ok]
        diff = diff - diff.mean()
        out.update(R_rms_error=float(diff.pow(2).mean().sqrt()), R_max_error=float(diff.abs().max()),
                   inversion_residual_max=float(curves["residual"][ok].max()))
    return out


def laplacian_figure(curves: dict[str, dict[str, torch.Tensor]]) -> bytes:
    """The paper's Figure 1: each learned prox against soft-thresholding, each learned R against the truth."""
    from .figures import png_bytes, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    first = next(iter(curves.values()))
    ax[0].plot(first["y"], first["soft"], "k--", lw=2, label="soft-threshold (MAP)")
    t = float(first["R_true"][-1] / first["x"][-1])
    ax[1].plot(first["x"], first["R_true"], "k--", lw=2, label=f"{t:g}·|x| (true)")
    for name, c in curves.items():
        ax[0].plot(c["y"], c["prox"], label=name)
        R = torch.where(c["residual"] < 1e-3, c["R"], torch.full_like(c["R"], float("nan")))
        ax[1].plot(c["x"], R - (R - c["R_true"]).nanmean(), label=name)
    ax[0].set_title("learned prox f(y)")
    ax[1].set_title("learned prior R(x), best constant removed")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


def _table(results: dict[str, dict[str, float]]) -> str:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['R_rms_error']:.4f}</td><td>{v['R_max_error']:.4f}</td>"
                   f"<td>{v['prox_rms_error']:.4f}</td></tr>" for k, v in results.items())
    return ("<p>Error of the learned prior R against the true one on [−3, 3] (best constant removed) and of the "
            "learned prox against soft-thresholding on [−4, 4].</p><table><tr><th>loss</th><th>R rms</th>"
            f"<th>R max</th><th>prox rms</th></tr>{rows}</table>")


class ErrorsOptions(BaseModel):
    """Options of ``laplacian_errors``: the L-BFGS budget of the inversion behind R (points where it does not
    converge are left out; a model trained for a few steps makes most of them run the whole budget)."""

    model_config = _OPTS
    inversion_iters: Annotated[int, Field(ge=1)] = 1000


@register_protocol("laplacian_errors", ErrorsOptions)
def _laplacian_errors(opts: ErrorsOptions, ctx: RunContext) -> Section:
    """The learned prox against soft-thresholding and the learned R against the true prior (one run); the curves
    go to ``laplacian_curves.safetensors`` (a sweep's comparison draws them without inverting the prox again)."""
    from safetensors.torch import save_file

    curves = laplacian_curves(ctx.model.cpu().eval(), _threshold(ctx.cfg), opts.inversion_iters)
    save_file({k: t.contiguous() for k, t in curves.items()}, str(Path(ctx.folder) / CURVES_FILE))
    errors = laplacian_errors(curves)
    return Section("Learned prox and prior against the truth", metrics=errors, html=_table({ctx.cfg.name: errors}))


class ComparisonOptions(ErrorsOptions):
    """Options of ``laplacian_comparison``: display names of the sweep's runs (default: their labels);
    ``inversion_iters`` for runs that did not compute their curves (protocol ``laplacian_errors``)."""

    names: Annotated[dict[str, str], Field(strict=False)] = Field(default_factory=dict)


def _run_curves(child: dict, max_iter: int) -> dict[str, torch.Tensor]:
    """A sweep run's curves: those its laplacian_errors protocol wrote, else computed now."""
    from safetensors.torch import load_file

    path = Path(child["folder"]) / CURVES_FILE
    if path.is_file():
        return load_file(str(path))
    return laplacian_curves(child["model"].cpu().eval(), _threshold(child["cfg"]), max_iter)


@register_protocol("laplacian_comparison", ComparisonOptions)
def _laplacian_comparison(opts: ComparisonOptions, ctx: RunContext) -> Section:
    """Every run of the sweep against the truth: the errors table, the closest run and Figure 1."""
    unknown = sorted(set(opts.names) - set(ctx.children))
    if unknown:
        raise ValueError(f"laplacian_comparison.names: {unknown} are not runs of the sweep ({sorted(ctx.children)})")
    curves = {opts.names.get(label, label): _run_curves(c, opts.inversion_iters) for label, c in ctx.children.items()}
    results = {name: laplacian_errors(c) for name, c in curves.items()}
    closest = min(results, key=lambda k: (math.isnan(results[k]["R_rms_error"]), results[k]["R_rms_error"]))
    for name, r in results.items():
        ctx.log(f"{name:18s} R error on [-3,3]: rms {r['R_rms_error']:.4f}, max {r['R_max_error']:.4f}; "
                f"prox rms error vs soft-threshold {r['prox_rms_error']:.4f}")
    return Section("The learned prox and prior of each loss (the paper's Figure 1)",
                   metrics={"results": results, "closest_to_truth": closest},
                   html=_table(results) + f"<p>Closest to the truth: <b>{html.escape(closest)}</b>.</p>",
                   figures={"laplacian.png": laplacian_figure(curves)})


def export_laplacian_to_zoo(run_dir: str | Path, name: str = "lpn-laplacian", label: str = "proximal-matching",
                            zoo_dir: str | Path | None = None) -> Path:
    """Put the model of sweep run ``label`` of a finished ``lpn-laplacian`` run into the zoo, with every
    run's errors as its test metrics."""
    from .config import load_config
    from .export import add_entry

    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    cfg = load_config(run_dir / "config.toml")
    child = cfg.sweep_run(label)
    scale = cfg.training.steps_scale
    opts, sigma = dict(child.model.options), child.operator.noise
    b = LaplaceOptions.model_validate(dict(child.data.options)).scale
    info: dict[str, Any] = {
        "description": f"1-D LPN (hidden {opts['hidden']}, {opts['layers']} layers, beta {opts['beta']:g}) trained by "
                       f"proximal matching on Laplace(0, {b:g}) samples at noise sigma = {sigma:g}; its prox approaches "
                       f"soft-thresholding at t = {sigma**2 / b:g} and its prior t|x|.",
        "model": {"name": child.model.name, "options": opts},
        "task": {"name": "denoise", "options": {"noise": sigma}},
        "data": {"source": f"laplace(0, {b:g})", "image_size": [1, 1]},
        "training_command": f"proxlab run {cfg.name}" + (f" --set training.steps_scale={scale:g}" if scale != 1 else ""),
        "test_metrics": metrics["laplacian_comparison"]["results"],
    }
    return add_entry(name, run_dir / "runs" / label / "model.safetensors", info, zoo_dir)
