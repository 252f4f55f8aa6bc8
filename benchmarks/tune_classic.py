"""Choose the classic methods' default weights per task on tuning images that no benchmark tests on.

Tuning images: scikit-image's ``coffee``, ``chelsea`` and ``coins`` (grey, 128×128) for the image
tasks; three random ellipse phantoms (seeds 100–102, 128×128) for CT. The demo tests on ``camera``,
``astronaut`` and the Shepp–Logan phantom; Set11 and BSD68 are never used here.

For each task: the prior weight ``lam`` of TV and of db4-wavelet ℓ1 is picked by FISTA over a
log grid (the minimiser does not depend on the solver), Tikhonov's ``rho`` likewise, then the
ADMM/HQS penalty over a grid at that ``lam``. Prints a table and writes
``benchmarks/results/tune_classic.json``; copy the chosen values into
``proxlab.methods.DEFAULT_WEIGHTS``.

    python benchmarks/tune_classic.py [--tasks denoise,deblur] [--iters 100]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from proxlab.data import random_ellipses, skimage_image
from proxlab.methods import reconstruct
from proxlab.tasks import TASKS, make_task
from proxlab.metrics import psnr

GRID = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0]


def tuning_images(task: str) -> torch.Tensor:
    if task == "ct":
        return random_ellipses(3, 128, seed=100)
    return torch.cat([skimage_image(n, grey=True, size=128) for n in ("coffee", "chelsea", "coins")])


def score(method, task, x, lam=None, rho=None, iters=100) -> float:
    vals = []
    for i in range(x.shape[0]):
        xi = x[i : i + 1]
        A, y = task.measure(xi, seed=i)
        rec = reconstruct(method, A, y, task, lam=lam, rho=rho, max_iter=iters).clamp(0, 1)
        vals.append(float(psnr(rec, xi)))
    return sum(vals) / len(vals)


def best_over(method, task, x, grid, key, iters, fixed=None):
    """Golden-section-free grid search: scan the grid, stop once the score has dropped twice in a row."""
    results, best, drops = {}, None, 0
    for v in grid:
        kw = {key: v, **(fixed or {})}
        s = score(method, task, x, iters=iters, **kw)
        results[v] = s
        if best is None or s > results[best]:
            best, drops = v, 0
        else:
            drops += 1
            if drops >= 2:
                break
    return best, results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "tune_classic.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = {}
    t0 = time.time()
    for name in a.tasks.split(","):
        task = make_task(name)
        x = tuning_images(name)
        row = {}
        for prior in ("tv", "wavelet"):
            lam, scan = best_over(f"fista-{prior}", task, x, GRID, "lam", a.iters)
            row[prior] = lam
            row[f"psnr_fista_{prior}"] = scan[lam]
            rho_grid = [lam * c for c in (1, 3, 10, 30, 100)]
            rho, scan_rho = best_over(f"admm-{prior}", task, x, rho_grid, "rho", a.iters, fixed={"lam": lam})
            row[f"rho_{prior}"] = rho
            row[f"psnr_admm_{prior}"] = scan_rho[rho]
        tik, scan = best_over("tikhonov", task, x, GRID, "rho", a.iters)
        row["tik"] = tik
        row["psnr_tikhonov"] = scan[tik]
        row["psnr_init"] = score("init", task, x)
        out[name] = row
        print(f"{name:8s} " + "  ".join(f"{k}={v:.4g}" for k, v in row.items()), flush=True)
    print(f"total {time.time() - t0:.0f} s")
    path = Path(a.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(path.read_text())["weights"] if path.is_file() else {}
    merged.update(out)  # keep the other tasks' rows from earlier runs
    path.write_text(json.dumps({"iters": a.iters, "threads": a.threads, "weights": merged}, indent=2))


if __name__ == "__main__":
    main()
