"""Deep ADMM-Net's released nets (yangyan92/Deep-ADMM-Net @f95738c, ``net/network_20/net-stage{7,14,15}.mat``) run by
``proxlab.unrolled.ADMMNet``, against the repository README, with the authors' test protocol (main_ADMM_Net_test.m):

- images ``Brain_data{1,2}.mat`` (``im_ori``, 256x256 in [0, 1], MATLAB orientation), mask ``mask_20.mat``;
- k-space ``y = ifftshift(mask) .* fft2(im_ori)`` (unnormalised DFT; ``norm="backward"``), float64;
- PSNR = MATLAB ``psnr(abs(rec), abs(im_ori))``: peak 1, MSE over the whole image, no crop, no clamp;
  NMSE = ``norm(rec - im_ori, 'fro') / norm(im_ori, 'fro')`` (rnnloss.m).

Zero-filled ``abs(ifft2(y))`` is listed for context. Needs the reference data beside the repository
(``../shared/data``: ``ADMM-Net_weights/`` and ``ADMM-Net_brain/``). Prints a table and writes
``benchmarks/results/admmnet_released.json``.

    python benchmarks/admmnet_released.py [--data ../shared/data] [--out benchmarks/results/admmnet_released.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from proxlab.operators import MRI
from proxlab.operators.compressed_sensing import load_mat_array
from proxlab.unrolled import ADMMNet

ROOT = Path(__file__).resolve().parents[1]
# The repository README: (PSNR dB, NMSE) per net and image.
README = {7: {1: (35.60, 0.0578), 2: (30.40, 0.0957)}, 14: {1: (35.83, 0.0562), 2: (30.65, 0.0929)},
          15: {1: (35.85, 0.0561), 2: (30.67, 0.0927)}}


def _scores(rec: torch.Tensor, x: torch.Tensor) -> tuple[float, float]:
    mse = float((rec.abs() - x.abs()).pow(2).mean())
    return 10 * torch.log10(torch.tensor(1 / mse, dtype=torch.float64)).item(), float(
        torch.linalg.norm(rec - x) / torch.linalg.norm(x))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data"),
                   help="folder with ADMM-Net_weights/ and ADMM-Net_brain/")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "admmnet_released.json"))
    a = p.parse_args(argv)
    data = Path(a.data)
    brain, weights = data / "ADMM-Net_brain", data / "ADMM-Net_weights"
    if not brain.is_dir() or not weights.is_dir():
        print(f"--data: {data} must hold ADMM-Net_brain/ and ADMM-Net_weights/", file=sys.stderr)
        return 2
    mask = MRI.from_mat(brain / "mask_20.mat").mask.double()
    rows = []
    print(f"{'image':<12} {'net':<15} {'stages':>6} {'ours dB':>9} {'README':>7} {'diff':>7} {'ours NMSE':>10} "
          f"{'README':>7} {'zero-fill':>9} {'s':>5}")
    for image in (1, 2):
        x = load_mat_array(brain / f"Brain_data{image}.mat", ["im_ori"])
        y = mask * torch.fft.fft2(x)
        zero_filled = _scores(torch.fft.ifft2(y).abs(), x)[0]
        for name in (7, 14, 15):
            net = ADMMNet.from_matlab(weights / f"net-stage{name}.mat", mask)
            t0 = time.perf_counter()
            with torch.no_grad():
                rec = net(y[None, None])[0, 0]
            seconds = time.perf_counter() - t0
            psnr, nmse = _scores(rec, x)
            ref_psnr, ref_nmse = README[name][image]
            rows.append({"image": f"Brain_data{image}", "net": f"net-stage{name}.mat", "stages": net.stages,
                         "psnr": round(psnr, 4), "readme_psnr": ref_psnr, "diff_db": round(psnr - ref_psnr, 4),
                         "nmse": round(nmse, 5), "readme_nmse": ref_nmse, "zero_filled_psnr": round(zero_filled, 4),
                         "seconds": round(seconds, 3)})
            print(f"{rows[-1]['image']:<12} {rows[-1]['net']:<15} {net.stages:>6} {psnr:>9.3f} {ref_psnr:>7.2f} "
                  f"{psnr - ref_psnr:>+7.3f} {nmse:>10.5f} {ref_nmse:>7.4f} {zero_filled:>9.2f} {seconds:>5.2f}")
    worst = max(abs(r["diff_db"]) for r in rows)
    print(f"largest |ours - README|: {worst:.4f} dB")
    command = "python benchmarks/admmnet_released.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = {"command": command.strip(), "threads": torch.get_num_threads(), "dtype": "float64",
           "protocol": "y = ifftshift(mask) .* fft2(im_ori); PSNR = psnr(abs(rec), abs(im_ori)), peak 1, no crop",
           "max_abs_diff_db": round(worst, 4), "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
