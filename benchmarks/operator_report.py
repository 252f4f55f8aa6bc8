"""Dot-product test of every operator in float64 and float32, exactness of ``solve_normal``, and the
import time of proxlab beyond torch. Prints a table and writes ``benchmarks/results/operator_report.json``.

    python benchmarks/operator_report.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from proxlab.operators import (
    MRI,
    BlockCompressedSensing,
    CompressedSensing,
    Convolution,
    Denoising,
    GaussianBlur,
    Inpainting,
    ParallelBeamCT,
    adjoint_test,
)
from proxlab.priors.classic import WaveletTransform


def operators():
    g = torch.Generator().manual_seed(0)
    return [
        ("Denoising", Denoising(), (1, 64, 64)),
        ("Inpainting.random(0.5)", Inpainting.random(64, 0.5), (1, 64, 64)),
        ("Inpainting.box(16)", Inpainting.box(64, 16), (3, 64, 64)),
        ("GaussianBlur(2.0)", GaussianBlur(2.0), (1, 64, 64)),
        ("Convolution(random 7x5)", Convolution(torch.rand(7, 5, generator=g)), (1, 64, 64)),
        ("CompressedSensing(250, 500)", CompressedSensing(250, 500), (500,)),
        ("BlockCompressedSensing(25%) 99x99", BlockCompressedSensing(0.25), (1, 99, 99)),
        ("BlockCompressedSensing(10%) 128x128 padded", BlockCompressedSensing(0.1, image_size=128), (1, 128, 128)),
        ("MRI.radial(20%)", MRI.radial(64, 0.2), (1, 64, 64)),
        ("MRI.cartesian(25%)", MRI.cartesian(64, 0.25), (1, 64, 64)),
        ("ParallelBeamCT(128, 180 angles)", ParallelBeamCT(128, 180), (1, 128, 128)),
        ("ParallelBeamCT(128, 60 angles)", ParallelBeamCT(128, 60), (1, 128, 128)),
        ("WaveletTransform(db4, 3 levels)", WaveletTransform("db4", 3), (1, 64, 64)),
        ("GaussianBlur(1) @ Inpainting.random(0.5)", GaussianBlur(1.0) @ Inpainting.random(64, 0.5), (1, 64, 64)),
    ]


def import_time() -> float:
    """Seconds that ``import proxlab`` adds to ``import torch`` (median of 5 fresh interpreters)."""
    code = (
        "import time;t=time.perf_counter();import torch;t1=time.perf_counter();import proxlab;"
        "print(time.perf_counter()-t1)"
    )
    runs = sorted(float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(5))
    return runs[2]


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    print(f"{'operator':45s} {'dot f64':>10s} {'dot f32':>10s} {'solve_normal resid':>19s}")
    for name, op, shape in operators():
        e64 = adjoint_test(op, shape, dtype=torch.float64)
        e32 = adjoint_test(op, shape, dtype=torch.float32)
        b = torch.randn((1,) + shape, dtype=torch.float64)
        x = op.solve_normal(b, 0.5, tol=1e-10, max_iter=1000)
        resid = float((op.gram(x) + 0.5 * x - b).norm() / b.norm())
        rows.append({"operator": name, "dot_float64": e64, "dot_float32": e32, "solve_normal_residual": resid})
        print(f"{name:45s} {e64:10.2e} {e32:10.2e} {resid:19.2e}")
    worst64 = max(r["dot_float64"] for r in rows)
    worst32 = max(r["dot_float32"] for r in rows)
    t_import = import_time()
    print(f"worst dot test: float64 {worst64:.2e} (bar 1e-10), float32 {worst32:.2e} (bar 1e-5)")
    print(f"import proxlab beyond torch: {t_import * 1000:.0f} ms (target <= 300 ms)")
    out = Path(__file__).parent / "results" / "operator_report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"operators": rows, "import_seconds_beyond_torch": t_import}, indent=2))


if __name__ == "__main__":
    main()
