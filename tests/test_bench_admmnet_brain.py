"""Smoke test of benchmarks/admmnet_brain.py: ``--quick`` runs end to end on the reference data and writes a sane JSON."""

from __future__ import annotations

import json
import math

import pytest


@pytest.mark.slow  # about 12 s of CPU, 30 s of wall time on a loaded 2-core machine
def test_quick_run_writes_the_table_and_time_to_quality(shared_data, tmp_path, load_benchmark):
    pytest.importorskip("PIL")
    pytest.importorskip("matplotlib")
    bench = load_benchmark("admmnet_brain")
    out, figure = tmp_path / "brain.json", tmp_path / "ttq.png"
    argv = ["--quick", "--data", str(shared_data), "--out", str(out), "--figure", str(figure)]
    assert bench.main(argv) == 0
    data = json.loads(out.read_text())
    assert data["command"].endswith(" ".join(argv)) and data["quick"] is True and data["threads"] == 1
    assert len(data["load_average"]["start"]) == 3 and figure.stat().st_size > 10_000
    table = {r["method"]: r for r in data["table"]}
    assert set(table) == {"zero-filled", "ADMM-TV", "net-stage7.mat"}
    for r in table.values():
        assert len(r["psnr_per_image"]) == 2 and all(math.isfinite(v) for v in r["psnr_per_image"])
        assert math.isfinite(r["psnr"]) and 0 < r["ssim"] <= 1 and r["seconds_per_image"] > 0
    # the learned net beats zero-filling on every image, and on the mean by more than a decibel
    net, zf = table["net-stage7.mat"], table["zero-filled"]
    assert net["psnr"] > zf["psnr"] + 1 and all(a > b for a, b in zip(net["psnr_per_image"], zf["psnr_per_image"]))
    assert net["ssim"] > zf["ssim"]
    assert data["weight_selection"]["lam"] in (3e-4, 1e-3) and len(data["weight_selection"]["grid"]) == 2
    rows = data["time_to_quality"]
    assert [r["image"] for r in rows] == ["Brain_data1", "Brain_data2"]
    for r in rows:
        # net-stage7 reproduces the README (35.60 / 30.40 dB) in float64, and float32 agrees
        assert abs(r["net_psnr"] - {"Brain_data1": 35.60, "Brain_data2": 30.40}[r["image"]]) < 0.01
        assert abs(r["net_psnr_float32_minus_float64"]) < 1e-3
        assert r["net_seconds_float32"] > 0 and r["net_seconds_float64"] > 0 and r["tv_iterations_run"] == 12
        assert math.isfinite(r["tv_best_psnr"]) and r["tv_best_psnr"] > 25
        if r["reached"]:
            assert r["ratio_float32"] == pytest.approx(r["tv_seconds_to_reach"] / r["net_seconds_float32"], rel=1e-2)
        else:
            assert r["tv_best_psnr"] < r["net_psnr"] and r["ratio_float32"] is None
    curve = data["curves"]["Brain_data1"]
    assert [c[0] for c in curve] == list(range(1, 13)) and all(b[1] > a[1] for a, b in zip(curve, curve[1:]))
