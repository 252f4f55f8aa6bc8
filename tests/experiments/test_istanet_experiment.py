"""The ISTA-Net experiment program: trains, resumes, evaluates on Set11 as the paper does, exports to a zoo."""

import json

import pytest
import torch

from proxlab.experiments import istanet as exp
from proxlab.experiments.runner import PROGRAM_EXPERIMENTS, run_program_experiment


def test_training_pool_excludes_set11_images():
    assert "camera" not in exp.TRAIN_IMAGES  # scikit-image's camera is Set11's cameraman
    assert exp.VAL_IMAGE not in exp.TRAIN_IMAGES
    pool = exp.training_images()
    assert all(im.ndim == 4 and im.shape[:2] == (1, 1) and min(im.shape[-2:]) >= 33 for im in pool)
    assert all(float(im.min()) >= 0 and float(im.max()) <= 1 for im in pool)


def test_presets_are_program_experiments():
    for name in ("istanet-plus-cs25", "istanet-cs10", "resnet-pgd-cs25"):
        assert PROGRAM_EXPERIMENTS[name] == "proxlab.experiments.istanet"
        assert name in exp.PRESETS


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown setting"):
        exp._settings({"stepz": "3"})
    with pytest.raises(ValueError, match="model must be one of"):
        exp._settings({"model": "ista"})
    with pytest.raises(ValueError, match="ratio is a percentage"):
        exp._settings({"ratio": "0"})


def test_run_resume_set11_and_zoo_export(tmp_path, shared_data):
    out = tmp_path / "run"
    common = ["batch=4", "val_every=1", "ratio=10", "qinit_blocks=3000", f"set11={shared_data / 'Set11'}", "threads=1"]
    run_program_experiment("istanet-cs10", out, ["steps=2"] + common, progress=False, echo=False)
    first = json.loads((out / "results.json").read_text())
    assert first["steps"] == 2 and first["m"] == 109 and first["parameters"] == 171_090
    s11 = first["set11"]
    assert len(s11["per_image"]) == 11
    assert 5 < s11["mean"]["psnr"] < 40 and 0 < s11["mean"]["ssim"] <= 1
    assert s11["mean"]["qinit_psnr"] > 15  # the least-squares start is a sane image
    summary = run_program_experiment("istanet-cs10", out, ["steps=3"] + common, progress=False, echo=False).metrics
    assert summary["steps"] == 3
    assert "resumed at step 2" in (out / "run.log").read_text()
    assert (out / "report.html").read_text().count("<tr>") >= 11
    entry = exp.export_to_zoo(out, "tiny-istanet", zoo_dir=tmp_path / "zoo")
    info = json.loads(entry.read_text())
    assert info["model"] == {"name": "istanet", "options": {"ratio": 109 / 1089, "plus": False}}
    assert "--set identity=1" in info["training_command"]  # the plain ISTA-Net start is part of the recipe
    assert info["test_metrics"]["model"]["mean"]["psnr"] == pytest.approx(summary["set11"]["mean"]["psnr"])


def test_init_from_other_ratio_keeps_own_phi(tmp_path):
    from proxlab.operators import BlockCompressedSensing
    from proxlab.training import save_model
    from proxlab.unrolled import ISTANet

    a = ISTANet(BlockCompressedSensing(0.25, seed=1), stages=2, channels=4)
    save_model(tmp_path / "a.safetensors", a)
    b = ISTANet(BlockCompressedSensing(0.1, seed=2), stages=2, channels=4)
    phi = b.operator.phi.clone()
    exp.load_init(b, str(tmp_path / "a.safetensors"))
    assert torch.equal(b.operator.phi, phi)
    torch.testing.assert_close(b.proxes[1].conv1_forward.weight, a.proxes[1].conv1_forward.weight)
    with pytest.raises(ValueError, match="do not fit"):
        exp.load_init(ISTANet(BlockCompressedSensing(0.1), stages=2, channels=8), str(tmp_path / "a.safetensors"))


def test_speed_and_warmup_settings_are_checked():
    cfg = exp._settings({"warmup": "50", "compile": "1", "channels_last": "1", "identity": "1"})
    assert (cfg["warmup"], cfg["compile"], cfg["channels_last"], cfg["identity"]) == (50, 1, 1, 1)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        exp._settings({"warmup": "-1"})
    with pytest.raises(ValueError, match="compile must be 0 or 1"):
        exp._settings({"compile": "2"})
    net = exp.build(exp._settings({"model": "istanet", "identity": "1"}),
                    __import__("proxlab.operators", fromlist=["x"]).BlockCompressedSensing(0.1, seed=0))
    assert float(net.proxes[0].conv2_backward.weight.abs().sum()) == 2.0  # the split-identity start


def test_channels_last_warmup_run_saves_contiguous_weights(tmp_path):
    out = tmp_path / "cl"
    run_program_experiment("istanet-plus-cs10", out, ["steps=2", "batch=2", "val_every=1", "qinit_blocks=2000",
                                                      "threads=1", "channels_last=1", "warmup=2"],
                           progress=False, echo=False)
    from safetensors.torch import load_file

    w = load_file(str(out / "model.safetensors"))
    assert all(t.is_contiguous() for t in w.values())
    log = [json.loads(line) for line in (out / "checkpoints" / "log.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in log if "lr" in r]
    assert lrs and lrs[0] < 1e-3  # the first step is inside the warm-up


def test_setting_errors_name_the_setting():
    with pytest.raises(ValueError, match="setting steps must be an int, got 'abc'"):
        exp._settings({"steps": "abc"})
    with pytest.raises(ValueError, match="setting lr must be a number, got 'fast'"):
        exp._settings({"lr": "fast"})


def test_zoo_recipe_records_every_setting_that_shapes_the_weights():
    cfg = exp._settings({"model": "istanet-plus", "steps": "900", "compile": "1", "batch": "32", "warmup": "100",
                         "threads": "2", "set11": "/somewhere", "init": "zoo:istanet-plus-cs25"})
    rec = exp.recipe(cfg)
    assert set(rec) == set(exp.DEFAULTS) - set(exp.NOT_RECIPE) - {"phi", "images"}  # every weight-shaping one set
    assert (rec["steps"], rec["batch"], rec["init"], rec["warmup"], rec["compile"]) == (900, 32, "zoo:istanet-plus-cs25",
                                                                                     100, 1)
    # a recorded recipe is a valid set of overrides giving the same settings back
    back = exp._settings({"model": "istanet-plus", **{k: str(v) for k, v in rec.items()}})
    assert back == {**cfg, "threads": 1, "set11": "", "device": "auto"}
    with pytest.raises(ValueError, match="setting device"):
        exp._settings({"device": "tpu"})


def test_two_processes_under_torchrun_train_one_model(tmp_path):
    # each rank draws its own blocks; the forward must go through DistributedDataParallel so that the gradients are
    # averaged and every rank ends with the same weights (and only rank 0 writes the run folder)
    import subprocess
    import sys
    from pathlib import Path

    worker = Path(__file__).with_name("istanet_ddp_worker.py")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(worker), str(tmp_path / "run"), str(tmp_path / "diff.txt")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert float((tmp_path / "diff.txt").read_text()) < 1e-6
    summary = json.loads((tmp_path / "run" / "results.json").read_text())
    assert summary["steps"] == 3 and summary["train_seconds"] > 0
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["blocks_per_step"] for r in ranks] == [[2, 2, 2]] * 2  # batch=4 split over 2 processes
    assert ranks[0]["wrote"] and not ranks[1]["wrote"]  # rank 1 returned before writing anything


def _photo_folder(root, train_sizes=((80, 70), (90, 66), (70, 100)), val_sizes=((60, 50),)):
    """A folder like the one ``python -m proxlab.data.photos`` writes: train/ and val/ with colour PNGs."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, sizes in (("train", train_sizes), ("val", val_sizes)):
        (root / split).mkdir(parents=True)
        for i, (w, h) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / split / f"im{i}.png")
    return root


def test_folder_images_gives_both_scales_and_the_val_images(tmp_path):
    folder = _photo_folder(tmp_path / "photos", train_sizes=((80, 70), (40, 40)))
    pool, val = exp.folder_images(folder)
    assert [tuple(im.shape) for im in pool] == [(1, 1, 70, 80), (1, 1, 40, 40), (1, 1, 35, 40)]  # 20x20 is dropped
    assert [tuple(im.shape) for im in val] == [(1, 1, 50, 60)]
    assert exp._settings({"images": str(folder)})["images"] == str(folder)
    (folder / "val" / "im0.png").rename(tmp_path / "moved.png")
    (folder / "val").rmdir()
    with pytest.raises(ValueError, match=r"setting images: expected a folder with train/ and val/.* has no val/"):
        exp._settings({"images": str(folder)})
    with pytest.raises(ValueError, match="snapshot_every must be >= 0"):
        exp._settings({"snapshot_every": "-5"})
    small = _photo_folder(tmp_path / "small", train_sizes=((30, 40),))
    with pytest.raises(ValueError, match=r"smaller than one 33x33 block: \['im0'\]"):
        exp.folder_images(small)


def test_images_and_snapshot_settings_train_resume_and_save_the_curve(tmp_path, monkeypatch):
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = _photo_folder(tmp_path / "photos")
    real = exp.skimage_image

    def no_chelsea(name, *a, **k):  # with images=FOLDER the bundled validation image must not be read
        assert name != exp.VAL_IMAGE, "validation used chelsea instead of FOLDER/val"
        return real(name, *a, **k)

    monkeypatch.setattr(exp, "skimage_image", no_chelsea)
    out = tmp_path / "run"
    common = ["batch=2", "val_every=2", "qinit_blocks=500", "threads=1", f"images={folder}", "snapshot_every=2"]
    run_program_experiment("istanet-plus-cs10", out, ["steps=3"] + common, progress=False, echo=False)
    assert "6 training images" in (out / "run.log").read_text()  # 3 photos at scales 1 and 1/2
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step_000002.safetensors"]
    summary = run_program_experiment("istanet-plus-cs10", out, ["steps=4"] + common, progress=False, echo=False).metrics
    assert summary["steps"] == 4 and summary["settings"]["images"] == str(folder)
    assert "resumed at step 3" in (out / "run.log").read_text()
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step_000002.safetensors", "step_000004.safetensors"]
    # the snapshot of step 4 holds the weights of the step-4 training checkpoint, and differs from step 2
    snap4, snap2 = load_file(str(out / "snapshots" / "step_000004.safetensors")), load_file(str(out / "snapshots" / "step_000002.safetensors"))
    pointer = json.loads((out / "checkpoints" / "checkpoint.json").read_text())
    ckpt = load_file(str(out / "checkpoints" / pointer["weights"]))
    assert pointer["step"] == 4
    for k, v in snap4.items():
        torch.testing.assert_close(v, ckpt[f"model.{k}"], rtol=0, atol=0)
    assert snap4.keys() == snap2.keys() and any(not torch.equal(snap4[k], snap2[k]) for k in snap4)
    with safe_open(str(out / "snapshots" / "step_000004.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["proxlab"])
    assert meta["step"] == 4 and json.loads(meta["settings"])["images"] == str(folder)
