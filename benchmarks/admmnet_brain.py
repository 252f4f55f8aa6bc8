"""Deep ADMM-Net's released nets against zero-filling and ADMM-TV on the 50 brain MR test images, and time to quality.

Everything at the 20 % pseudo-radial mask of Deep ADMM-Net (``ADMM-Net_brain/mask_20.mat``), with the authors'
conventions (as in ``benchmarks/admmnet_released.py``): k-space ``y = ifftshift(mask) .* fft2(x)`` (unnormalised
DFT), PSNR = MATLAB ``psnr(abs(rec), abs(x))`` (peak 1, MSE over the whole image, no crop, no clamp). SSIM is
``proxlab.metrics.ssim(abs(rec), x, data_range=1)`` (scikit-image's defaults: uniform 7x7 window, sample
covariances); the ADMM-Net paper reports none.

1. Table: the 50 images of ``ISTA-Net_brain_test/brain_test_{01..50}.png`` (8-bit grey / 255, float64; read as
   stored, rows first, which is MATLAB's ``imread`` orientation, the one the ISTA-Net authors pair with their masks,
   and those masks equal ``ifftshift`` of Deep ADMM-Net's in that orientation). Mean PSNR / SSIM over the 50 of
   zero-filling ``abs(ifft2(y))``, ADMM-TV, and ``ADMMNet.from_matlab(net-stage{7,14,15}.mat)`` (float32; float64
   agrees to 1e-5 dB, see part 2), beside the ADMM-Net paper's Table 1 at 20 %. These images are held out: nothing
   is chosen on them.

   ADMM-TV is ``proxlab.methods.reconstruct("admm-tv", MRI(mask), MRI(mask)(x), "mri", lam, rho, ...)`` (float32;
   proxlab's ``MRI`` measures the orthonormal k-space, the authors' y / 256, noiseless, so only the scale of ``lam``
   differs), one image at a time, stopped when the relative change of x falls to ``--tv-tol`` (3e-4) or after
   ``--tv-iters`` (100) iterations. ``(lam, rho)`` is the best mean PSNR over the grid lam in {1e-5, 1e-4, 1e-3} x
   rho in {0.003, 0.01, 0.03} on chest MR training images ``ADMM-Net_chest_train/im-{01,34,67}.mat``, with the same
   mask and stopping rule. (Noiseless data: as lam falls the PSNR creeps towards that of min TV(x) s.t. Ax = y, by
   a few hundredths of a dB per decade below 1e-4, so the grid stops at 1e-5.)
2. Time to quality, on ``ADMM-Net_brain/Brain_data{1,2}.mat`` (``im_ori``): ADMM-TV at the chosen weight run for
   ``--ttq-iters`` (500) iterations without a tolerance stop, PSNR and wall time after every iteration (the PSNR
   evaluation is left out of the time); the iterations and seconds it needs to reach each net's PSNR, or its best
   PSNR and time if it never does. Each net's forward time, float32 and float64, median of ``--repeats`` (3),
   timed on Brain_data1 (the cost does not depend on the image). Ratio = ADMM-TV time to reach the net's PSNR / the
   net's time; the issue's goal is >= 20 for ADMM-Net at equal PSNR.

Mapping to the paper's columns: by file name (net-stage14 -> ADMM-Net_14, net-stage15 -> ADMM-Net_15; net-stage7
has no 20 % column). The files hold 16 and 17 reconstruction layers (the names count the middle stages), so the
stage count behind the paper's subscripts is not confirmed by the files; the mapping is the names', not verified.

Prints a table, writes ``benchmarks/results/admmnet_brain.json`` (command, threads, load average, machine, weight
grid, rows, curves, ratios) and ``docs/figures/admmnet_time_to_quality.png``; ``--quick`` (2 test images,
net-stage7 only, a 2-point grid on 1 training image, a few ADMM-TV iterations, 1 repeat) writes
``admmnet_brain_quick.json`` and a figure beside it unless ``--out`` / ``--figure`` say otherwise.

    OMP_NUM_THREADS=1 python benchmarks/admmnet_brain.py [--data ../shared/data] [--threads 1] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from proxlab.methods import reconstruct
from proxlab.metrics import ssim
from proxlab.operators import MRI
from proxlab.operators.compressed_sensing import load_mat_array
from proxlab.unrolled import ADMMNet

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "admmnet_brain.json"
QUICK_RESULTS = RESULTS.with_name("admmnet_brain_quick.json")  # a smoke run never overwrites the full one
FIGURE = ROOT / "docs" / "figures" / "admmnet_time_to_quality.png"
GOAL = 20.0  # the issue's goal: ADMM-Net >= 20x faster than ADMM-TV at equal PSNR
# ADMM-Net paper (Yang et al., NIPS 2016) Table 1, brain MR, 20 %: PSNR dB and test time per image (MATLAB, CPU).
PAPER = {"zero-filled": (29.96, 0.0013), "ADMM-TV": (35.20, 0.74), "net-stage14.mat": (37.13, None),
         "net-stage15.mat": (37.17, 0.79)}
PAPER_COLUMN = {"zero-filled": "zero-filling", "ADMM-TV": "TV", "net-stage7.mat": None,
                "net-stage14.mat": "ADMM-Net_14", "net-stage15.mat": "ADMM-Net_15"}
TRAIN_IMAGES = (1, 34, 67)
LAMS, RHOS = (1e-5, 1e-4, 1e-3), (0.003, 0.01, 0.03)


def admm_psnr(rec: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``psnr(abs(rec), abs(x))``, peak 1, per sample of ``(B, 1, H, W)``, in float64."""
    err = (rec.abs().double() - x.abs().double()).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(1 / err)


def load_brain_test(folder: Path, count: int) -> torch.Tensor:
    """``brain_test_{01..count}.png`` / 255 as ``(count, 1, 256, 256)`` float64, rows first as stored."""
    from PIL import Image

    ims = []
    for i in range(1, count + 1):
        with Image.open(folder / f"brain_test_{i:02d}.png") as im:
            if im.mode != "L":
                raise ValueError(f"{folder}/brain_test_{i:02d}.png: expected 8-bit grey (mode L), got mode {im.mode}")
            ims.append(torch.from_numpy(np.asarray(im, dtype=np.float64) / 255.0))
    return torch.stack(ims)[:, None]


def admm_tv(A: MRI, x: torch.Tensor, lam: float, rho: float, max_iter: int, tol: float, curve: bool = False):
    """ADMM-TV on one image ``(1, 1, H, W)`` (float64 truth) measured by ``A`` in float32. Returns the
    reconstruction, the iterations run, the seconds, and (``curve``) ``[(iteration, seconds, psnr), ...]`` with the
    PSNR evaluation taken out of the seconds."""
    y = A(x.float())
    points, spent, t0 = [], [0.0], time.perf_counter()

    def callback(k, state):
        t = time.perf_counter()
        if curve:
            points.append((k, t - t0 - spent[0], float(admm_psnr(state.z, x))))
        else:
            points.append((k, t - t0 - spent[0], None))
        spent[0] += time.perf_counter() - t

    rec = reconstruct("admm-tv", A, y, "mri", lam=lam, rho=rho, max_iter=max_iter, tol=tol, callback=callback)
    seconds = time.perf_counter() - t0 - spent[0]
    return rec, points[-1][0], seconds, points


def choose_weight(data: Path, A: MRI, images, lams, rhos, max_iter: int, tol: float):
    """Best mean PSNR over ``lams x rhos`` on chest training images ``im-NN.mat``."""
    xs = [load_mat_array(data / "ADMM-Net_chest_train" / f"im-{i:02d}.mat", ["im_ori"])[None, None] for i in images]
    grid = []
    for lam in lams:
        for rho in rhos:
            ps = [float(admm_psnr(admm_tv(A, x, lam, rho, max_iter, tol)[0], x)) for x in xs]
            grid.append({"lam": lam, "rho": rho, "train_psnr": round(statistics.fmean(ps), 4)})
            print(f"  grid lam={lam:g} rho={rho:g}: mean PSNR {grid[-1]['train_psnr']:.3f} dB on {len(xs)} chest images")
    best = max(grid, key=lambda g: g["train_psnr"])
    return best["lam"], best["rho"], grid, [f"im-{i:02d}.mat" for i in images]


def net_forward(net: ADMMNet, y: torch.Tensor) -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    with torch.no_grad():
        rec = net(y)
    return rec, time.perf_counter() - t0


def test_table(data: Path, mask: torch.Tensor, A: MRI, nets, count: int, lam: float, rho: float, tv_iters: int,
               tv_tol: float):
    """Part 1: mean PSNR / SSIM over the held-out brain test images."""
    x = load_brain_test(data / "ISTA-Net_brain_test", count)
    y = mask * torch.fft.fft2(x)
    per = {}
    t0 = time.perf_counter()
    zf = torch.fft.ifft2(y).abs()
    per["zero-filled"] = (zf, (time.perf_counter() - t0) / count, None)
    recs, secs, iters = [], [], []
    for i in range(count):
        rec, k, s, _ = admm_tv(A, x[i:i + 1], lam, rho, tv_iters, tv_tol)
        recs.append(rec.double())
        secs.append(s)
        iters.append(k)
    per["ADMM-TV"] = (torch.cat(recs), statistics.fmean(secs), statistics.fmean(iters))
    for name in nets:
        net = ADMMNet.from_matlab(data / "ADMM-Net_weights" / name, mask, dtype=torch.float32)
        outs, secs = [], []
        for i in range(count):
            rec, s = net_forward(net, y[i:i + 1].to(torch.complex64))
            outs.append(rec.double())
            secs.append(s)
        per[name] = (torch.cat(outs), statistics.fmean(secs), net.stages)
    rows = []
    for method, (rec, seconds, extra) in per.items():
        p, s = admm_psnr(rec, x), ssim(rec.abs(), x, data_range=1.0)
        paper = PAPER.get(method, (None, None))
        row = {"method": method, "paper_column": PAPER_COLUMN[method], "psnr": round(float(p.mean()), 4),
               "psnr_std": round(float(p.std()), 4), "ssim": round(float(s.mean()), 5), "paper_psnr": paper[0],
               "diff_db": None if paper[0] is None else round(float(p.mean()) - paper[0], 4),
               "seconds_per_image": round(seconds, 5), "paper_seconds": paper[1],
               "psnr_per_image": [round(v, 3) for v in p.tolist()]}
        if method == "ADMM-TV":
            row.update(lam=lam, rho=rho, mean_iterations=round(extra, 2), max_iter=tv_iters, tol=tv_tol,
                       dtype="float32")
        elif method != "zero-filled":
            row.update(stages=extra, dtype="float32")
        rows.append(row)
    return rows


def time_to_quality(data: Path, mask: torch.Tensor, A: MRI, nets, lam: float, rho: float, iters: int, repeats: int):
    """Part 2: ADMM-TV's PSNR-vs-time curve on Brain_data1/2 against each net's PSNR and forward time."""
    loaded = {name: {dt: ADMMNet.from_matlab(data / "ADMM-Net_weights" / name, mask, dtype=dt)
                     for dt in (torch.float32, torch.float64)} for name in nets}
    images = {f"Brain_data{i}": load_mat_array(data / "ADMM-Net_brain" / f"Brain_data{i}.mat", ["im_ori"])[None, None]
              for i in (1, 2)}
    cdt = {torch.float32: torch.complex64, torch.float64: torch.complex128}
    net_psnr = {}
    for name in nets:  # the PSNR forwards warm each net up; then `repeats` timed ones, the dtypes interleaved
        for image, x in images.items():
            y = mask * torch.fft.fft2(x)
            for dt, net in loaded[name].items():
                net_psnr[name, image, dt] = float(admm_psnr(net_forward(net, y.to(cdt[dt]))[0], x))
    timing = {}
    y1 = mask * torch.fft.fft2(images["Brain_data1"])
    for name in nets:
        runs = {torch.float32: [], torch.float64: []}
        for _ in range(repeats):
            for dt, net in loaded[name].items():
                runs[dt].append(net_forward(net, y1.to(cdt[dt]))[1])
        timing[name] = {"float32": statistics.median(runs[torch.float32]),
                        "float64": statistics.median(runs[torch.float64])}
    rows, curves = [], {}
    for image, x in images.items():
        _, _, seconds, curve = admm_tv(A, x, lam, rho, iters, 0.0, curve=True)
        curves[image] = [[k, round(t, 4), round(p, 4)] for k, t, p in curve]
        best = max(curve, key=lambda c: c[2])
        for name in nets:
            p64, p32 = net_psnr[name, image, torch.float64], net_psnr[name, image, torch.float32]
            hit = next((c for c in curve if c[2] >= p64), None)
            row = {"image": image, "net": name, "stages": loaded[name][torch.float64].stages,
                   "net_psnr": round(p64, 4), "net_psnr_float32_minus_float64": float(f"{p32 - p64:.2e}"),
                   "net_seconds_float32": round(timing[name]["float32"], 4),
                   "net_seconds_float64": round(timing[name]["float64"], 4),
                   "tv_iterations_run": curve[-1][0], "tv_seconds_run": round(seconds, 3),
                   "tv_best_psnr": round(best[2], 4), "tv_best_iteration": best[0],
                   "tv_best_seconds": round(best[1], 3), "reached": hit is not None,
                   "tv_iterations_to_reach": None if hit is None else hit[0],
                   "tv_seconds_to_reach": None if hit is None else round(hit[1], 4)}
            for dt in ("float32", "float64"):
                row[f"ratio_{dt}"] = None if hit is None else round(hit[1] / timing[name][dt], 3)
                # not reached: how many net forwards the whole ADMM-TV budget cost (no ratio exists)
                row[f"budget_over_net_{dt}"] = round(seconds / timing[name][dt], 3)
            rows.append(row)
    return rows, curves


def plot(curves, rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, len(curves), figsize=(5.2 * len(curves), 3.8), squeeze=False)
    for ax, (image, curve) in zip(axes[0], curves.items()):
        c = np.asarray(curve, dtype=float)
        ax.semilogx(c[:, 1], c[:, 2], color="0.3", label="ADMM-TV (per iteration)")
        for r, color in zip([r for r in rows if r["image"] == image], ("tab:blue", "tab:orange", "tab:red")):
            label = f"{r['net'].removesuffix('.mat')} ({r['stages']} st.)"
            ax.plot(r["net_seconds_float32"], r["net_psnr"], "o", color=color, label=f"{label} float32")
            ax.plot(r["net_seconds_float64"], r["net_psnr"], "s", mfc="none", color=color, label=f"{label} float64")
            ax.axhline(r["net_psnr"], color=color, lw=0.6, ls="--")
        ax.set(title=f"{image}, 20 % pseudo-radial mask", xlabel="wall time (s, 1 thread)", ylabel="PSNR (dB)")
        ax.set_ylim(float(c[:, 2].min()) - 0.3, max(max(r["net_psnr"] for r in rows if r["image"] == image), c[:, 2].max()) + 0.5)
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=7, loc="center left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                   help="folder with ADMM-Net_brain/, ADMM-Net_weights/, ADMM-Net_chest_train/, ISTA-Net_brain_test/")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--repeats", type=int, default=3, help="timed net forwards per dtype (median)")
    p.add_argument("--tv-iters", type=int, default=100, help="ADMM-TV iteration cap (table and weight grid)")
    p.add_argument("--tv-tol", type=float, default=3e-4, help="ADMM-TV relative-change stop (table and weight grid)")
    p.add_argument("--ttq-iters", type=int, default=500, help="ADMM-TV iterations in the time-to-quality runs")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 test images, net-stage7, 2-point grid on 1 training image, <= 8/12 TV iterations")
    p.add_argument("--out", type=Path, default=None,
                   help=f"the JSON (default benchmarks/results/{RESULTS.name}; with --quick {QUICK_RESULTS.name})")
    p.add_argument("--figure", type=Path, default=None,
                   help="the figure (default docs/figures/admmnet_time_to_quality.png; with --quick beside the JSON)")
    a = p.parse_args(argv)
    if min(a.threads, a.repeats, a.tv_iters, a.ttq_iters) < 1 or not a.tv_tol >= 0:
        p.error(f"--threads, --repeats, --tv-iters, --ttq-iters must be >= 1 and --tv-tol >= 0, got {a.threads}, "
                f"{a.repeats}, {a.tv_iters}, {a.ttq_iters}, {a.tv_tol}")
    need = ("ADMM-Net_brain", "ADMM-Net_weights", "ADMM-Net_chest_train", "ISTA-Net_brain_test")
    missing = [n for n in need if not (a.data / n).is_dir()]
    if missing:
        print(f"--data: {a.data} lacks {', '.join(missing)}", file=sys.stderr)
        return 2
    out = a.out or (QUICK_RESULTS if a.quick else RESULTS)
    figure = a.figure or (out.with_suffix(".png") if a.quick else FIGURE)
    if a.quick:
        count, nets, train, lams, rhos = 2, ("net-stage7.mat",), TRAIN_IMAGES[:1], (3e-4, 1e-3), (0.03,)
        tv_iters, ttq_iters, repeats = min(a.tv_iters, 8), min(a.ttq_iters, 12), 1
    else:
        count, nets, train, lams, rhos = 50, ("net-stage7.mat", "net-stage14.mat", "net-stage15.mat"), TRAIN_IMAGES, \
            LAMS, RHOS
        tv_iters, ttq_iters, repeats = a.tv_iters, a.ttq_iters, a.repeats
    torch.set_num_threads(a.threads)
    load0, t_start = os.getloadavg(), time.perf_counter()
    mask = MRI.from_mat(a.data / "ADMM-Net_brain" / "mask_20.mat").mask.double()
    A = MRI(mask)

    print(f"ADMM-TV weight grid on chest training images (stop: rel. change <= {a.tv_tol:g} or {tv_iters} iterations)")
    lam, rho, grid, train_names = choose_weight(a.data, A, train, lams, rhos, tv_iters, a.tv_tol)
    print(f"  chosen lam={lam:g} rho={rho:g}")
    table = test_table(a.data, mask, A, nets, count, lam, rho, tv_iters, a.tv_tol)
    print(f"\n{count} brain MR test images, 20 % mask, {a.threads} thread(s); PSNR = psnr(abs(rec), abs(x)), peak 1")
    print(f"{'method':<16} {'paper column':<13} {'PSNR':>7} {'paper':>6} {'diff':>6} {'SSIM':>7} {'s/image':>8} "
          f"{'paper s':>7}")
    for r in table:
        paper = "" if r["paper_psnr"] is None else f"{r['paper_psnr']:.2f}"
        diff = "" if r["diff_db"] is None else f"{r['diff_db']:+.2f}"
        ps = "" if r["paper_seconds"] is None else f"{r['paper_seconds']:g}"
        print(f"{r['method']:<16} {r['paper_column'] or '-':<13} {r['psnr']:>7.2f} {paper:>6} {diff:>6} "
              f"{r['ssim']:>7.4f} {r['seconds_per_image']:>8.3f} {ps:>7}")
    tv_row = next(r for r in table if r["method"] == "ADMM-TV")
    print(f"ADMM-TV: lam={lam:g}, rho={rho:g}, {tv_row['mean_iterations']:.1f} iterations per image on average")

    ttq, curves = time_to_quality(a.data, mask, A, nets, lam, rho, ttq_iters, repeats)
    print(f"\nTime to quality: ADMM-TV (lam={lam:g}, rho={rho:g}, float32, {ttq_iters} iterations) vs each net "
          f"(forward median of {repeats}, 1 image)")
    print(f"{'image':<12} {'net':<16} {'net dB':>7} {'f32 s':>6} {'f64 s':>6} {'TV best dB':>10} {'@it':>4} "
          f"{'TV reach':>14} {'ratio f32':>9} {'ratio f64':>9}")
    for r in ttq:
        reach = f"{r['tv_iterations_to_reach']} it {r['tv_seconds_to_reach']:.2f}s" if r["reached"] else "not reached"
        r32 = f"{r['ratio_float32']:.1f}" if r["reached"] else "-"
        r64 = f"{r['ratio_float64']:.1f}" if r["reached"] else "-"
        print(f"{r['image']:<12} {r['net']:<16} {r['net_psnr']:>7.2f} {r['net_seconds_float32']:>6.2f} "
              f"{r['net_seconds_float64']:>6.2f} {r['tv_best_psnr']:>10.2f} {r['tv_best_iteration']:>4} {reach:>14} "
              f"{r32:>9} {r64:>9}")
    for r in ttq:
        if not r["reached"]:
            print(f"{r['image']} {r['net']}: ADMM-TV never reaches {r['net_psnr']:.2f} dB in {r['tv_iterations_run']} "
                  f"iterations ({r['tv_seconds_run']:.1f} s = {r['budget_over_net_float32']:.0f}x the float32 net); "
                  f"best {r['tv_best_psnr']:.2f} dB at iteration {r['tv_best_iteration']} ({r['tv_best_seconds']:.1f} s)")
    plot(curves, ttq, figure)

    command = "python benchmarks/admmnet_brain.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = {
        "command": command.strip(), "threads": a.threads, "quick": a.quick, "repeats": repeats,
        "protocol": {"kspace": "y = ifftshift(mask) .* fft2(x), unnormalised DFT, float64 (nets) / proxlab MRI "
                               "orthonormal k-space = y / 256 (ADMM-TV, float32)",
                     "psnr": "MATLAB psnr(abs(rec), abs(x)), peak 1, whole image, no crop, no clamp",
                     "ssim": "proxlab.metrics.ssim(abs(rec), x, data_range=1): uniform 7x7, sample covariances",
                     "test_images": f"ISTA-Net_brain_test/brain_test_01..{count:02d}.png / 255, as stored",
                     "mask": "ADMM-Net_brain/mask_20.mat (ifftshift)",
                     "paper_mapping": "by file name: net-stage14 -> ADMM-Net_14, net-stage15 -> ADMM-Net_15, "
                                      "net-stage7 -> none; not confirmed by the stage counts (16/17)"},
        "weight_selection": {"train_images": train_names, "grid": grid, "lam": lam, "rho": rho,
                             "stop": {"tol": a.tv_tol, "max_iter": tv_iters}, "criterion": "mean PSNR"},
        "table": table, "time_to_quality": ttq, "goal": {"target_ratio": GOAL, "rows_met": [
            f"{r['image']} {r['net']}" for r in ttq if r["reached"] and r["ratio_float32"] >= GOAL]},
        "curves": {"columns": ["iteration", "seconds", "psnr"], **curves},
        "figure": str(Path(figure).resolve().relative_to(Path(__file__).resolve().parents[1]))
        if Path(figure).resolve().is_relative_to(Path(__file__).resolve().parents[1]) else str(figure), "wall_s": round(time.perf_counter() - t_start, 1),
        "load_average": {"start": load0, "end": os.getloadavg()},
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                    "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
    }
    if not all(math.isfinite(r["psnr"]) for r in table):
        print("non-finite PSNR in the table", file=sys.stderr)
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out} and {figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
