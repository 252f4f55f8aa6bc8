"""Block compressed sensing on Set11 with ISTA-Net's shared Φ and Qinit: Qinit and TV-FISTA vs TVAL3.

Protocol as in ISTA-Net: grey images, 33×33 blocks with zero padding, PSNR on the 0–255 scale of the
reconstruction clipped to [0, 1] (no rounding), SSIM by scikit-image with data_range 255.
The TV weight is chosen per ratio on scikit-image's ``coffee``, ``chelsea`` and ``coins`` (grey,
256×256), never on Set11. Prints a table beside the TVAL3 row of the ISTA-Net paper and writes
``benchmarks/results/set11_block_cs.json``.

    python benchmarks/set11_block_cs.py [--data ../shared/data] [--ratios 10,25,40] [--iters 300]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from proxlab.data import load_set11, skimage_image
from proxlab.experiments.blockcs import set11_scores
from proxlab.operators import BlockCompressedSensing
from proxlab.priors.classic import TV
from proxlab.solvers import fista

TVAL3 = {1: 16.43, 4: 18.75, 10: 22.99, 25: 27.92, 30: 29.23, 40: 31.46, 50: 33.55}  # ISTA-Net paper, Table 1
LAMBDAS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)


def psnr255(rec: torch.Tensor, x: torch.Tensor) -> float:
    return set11_scores(rec, x)[0]


def ssim255(rec: torch.Tensor, x: torch.Tensor) -> float:
    return set11_scores(rec, x)[1]


def tv_fista(op: BlockCompressedSensing, x: torch.Tensor, lam: float, iters: int) -> tuple[torch.Tensor, torch.Tensor]:
    A = op.resized(tuple(x.shape[-2:]))
    y = A(x)
    x0 = A.init(y)
    rec = fista(A, y, TV(lam, max_iter=30, tol=1e-4, low=0.0, high=1.0), x0=x0, max_iter=iters, tol=1e-6, history=False).x
    return x0.clamp(0, 1), rec.clamp(0, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--ratios", default="10,25,40")
    p.add_argument("--iters", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "set11_block_cs.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    data = Path(a.data)
    set11 = load_set11(data / "Set11")
    tune = torch.cat([skimage_image(n, grey=True, size=256) for n in ("coffee", "chelsea", "coins")])
    results = {}
    t0 = time.time()
    for pct in [int(r) for r in a.ratios.split(",")]:
        mats = data / "ISTA-Net_sampling_matrix"
        op = BlockCompressedSensing.from_mat(mats / f"phi_0_{pct}_1089.mat", mats / f"Initialization_Matrix_{pct}.mat")
        scan = {}
        for lam in LAMBDAS:
            scan[lam] = sum(psnr255(tv_fista(op, tune[i : i + 1], lam, a.iters)[1], tune[i : i + 1]) for i in range(3)) / 3
        lam = max(scan, key=scan.get)
        rows = []
        for name, x in set11:
            t = time.perf_counter()
            x0, rec = tv_fista(op, x, lam, a.iters)
            rows.append({"image": name, "psnr_qinit": psnr255(x0, x), "ssim_qinit": ssim255(x0, x),
                         "psnr_tv": psnr255(rec, x), "ssim_tv": ssim255(rec, x), "seconds": time.perf_counter() - t})
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("psnr_qinit", "ssim_qinit", "psnr_tv", "ssim_tv", "seconds")}
        results[pct] = {"lambda": lam, "tuning_scan": scan, "mean": mean, "per_image": rows, "tval3_paper": TVAL3.get(pct)}
        print(f"{pct:3d}%  lam={lam:g}  Qinit {mean['psnr_qinit']:.2f}/{mean['ssim_qinit']:.4f}  "
              f"TV-FISTA {mean['psnr_tv']:.2f}/{mean['ssim_tv']:.4f}  TVAL3(paper) {TVAL3.get(pct)}  "
              f"{mean['seconds']:.1f} s/image", flush=True)
    print("\n| ratio | Qinit PSNR/SSIM | TV-FISTA (ours) PSNR/SSIM | TVAL3 (ISTA-Net paper) PSNR |")
    print("|---|---|---|---|")
    for pct, r in results.items():
        m = r["mean"]
        print(f"| {pct}% | {m['psnr_qinit']:.2f} / {m['ssim_qinit']:.4f} | {m['psnr_tv']:.2f} / {m['ssim_tv']:.4f} | {r['tval3_paper']} |")
    print(f"total {time.time() - t0:.0f} s, {a.iters} FISTA iterations, {a.threads} threads")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"iters": a.iters, "threads": a.threads, "results": results}, indent=2))


if __name__ == "__main__":
    main()
