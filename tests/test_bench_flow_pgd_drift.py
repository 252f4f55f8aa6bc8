"""benchmarks/flow_pgd_drift.py: the flows' relative change and the learned scalars, on weights the test writes."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from proxlab.operators import Denoising
from proxlab.priors.flow import Glow
from proxlab.unrolled.flow_pgd import FlowPGD


def _weights(tmp_path):
    torch.manual_seed(0)
    glow = Glow(in_channels=1, image_size=8, levels=2, steps=1, hidden=8)
    with torch.no_grad():
        glow(torch.rand(4, 1, 8, 8))  # ActNorm's data-dependent start
    base = {k: v.contiguous() for k, v in glow.state_dict().items()}
    save_file(base, str(tmp_path / "base.safetensors"))
    net = FlowPGD(Denoising(), glow, folds=3, step_size=0.8, shrinkage=0.2)
    with torch.no_grad():  # move fold 1's flow by a known amount, leave fold 2's as it was
        for p in net.flows[0].parameters():
            p.mul_(1.5)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(tmp_path / "fpgd.safetensors"))
    return base


def test_drift_measures_the_change_and_reads_the_scalars(tmp_path, load_benchmark):
    bench = load_benchmark("flow_pgd_drift")
    base = _weights(tmp_path)
    out = tmp_path / "drift.json"
    assert bench.main([str(tmp_path / "fpgd.safetensors"), "--base", str(tmp_path / "base.safetensors"),
                       "--labels", "toy", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())["toy"]
    folds = {r["fold"]: r for r in rep["folds"]}
    assert set(folds) == {1, 2}  # K = 3 folds keep K - 1 flows
    params = {n for n, _ in Glow(in_channels=1, image_size=8, levels=2, steps=1, hidden=8).named_parameters()}
    scaled = sum(float((base[n].double() ** 2).sum()) for n in params)
    expected = 0.5 * (scaled / sum(float((t.double() ** 2).sum()) for t in base.values())) ** 0.5
    assert folds[1]["relative_change"] == pytest.approx(expected, rel=1e-6)
    assert folds[2]["relative_change"] == 0.0
    assert rep["step_sizes"] == pytest.approx([0.8] * 3, rel=1e-5)
    assert rep["shrinkages"] == pytest.approx([0.2] * 2, rel=1e-5)


def test_drift_refuses_weights_without_flows(tmp_path, load_benchmark):
    bench = load_benchmark("flow_pgd_drift")
    with pytest.raises(ValueError, match="flows.K"):
        bench.drift({"weight": torch.zeros(2)}, {"weight": torch.zeros(2)})


def test_a_run_folder_brings_its_scores(tmp_path, load_benchmark):
    bench = load_benchmark("flow_pgd_drift")
    _weights(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "fpgd.safetensors").rename(run / "model.safetensors")
    (run / "metrics.json").write_text(json.dumps({"model": {"mean": {"psnr": 17.5, "ssim": 0.5}},
                                                  "training": {"train_seconds": 12.0, "steps": 100}}))
    out = tmp_path / "drift.json"
    assert bench.main([str(run), "--base", str(tmp_path / "base.safetensors"), "--out", str(out)]) == 0
    rep = json.loads(out.read_text())[str(run)]
    assert rep["test"] == {"psnr": 17.5, "ssim": 0.5} and rep["train_seconds"] == 12.0 and rep["steps"] == 100
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        bench.main([str(empty), "--base", str(tmp_path / "base.safetensors"), "--out", str(out)])
