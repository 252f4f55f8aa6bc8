r"""A pre-trained flow as the prior of classic solvers, beside TV and the zoo's learned proxes
(``configs/glow-solvers-mnist.toml``, ``glow-solvers-fashion.toml``: one run per task, evaluation only).

Methods of the protocol ``flow_solvers`` (every weight chosen on validation images from a small grid, then
scored on test images never used for choosing):

- ``tv``: ADMM-TV (λ relative to ‖A‖², ADMM's penalty 30 λ, as in :mod:`~proxlab.experiments.pnp_parts`).
- ``pnp-pgd-flow``, ``pnp-admm-flow``: PGD and ADMM with the flow's latent shrinkage as the prox
  (:class:`~proxlab.priors.flow.FlowPrior` of weight λ),
  :math:`\operatorname{prox}(v, \tau) = g(f(v) / (1 + \lambda\tau))`, the exact prox of
  :math:`\tfrac\lambda2 \|f(x)\|^2` in latent coordinates (PGD's τ is its step 1/‖A‖², ADMM's 1/ρ with
  ρ = ‖A‖²); λ from the grid, no training (the paper's PnP-GLOW baseline trains the step sizes instead).
- ``latent-map``: MAP in latent space (Asim et al. 2020), :math:`\min_z \tfrac12\|y - A g(z)\|^2 + \lambda\|z\|^2`
  by Adam from :math:`z_0 = f(\text{clamp}(A^{\text{init}} y))`.
- ``pnp-admm-lpn``, ``pnp-admm-dncnn``: PnP-ADMM with a zoo LPN / DnCNN (ρ from the grid). The zoo LPN's
  network takes 28×28 images: with ``original_size = 28`` it solves the same task on the central crop.

Every PSNR / SSIM is measured on the central ``original_size`` square (the image before padding) so that the
padding's easy zeros do not flatter the methods that see it.
"""

from __future__ import annotations

import html
import time
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..priors.flow import FlowPrior
from .parts import RunContext, Section, register_protocol

__all__ = ["latent_map", "FLOW_METHODS", "FLOW_GRIDS"]

_OPTS = ConfigDict(extra="forbid", strict=True, frozen=True)

FLOW_METHODS = ("tv", "pnp-pgd-flow", "pnp-admm-flow", "latent-map", "pnp-admm-lpn", "pnp-admm-dncnn")
FLOW_GRIDS: dict[str, tuple[float, ...]] = {  # wide enough that the shipped flows' choices are interior or flagged
    "tv": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0),
    "pnp-pgd-flow": (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3),
    "pnp-admm-flow": (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3),
    "latent-map": (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
    "pnp-admm-lpn": (1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
    "pnp-admm-dncnn": (1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0),
}


def latent_map(flow, A, y: torch.Tensor, lam: float, iters: int = 50, lr: float = 0.05) -> torch.Tensor:
    r""":math:`g(\hat z)`, :math:`\hat z = \operatorname{argmin}_z \tfrac12\|y - A g(z)\|^2 + \lambda\|z\|^2`
    (per image, summed over the batch), by ``iters`` Adam steps from :math:`f(\text{clamp}(A^{\text{init}} y))`."""
    h, w = A.init(y).shape[-2:]
    with torch.no_grad():
        z = flow.encode(A.init(y).clamp(0, 1)).clone()
    z.requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(iters):
        opt.zero_grad()
        r = A(flow.inverse(z, h, w)) - y
        loss = 0.5 * (r * r).sum() + lam * (z * z).sum()
        (z.grad,) = torch.autograd.grad(loss, [z])  # not into the flow's parameters
        opt.step()
    with torch.no_grad():
        return flow.inverse(z, h, w)


def validation_scan(grid, score) -> dict[float, float | None]:
    """``{w: score(w)}`` over the grid; ``None`` where the solver diverged (a flow's layer raised
    ``FloatingPointError`` on a NaN or Inf: the known failure of flow priors in PnP, recorded, not hidden)."""
    out: dict[float, float | None] = {}
    for w in grid:
        try:
            out[w] = score(w)
        except FloatingPointError:
            out[w] = None
    return out


def _central(x: torch.Tensor, side: int) -> torch.Tensor:
    if side <= 0 or side >= x.shape[-1]:
        return x
    p = (x.shape[-1] - side) // 2
    return x[..., p:p + side, p:p + side]


class FlowSolversOptions(BaseModel):
    """Options of ``flow_solvers``: ``methods`` (of :data:`FLOW_METHODS`), ``grids`` (replace
    :data:`FLOW_GRIDS` per method), image counts, PnP ``iters``, MAP ``map_iters`` and ``map_lr``,
    ``original_size`` (score the central square; the LPN runs there), the zoo ``lpn`` and ``dncnn``."""

    model_config = _OPTS
    methods: Annotated[tuple[Literal[FLOW_METHODS], ...], Field(strict=False, min_length=1)] = FLOW_METHODS
    grids: Annotated[dict[Literal[FLOW_METHODS], Annotated[tuple[Annotated[float, Field(gt=0)], ...],
                                                             Field(strict=False, min_length=1)]],
                     Field(strict=False)] = Field(default_factory=dict)
    val_images: Annotated[int, Field(ge=1)] = 8
    test_images: Annotated[int, Field(ge=1)] = 32
    iters: Annotated[int, Field(ge=1)] = 30
    map_iters: Annotated[int, Field(ge=1)] = 50
    map_lr: Annotated[float, Field(gt=0)] = 0.05
    original_size: Annotated[int, Field(ge=0)] = 0
    lpn: str = "lpn-mnist"
    dncnn: str = "dncnn-mnist-s0.1"


def _solve(method: str, weight: float, A, y, task, flow, zoo: dict, opts: FlowSolversOptions, shape):
    from ..methods import pnp
    from .pnp_parts import run_method

    if method == "tv":
        return run_method("admm-tv", A, y, task, weight, None, opts.iters, shape)
    if method in ("pnp-pgd-flow", "pnp-admm-flow"):
        prior = FlowPrior(flow, weight)
        return pnp("pgd" if method == "pnp-pgd-flow" else "admm", A, y, prior, rho=1.0, max_iter=opts.iters).x
    if method == "latent-map":
        return latent_map(flow, A, y, weight, iters=opts.map_iters, lr=opts.map_lr)
    prior = zoo["lpn" if method == "pnp-admm-lpn" else "dncnn"]  # (the LPN's prox is a gradient: no no_grad here)
    return pnp("admm", A, y, prior, rho=weight, max_iter=opts.iters).x.detach()


@register_protocol("flow_solvers", FlowSolversOptions)
def flow_solvers(opts: FlowSolversOptions, ctx: RunContext) -> Section:
    """The flow as a prior in PnP-PGD / PnP-ADMM and latent MAP, beside TV and zoo proxes, at validated weights."""
    from ..metrics import psnr, ssim
    from ..zoo import load_zoo_model
    from .figures import comparison_grid
    from .pnp_parts import measure

    flow = ctx.model.cpu().eval()
    task, seed, side = ctx.task, ctx.cfg.seed, opts.original_size
    x_val, x_test = ctx.splits.val[: opts.val_images], ctx.splits.test[: opts.test_images]
    zoo = {}
    if "pnp-admm-lpn" in opts.methods:
        zoo["lpn"] = load_zoo_model(opts.lpn)[0].eval()
    if "pnp-admm-dncnn" in opts.methods:
        zoo["dncnn"] = load_zoo_model(opts.dncnn)[0].eval()
    grids = {**FLOW_GRIDS, **opts.grids}
    problems = {}
    for key, crop in (("full", False), ("crop", True)):
        if crop and not (side and "pnp-admm-lpn" in opts.methods):
            continue
        xv, xt = (_central(x_val, side), _central(x_test, side)) if crop else (x_val, x_test)
        problems[key] = (measure(task, xv, seed + 2), measure(task, xt, seed + 1), xv, xt)
    row, panels = {}, {"truth": _central(x_test, side)[:4]}
    for method in opts.methods:
        (A_val, y_val), (A, y), xv, xt = problems["crop" if method == "pnp-admm-lpn" and "crop" in problems else "full"]
        scan = validation_scan(grids[method], lambda w: float(psnr(_central(
            _solve(method, w, A_val, y_val, task, flow, zoo, opts, xv.shape[1:]).clamp(0, 1), side), _central(xv, side)).mean()))
        finite = {w: v for w, v in scan.items() if v is not None}
        if not finite:
            ctx.log(f"{task.describe()}: {method} diverged (NaN/Inf in the flow) at every weight {list(scan)}")
            row[method] = {"diverged": True, "validation_scan": scan}
            continue
        best = max(finite, key=finite.get)
        t0 = time.perf_counter()
        try:
            rec = _solve(method, best, A, y, task, flow, zoo, opts, xt.shape[1:]).clamp(0, 1)
        except FloatingPointError as err:
            ctx.log(f"{task.describe()}: {method} diverged on the test images at weight {best:g}: {err}")
            row[method] = {"diverged": True, "weight": best, "validation_scan": scan}
            continue
        seconds = time.perf_counter() - t0
        rc, tc = _central(rec, side), _central(xt, side)
        row[method] = {"psnr": float(psnr(rc, tc).mean()), "ssim": float(ssim(rc, tc).mean()), "weight": best,
                       "seconds": seconds, "validation_scan": scan, "diverged_weights": [w for w, v in scan.items() if v is None],
                       "at_grid_edge": best in (min(scan), max(scan))}
        if row[method]["at_grid_edge"]:
            ctx.log(f"{task.describe()}: {method}'s best weight {best:g} is at the edge of its grid {sorted(scan)}")
        panels[method] = rc[:4]
    if "full" in problems:
        from .figures import measurement_image

        (_, _), (A, y), _, xt = problems["full"]
        panels["measurement"] = _central(measurement_image(A, y[:4], tuple(xt[:4].shape)), side)
    ctx.log(f"{task.describe()}: " + ", ".join(f"{m} {v['psnr']:.2f}" if "psnr" in v else f"{m} diverged"
                                               for m, v in row.items()))
    cols = ["truth", "measurement", *row]
    fig = comparison_grid({"test image 0": panels}, ["test image 0"], [c for c in cols if c in panels])
    body = "".join(f"<tr><td>{html.escape(m)}</td><td>{v['weight']:g}</td><td>{v['psnr']:.2f}</td><td>{v['ssim']:.3f}"
                   f"</td><td>{v['seconds']:.1f}</td></tr>" if "psnr" in v else
                   f"<tr><td>{html.escape(m)}</td><td colspan=4>diverged (NaN/Inf inside the flow)</td></tr>"
                   for m, v in row.items())
    return Section(f"The flow as a prior: {task.describe()}", metrics=row, figures={"flow_solvers.png": fig},
                   html=f"<p>{len(x_val)} validation and {len(x_test)} test images, scored on the central "
                        f"{side or x_test.shape[-1]}-pixel square.</p><table><tr><th>method</th><th>weight</th>"
                        f"<th>PSNR</th><th>SSIM</th><th>test seconds</th></tr>{body}</table>")


@register_protocol("flow_solvers_table")
def flow_solvers_table(opts, ctx: RunContext) -> Section:
    """The runs of a sweep (one task each) in one table of PSNR / SSIM, and their example figures."""
    results = {label: c["metrics"]["flow_solvers"] for label, c in ctx.children.items() if "flow_solvers" in c["metrics"]}
    if not results:
        raise ValueError("flow_solvers_table: no run of the sweep has a flow_solvers protocol")
    methods = list(dict.fromkeys(m for r in results.values() for m in r))
    head = "<tr><th>task</th>" + "".join(f"<th>{html.escape(m)}</th>" for m in methods) + "</tr>"
    body = "".join(f"<tr><td>{html.escape(ctx.children[k]['cfg'].build_task().describe())}</td>"
                   + "".join(f"<td>{r[m]['psnr']:.2f} / {r[m]['ssim']:.3f}{'†' if r[m].get('at_grid_edge') else ''}</td>"
                             if "psnr" in r.get(m, {}) else
                             ("<td>diverged</td>" if m in r else "<td></td>") for m in methods) + "</tr>"
                   for k, r in results.items())
    figures = {}
    for label, c in ctx.children.items():
        png = c["folder"] / "figure_flow_solvers.png"
        if png.is_file():
            figures[f"flow_solvers_{label}.png"] = png.read_bytes()
    return Section("The flow as a prior beside TV and the zoo's proxes", metrics={"results": results},
                   html="<p>PSNR dB / SSIM, mean over the test images; weights chosen on validation images "
                        "(†: the chosen weight is at an edge of its grid).</p>"
                        f"<table>{head}{body}</table>", figures=figures)


# ---------------------------------------------------------------- deep unfolding with flow priors: the paper's tables
#: Wei et al. (IEEE TSP 2022), CelebA-HQ 64×64 RGB, PSNR dB, (denoise, inpaint, deblur). Table IV is on Anime faces.
PAPER_FLOW_UNROLLING = {
    "I": {"resnet": [27.054, 34.010, 35.554], "unet": [28.180, 35.157, 38.662], "glow": [28.236, 35.927, 40.549]},
    "II": {"pnp-glow": [8.112, 18.960, 23.141], "glow": [28.236, 35.927, 40.549]},
    "III": {"resnet": [25.489, 34.644, 35.358], "unet": [25.770, 35.917, 38.034], "glow": [26.633, 36.634, 39.461]},
    "IV": {"resnet": [21.746, 23.705, 25.007], "unet": [22.587, 24.015, 26.224], "glow": [22.102, 23.472, 27.419]},
}
_TASKS = ("denoise", "inpaint", "deblur")
_METHOD_NAMES = {"glow": "flow-PGD (GLOW)", "pnp-glow": "PnP-GLOW (μ, λ trained)", "resnet": "unrolled ResNet prox",
                 "unet": "unrolled U-Net prox", "admm-tv": "ADMM-TV"}


# the unrolled methods of the tables: ResNet / U-Net prox from scratch and from a denoiser pre-training, flow-PGD
_UNROLLED = ("resnet", "resnet-pre", "unet", "unet-pre", "glow")


def _cells(children: dict, method: str, where) -> dict[str, tuple[float, float]]:
    out = {}
    for task in _TASKS:
        child = children.get(f"{method}-{task}")
        if child is None:
            continue
        got = where(child["metrics"])
        if got is not None:
            out[task] = (got["psnr"], got["ssim"])
    return out


def _table_html(title: str, rows: dict[str, dict[str, tuple[float, float]]], paper: dict | None) -> str:
    head = "<tr><th>method</th>" + "".join(f"<th>{t}</th>" for t in _TASKS) + "</tr>"
    body = ""
    for m, cells in rows.items():
        p = (paper or {}).get(m)
        tds = ""
        for i, t in enumerate(_TASKS):
            ours = f"{cells[t][0]:.2f} / {cells[t][1]:.3f}" if t in cells else ""
            tds += f"<td>{ours}{f' <small>(paper {p[i]:.2f})</small>' if p else ''}</td>"
        body += f"<tr><td>{html.escape(_METHOD_NAMES.get(m, m))}</td>{tds}</tr>"
    return f"<h3>{html.escape(title)}</h3><table>{head}{body}</table>"


def _table_figure(title: str, rows: dict[str, dict[str, tuple[float, float]]], paper: dict | None) -> bytes:
    """Grouped bars of one table: our PSNR per task and method, the paper's as black ticks on a second axis
    (their images are another dataset and size: read the orderings, not the heights, against each other)."""
    from .figures import png_bytes, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    methods = [m for m, c in rows.items() if c]
    width = 0.8 / max(len(methods), 1)
    for j, m in enumerate(methods):
        xs = [i + (j - (len(methods) - 1) / 2) * width for i, t in enumerate(_TASKS) if t in rows[m]]
        ax.bar(xs, [rows[m][t][0] for t in _TASKS if t in rows[m]], width * 0.95, label=_METHOD_NAMES.get(m, m))
    ax.set_xticks(range(len(_TASKS)), _TASKS)
    ax.set_ylabel("PSNR (dB), ours")
    lows = [c[t][0] for c in rows.values() for t in c]
    if lows:
        ax.set_ylim(min(lows) - 3, max(lows) + 1.5)
    if paper:
        twin = ax.twinx()
        for j, m in enumerate(methods):
            if m in paper:
                xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(_TASKS))]
                twin.plot(xs, paper[m], "k_", ms=14, mew=2)
        twin.set_ylabel("PSNR (dB), paper (black ticks)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    return png_bytes(fig, dpi=100)


@register_protocol("flow_unrolling_tables")
def flow_unrolling_tables(opts, ctx: RunContext) -> Section:
    """Tables I–IV of the flow-unrolling paper from a sweep whose runs are labelled ``METHOD-TASK``."""
    ch = ctx.children
    first_variant = lambda m: next(iter(m.get("variants", {}).values()), None)  # noqa: E731
    in_dist = lambda m: m.get("model", {}).get("mean")  # noqa: E731

    def tv(where):
        out = {}
        for task in _TASKS:
            child = next((c for k, c in ch.items() if k.endswith(f"-{task}")), None)
            if child is not None and where(child["metrics"]) is not None:
                out[task] = (where(child["metrics"])["psnr"], where(child["metrics"])["ssim"])
        return out

    base = lambda m: (m.get("baselines", {}).get("admm-tv") or {}).get("mean")  # noqa: E731
    tables = {
        "I": ("Table I — in distribution", {m: _cells(ch, m, in_dist) for m in _UNROLLED}
              | {"admm-tv": tv(base)}),
        "II": ("Table II — PnP-GLOW against flow-PGD", {m: _cells(ch, m, in_dist) for m in ("pnp-glow", "glow")}),
        "III": ("Table III — out-of-distribution measurements (test-time variants)",
                {m: _cells(ch, m, lambda mm: (first_variant(mm) or {}).get("model", {}).get("mean"))
                 for m in _UNROLLED}),
        "IV": ("Table IV — out-of-distribution images",
               {m: _cells(ch, m, lambda mm: (mm.get("ood_images") or {}).get("model", {}).get("mean"))
                for m in _UNROLLED}),
    }
    metrics = {k: {m: {t: {"psnr": v[0], "ssim": v[1]} for t, v in cells.items()} for m, cells in rows.items() if cells}
               for k, (_, rows) in tables.items()}
    parts = ["<p>PSNR dB / SSIM, mean over the test images. The paper's numbers (CelebA-HQ 64×64 RGB; Table IV "
             "on Anime faces) stand beside ours for shape, not for equality: our images are 32×32 Fashion-MNIST "
             "items (Table IV: MNIST digits).</p>"]
    figures = {}
    for key, (title, rows) in tables.items():
        kept = {m: c for m, c in rows.items() if c}
        parts.append(_table_html(title, kept, PAPER_FLOW_UNROLLING.get(key)))
        if kept:
            figures[f"flow_unrolling_table_{key}.png"] = _table_figure(title, kept, PAPER_FLOW_UNROLLING.get(key))
    return Section("Deep unfolding with flow priors: the paper's Tables I–IV", metrics=metrics, html="".join(parts),
                   paper=PAPER_FLOW_UNROLLING, figures=figures)


class FoldSamplesOptions(BaseModel):
    """Options of ``fold_samples``: ``samples`` per fold and the sampling ``temperature``."""

    model_config = _OPTS
    samples: Annotated[int, Field(ge=1, le=64)] = 16
    temperature: Annotated[float, Field(ge=0)] = 0.7


@register_protocol("fold_samples", FoldSamplesOptions)
def fold_samples(opts: FoldSamplesOptions, ctx: RunContext) -> Section:
    """Samples from each fold's flow of a trained flow-PGD (what each fold's prior has become after fine-tuning)."""
    from ..unrolled import FlowPGD
    from .flow_parts import grids_figure

    if not isinstance(ctx.model, FlowPGD):
        raise TypeError(f"evaluation.protocols.fold_samples: needs a flow-pgd model, got {type(ctx.model).__name__}")
    size = ctx.splits.test.shape[-1]
    grids = ctx.model.cpu().eval().sample_folds(opts.samples, opts.temperature, torch.Generator().manual_seed(ctx.cfg.seed),
                                                size=size)
    figure = grids_figure(grids, [f"fold {k + 1}" for k in range(len(grids))], width=2.6)
    spread = [float(x.std()) for x in grids]
    return Section(f"Samples from each fold's flow (T = {opts.temperature:g})",
                   metrics={"folds": len(grids), "sample_std": spread},
                   html="<p>One grid per fold: after end-to-end fine-tuning a fold's flow is no longer the pre-trained "
                        "prior, and its samples show what it has become.</p>",
                   figures={"fold_samples.png": figure})
