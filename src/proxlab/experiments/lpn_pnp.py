r"""Plug-and-play with learned proximal networks (LPN paper, Section 5.2) beside the classic methods.

Settings (test images never used for choosing anything):

- deblurring MNIST test digits, Gaussian blur σ_b ∈ {1, 2}, noise ∈ {0.02, 0.04}, prior ``zoo:lpn-mnist``;
- compressed sensing of MNIST digits (block CS, 25 %, noise 0.01), prior ``zoo:lpn-mnist``;
- sparse-view CT of 128×128 random ellipse phantoms (60 angles, sinogram noise 0.5), prior ``zoo:lpn-ellipses``.

Each classic method's weight and the PnP penalty ρ are chosen on validation images (MNIST's
validation split; ellipse phantoms from other seeds) from small grids, all relative to ‖A‖². PnP-ADMM solves its
x-update with ``solve_normal`` (exact for blur and block CS, warm-started CG for CT). Convergence:
the relative change :math:`\|x_{k+1} - x_k\| / \|x_k\|` per iteration over 100 iterations.
``--set images=N`` changes the number of test images (default 32 MNIST digits, 8 phantoms);
``--set settings=deblur`` (or ``cs,ct``) runs only the settings whose label starts so. The PnP-ADMM
penalty is relative to ‖A‖² (see :func:`proxlab.methods.pnp`).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import torch

from ..data import MeasurementPairs, mnist5k, random_ellipses
from ..metrics import psnr, ssim
from ..methods import reconstruct
from ..tasks import make_task

__all__ = ["run", "SETTINGS"]

SETTINGS = [
    ("deblur σ_b=1 σ=0.02", "mnist", dict(name="deblur", blur_sigma=1.0, noise=0.02)),
    ("deblur σ_b=1 σ=0.04", "mnist", dict(name="deblur", blur_sigma=1.0, noise=0.04)),
    ("deblur σ_b=2 σ=0.02", "mnist", dict(name="deblur", blur_sigma=2.0, noise=0.02)),
    ("deblur σ_b=2 σ=0.04", "mnist", dict(name="deblur", blur_sigma=2.0, noise=0.04)),
    ("block CS 25% σ=0.01", "mnist", dict(name="cs", ratio=0.25, noise=0.01)),
    ("CT 60 angles σ=0.5", "ellipses", dict(name="ct", angles=60, noise=0.5)),
]
CLASSIC = ["init", "tikhonov", "fista-tv", "admm-tv", "fista-wavelet"]
LAM_GRID = {"tikhonov": [1e-3, 1e-2, 1e-1, 1.0], "fista-tv": [1e-3, 3e-3, 1e-2, 3e-2],
            "admm-tv": [1e-3, 3e-3, 1e-2, 3e-2], "fista-wavelet": [1e-3, 3e-3, 1e-2, 3e-2]}
RHO_GRID = [0.03, 0.1, 0.3, 1.0]


def _data(kind: str, n: int, seed: int):
    if kind == "mnist":
        return mnist5k("val")[0][:16], mnist5k("test")[0][:n]
    return random_ellipses(4, 128, seed=seed + 500), random_ellipses(max(1, n // 4), 128, seed=seed + 900)


def _pairs(task, x, seed):
    A = task.operator(tuple(x.shape[-2:]))
    pairs = MeasurementPairs(x, A, noise=task.options["noise"], seed=seed)
    ys = torch.stack([pairs[i][0] for i in range(len(pairs))])
    return A, ys


def _run(method, A, y, task, weight, prior, iters, shape):
    """``weight`` is the grid value as chosen; all but PnP-ADMM's ρ are relative to ‖A‖² (1 for blur and
    block CS, thousands for CT), as PnP's ρ is. ``shape`` is the image shape (C, H, W) for ‖A‖²."""
    if weight is not None and method != "pnp-admm":
        weight = weight * A.norm(tuple(shape))
    if method.startswith("pnp-"):
        return reconstruct(method, A, y, task, rho=weight, prior=prior, max_iter=iters)
    if method == "tikhonov":
        return reconstruct(method, A, y, task, rho=weight)
    if method == "init":
        return reconstruct(method, A, y, task)
    return reconstruct(method, A, y, task, lam=weight, rho=None if weight is None else weight * 30)


def _choose(method, task, x_val, prior, iters, seed):
    A, y = _pairs(task, x_val, seed)
    # the grid values themselves are stored and reported as chosen (a float product would not round-trip)
    grid = RHO_GRID if method == "pnp-admm" else LAM_GRID.get(method, [None])
    scores = {}
    for w in grid:
        scores[w] = float(psnr(_run(method, A, y, task, w, prior, iters, x_val.shape[1:]).clamp(0, 1), x_val).mean())
    return max(scores, key=scores.get), scores


def convergence(A, y, task, prior, rho, iters=100) -> dict[str, list[float]]:
    from ..methods import pnp

    out = {}
    for solver in ("admm", "pgd"):
        res = pnp(solver, A, y, prior, rho=rho, max_iter=iters, tol=0)
        out[f"pnp-{solver}"] = res.series("rel_change")
    return out


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


def run(out: Path, overrides: dict[str, str] | None = None, progress: bool = True, log=print) -> dict:
    from ..zoo import list_zoo, load_zoo_model

    overrides = dict(overrides or {})
    n = int(overrides.pop("images", 32))
    iters = int(overrides.pop("iters", 20))
    seed = int(overrides.pop("seed", 0))
    only = overrides.pop("settings", "")  # e.g. "deblur" or "cs,ct": run the settings whose label starts so
    if overrides:
        raise ValueError(f"lpn-pnp: unknown setting(s) {sorted(overrides)}; known: images, iters, seed, settings")
    wanted = [w.strip().lower() for w in only.split(",") if w.strip()]
    out = Path(out)
    priors = {kind: f"lpn-{kind}" for kind in ("mnist", "ellipses") if f"lpn-{kind}" in list_zoo()}
    if not priors:
        raise ValueError("lpn-pnp needs zoo:lpn-mnist and/or zoo:lpn-ellipses (train them with proxlab run lpn-mnist)")
    results, curves = {}, {}
    for label, kind, spec in SETTINGS:
        if wanted and not any(label.lower().startswith(w) for w in wanted):
            continue
        if kind not in priors:
            log(f"skipping {label}: zoo:lpn-{kind} is not in the zoo")
            continue
        prior, _ = load_zoo_model(priors[kind])
        spec = dict(spec)
        task = make_task(spec.pop("name"), seed=seed, **spec)
        x_val, x_test = _data(kind, n, seed)
        A, y = _pairs(task, x_test, seed + 1)
        row = {}
        for method in CLASSIC + ["pnp-admm", "pnp-pgd"]:
            w, scan = _choose(method, task, x_val, prior, iters, seed + 2)
            t0 = time.perf_counter()
            rec = _run(method, A, y, task, w, prior, iters, x_test.shape[1:]).clamp(0, 1)
            row[method] = {"psnr": float(psnr(rec, x_test).mean()), "ssim": float(ssim(rec, x_test).mean()),
                           "weight": w, "seconds": time.perf_counter() - t0, "validation_scan": scan}
        results[label] = row
        rho = row["pnp-admm"]["weight"]
        curves[label] = convergence(A, y[: min(8, len(y))], task, prior, rho)
        log(f"{label}: " + ", ".join(f"{m} {v['psnr']:.2f}" for m, v in row.items()))
        (out / "results_partial.json").write_text(json.dumps(results, indent=2))  # survives an interruption
    png = _plot_convergence(curves)
    (out / "figure_convergence.png").write_bytes(png)
    summary = {"images": n, "iters": iters, "results": results,
               "convergence_last_rel_change": {k: {m: v[-1] for m, v in c.items()} for k, c in curves.items()}}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    methods = CLASSIC + ["pnp-admm", "pnp-pgd"]
    head = "<tr><th>setting</th>" + "".join(f"<th>{m}</th>" for m in methods) + "</tr>"
    body = "".join("<tr><td>" + k + "</td>" + "".join(f"<td>{r[m]['psnr']:.2f} / {r[m]['ssim']:.3f}</td>" for m in methods)
                   + "</tr>" for k, r in results.items())
    (out / "report.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>lpn-pnp</title><h1>Plug-and-play with learned proximal networks</h1>"
        f"<p>PSNR dB / SSIM, mean over the test images; weights chosen on validation images.</p><table border=1 "
        f"cellpadding=4>{head}{body}</table><h2>Convergence</h2>"
        f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    return summary
