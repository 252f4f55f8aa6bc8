"""Benchmark ParallelBeamCT against skimage's radon / iradon on the 128x128 Shepp-Logan phantom.

Run ``python benchmarks/bench_ct.py`` (optionally ``--repeats N``). For 180 and 60 equispaced angles
and 1 and 2 torch threads it times (median of repeats, batch 1): our forward, adjoint,
forward+adjoint and forward+FBP in float32 and float64, and skimage ``radon`` and ``iradon`` in the
same run; it reports the speed-ups, the relative difference of our sinogram to skimage's radon, of
our FBP to skimage's iradon, and the PSNR of both reconstructions against the phantom. Prints a
table and writes ``benchmarks/results/bench_ct.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from proxlab.operators.ct import ParallelBeamCT

RESULTS = Path(__file__).resolve().parent / "results" / "bench_ct.json"


def median_ms(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _busy_cpu_s() -> float | None:
    """CPU seconds all processes have spent busy so far (Linux /proc/stat), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def psnr(rec: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(rec, 0, 1) - ref) ** 2)))


def run(size: int, n_angles: int, threads: int, repeats: int, image: np.ndarray) -> dict:
    from skimage.transform import iradon, radon

    torch.set_num_threads(threads)
    theta = np.linspace(0, 180, n_angles, endpoint=False)
    t0 = time.perf_counter()
    op = ParallelBeamCT(size, n_angles)
    build_s = time.perf_counter() - t0
    plain = ParallelBeamCT(size, n_angles, symmetry=False)
    row: dict = {
        "size": size,
        "angles": n_angles,
        "threads": torch.get_num_threads(),
        "symmetric": op.symmetric,
        "nnz": op.nnz,
        "nnz_plain": plain.nnz,
        "build_s": build_s,
    }

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sino_ref = radon(image, theta=theta, circle=True)
    rec_ref = iradon(sino_ref, theta=theta, circle=True)
    sk_repeats = max(3, repeats // 4)
    row["skimage_radon_ms"] = median_ms(lambda: radon(image, theta=theta, circle=True), sk_repeats, warmup=1)
    row["skimage_iradon_ms"] = median_ms(lambda: iradon(sino_ref, theta=theta, circle=True), sk_repeats, warmup=1)
    sk_total = row["skimage_radon_ms"] + row["skimage_iradon_ms"]
    row["skimage_radon_iradon_ms"] = sk_total

    with torch.no_grad():
        for dtype, tag in ((torch.float32, "f32"), (torch.float64, "f64")):
            x = torch.from_numpy(image).to(dtype)[None, None]
            y = op(x)
            row[f"forward_ms_{tag}"] = median_ms(lambda: op(x), repeats)
            row[f"adjoint_ms_{tag}"] = median_ms(lambda: op.adjoint(y), repeats)
            row[f"forward_adjoint_ms_{tag}"] = median_ms(lambda: op.adjoint(op(x)), repeats)
            row[f"forward_fbp_ms_{tag}"] = median_ms(lambda: op.fbp(op(x)), repeats)
            row[f"forward_adjoint_plain_ms_{tag}"] = median_ms(lambda: plain.adjoint(plain(x)), repeats)
            row[f"speedup_fwd_adj_{tag}"] = sk_total / row[f"forward_adjoint_ms_{tag}"]
            row[f"speedup_fwd_fbp_{tag}"] = sk_total / row[f"forward_fbp_ms_{tag}"]
        x8 = torch.from_numpy(image).float()[None, None].repeat(8, 1, 1, 1) * torch.rand(8, 1, 1, 1)
        row["forward_adjoint_batch8_ms_f32"] = median_ms(lambda: op.adjoint(op(x8)), repeats)
        row["forward_adjoint_plain_batch8_ms_f32"] = median_ms(lambda: plain.adjoint(plain(x8)), repeats)
        x64 = torch.from_numpy(image)[None, None]
        sino = op(x64)[0, 0].numpy()
        rec = op.fbp(op(x64))[0, 0].numpy()
    row["radon_rel_diff"] = rel(sino, sino_ref.T)
    row["fbp_vs_iradon_rel_diff"] = rel(rec, rec_ref)
    row["psnr_fbp_db"] = psnr(rec, image)
    row["psnr_iradon_db"] = psnr(rec_ref, image)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per measurement (median)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    image = resize(shepp_logan_phantom(), (128, 128))
    rows = []
    for n in (180, 60):
        for threads in (2, 1):
            # CPU time used by other processes during the run: with 2 threads on 2 cores, a busy
            # neighbour stalls every parallel region, and those timings mean nothing.
            busy0, own0, wall0 = _busy_cpu_s(), sum(os.times()[:2]), time.perf_counter()
            row = run(128, n, threads, args.repeats, image)
            busy1, own1, wall1 = _busy_cpu_s(), sum(os.times()[:2]), time.perf_counter()
            if busy0 is not None and busy1 is not None:
                row["other_processes_cpu_fraction"] = max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall1 - wall0)
            rows.append(row)

    head = (
        f"{'angles':>6} {'thr':>3} | {'fwd':>5} {'adj':>5} {'fwd+adj':>7} {'plain':>6} {'fwd+fbp':>7} | "
        f"{'fwd+adj':>7} {'plain':>6} | {'radon':>6} {'iradon':>6} | {'x f32':>5} {'x f64':>5} {'x fbp':>5} | "
        f"{'radon diff':>10} {'fbp diff':>8} {'PSNR':>5} {'skPSNR':>6} | {'other':>5}"
    )
    print(f"ParallelBeamCT vs skimage, 128x128 Shepp-Logan, batch 1, torch {torch.__version__}, median of "
          f"{args.repeats} (ours) / {max(3, args.repeats // 4)} (skimage) runs, times in ms")
    print(f"{'':>10} | {'ours, float32 (symmetric path; plain = symmetry=False)':<43} | {'ours, float64':<14} | "
          f"{'skimage':<13} | {'speed-up':<17} |")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['angles']:>6} {r['threads']:>3} | {r['forward_ms_f32']:5.2f} {r['adjoint_ms_f32']:5.2f} "
            f"{r['forward_adjoint_ms_f32']:7.2f} {r['forward_adjoint_plain_ms_f32']:6.2f} "
            f"{r['forward_fbp_ms_f32']:7.2f} | {r['forward_adjoint_ms_f64']:7.2f} "
            f"{r['forward_adjoint_plain_ms_f64']:6.2f} | {r['skimage_radon_ms']:6.1f} {r['skimage_iradon_ms']:6.1f} | "
            f"{r['speedup_fwd_adj_f32']:5.1f} {r['speedup_fwd_adj_f64']:5.1f} {r['speedup_fwd_fbp_f32']:5.1f} | "
            f"{r['radon_rel_diff']:10.1e} {r['fbp_vs_iradon_rel_diff']:8.2%} "
            f"{r['psnr_fbp_db']:5.2f} {r['psnr_iradon_db']:6.2f} | "
            f"{r.get('other_processes_cpu_fraction', float('nan')):5.2f}"
        )
    print(
        "x f32 / x f64: skimage radon+iradon time over our forward+adjoint time; x fbp: over our forward+FBP "
        "(float32).\ndiff: relative l2 difference to skimage radon / iradon; PSNR of FBP (clipped to [0, 1]) "
        "against the phantom.\nother: CPU cores' worth used by other processes during the row (0 on an idle "
        "machine; above ~0.1 the 2-thread timings are not trustworthy)."
    )
    print("\nbatch 8, float32, forward+adjoint ms: symmetric path / plain path (symmetry=False)")
    for r in rows:
        print(
            f"{r['angles']:>6} angles, {r['threads']} threads: {r['forward_adjoint_batch8_ms_f32']:6.2f} / "
            f"{r['forward_adjoint_plain_batch8_ms_f32']:6.2f}"
        )
    meta = {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "repeats": args.repeats,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
