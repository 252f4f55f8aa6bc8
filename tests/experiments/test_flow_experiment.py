"""The GLOW experiments through the spec: likelihood training with its own bits/dim validation, the
``flow_likelihood`` report, and the errors of the flow parts."""

from __future__ import annotations

import json

import pytest
import torch

from proxlab.experiments.config import ConfigError
from proxlab.experiments.flow_parts import validation_bits_per_dim
from proxlab.experiments.runner import run_experiment
from proxlab.priors.flow import Glow
from proxlab.weights import load_model_weights

TINY = ["model.options.hidden=8", "model.options.steps=1", "training.steps=12", "training.warmup_steps=1",
        "training.val_every=4", "training.checkpoint_every=4", "training.batch_size=16", "training.lr=5e-3",
        "training.loss_options.val_images=32", "evaluation.protocols.0.options.max_images=32",
        "evaluation.protocols.0.options.samples=4", "training.precision=fp32"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """glow-mnist at a tiny size; its probing on 6 digits, with 6 images of an IDX file the test writes as the
    out-of-distribution set (the shipped spec reads Fashion-MNIST's test file from the cache)."""
    import struct

    folder = tmp_path_factory.mktemp("glow")
    ood = (torch.rand(6, 28, 28, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8).numpy()
    (folder / "ood.idx").write_bytes(struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", *ood.shape) + ood.tobytes())
    probe = [f"evaluation.protocols.1.options.{k}" for k in ("images=6", f"ood_source={folder / 'ood.idx'}",
                                                              'compare_lpn=""')]
    out = folder / "run"
    res = run_experiment("glow-mnist", out=out, overrides=TINY + probe, progress=False)
    return out, res


def test_training_validates_by_bits_per_dim_and_improves(tiny_run):
    out, res = tiny_run
    log = [json.loads(line) for line in (out / "checkpoints" / "log.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in log if "val_loss" in r]
    assert len(vals) == 3 and vals[-1] < vals[0] - 0.05  # bits/dim fall within a dozen steps (by 0.12 here)
    assert res.metrics["training"]["best_val"] == pytest.approx(min(vals))


def test_report_recomputes_from_the_saved_weights(tiny_run):
    out, res = tiny_run
    m = res.metrics["flow_likelihood"]
    flow = Glow(1, levels=3, steps=1, hidden=8, image_size=32, coupling="additive")  # glow-mnist's coupling
    load_model_weights(out / "model.safetensors", flow)
    from proxlab.data.sources import mnist5k

    test = torch.nn.functional.pad(mnist5k("test")[0][:32], (2, 2, 2, 2))
    bpd = validation_bits_per_dim(flow, test, seed=m["seed"])
    assert m["bits_per_dim"] == pytest.approx(bpd, rel=1e-5)
    assert m["bits_per_original_pixel"] == pytest.approx(bpd * 1024 / 784, rel=1e-9)
    assert m["test_images"] == 32 and m["parameters"] == sum(p.numel() for p in flow.parameters())
    assert m["published"] == {"Glow": 1.05, "RealNVP": 1.06}
    assert (out / "figure_samples.png").stat().st_size > 1000
    assert "bits per original pixel" in (out / "report.html").read_text()


def test_flow_nll_needs_a_flow(tmp_path):
    with pytest.raises((ValueError, ConfigError), match="flow_nll' trains a normalizing flow"):
        run_experiment("lpn-mnist", out=tmp_path / "r", overrides=["training.loss=flow_nll", "training.loss_options={}",
                                                                 "training.steps=1", "training.schedule=constant", "training.milestones=[]"],
                       progress=False)


def test_probe_reports_perturbations_and_the_out_of_distribution_set(tiny_run):
    out, res = tiny_run
    p = res.metrics["flow_probe"]
    assert p["images"] == 6 and set(p["medians_bits_per_dim"]) == {"gaussian noise σ", "blur σ", "convex combination λ"}
    noise = list(p["medians_bits_per_dim"]["gaussian noise σ"].values())
    assert noise[-1] > noise[0] + 0.1  # σ = 0.3 noise costs bits even under a barely trained flow
    ood = p["ood"]
    assert ood["ood_median"] > ood["in_distribution_median"]  # uniform noise images are far less likely than digits
    assert ood["ood_scored_more_likely"] is False and ood["fraction_ood_below_in_median"] == 0.0
    assert (out / "figure_flow_probe.png").is_file() and (out / "figure_flow_ood.png").is_file()


def test_flow_nll_with_smoothing_noise_draws_it_from_the_trainer_generator():
    from proxlab.experiments.flow_parts import flow_nll_loss

    class Step:
        def __init__(self, seed):
            self.generator = torch.Generator().manual_seed(seed)

    flow = Glow(1, levels=2, steps=1, hidden=8, image_size=8).eval()
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    plain, noisy = flow_nll_loss(0.0), flow_nll_loss(0.05)
    with torch.no_grad():  # values only (no warning about a scalar that requires grad)
        assert float(noisy(flow, x, Step(1))) == pytest.approx(float(noisy(flow, x, Step(1))), rel=1e-6)  # seeded
        assert abs(float(noisy(flow, x, Step(1))) - float(plain(flow, x, Step(1)))) > 1e-3  # the noise reaches the loss
    assert validation_bits_per_dim(flow, x, seed=3, noise=0.05) != pytest.approx(validation_bits_per_dim(flow, x, seed=3))


def test_a_trained_flow_exports_to_the_zoo_with_its_bits_per_dim(tiny_run, tmp_path, monkeypatch, capsys):
    import proxlab.weights
    import proxlab.zoo as zoo
    from proxlab.cli.main import main
    from proxlab.experiments.export import export_run

    out, res = tiny_run
    export_run(out, "tiny-glow", zoo_dir=tmp_path)
    info = json.loads((tmp_path / "tiny-glow.json").read_text())
    m = res.metrics["flow_likelihood"]
    assert info["test_metrics"]["bits_per_dim"] == pytest.approx(m["bits_per_dim"])
    assert info["test_metrics"]["published_bits_per_dim"] == {"Glow": 1.05, "RealNVP": 1.06}
    assert info["model"]["options"]["coupling"] == "additive"
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path)
    monkeypatch.setattr(proxlab.weights, "ZOO_DIR", tmp_path)
    flow, _ = zoo.load_zoo_model("tiny-glow")
    assert isinstance(flow, Glow) and flow.coupling == "additive"
    assert main(["zoo"]) == 0
    assert f"{m['bits_per_dim']:6.3f} bpd" in capsys.readouterr().out
