r"""The 1-D Laplacian experiment of the LPN paper (Fang et al., ICLR 2024, Figure 1).

Data :math:`x \sim \mathrm{Laplace}(0, 1)`, noise :math:`\sigma = 1`. The MAP denoiser is the prox
of :math:`\sigma^2 \cdot (-\log p) = |x| + c`, i.e. soft-thresholding at 1, so the true learned prior
is :math:`R(x) = |x|` up to a constant. Three LPNs (fully connected, hidden 50, 4 layers, β = 10)
are trained with the authors' schedule (batch 2000, Adam):

- ℓ2 and ℓ1: 10k steps at lr 1e-3, then 10k at 1e-4;
- proximal matching, continuing from the ℓ1 model: γ = 0.5 (2k at 1e-3, 2k at 1e-4), 0.4 (4k at
  1e-4), 0.3 (4k at 1e-4), 0.2 (4k at 1e-5), 0.1 (4k at 1e-5, then 4k at 1e-6).

``steps_scale`` (``--set steps_scale=0.25``) shortens every stage proportionally. Reported: the
error of each learned R against :math:`|x|` on [−3, 3] after removing the best constant (RMS and
max), and of each learned prox against soft-thresholding on [−4, 4]. Writes ``results.json``,
``figure_laplacian.png`` and ``report.html``; the proximal-matching model goes to ``lpn_pm.safetensors``.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import torch

from ..losses import proximal_matching_loss
from ..priors.lpn import LPNFullyConnected
from ..training import Trainer, save_model

__all__ = ["run", "L2_STAGES", "PM_STAGES"]

BATCH = 2000
SIGMA = 1.0
# (steps, lr) for l2 / l1; (steps, gamma, lr) for proximal matching (authors' notebook)
L2_STAGES = [(10_000, 1e-3), (10_000, 1e-4)]
PM_STAGES = [(2000, 0.5, 1e-3), (2000, 0.5, 1e-4), (4000, 0.4, 1e-4), (4000, 0.3, 1e-4), (4000, 0.2, 1e-5),
             (4000, 0.1, 1e-5), (4000, 0.1, 1e-6)]


def _piecewise(stages: list[tuple]):
    """(loss parameter, lr factor) as a function of the step, from consecutive stages."""
    bounds, acc = [], 0
    for st in stages:
        acc += st[0]
        bounds.append(acc)

    def at(step: int):
        for b, st in zip(bounds, stages):
            if step < b:
                return st
        return stages[-1]

    return at, acc


def _train(model, stages, kind: str, pool: torch.Tensor, seed: int, progress: bool):
    at, total = _piecewise(stages)

    def loss_fn(m, x, ctx):
        y = x + SIGMA * torch.randn(x.shape, generator=ctx.generator)
        out = m(y)
        if kind == "l2":
            return (out - x).pow(2).sum() / x.shape[0]
        if kind == "l1":
            return (out - x).abs().sum() / x.shape[0]
        gamma = at(ctx.step)[1]
        return proximal_matching_loss(out, x, gamma), {"gamma": gamma}

    lr_of = (lambda s: at(s)[1]) if kind in ("l1", "l2") else (lambda s: at(s)[2])
    trainer = Trainer(model, loss_fn, pool, steps=total, batch_size=BATCH, lr=1e-3,
                      schedule=lambda s: lr_of(s) / 1e-3, post_step=lambda m: m.clamp_weights(),
                      val_every=10**9, log_every=max(total // 50, 1), seed=seed, progress=progress)
    return trainer.fit()


def _scale(stages, f: float):
    return [(max(1, round(st[0] * f)),) + tuple(st[1:]) for st in stages]


def evaluate(model: LPNFullyConnected) -> dict[str, float]:
    """Errors of R against |x| on [−3, 3] (best constant removed) and of the prox against soft-thresholding."""
    x = torch.linspace(-3, 3, 601, dtype=torch.float32)[:, None]
    R, res = model.regularizer(x, tol=1e-6, max_iter=1000, return_residual=True)
    ok = res < 1e-3  # points in the range of the learned prox, where R is defined (f is invertible there)
    diff = (R.detach() - x.abs()[:, 0])[ok]
    diff = diff - diff.mean()
    y = torch.linspace(-4, 4, 801)[:, None]
    with torch.no_grad():
        f = model(y)
    soft = torch.sign(y) * (y.abs() - 1).clamp_min(0)
    return {"R_rms_error": float(diff.pow(2).mean().sqrt()), "R_max_error": float(diff.abs().max()),
            "prox_rms_error": float((f - soft).pow(2).mean().sqrt()), "R_defined_fraction": float(ok.float().mean()),
            "inversion_residual_max": float(res[ok].max()) if bool(ok.any()) else float("nan")}


def figure(models: dict[str, LPNFullyConnected], path: Path) -> bytes:
    from .figures import png_bytes, pyplot

    plt = pyplot()

    y = torch.linspace(-4, 4, 801)[:, None]
    x = torch.linspace(-3, 3, 601)[:, None]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    ax[0].plot(y[:, 0], (torch.sign(y) * (y.abs() - 1).clamp_min(0))[:, 0], "k--", lw=2, label="soft-threshold (MAP)")
    ax[1].plot(x[:, 0], x.abs()[:, 0], "k--", lw=2, label="|x| (true)")
    for name, m in models.items():
        with torch.no_grad():
            ax[0].plot(y[:, 0], m(y)[:, 0], label=name)
        R, res = m.regularizer(x, tol=1e-6, max_iter=1000, return_residual=True)
        R = torch.where(res < 1e-3, R.detach(), torch.full_like(R, float("nan")))
        ax[1].plot(x[:, 0], R - (R - x.abs()[:, 0]).nanmean(), label=name)
    ax[0].set_title("learned prox f(y)")
    ax[1].set_title("learned prior R(x), best constant removed")
    for a in ax:
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig, dpi=110, path=path)


def run(out: Path, overrides: dict[str, str] | None = None, progress: bool = True, log=print) -> dict:
    overrides = dict(overrides or {})
    scale = float(overrides.pop("steps_scale", 1.0))
    seed = int(overrides.pop("seed", 1))
    if overrides:
        raise ValueError(f"lpn-laplacian: unknown setting(s) {sorted(overrides)}; known: steps_scale, seed")
    if not scale > 0:
        raise ValueError(f"steps_scale must be > 0, got {scale}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pool = _laplace_pool(seed)
    models, seconds = {}, {}
    for kind in ("l2", "l1"):
        torch.manual_seed(seed)
        m = LPNFullyConnected(dim=1, hidden=50, layers=4, beta=10.0, alpha=0.0)
        t0 = time.perf_counter()
        _train(m, _scale(L2_STAGES, scale), kind, pool, seed, progress)
        seconds[kind] = time.perf_counter() - t0
        models[kind] = m
        log(f"trained {kind} in {seconds[kind]:.0f} s")
    pm = LPNFullyConnected(dim=1, hidden=50, layers=4, beta=10.0, alpha=0.0)
    pm.load_state_dict(models["l1"].state_dict())
    t0 = time.perf_counter()
    _train(pm, _scale(PM_STAGES, scale), "pm", pool, seed + 1, progress)
    seconds["proximal matching"] = time.perf_counter() - t0
    models = {"ℓ2": models["l2"], "ℓ1": models["l1"], "proximal matching": pm}
    results = {name: evaluate(m) for name, m in models.items()}
    for name, r in results.items():
        log(f"{name:18s} R error on [-3,3]: rms {r['R_rms_error']:.4f}, max {r['R_max_error']:.4f}; "
            f"prox rms error vs soft-threshold {r['prox_rms_error']:.4f}")
    save_model(out / "lpn_pm.safetensors", pm, {"experiment": "lpn-laplacian", "results": results["proximal matching"]})
    png = figure(models, out / "figure_laplacian.png")
    summary = {"steps_scale": scale, "seed": seed, "seconds": seconds, "results": results,
               "closest_to_truth": min(results, key=lambda k: results[k]["R_rms_error"])}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    rows = "".join(f"<tr><td>{k}</td><td>{v['R_rms_error']:.4f}</td><td>{v['R_max_error']:.4f}</td>"
                   f"<td>{v['prox_rms_error']:.4f}</td></tr>" for k, v in results.items())
    (out / "report.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>lpn-laplacian</title><h1>LPN on the Laplace distribution</h1>"
        "<p>Error of the learned prior R against |x| on [−3, 3] (best constant removed) and of the learned prox "
        "against soft-thresholding on [−4, 4].</p><table border=1 cellpadding=4><tr><th>loss</th><th>R rms</th>"
        f"<th>R max</th><th>prox rms</th></tr>{rows}</table>"
        f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    return summary


def export_to_zoo(run_dir: str | Path, name: str = "lpn-laplacian") -> Path:
    """Put a finished run's proximal-matching model into the zoo."""
    from .export import add_entry

    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "results.json").read_text())
    info = {
        "description": "1-D LPN (hidden 50, 4 layers, beta 10) trained by proximal matching on Laplace(0, 1) "
                       "samples at noise sigma = 1; its prox approaches soft-thresholding and its prior |x|.",
        "model": {"name": "lpn-fc", "options": {"dim": 1, "hidden": 50, "layers": 4, "beta": 10.0, "alpha": 0.0}},
        "task": {"name": "denoise", "options": {"noise": SIGMA}},
        "data": {"source": "laplace(0, 1)", "image_size": [1, 1]},
        "training_command": f"proxlab run lpn-laplacian --set steps_scale={summary['steps_scale']:g}",
        "test_metrics": summary["results"],
    }
    return add_entry(name, run_dir / "lpn_pm.safetensors", info)


def _laplace_pool(seed: int, n: int = 400_000) -> torch.Tensor:
    """A fixed pool of Laplace(0, 1) samples; batches are drawn from it without replacement per epoch."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 1, generator=g, dtype=torch.float64) - 0.5
    return (-torch.sign(u) * torch.log1p(-2 * u.abs())).float()
