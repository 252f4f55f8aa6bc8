"""``fistanet-ct`` through the spec at a tiny size: every model family of the sweep trains on slabs of a small volume
the test writes, the classic / PnP rows come from validated weights, and Table V gathers them in the paper's shape."""

from __future__ import annotations

import json

import numpy as np
import pytest

from proxlab.data import random_ellipses
try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from proxlab.experiments.runner import find_experiment, run_experiment


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    import tomli_w

    d = tmp_path_factory.mktemp("fistanetct")
    vol = (random_ellipses(40, 16, seed=3)[:, 0].numpy() * 2000).astype(np.int16)
    np.save(d / "vol.npy", vol)
    spec = tomllib.loads(find_experiment("fistanet-ct").read_text())
    spec["data"]["options"].update(path=str(d / "vol.npy"), train=[0, 20], val=[25, 30], test=[35, 40])
    spec["operator"]["angles"] = 8
    spec["training"].update(steps=2, val_every=1, warmup_steps=0)
    spec["model"]["options"]["features"] = 4
    small = lambda s: (s.replace("size = 128", "size = 16").replace("size=256", "size=32").replace("hidden = 32, features = 32", "hidden = 4, features = 4")  # noqa: E731
                       .replace("stages = 7", "stages = 2").replace("stages = 6", "stages = 2")
                       .replace('prox_init = "zoo:lpn-ellipses", ', "").replace("count = 300", "count = 6")
                       .replace('path = "~/.cache/proxlab/ct/stent.npz", scale = 2000.0, train = [0, 180], val = [190, 215], '
                                'test = [225, 256]', f'path = "{d / "vol.npy"}", scale = 2000.0, train = [0, 20], '
                                'val = [25, 30], test = [35, 40]'))
    spec["evaluation"]["protocols"][1]["options"]["data"]["options"]["size"] = 16
    keep = {"fistanet-60", "fistanet-fbp-60", "istanet-plus-60", "istanet-60", "lpn-fista-60", "pnp-lpn-60",
            "pnp-lpn-ellipses-60", "fistanet-120", "fistanet-256px-60", "fistanet-ellipses-60", "fistanet-ellpre-60", "fistanet-theta-60"}
    spec["evaluation"]["baselines"] = ["init"]  # FISTA-TV is scored at validated weights by the pnp-lpn runs
    size16 = lambda s: (s.replace("size = 128", "size = 16").replace("test_images = 31", "test_images = 3")  # noqa: E731
                        .replace("val_images = 8", "val_images = 2").replace("test_images = 8", "test_images = 3")
                        .replace("val_images = 4", "val_images = 2")
                        .replace("iters = 20", 'iters = 5, grids = { "fista-tv" = [0.01], "pnp-admm" = [0.3, 1.0] }'))
    # the PnP runs keep the zoo LPN's architecture (its weights are loaded); only their images shrink
    spec["sweep"]["runs"] = [{**r, "set": [size16(s) if r["label"].startswith("pnp") else small(s)
                                           for s in r.get("set", [])]}
                             for r in spec["sweep"]["runs"] if r["label"] in keep]
    path = d / "tiny.toml"
    path.write_text(tomli_w.dumps(spec))
    res = run_experiment(path, out=d / "run", progress=False, echo=False)
    return res, d


def test_table_v_rows_from_every_run(sweep):
    res, d = sweep
    t = res.metrics["ct_table_v"]
    assert set(t["ct"]) == {"fbp", "fista-tv", "pnp-admm-lpn", "istanet", "istanet-plus", "fistanet", "fistanet-fbp",
                            "lpn-fista", "fistanet-ellipses", "fistanet-ellpre", "fistanet-theta"}
    assert set(t["ct"]["fistanet"]) == {"60", "120"} and set(t["ct"]["istanet"]) == set(t["ct"]["fbp"]) == {"60"}
    child = json.loads((d / "run" / "runs" / "fistanet-60" / "metrics.json").read_text())
    assert t["ct"]["fistanet"]["60"]["psnr"] == pytest.approx(child["model"]["mean"]["psnr"])
    assert t["ellipses"]["fistanet"]["60"]["psnr"] == pytest.approx(child["ood_images"]["model"]["mean"]["psnr"])
    pnp = json.loads((d / "run" / "runs" / "pnp-lpn-60" / "metrics.json").read_text())
    assert t["ct"]["fbp"]["60"]["psnr"] == pytest.approx(pnp["validated_methods"]["init"]["psnr"])
    ell = json.loads((d / "run" / "runs" / "pnp-lpn-ellipses-60" / "metrics.json").read_text())
    assert t["ellipses"]["fista-tv"]["60"]["psnr"] == pytest.approx(ell["validated_methods"]["fista-tv"]["psnr"])
    assert ell["validated_methods"]["init"]["psnr"] != pytest.approx(pnp["validated_methods"]["init"]["psnr"])
    assert t["parameters"]["fistanet"] == 4 * 9 + 8 * (4 * 4 * 9 + 4) + (4 * 9 + 1) + 4 + 6  # conv_D, 8 convs, conv_G
    assert res.metrics["paper"]["ct_table_v"]["fistanet"]["params"] == 74599


def test_ordering_is_reported_with_its_margins(sweep):
    res, _ = sweep
    order = res.metrics["ct_table_v"]["ordering"]
    assert set(order) == {"60"}  # 120 views lacks the ISTA-Net+ run here
    o = order["60"]
    ct = res.metrics["ct_table_v"]["ct"]
    assert o["fistanet_minus_fista_tv_dB"] == pytest.approx(ct["fistanet"]["60"]["psnr"] - ct["fista-tv"]["60"]["psnr"])
    assert o["holds"] == all(m > 0 for m in o["margins_dB"].values())
    report = (res.folder / "report.html").read_text()
    assert "Table V — the CT test slab" in report and "At 256×256" in report


def test_the_resized_setting_has_its_own_table(sweep):
    res, d = sweep
    big = res.metrics["ct_table_v"]["256px"]["fistanet-256px-60"]
    child = json.loads((d / "run" / "runs" / "fistanet-256px-60" / "metrics.json").read_text())
    assert child["test_images"] == 5 and big["model"]["psnr"] == pytest.approx(child["model"]["mean"]["psnr"])
    assert "256px" not in res.metrics["ct_table_v"]["ct"]["fistanet"]  # not a number of views


def test_training_times_and_the_slice_figure(sweep):
    res, d = sweep
    t = res.metrics["ct_table_v"]
    child = json.loads((d / "run" / "runs" / "fistanet-60" / "metrics.json").read_text())
    assert t["train_seconds"]["fistanet"]["60"] == pytest.approx(child["training"]["train_seconds"])
    assert "fbp" not in t["train_seconds"] and set(t["train_seconds"]["istanet"]) == {"60"}
    png = (res.folder / "figure_ct_table_v.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "Training time (minutes of wall time)" in (res.folder / "report.html").read_text()


def test_ellipse_training_and_pre_training_rows(sweep):
    """The ellipse-trained run is scored on the CT slab as its out-of-distribution set; the pre-trained run starts
    from its weights (run:LABEL) and is then an ordinary CT run."""
    res, d = sweep
    t = res.metrics["ct_table_v"]
    ell = json.loads((d / "run" / "runs" / "fistanet-ellipses-60" / "metrics.json").read_text())
    assert t["ct"]["fistanet-ellipses"]["60"]["psnr"] == pytest.approx(ell["ood_images"]["model"]["mean"]["psnr"])
    assert t["ellipses"]["fistanet-ellipses"]["60"]["psnr"] == pytest.approx(ell["model"]["mean"]["psnr"])
    assert ell["ood_images"]["test_images"] == 5 and ell["test_images"] == 8
    pre = json.loads((d / "run" / "runs" / "fistanet-ellpre-60" / "metrics.json").read_text())
    assert t["ct"]["fistanet-ellpre"]["60"]["psnr"] == pytest.approx(pre["model"]["mean"]["psnr"])
    log = (d / "run" / "runs" / "fistanet-ellpre-60" / "run.log").read_text()
    assert str(d / "run" / "runs" / "fistanet-ellipses-60" / "model.safetensors") in log


def test_a_sweep_of_the_resized_setting_alone_still_reports_it(sweep):
    """``sweep.only`` with just the 256×256 run (its own folder): the protocol gives that table, not an error."""
    import torch

    from proxlab.experiments.ct_tables import ct_table_v
    from proxlab.experiments.parts import RunContext

    res, d = sweep
    child = json.loads((d / "run" / "runs" / "fistanet-256px-60" / "metrics.json").read_text())
    ctx = RunContext(cfg=None, model=None, task=None, operator=None, splits=None, folder=d, device=torch.device("cpu"),
                     log=print, children={"fistanet-256px-60": {"metrics": child, "model": None}})
    sec = ct_table_v(None, ctx)
    assert sec.metrics["256px"]["fistanet-256px-60"]["model"]["psnr"] == pytest.approx(child["model"]["mean"]["psnr"])
    assert sec.metrics["ct"] == {} and not sec.figures
    with pytest.raises(ValueError, match="no run of the sweep is labelled METHOD-VIEWS"):
        ct_table_v(None, RunContext(cfg=None, model=None, task=None, operator=None, splits=None, folder=d,
                                    device=torch.device("cpu"), log=print, children={"other": {"metrics": {}}}))
