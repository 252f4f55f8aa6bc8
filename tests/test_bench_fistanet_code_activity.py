"""benchmarks/fistanet_code_activity.py: step timings of several weights files accumulate in one JSON."""

from __future__ import annotations

import pytest


def test_timings_are_kept_per_weights_file(load_benchmark):
    bench = load_benchmark("fistanet_code_activity")
    old_shape = {"weights": "run/model.safetensors", "kept": 1.5, "flushed": 0.5, "ratio": 3.0}
    merged = bench.merge_step_seconds(old_shape, "zoo:fistanet-ct60", {"kept": 0.7, "flushed": 0.5})
    assert merged["run/model.safetensors"] == {"kept": 1.5, "flushed": 0.5, "ratio": 3.0}
    assert merged["zoo:fistanet-ct60"]["ratio"] == pytest.approx(1.4)
    assert merged["zoo:fistanet-ct60"]["command"].endswith("--weights zoo:fistanet-ct60")
    again = bench.merge_step_seconds(merged, "zoo:fistanet-ct60", {"kept": 0.8, "flushed": 0.8})
    assert set(again) == {"run/model.safetensors", "zoo:fistanet-ct60"} and again["zoo:fistanet-ct60"]["ratio"] == 1.0
