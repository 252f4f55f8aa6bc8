"""Smoke test of benchmarks/bench_fistanet_ct.py: ``--quick`` runs end to end and writes a sane JSON."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("skimage")


def test_quick_run_writes_rows_and_checks(tmp_path, load_benchmark):
    bench = load_benchmark("bench_fistanet_ct")
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--threads", "1", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["command"].endswith(f"--quick --threads 1 --out {out}")
    assert data["threads"] == 1 and data["quick"] is True and len(data["load_average"]["start"]) == 3
    variants = {(r["measurement"], r["variant"]) for r in data["rows"]}
    for v in ("proxlab adjoint", "proxlab fbp", "skimage (authors)"):
        assert ("train step", v) in variants
    assert ("reconstruction", "proxlab adjoint") in variants
    assert ("operator", "skimage radon+iradon") in variants
    assert all(r["ms"] > 0 for r in data["rows"])
    step = {r["variant"]: r for r in data["rows"] if r["measurement"] == "train step"}
    assert 0 < step["skimage (authors)"]["skimage_share"] < 1
    ratio = data["ratios"]["train_step_skimage_over_adjoint"]
    assert ratio == pytest.approx(step["skimage (authors)"]["ms"] / step["proxlab adjoint"]["ms"], rel=1e-9)
    # the stand-in computes the authors' FISTA-Net: our sinogram is skimage's radon, and the network agrees with
    # FISTANet(gradient="fbp") up to the FBP-vs-iradon difference (a few per cent)
    checks = data["checks"]
    assert checks["sinogram_vs_radon_T"] < 1e-5
    assert checks["x0_fbp_vs_iradon"] < 0.1
    assert checks["network_output_fbp_vs_stand_in"] < 0.1


def test_stand_in_direction_is_iradon_of_radon_residual(load_benchmark):
    """The stand-in's data direction is exactly skimage's iradon(radon(v) - y), image by image."""
    import numpy as np
    import torch
    from skimage.transform import iradon, radon

    bench = load_benchmark("bench_fistanet_ct")
    A = bench.ParallelBeamCT(16, 12).float()
    net = bench.SkimageFISTANet(A, phases=1, features=2)
    x = bench.phantoms(16, 2)
    y = A(x)
    v = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    d = net._direction(v, y, None)
    theta = np.arange(12) * 15.0
    for i in range(2):
        with pytest.warns(UserWarning, match="zero outside"):
            sino = radon(v[i, 0].numpy(), theta=theta, circle=True)
        ref = iradon(sino - y[i, 0].numpy().T, theta=theta, filter_name="ramp", circle=True)
        np.testing.assert_allclose(d[i, 0].numpy(), ref, rtol=1e-5, atol=1e-6)
    assert not d.requires_grad
    assert net.skimage_s > 0
