"""The shipped zoo models load, match their architecture, and reproduce their recorded test PSNR."""

import pytest
import torch

from proxlab.zoo import list_zoo, load_zoo_model, zoo_info

MNIST_MODELS = [n for n in list_zoo() if zoo_info(n)["data"].get("source") == "mnist5k"]


def test_expected_models_are_shipped():
    assert {"dncnn-mnist-s0.1", "pgd-dncnn-mnist-deblur", "lpn-mnist"} <= set(list_zoo())


@pytest.mark.parametrize("name", MNIST_MODELS)
def test_recorded_test_psnr_is_reproduced(name):
    from proxlab.data import MeasurementPairs, mnist5k
    from proxlab.tasks import make_task
    from proxlab.metrics import psnr

    info = zoo_info(name)
    task = make_task(info["task"]["name"], **info["task"]["options"])
    x = mnist5k("test")[0]
    A = task.operator((28, 28))
    pairs = MeasurementPairs(x, A, noise=task.options["noise"], seed=info["config"]["seed"] + 2)
    y = torch.stack([pairs[i][0] for i in range(len(pairs))])
    model, _ = load_zoo_model(name, operator=A)
    with torch.no_grad():
        out = torch.cat([model(y[i : i + 100]) for i in range(0, len(y), 100)]).clamp(0, 1)
    got = float(psnr(out, x).mean())
    assert got == pytest.approx(info["test_metrics"]["model"]["mean"]["psnr"], abs=0.02)
    assert got > max(b["mean"]["psnr"] for b in info["test_metrics"]["baselines"].values())


def test_lpn_laplacian_is_close_to_soft_thresholding_and_its_prior_to_abs():
    model, info = load_zoo_model("lpn-laplacian")
    y = torch.linspace(-4, 4, 161)[:, None]
    with torch.no_grad():
        f = model(y)
    soft = torch.sign(y) * (y.abs() - 1).clamp_min(0)
    assert float((f - soft).pow(2).mean().sqrt()) < 0.1
    x = torch.linspace(-3, 3, 61)[:, None]
    R, res = model.regularizer(x, tol=1e-6, return_residual=True)
    diff = R.detach() - x.abs()[:, 0]
    assert float(res.max()) < 1e-4 and float((diff - diff.mean()).abs().max()) < 0.15
    assert info["test_metrics"]["proximal matching"]["R_rms_error"] < info["test_metrics"]["ℓ1"]["R_rms_error"]


def test_lpn_ellipses_denoises_whole_phantoms():
    from proxlab.data import random_ellipses
    from proxlab.metrics import psnr

    model, _ = load_zoo_model("lpn-ellipses")
    x = random_ellipses(2, 128, seed=12345)
    y = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(y).clamp(0, 1)
    assert float(psnr(out, x).mean()) > float(psnr(y.clamp(0, 1), x).mean()) + 5


BLOCK_CS_MODELS = [n for n in list_zoo() if zoo_info(n)["model"]["name"] in ("istanet", "resnet-pgd")]


@pytest.mark.parametrize("name", BLOCK_CS_MODELS)  # every ratio: the paper-order test below reads these numbers
def test_block_cs_models_reproduce_their_set11_psnr(name, shared_data):
    from proxlab.experiments.istanet import evaluate_set11

    model, info = load_zoo_model(name)
    res = evaluate_set11(model, shared_data / "Set11")["mean"]
    recorded = info["test_metrics"]["model"]["mean"]
    assert res["psnr"] == pytest.approx(recorded["psnr"], abs=0.01)
    assert res["ssim"] == pytest.approx(recorded["ssim"], abs=1e-4)
    if info["model"]["options"].get("plus"):  # ISTA-Net+ clearly improves on its Qinit start
        assert res["psnr"] > info["test_metrics"]["baselines"]["qinit"]["mean"]["psnr"] + 2


@pytest.mark.parametrize("ratio", [10, 25, 40])
def test_paper_order_istanet_plus_istanet_tv(ratio):
    # The paper's order on Set11: ISTA-Net+ >= ISTA-Net > the best classic method (TV-FISTA here). The recorded
    # PSNRs are checked against a fresh evaluation by test_block_cs_models_reproduce_their_set11_psnr.
    import json
    from pathlib import Path

    names = (f"istanet-plus-cs{ratio}", f"istanet-cs{ratio}")
    if not set(names) <= set(list_zoo()):
        pytest.skip(f"{names} not both shipped")
    plus, plain = (zoo_info(n)["test_metrics"]["model"]["mean"]["psnr"] for n in names)
    classic = json.loads((Path(__file__).parents[1] / "benchmarks" / "results" / "set11_block_cs.json").read_text())
    tv_fista = classic["results"][str(ratio)]["mean"]["psnr_tv"]  # the best classic method on Set11
    assert plus >= plain > tv_fista
