"""How far does end-to-end training move a flow-PGD model's flows from the pre-trained GLOW they start from?

For each fold's flow of flow-PGD weights (a ``.safetensors`` file, ``zoo:NAME``, or a run folder: its
``model.safetensors``, and then its test PSNR / SSIM and training seconds from its ``metrics.json`` too):
the relative change of all its parameters, ``‖θ_k − θ₀‖ / ‖θ₀‖``, the largest relative change of one tensor, and the
learned step sizes μ_k (multiples of 1/‖A‖²) and shrinkages λ_k. Reads tensors only (no model is built, nothing
is run), so it costs a second. Prints a table; writes ``benchmarks/results/flow_pgd_drift.json`` (one entry per
weights argument, keyed by its label).

    python benchmarks/flow_pgd_drift.py zoo:flowpgd-fashion-denoise RUN/runs/glow-denoise [--base zoo:glow-fashion]
        [--labels tenth full] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from proxlab.training.checkpoint import atomic_write_text
from proxlab.unrolled.flow_pgd import _SHRINK, _STEP
from proxlab.weights import resolve_weights

OUT = Path(__file__).resolve().parent / "results" / "flow_pgd_drift.json"


def drift(weights: dict[str, torch.Tensor], base: dict[str, torch.Tensor]) -> dict:
    """Per fold: relative L2 change of the flow's parameters from ``base``, largest per-tensor change, μ, λ."""
    folds = sorted({int(k.split(".")[1]) for k in weights if k.startswith("flows.")})
    if not folds:
        raise ValueError("weights: expected flow-PGD weights (tensors named flows.K.*), found none")
    rows = []
    for k in folds:
        prefix = f"flows.{k}."
        own = {n[len(prefix):]: t for n, t in weights.items() if n.startswith(prefix)}
        missing = sorted(set(base) ^ set(own))
        if missing:
            raise ValueError(f"base: fold {k}'s flow and the base GLOW differ in tensors, e.g. {missing[:3]}")
        d = {n: float((own[n].double() - base[n].double()).norm()) for n in base}  # one pass per tensor
        b = {n: float(base[n].double().norm()) for n in base}
        worst = max(base, key=lambda n: d[n] / max(b[n], 1e-12))
        rows.append({"fold": k + 1, "relative_change": (sum(v * v for v in d.values()) / sum(v * v for v in b.values())) ** 0.5,
                     "largest_tensor_change": d[worst] / max(b[worst], 1e-12), "largest_tensor": worst})
    return {"folds": rows, "step_sizes": _STEP.value(weights["raw_step_size"]).tolist(),
            "shrinkages": _SHRINK.value(weights["raw_shrinkage"]).tolist()}


def _weights_and_scores(spec: str) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors of ``spec`` and, for a run folder, its test scores and training time."""
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        return load_file(str(resolve_weights(spec))), {}
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"weights: {spec!r} is a folder without model.safetensors (a finished run's folder "
                                "holds one; a sweep's runs are in RUN/runs/LABEL)")
    scores = {}
    if (folder / "metrics.json").is_file():
        m = json.loads((folder / "metrics.json").read_text())
        scores = {"test": m.get("model", {}).get("mean", {}), "train_seconds": m.get("training", {}).get("train_seconds"),
                  "steps": m.get("training", {}).get("steps")}
    return load_file(str(folder / "model.safetensors")), scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights", nargs="+", help="flow-PGD weights: .safetensors paths or zoo:NAME")
    p.add_argument("--base", default="zoo:glow-fashion", help="the pre-trained GLOW the folds started from")
    p.add_argument("--labels", nargs="*", default=None, help="one label per weights argument (default: the argument)")
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    labels = a.labels or a.weights
    if len(labels) != len(a.weights):
        p.error(f"--labels: expected {len(a.weights)} labels (one per weights argument), got {len(labels)}")
    base = load_file(str(resolve_weights(a.base)))
    report = {"base": a.base}
    print("| weights | fold | ‖θ−θ₀‖/‖θ₀‖ | largest tensor change | μ_k | λ_k |\n|---|---|---|---|---|---|")
    for label, spec in zip(labels, a.weights):
        tensors, scores = _weights_and_scores(spec)
        r = drift(tensors, base)
        report[label] = {"weights": spec, **r, **scores}
        for i, row in enumerate(r["folds"]):
            mu = r["step_sizes"][min(i, len(r["step_sizes"]) - 1)]
            lam = r["shrinkages"][min(i, len(r["shrinkages"]) - 1)]
            print(f"| {label} | {row['fold']} | {row['relative_change']:.2e} | {row['largest_tensor_change']:.2e} "
                  f"({row['largest_tensor']}) | {mu:.3f} | {lam:.4f} |")
        print(f"| {label} | last fold (no flow) | | | {r['step_sizes'][-1]:.3f} | |")
        if scores.get("test"):
            print(f"| {label} | test PSNR / SSIM {scores['test'].get('psnr', float('nan')):.2f} / "
                  f"{scores['test'].get('ssim', float('nan')):.3f} after {scores['steps']} steps | | | | |")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
