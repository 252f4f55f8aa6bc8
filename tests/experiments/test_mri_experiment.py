"""``admmnet-mri`` and its source ``mri_images`` on small files the tests write: .mat training images and PNG test
images are read in name order, refused with the setting named when they cannot serve, and a tiny ADMM-Net trains
by full-batch L-BFGS (the loss falls at every step) and by Adam."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io as sio
from PIL import Image

from proxlab.data import random_ellipses
from proxlab.experiments import ConfigError
from proxlab.experiments.mri_parts import load_image_folder
from proxlab.experiments.runner import run_experiment

SIDE = 24


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    d = tmp_path_factory.mktemp("mri")
    imgs = random_ellipses(16, SIDE, seed=5)[:, 0].double().numpy()
    (d / "train").mkdir()
    (d / "test").mkdir()
    for i, im in enumerate(imgs[:12]):
        sio.savemat(d / "train" / f"im-{i:02d}.mat", {"im_ori": im})
    for i, im in enumerate(imgs[12:]):
        Image.fromarray(np.round(im * 255).astype(np.uint8), mode="L").save(d / "test" / f"brain_test_{i:02d}.png")
    (d / "test" / "notes.txt").write_text("not an image")
    return d, imgs


def test_folders_are_read_in_name_order(folders):
    d, imgs = folders
    train, names = load_image_folder(d / "train")
    assert train.shape == (12, 1, SIDE, SIDE) and names == [f"im-{i:02d}" for i in range(12)]
    np.testing.assert_allclose(train[3, 0].numpy(), imgs[3], atol=1e-7)
    test, names = load_image_folder(d / "test")
    assert names == [f"brain_test_{i:02d}" for i in range(4)]  # the .txt file is not an image
    np.testing.assert_allclose(test[1, 0].numpy(), np.round(imgs[13] * 255) / 255, atol=1e-6)


def test_bad_folders_are_refused_with_the_setting_named(tmp_path, folders):
    d, imgs = folders
    with pytest.raises(FileNotFoundError, match=r"^data\.options\.train: expected a folder of MR images"):
        load_image_folder(tmp_path / "nope", where="data.options.train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"holds no \.mat or image files"):
        load_image_folder(tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    sio.savemat(mixed / "a.mat", {"im_ori": imgs[0]})
    sio.savemat(mixed / "b.mat", {"im_ori": imgs[1][:20, :20]})
    with pytest.raises(ValueError, match=r"expected images of one size .*\(20, 20\), \(24, 24\)"):
        load_image_folder(mixed)
    hot = tmp_path / "hot"
    hot.mkdir()
    sio.savemat(hot / "a.mat", {"im_ori": imgs[0] * 300})
    with pytest.raises(ValueError, match=r"a\.mat: expected values in \[0, 1\], got \[0, 3"):
        load_image_folder(hot)
    with pytest.raises(ValueError, match=r"expected a variable named 'img'"):
        load_image_folder(d / "train", key="img")


def _run(folders, out, *extra):
    d, _ = folders
    return run_experiment("admmnet-mri", out=out, progress=False, echo=False, overrides=[
        f"data.options.train={d / 'train'}", f"data.options.test={d / 'test'}", "data.options.val_count=2",
        "model.options.stages=2", "evaluation.baselines=['init']", *extra])


def test_full_batch_lbfgs_lowers_the_loss_every_step_and_beats_zero_filling(folders, tmp_path):
    _run(folders, tmp_path / "lbfgs", "training.steps=4", "training.batch_size=10", "training.val_every=2",
               'sweep.runs=[{label = "lbfgs"}]')
    m = json.loads((tmp_path / "lbfgs" / "runs" / "lbfgs" / "metrics.json").read_text())
    log = [json.loads(x) for x in (tmp_path / "lbfgs" / "runs" / "lbfgs" / "checkpoints" / "log.jsonl").read_text()
           .splitlines()]
    losses = [h["loss"] for h in log if "loss" in h]
    assert len(losses) == 4 and all(b < a for a, b in zip(losses, losses[1:]))  # one fixed objective, line search
    assert m["test_images"] == 4
    assert m["model"]["mean"]["psnr"] > m["baselines"]["init"]["mean"]["psnr"]


def test_adam_run_and_options_lbfgs_cannot_take(folders, tmp_path):
    _run(folders, tmp_path / "adam", 'sweep.runs=[{label = "adam", set = ["training.optimizer=adam", '
         '"training.lr=1e-3", "training.batch_size=2", "training.steps=2", "training.val_every=1"]}]')
    assert (tmp_path / "adam" / "runs" / "adam" / "model.safetensors").is_file()
    with pytest.raises(ConfigError, match=r"^training\.weight_decay: optimizer 'lbfgs' takes no weight decay"):
        _run(folders, tmp_path / "never", "training.weight_decay=1e-4")
    with pytest.raises(ConfigError, match=r"^training\.optimizer: .*'adam'.*'lbfgs'.*got 'sgd'"):
        _run(folders, tmp_path / "never", "training.optimizer=sgd")
    assert not (tmp_path / "never").exists()


def test_zoo_entry_runs_only_with_its_mask_and_size(folders, tmp_path, monkeypatch):
    import proxlab.weights
    import proxlab.zoo
    from proxlab.experiments.export import export_run
    from proxlab.operators import MRI
    from proxlab.operators.mri import mask_sha256
    from proxlab.reconstruction import measure, reconstruct
    from proxlab.tasks import make_task

    d, imgs = folders
    _run(folders, tmp_path / "run", "training.steps=1", "training.batch_size=10", 'sweep.runs=[{label = "lbfgs"}]')
    monkeypatch.setattr(proxlab.weights, "ZOO_DIR", tmp_path / "zoo")
    monkeypatch.setattr(proxlab.zoo, "ZOO_DIR", tmp_path / "zoo")
    info = json.loads(export_run(tmp_path / "run" / "runs" / "lbfgs", "tiny-admm", tmp_path / "zoo").read_text())
    assert info["description"].endswith("this run changed it with --set overrides: see training_command.]")
    mine = json.loads(export_run(tmp_path / "run" / "runs" / "lbfgs", "tiny-admm2", tmp_path / "zoo",
                                 description="A 2-stage test net.").read_text())
    assert mine["description"] == "A 2-stage test net."
    with pytest.raises(ValueError, match="description must be a non-empty string, got ' '"):
        export_run(tmp_path / "run" / "runs" / "lbfgs", "tiny-admm3", tmp_path / "zoo", description=" ")
    own = MRI.radial((SIDE, SIDE), 0.2).mask
    assert info["data"]["image_size"] == [SIDE, SIDE] and info["data"]["mask_sha256"] == mask_sha256(own)
    x = random_ellipses(1, SIDE, seed=9)
    A, y = measure("zoo:tiny-admm", x, make_task("mri", ratio=0.2, noise=0.0))
    assert reconstruct("zoo:tiny-admm", y, A, task="mri").shape == x.shape
    other = own.clone()
    other[3, 5] = 1 - other[3, 5]  # one frequency more or less: another mask of the same size and nearly the ratio
    sio.savemat(tmp_path / "other.mat", {"mask_matrix": other.numpy()})
    with pytest.raises(ValueError, match=r"zoo:tiny-admm was trained for one sampling mask \(ratio 0\.\d+, sha256 "
                                         r"[0-9a-f]{12}…\), got another .*--mask-file"):
        measure("zoo:tiny-admm", x, make_task("mri", mask_file=str(tmp_path / "other.mat"), noise=0.0))
    with pytest.raises(ValueError, match=r"zoo:tiny-admm was trained on 24×24 images, got 32×32"):
        measure("zoo:tiny-admm", random_ellipses(1, 32, seed=9), make_task("mri", ratio=0.2, noise=0.0))


def test_istanet_plus_over_the_mri_operator_trains(folders, tmp_path):
    _run(folders, tmp_path / "ista", 'sweep.runs=[{label = "istanet-plus", set = [\'model={ name = "unrolled", options = '
         '{ prox = "istanet-prox", prox_options = { plus = true, channels = 4 }, step = "pgd", stages = 2, tied = false, '
         'step_size = 0.5 } }\', "training.loss=istanet", "training.loss_options={ gamma = 0.01 }", '
         '"training.optimizer=adam", "training.lr=1e-3", "training.batch_size=2", "training.micro_batch=0", '
         '"training.steps=2", "training.val_every=1"]}]')
    m = json.loads((tmp_path / "ista" / "runs" / "istanet-plus" / "metrics.json").read_text())
    assert m["training"]["steps"] == 2 and m["test_images"] == 4 and m["model"]["mean"]["psnr"] > 0


def test_sweep_only_trains_the_named_runs(folders, tmp_path):
    runs = ('sweep.runs=[{label = "a", set = ["training.optimizer=adam", "training.batch_size=2", "training.steps=1", '
            '"training.val_every=1"]}, {label = "b", set = ["training.optimizer=adam", "training.batch_size=2", '
            '"training.steps=1", "training.val_every=1"]}]')
    _run(folders, tmp_path / "s", runs, "sweep.only=['b']")
    assert (tmp_path / "s" / "runs" / "b" / "model.safetensors").is_file()
    assert not (tmp_path / "s" / "runs" / "a").exists()
    assert "sweep run a: not in sweep.only, skipped" in (tmp_path / "s" / "run.log").read_text()
    with pytest.raises(ConfigError, match=r"^sweep\.only\[0\]: expected one of the runs' labels \['a', 'b'\], got 'c'"):
        _run(folders, tmp_path / "never", runs, "sweep.only=['c']")

