"""Evaluating the learned prior R(x) of an LPN: batched L-BFGS (proxlab) vs the authors' per-image scipy CG.

Model: the MNIST-size ``LPNConv`` (317,056 parameters). A freshly initialised LPN is almost a
quadratic (its z-path weights start at exp(N(−10, 0.1)) ≈ 4.5e-5, so f(y) ≈ 2α·y), which makes
inversion trivial; so unless ``--weights`` gives trained weights (loaded with
``proxlab.training.load_model_weights``), the script first trains it for ``--train-steps`` ℓ1
denoising steps (σ = 0.1, batch 32, Adam 1e-3, clamp after each step) on the mnist5k train split.

Images x = f(y) for the first ``--images`` digits y of ``mnist5k("test")``. R(x) needs
y* = f⁻¹(x), the minimiser of ψ(y) − ⟨x, y⟩ from y₀ = x:

- proxlab: ``LPNConv.regularizer(x, tol)``, all images in one batch;
- scipy: ``scipy.optimize.minimize(method="CG", jac=True, options={"gtol": 1e-5})`` one image at a
  time, as the authors' ``invert_cvx_cg.py`` (one forward + backward of ψ per evaluation).

Reported per image: time and final residual ‖f(y*) − x‖₂ of each, proxlab once at its default
tol = 1e-5 (RMS residual per pixel) and once with tol set so that every residual is at most
scipy's smallest one ("same residual"); scipy in float32 stops early on precision loss, so the
comparison is repeated in float64 (``--no-float64`` skips it). Also the prox f(y) per image,
batched (64) and one at a time, under ``torch.no_grad()``. Prints a table and writes
``benchmarks/results/bench_lpn_prior.json``.

    python benchmarks/bench_lpn_prior.py [--weights W.safetensors] [--train-steps 300] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from proxlab.data import mnist5k
from proxlab.priors.lpn import LPNConv


def train_l1(model: LPNConv, steps: int, seed: int) -> float:
    x, _ = mnist5k("train")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    for _ in range(steps):
        xb = x[torch.randint(0, len(x), (32,), generator=g)]
        yb = xb + 0.1 * torch.randn(xb.shape, generator=g)
        loss = (model(yb) - xb).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.clamp_weights()
    return time.perf_counter() - t0


def scipy_cg(model: LPNConv, x: torch.Tensor, gtol: float) -> tuple[torch.Tensor, list[int]]:
    """The authors' inversion: nonlinear CG on ψ(y) − ⟨x, y⟩ from y₀ = x, image by image."""
    from scipy.optimize import minimize

    ys, nfev = [], []
    for i in range(x.shape[0]):
        xi = x[i: i + 1]

        def fun(v, xi=xi):
            t = torch.from_numpy(v).to(xi.dtype).view_as(xi).requires_grad_(True)
            with torch.enable_grad():
                phi = model.psi(t).sum() - (t * xi).sum()
                (g,) = torch.autograd.grad(phi, t)
            return phi.item(), g.double().flatten().numpy()

        r = minimize(fun, xi.double().flatten().numpy(), jac=True, method="CG", options={"gtol": gtol})
        ys.append(torch.from_numpy(r.x).to(x.dtype).view_as(xi))
        nfev.append(int(r.nfev))
    return torch.cat(ys), nfev


def prior_value(model: LPNConv, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        reg = (x * y).flatten(1).sum(1) - 0.5 * x.pow(2).flatten(1).sum(1) - model.psi(y)
        res = (model(y) - x).flatten(1).norm(dim=1)
    return reg, res


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def compare(model: LPNConv, x: torch.Tensor, repeats: int, gtol: float) -> dict:
    """One dtype: scipy CG per image, then proxlab at tol=1e-5 and at the scipy-matched tol."""
    n_img, n = x.shape[0], x[0].numel()
    t0 = time.perf_counter()
    y_cg, nfev = scipy_cg(model, x, gtol)
    t_cg = time.perf_counter() - t0
    reg_cg, res_cg = prior_value(model, x, y_cg)
    rows = {"scipy_cg": dict(time_per_image_s=t_cg / n_img, residual_median=res_cg.median().item(),
                             residual_max=res_cg.max().item(), evaluations_mean=float(np.mean(nfev)))}
    tol_match = res_cg.min().item() / math.sqrt(n)
    for name, tol in [("proxlab_tol_1e-5", 1e-5), ("proxlab_same_residual", tol_match)]:
        calls: list[int] = []
        psi = model._psi

        def psi_counted(t, psi=psi, calls=calls):
            calls.append(t.shape[0])
            return psi(t)

        def run(tol=tol, calls=calls):
            calls.clear()
            with torch.no_grad():
                return model.regularizer(x, tol=tol, max_iter=2000, return_residual=True)

        model._psi = psi_counted  # count ψ evaluations (samples) made by the inversion
        try:
            t_med, t_all, (reg, res) = timed(run, repeats)
        finally:
            del model._psi
        rows[name] = dict(tol=tol, time_per_image_s=t_med / n_img, times_batch_s=t_all,
                          residual_median=res.median().item(), residual_max=res.max().item(),
                          evaluations_mean=sum(calls) / n_img, speedup_vs_scipy=t_cg / t_med,
                          max_abs_R_difference_vs_scipy=(reg - reg_cg).abs().max().item())
    rows["R_median"] = reg_cg.median().item()
    return rows


def prox_times(model: LPNConv, y: torch.Tensor, repeats: int) -> dict:
    batch = y[:64] if y.shape[0] >= 64 else y.repeat(math.ceil(64 / y.shape[0]), 1, 1, 1)[:64]
    with torch.no_grad():
        model(batch)
        t_b, _, _ = timed(lambda: model(batch), repeats * 3)
        single = [batch[i: i + 1] for i in range(16)]
        t_s, _, _ = timed(lambda: [model(s) for s in single], repeats * 3)
    return {"batched_64_per_image_s": t_b / 64, "single_per_image_s": t_s / 16}


def _load_average() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=str, default=None, help="trained LPNConv weights (.safetensors)")
    p.add_argument("--train-steps", type=int, default=300, help="ℓ1 steps when no --weights (0: random init)")
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gtol", type=float, default=1e-5)
    p.add_argument("--no-float64", action="store_true", help="skip the float64 comparison")
    p.add_argument("--out", type=str, default=str(Path(__file__).parent / "results" / "bench_lpn_prior.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch threads: {torch.get_num_threads()}; load average at start: {_load_average()}")
    torch.manual_seed(a.seed)
    model = LPNConv()
    if a.weights:
        from proxlab.training import load_model_weights

        load_model_weights(a.weights, model)
        source, t_train = f"weights {a.weights}", 0.0
    else:
        t_train = train_l1(model, a.train_steps, a.seed) if a.train_steps > 0 else 0.0
        source = f"{a.train_steps} l1 training steps ({t_train:.0f} s)" if a.train_steps else "random init"
    model.eval().requires_grad_(False)
    digits, _ = mnist5k("test")
    y = digits[: a.images]
    results = {"threads": a.threads, "images": a.images, "model": source, "gtol": a.gtol,
               "load_average_before_timing": _load_average()}
    print(f"model: LPNConv (MNIST), {sum(q.numel() for q in model.parameters()):,} parameters, {source}")
    print(f"load average before timing: {results['load_average_before_timing']} (other processes distort timings)")
    for dtype in [torch.float32] + ([] if a.no_float64 else [torch.float64]):
        m = model.to(dtype)
        with torch.no_grad():
            x = m(y.to(dtype))
        results[str(dtype).replace("torch.", "")] = compare(m, x, a.repeats, a.gtol)
    model.to(torch.float32)
    results["prox_float32"] = prox_times(model, digits[:64], a.repeats)

    print(f"\nR(x) for {a.images} images x = f(y), MNIST test digits y; times per image, {a.threads} threads")
    print("| dtype | method | tol | time / image (ms) | speed-up | residual median | residual max | ψ evals / image | max |ΔR| vs scipy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key in ("float32", "float64"):
        if key not in results:
            continue
        r = results[key]
        c = r["scipy_cg"]
        print(f"| {key} | scipy CG, one image at a time | gtol {a.gtol:g} (∞-norm) | {1e3 * c['time_per_image_s']:.1f} | 1.0 | "
              f"{c['residual_median']:.2e} | {c['residual_max']:.2e} | {c['evaluations_mean']:.0f} | - |")
        for name, label in [("proxlab_tol_1e-5", "proxlab L-BFGS, batched"), ("proxlab_same_residual", "proxlab, same residual")]:
            q = r[name]
            print(f"| {key} | {label} | {q['tol']:.2e} | {1e3 * q['time_per_image_s']:.1f} | {q['speedup_vs_scipy']:.1f} | "
                  f"{q['residual_median']:.2e} | {q['residual_max']:.2e} | {q['evaluations_mean']:.0f} | "
                  f"{q['max_abs_R_difference_vs_scipy']:.1e} |")
    pt = results["prox_float32"]
    print(f"\nprox f(y), 28×28, float32, no_grad: {1e3 * pt['batched_64_per_image_s']:.2f} ms / image batched (64), "
          f"{1e3 * pt['single_per_image_s']:.2f} ms / image one at a time")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
