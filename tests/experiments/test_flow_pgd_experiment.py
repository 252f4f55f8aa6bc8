"""``flow-pgd-fashion`` through the spec at a tiny size: flow-PGD, PnP-GLOW and an unrolled ResNet prox trained
on a denoising run each, scored in distribution, on the test-time variant and on out-of-distribution images,
and gathered into the paper's Tables I-IV."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from proxlab.experiments.runner import run_experiment
from proxlab.priors.flow import Glow
from proxlab.training.checkpoint import save_model


def _idx(path, array):
    path.write_bytes(struct.pack(">HBB", 0, 8, 3) + struct.pack(">3I", *array.shape) + array.tobytes())


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("flowpgd")
    rng = np.random.default_rng(0)
    _idx(d / "train.idx", rng.integers(0, 255, (24, 28, 28), dtype=np.uint8))
    _idx(d / "test.idx", rng.integers(0, 255, (6, 28, 28), dtype=np.uint8))
    save_model(d / "flow.safetensors", Glow(1, 3, 1, 8, image_size=32))
    flow = (f'model.options={{ flow_options = {{ in_channels = 1, levels = 3, steps = 1, hidden = 8, image_size = 32 }}, '
            f'flow_init = "{d / "flow.safetensors"}", folds = 2 }}')
    resnet = ('model={ name = "unrolled", options = { prox = "resnet-prox", prox_options = { features = 8, blocks = 1 }, '
              'step = "pgd", stages = 2, tied = false } }')
    runs = ('sweep.runs=[{ label = "glow-denoise" }, { label = "pnp-glow-denoise", set = ["model.options.train_flows=false"] }, '
            f"{{ label = \"resnet-denoise\", set = ['{resnet}', \"training.lr=1e-3\", "
            "'evaluation.protocols=[{ name = \"test_split\" }, { name = \"ood_images\", options = { name = \"MNIST digits\", "
            "data = { source = \"mnist5k\", pad = 2 } } }]'] }, "
            f"{{ label = \"resnet-pre-denoise\", set = ['{resnet}', \"training.lr=1e-3\", 'evaluation.protocols=[{{ name = \"test_split\" }}]', "
            "'stages=[{ name = \"denoiser\", loss = \"prox_denoising\", loss_options = { sigma = 0.1 }, steps = 2 }, "
            "{ name = \"unrolled\", init = \"previous\" }]'] }]")
    over = [f"data.path={d / 'train.idx'}", f"data.test_path={d / 'test.idx'}", flow, runs, "training.steps=3",
            "training.val_every=1", "training.batch_size=4", "evaluation.max_test_images=4"]
    return run_experiment("flow-pgd-fashion", out=d / "run", overrides=over, progress=False, echo=False), d


def test_tables_gather_each_run(sweep):
    res, d = sweep
    t = res.metrics["flow_unrolling_tables"]
    assert set(t["I"]) == {"glow", "resnet", "resnet-pre", "admm-tv"} and set(t["II"]) == {"glow", "pnp-glow"}
    import json

    child = json.loads((d / "run" / "runs" / "glow-denoise" / "metrics.json").read_text())
    assert t["I"]["glow"]["denoise"]["psnr"] == pytest.approx(child["model"]["mean"]["psnr"])
    assert t["III"]["glow"]["denoise"]["psnr"] == pytest.approx(child["variants"]["ood-noise-0.25"]["model"]["mean"]["psnr"])
    assert t["IV"]["glow"]["denoise"]["psnr"] == pytest.approx(child["ood_images"]["model"]["mean"]["psnr"])
    assert child["ood_images"]["name"] == "MNIST digits" and child["ood_images"]["test_images"] == 4
    # the stronger noise of the variant costs PSNR
    assert child["variants"]["ood-noise-0.25"]["model"]["mean"]["psnr"] < child["model"]["mean"]["psnr"]
    assert res.metrics["paper"]["flow_unrolling_tables"]["I"]["glow"] == [28.236, 35.927, 40.549]
    for key in ("I", "II", "III", "IV"):  # a figure per table, written beside the report
        png = d / "run" / f"figure_flow_unrolling_table_{key}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, key


def test_a_partial_sweep_gets_its_tables_over_the_finished_runs(sweep, tmp_path):
    """Runs finished in other folders, gathered in one and resumed with sweep.only naming them: nothing retrains and
    the protocols compare those runs (the others are left out of the tables)."""
    import shutil

    res, d = sweep
    part = tmp_path / "part"
    (part / "runs").mkdir(parents=True)
    shutil.copy(d / "run" / "config.toml", part / "config.toml")
    for label in ("glow-denoise", "pnp-glow-denoise"):
        shutil.copytree(d / "run" / "runs" / label, part / "runs" / label)
    got = run_experiment(resume=part, overrides=["sweep.only=['glow-denoise', 'pnp-glow-denoise']"], progress=False,
                         echo=False)
    t = got.metrics["flow_unrolling_tables"]
    assert set(t["II"]) == {"glow", "pnp-glow"} and set(t["I"]) == {"glow", "admm-tv"}
    assert t["II"]["glow"] == res.metrics["flow_unrolling_tables"]["II"]["glow"]
    log = (part / "run.log").read_text()
    assert "sweep run glow-denoise: finished earlier, kept" in log and "resnet-denoise: not in sweep.only" in log


def test_pnp_glow_keeps_the_pretrained_flow(sweep):
    res, d = sweep
    import torch
    from safetensors.torch import load_file

    start = load_file(str(d / "flow.safetensors"))
    pnp = load_file(str(d / "run" / "runs" / "pnp-glow-denoise" / "model.safetensors"))
    trained = load_file(str(d / "run" / "runs" / "glow-denoise" / "model.safetensors"))
    for key, value in start.items():  # every tensor of the flow, ActNorm's included
        if key.endswith("initialized"):  # the folds switch ActNorm's data-dependent init off
            continue
        assert torch.equal(pnp[f"flows.0.{key}"], value), key
    key = "blocks.0.0.coupling.net.0.weight"
    assert not (trained[f"flows.0.{key}"] == start[key]).all()


def test_fold_samples_of_the_flow_runs(sweep):
    res, d = sweep
    import json

    child = json.loads((d / "run" / "runs" / "glow-denoise" / "metrics.json").read_text())
    assert child["fold_samples"]["folds"] == 1 and len(child["fold_samples"]["sample_std"]) == 1
    assert (d / "run" / "runs" / "glow-denoise" / "figure_fold_samples.png").stat().st_size > 1000
    resnet = json.loads((d / "run" / "runs" / "resnet-denoise" / "metrics.json").read_text())
    assert "fold_samples" not in resnet


def test_denoiser_pretrained_baseline_trains_in_two_stages(sweep):
    res, d = sweep
    import json

    child = json.loads((d / "run" / "runs" / "resnet-pre-denoise" / "metrics.json").read_text())
    stages = child["training"]["stages"]
    assert [s["name"] for s in stages] == ["denoiser", "unrolled"] and child["training"]["steps"] == 5
    assert (d / "run" / "runs" / "resnet-pre-denoise" / "stages" / "stage0.safetensors").is_file()


def test_a_variant_runs_the_network_on_the_variants_operator():
    """Test-time variants (Table III): a model-based network is scored with the variant's operator inside it, not the
    one it was trained with, and gets its own back afterwards."""
    import torch

    from proxlab.experiments.builtin import _OperatorSwap
    from proxlab.registry import build_model
    from proxlab.tasks import make_task

    big = make_task("inpaint", mask="box", box_size=10, noise=0.0).operator((32, 32), 1)
    small = make_task("inpaint", mask="box", box_size=8, noise=0.0).operator((32, 32), 1)
    torch.manual_seed(0)
    net = build_model("unrolled", operator=big, prox="dncnn", prox_options={"depth": 3, "features": 4}, stages=2).eval()
    twin = build_model("unrolled", operator=small, prox="dncnn", prox_options={"depth": 3, "features": 4}, stages=2)
    twin.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("operator.")}, strict=False)
    x = torch.rand(2, 1, 32, 32)
    y = small(x)
    with torch.no_grad():
        own = net(y)
        with _OperatorSwap(net, small):
            swapped = net(y)
        again = net(y)
    torch.testing.assert_close(swapped, twin.eval()(y))
    assert not torch.allclose(own, swapped)  # the small box's ring of known pixels is used only with its operator
    torch.testing.assert_close(again, own)
    assert net.operator is big



def test_assigning_an_operator_drops_the_cached_norm():
    from proxlab.operators import CompressedSensing, Denoising
    from proxlab.registry import build_model

    net = build_model("unrolled", operator=Denoising(), prox="dncnn", prox_options={"depth": 3, "features": 4},
                      stages=1)
    assert net._norm((1, 8, 8)) == pytest.approx(1.0, abs=1e-6) and net._norms
    other = CompressedSensing(32, 64, seed=0)  # a Gaussian matrix: its ‖A‖² is not 1
    net.operator = other
    assert net._norms == {}
    assert net._norm((64,)) == pytest.approx(other.norm((64,))) and abs(other.norm((64,)) - 1.0) > 0.1
