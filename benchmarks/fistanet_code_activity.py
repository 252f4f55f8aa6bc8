"""Why FISTA-Net trained on the stent CT slab stalls near FBP with the authors' start, measured: the fraction of
non-zero codes ``soft(H(D r_k), θ_k)`` per phase at initialisation, on CT training slices and on ellipse phantoms,
for the authors' θ_0 = softplus(-2) ≈ 0.127 and for lower starts (``FISTANet(theta_start=…)``).

A code under its threshold passes no gradient to θ or to the block's convolutions, so a phase whose codes are all
zero cannot learn. The stent volume is dim (mean 0.018 after / 2000; 74 % of voxels 0), ellipse phantoms are not.

A network whose codes are mostly dead also carries values that decay towards zero, and subnormal floats are slow
on a CPU: with ``--weights FILE`` (a trained FISTA-Net at 60 views, e.g. ``zoo:fistanet-ct60``) the script also times
one training step (batch 1, the fistanet loss) with subnormals kept and flushed to zero, interleaved, median of 5;
the timings of every weights file measured so far stay in the JSON (keyed by ``--weights``).

    python benchmarks/fistanet_code_activity.py [--volume ~/.cache/proxlab/ct/stent.npz] [--weights zoo:fistanet-ct60]

Prints a table and writes benchmarks/results/fistanet_code_activity.json. Needs the volume
(``python -m proxlab.data.ct_stent``); 60 views, sinogram noise 0.5, the slices 0, 20, …, 160 of the training slab.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from proxlab.data import MeasurementPairs, random_ellipses
from proxlab.operators import ParallelBeamCT
from proxlab.training.checkpoint import atomic_write_text
from proxlab.unrolled import FISTANet

STARTS = (None, 0.03, 0.01, 0.003)


def activity(x: torch.Tensor, theta_start, angles: int = 60, seeds=(0, 1, 2)) -> list[float]:
    """Mean over ``seeds`` (network initialisations) of the non-zero fraction of each phase's code."""
    A = ParallelBeamCT(x.shape[-1], angles)
    y = torch.stack([p[0] for p in MeasurementPairs(x, A, noise=0.5, seed=3)])
    per_seed = []
    for s in seeds:
        torch.manual_seed(s)
        net = FISTANet(A, phases=6, features=32, theta_start=theta_start)
        with torch.no_grad():
            codes = net(y, return_aux=True).aux["sparsity"]
        per_seed.append([float((c != 0).float().mean()) for c in codes])
    return [float(v) for v in np.mean(per_seed, axis=0)]


def step_seconds(weights: str, x: torch.Tensor, repeats: int = 5) -> dict[str, float]:
    """Median seconds of one training step (forward with the aux terms, loss, backward) with subnormal floats kept
    and flushed, interleaved."""
    import time

    from proxlab.losses import fistanet_loss
    from proxlab.training import load_model_weights, resolve_weights

    A = ParallelBeamCT(x.shape[-1], 60)
    net = FISTANet(A)
    load_model_weights(resolve_weights(weights), net)
    y = torch.stack([p[0] for p in MeasurementPairs(x, A, noise=0.5, seed=3)])
    times: dict[str, list[float]] = {"kept": [], "flushed": []}
    for _ in range(repeats):
        for mode in times:
            torch.set_flush_denormal(mode == "flushed")
            net.zero_grad()
            t = time.perf_counter()
            out = net(y, return_aux=True)
            fistanet_loss(out.x, x, out.aux).backward()
            times[mode].append(time.perf_counter() - t)
    torch.set_flush_denormal(False)
    return {k: float(np.median(v)) for k, v in times.items()}


def merge_step_seconds(earlier: dict, weights: str, t: dict[str, float]) -> dict:
    """The step timings of every weights file measured so far, keyed by the ``--weights`` argument, with this one's
    (a file written before the timings were keyed, ``{"weights": ..., "kept": ...}``, is read as one entry)."""
    merged = {earlier["weights"]: {k: v for k, v in earlier.items() if k != "weights"}} if "weights" in earlier else dict(earlier)
    merged[weights] = {**t, "ratio": t["kept"] / t["flushed"],
                       "command": f"python benchmarks/fistanet_code_activity.py --weights {weights}"}
    return merged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--volume", default="~/.cache/proxlab/ct/stent.npz")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "fistanet_code_activity.json"))
    ap.add_argument("--weights", default=None, help="a trained 60-view FISTA-Net (file or zoo:NAME) to time")
    args = ap.parse_args()
    torch.set_num_threads(1)
    vol = np.load(Path(args.volume).expanduser())["arr_0"]
    ct = torch.from_numpy(vol[0:180:20].astype(np.float32) / 2000.0)[:, None]
    ellipses = random_ellipses(9, 128, seed=1)
    rows = {}
    for name, x in (("ct", ct), ("ellipses", ellipses)):
        for th in STARTS if name == "ct" else (None,):
            label = f"{name}, theta_0 = {'authors (0.127)' if th is None else th}"
            rows[label] = {"mean_intensity": float(x.mean()), "nonzero_code_fraction": activity(x, th)}
    print(f"{'setting':34s} {'mean x':>7s}  non-zero code fraction, phases 1..6")
    for label, r in rows.items():
        print(f"{label:34s} {r['mean_intensity']:7.4f}  " + " ".join(f"{v:6.4f}" for v in r["nonzero_code_fraction"]))
    result = {"command": "python benchmarks/fistanet_code_activity.py", "angles": 60, "noise": 0.5, "rows": rows}
    out = Path(args.out)
    earlier = json.loads(out.read_text()).get("step_seconds", {}) if out.is_file() else {}
    result["step_seconds"] = earlier
    if args.weights:
        t = step_seconds(args.weights, ct[1:2])
        result["step_seconds"] = merge_step_seconds(earlier, args.weights, t)
        print(f"one training step with {args.weights}: subnormals kept {t['kept']:.3f} s, flushed {t['flushed']:.3f} s "
              f"({t['kept'] / t['flushed']:.2f}x)")
    atomic_write_text(out, json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
