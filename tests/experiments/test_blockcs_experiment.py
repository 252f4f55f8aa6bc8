"""The block-CS experiments (ISTA-Net, ISTA-Net+, ResNet-PGD) as TOML specs with registered parts: train, resume,
Set11 as the paper does, zoo export, warm starts from another ratio, photo folders, snapshots, torchrun."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from proxlab.experiments import blockcs
from proxlab.experiments.config import ConfigError, load_config
from proxlab.experiments.runner import PROGRAM_EXPERIMENTS, find_experiment, run_experiment, shipped_experiments
from proxlab.registry import list_models

NAMES = [f"{m}-cs{r}" for m in ("istanet-plus", "istanet", "resnet-pgd") for r in (10, 25, 40)]
TINY = ["training.batch_size=4", "training.val_every=1", "training.checkpoint_every=1", "training.log_every=1",
        "data.options.qinit_blocks=2000", "data.options.val_blocks=16", "training.precision=fp32"]
# fp32: bf16 autocast is 8x slower than fp32 on CPUs without AVX-512 BF16 (this CI machine's kind)


def test_training_pool_excludes_set11_images():
    assert "camera" not in blockcs.TRAIN_IMAGES  # scikit-image's camera is Set11's cameraman
    assert blockcs.VAL_IMAGE not in blockcs.TRAIN_IMAGES
    pool = blockcs.training_images()
    assert len(pool) == 30 and all(im.shape[:2] == (1, 1) and min(im.shape[-2:]) >= 33 for im in pool)


@pytest.mark.parametrize("name", NAMES)
def test_shipped_block_cs_specs_validate(name):
    assert name in shipped_experiments() and name not in PROGRAM_EXPERIMENTS
    cfg = load_config(find_experiment(name), known_models=list_models())
    ratio = int(name.rsplit("cs", 1)[1])
    assert cfg.operator.task == "cs" and abs(cfg.operator.options["ratio"] - ratio / 100) < 1e-12
    assert cfg.data.source == "cs_blocks" and cfg.training.loss == "istanet" and cfg.training.precision == "bf16"
    assert [p.name for p in cfg.evaluation.protocols] == ["set11"]
    if not name.startswith("resnet"):
        assert cfg.model.options == {"plus": name.startswith("istanet-plus"), "zero_residual": True}


def test_source_needs_the_cs_task_and_checks_its_options():
    with pytest.raises(ConfigError, match=r"^data\.options\.qinit_blocks: expected an int >= 1, got 0"):
        load_config(find_experiment("istanet-cs25"), overrides=["data.options.qinit_blocks=0"])
    from proxlab.experiments.parts import SOURCES

    few = load_config(find_experiment("istanet-cs25"), overrides=["data.options.qinit_blocks=300"])
    with pytest.raises(ValueError, match=r"^data\.options\.qinit_blocks: expected at least 2·m = 544 blocks to fit "
                                         r"Qinit \(m = 272 measurements per block at ratio 0\.25\), got 300"):
        SOURCES.get("cs_blocks").build(few.data, few.seed, task=few.build_task())
    with pytest.raises(ConfigError, match=r"^data\.options\.imagez: unknown key; did you mean 'images'\?"):
        load_config(find_experiment("istanet-cs25"), overrides=["data.options.imagez='x'"])
    from proxlab.experiments.config import DataConfig
    from proxlab.tasks import make_task

    with pytest.raises(ValueError, match="'cs_blocks' needs operator.task = 'cs'"):
        blockcs.cs_blocks(DataConfig(source="cs_blocks"), 0, task=make_task("denoise"))


# two runs, each evaluated on all of Set11 (the 2-step channels-last run and the zoo's two-image Set11 check stay in
# the default run)
@pytest.mark.slow
def test_run_resume_set11_and_zoo_export(tmp_path, shared_data):
    from proxlab.experiments.export import export_run

    out = tmp_path / "run"
    over = TINY + [f"evaluation.protocols.0.options.root={json.dumps(str(shared_data / 'Set11'))}"]
    first = run_experiment("istanet-cs10", out=out, overrides=["training.steps=2"] + over, progress=False,
                           echo=False).metrics
    s11 = first["set11"]
    assert first["training"]["steps"] == 2 and first["training"]["parameters"] == 171_090
    assert len(s11["per_image"]) == 11 and s11["mean"]["qinit_psnr"] > 20  # Qinit from 2,000 blocks is sane
    assert first["paper"]["set11"] == {"paper_table1": 25.80, "released_weights": 26.26}
    res = run_experiment(resume=out, overrides=["training.steps=3"], progress=False, echo=False)
    assert res.metrics["training"]["steps"] == 3 and "resumed at step 2" in (out / "run.log").read_text()
    assert "steps = 3" in (out / "config.toml").read_text()  # the folder's config says what the run did
    assert (out / "report.html").read_text().count("<tr>") >= 12
    entry = json.loads(export_run(out, "tiny-istanet", zoo_dir=tmp_path / "zoo").read_text())
    assert entry["model"] == {"name": "istanet", "options": {"plus": False, "zero_residual": True, "ratio": 0.1}}
    assert entry["training_command"].startswith("proxlab run istanet-cs10 --set training.steps=2 --set training.batch_size=4")
    assert entry["training_command"].endswith("--set training.steps=3")
    assert entry["test_metrics"]["model"]["mean"]["psnr"] == pytest.approx(res.metrics["set11"]["mean"]["psnr"])
    assert entry["test_metrics"]["paper_psnr"] == 25.80
    from proxlab.registry import build_model  # the exported weights load into the entry's model with their Φ
    from proxlab.training import load_model_weights

    model = build_model(entry["model"]["name"], **entry["model"]["options"])
    load_model_weights(tmp_path / "zoo" / "tiny-istanet.safetensors", model)
    assert model.operator.m == 109
    # the protocol's numbers are those of the saved weights, scored again from the zoo entry
    again = blockcs.evaluate_set11(model, shared_data / "Set11")["mean"]
    assert again["psnr"] == pytest.approx(res.metrics["set11"]["mean"]["psnr"], abs=1e-4)
    assert again["qinit_psnr"] == pytest.approx(res.metrics["set11"]["mean"]["qinit_psnr"], abs=1e-4)


def test_set11_protocol_is_skipped_without_a_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("PROXLAB_SET11", raising=False)
    res = run_experiment("resnet-pgd-cs25", out=tmp_path / "r", progress=False, echo=False,
                         overrides=["training.steps=1", "model.options.channels=8"] + TINY)
    assert "no Set11 folder" in res.metrics["set11"]["skipped"]


def test_init_from_other_ratio_keeps_own_phi(tmp_path):
    from proxlab.experiments.runner import _load_init
    from proxlab.operators import BlockCompressedSensing
    from proxlab.training import save_model
    from proxlab.unrolled import ISTANet

    a = ISTANet(BlockCompressedSensing(0.25, seed=1), stages=2, channels=4)
    save_model(tmp_path / "a.safetensors", a)
    b = ISTANet(BlockCompressedSensing(0.1, seed=2), stages=2, channels=4)
    phi = b.operator.phi.clone()
    logged = []
    _load_init(str(tmp_path / "a.safetensors"), b, logged.append)
    assert torch.equal(b.operator.phi, phi)
    assert "operator kept" in logged[0] and "operator.phi" in logged[0], logged
    torch.testing.assert_close(b.proxes[1].conv1_forward.weight, a.proxes[1].conv1_forward.weight)
    with pytest.raises(ValueError, match="do not fit"):
        _load_init(str(tmp_path / "a.safetensors"), ISTANet(BlockCompressedSensing(0.1), stages=2, channels=8),
                   lambda m: None)


def test_init_from_other_mri_ratio_keeps_own_mask(tmp_path):
    """An MRI network fine-tuned from another ratio's weights keeps the run's mask (its operator is not learned)."""
    from proxlab.experiments.runner import _load_init
    from proxlab.operators import MRI
    from proxlab.registry import build_model
    from proxlab.training import save_model

    make = lambda ratio: build_model("unrolled", operator=MRI.radial(16, ratio), prox="istanet-prox",  # noqa: E731
                                     prox_options={"channels": 4}, stages=2, tied=False)
    a, b = make(0.2), make(0.4)
    save_model(tmp_path / "a.safetensors", a)
    mask = b.operator.mask.clone()
    logged = []
    _load_init(str(tmp_path / "a.safetensors"), b, logged.append)
    assert torch.equal(b.operator.mask, mask) and not torch.equal(a.operator.mask, mask)
    torch.testing.assert_close(b.proxes[1].conv_G.weight, a.proxes[1].conv_G.weight)
    assert "operator.mask differ" in logged[0], logged
    logged.clear()
    _load_init(str(tmp_path / "a.safetensors"), make(0.2), logged.append)  # same mask: nothing to say
    assert logged[0].endswith("operator kept"), logged


def test_channels_last_warmup_run_saves_contiguous_weights(tmp_path):
    out = tmp_path / "cl"
    run_experiment("istanet-plus-cs10", out=out, progress=False, echo=False,
                   overrides=["training.steps=3", "training.loss_options.channels_last=true",
                              "training.warmup_steps=2", "training.schedule=cosine"] + TINY)
    w = load_file(str(out / "model.safetensors"))
    assert all(t.is_contiguous() for t in w.values())
    log = [json.loads(line) for line in (out / "checkpoints" / "log.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in log if "lr" in r]
    assert lrs and lrs[0] < 1e-3  # the first step is inside the warm-up


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
    pool, val = blockcs.folder_images(folder)
    assert [tuple(im.shape) for im in pool] == [(1, 1, 70, 80), (1, 1, 40, 40), (1, 1, 35, 40)]  # 20x20 is dropped
    assert [tuple(im.shape) for im in val] == [(1, 1, 50, 60)]
    (folder / "val" / "im0.png").rename(tmp_path / "moved.png")
    (folder / "val").rmdir()
    with pytest.raises(ValueError, match=r"expected a folder with train/ and val/.* has no val/"):
        blockcs.folder_images(folder)
    small = _photo_folder(tmp_path / "small", train_sizes=((30, 40),))
    with pytest.raises(ValueError, match=r"smaller than one 33x33 block: \['im0'\]"):
        blockcs.folder_images(small)


@pytest.mark.slow  # trains, resumes and evaluates a snapshot curve
def test_photo_folder_and_snapshots_train_resume_and_save_the_curve(tmp_path, monkeypatch):
    folder = _photo_folder(tmp_path / "photos")
    real = blockcs.skimage_image

    def no_chelsea(name, *a, **k):  # with images=FOLDER the bundled validation image must not be read
        assert name != blockcs.VAL_IMAGE, "validation used chelsea instead of FOLDER/val"
        return real(name, *a, **k)

    monkeypatch.setattr(blockcs, "skimage_image", no_chelsea)
    out = tmp_path / "run"
    over = [f"data.options.images={json.dumps(str(folder))}", "training.snapshot_every=2",
            "training.val_every=2", "data.options.qinit_blocks=500"] + [TINY[0], TINY[-1]]
    run_experiment("istanet-plus-cs10", out=out, overrides=["training.steps=3"] + over, progress=False, echo=False)
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step_000002.safetensors"]
    run_experiment(resume=out, overrides=["training.steps=4"], progress=False, echo=False)
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == ["step_000002.safetensors", "step_000004.safetensors"]
    snap4, snap2 = (load_file(str(out / "snapshots" / f"step_00000{s}.safetensors")) for s in (4, 2))
    pointer = json.loads((out / "checkpoints" / "checkpoint.json").read_text())
    ckpt = load_file(str(out / "checkpoints" / pointer["weights"]))
    assert pointer["step"] == 4
    for k, val in snap4.items():  # the step-4 snapshot holds the weights of the step-4 checkpoint
        torch.testing.assert_close(val, ckpt[f"model.{k}"], rtol=0, atol=0)
    assert any(not torch.equal(snap4[k], snap2[k]) for k in snap4)


@pytest.mark.slow
def test_two_processes_under_torchrun_train_one_model(tmp_path):
    # each rank draws its own blocks; the forward must go through DistributedDataParallel so that the gradients are
    # averaged and every rank ends with the same weights (and only rank 0 writes the run folder)
    worker = Path(__file__).with_name("blockcs_ddp_worker.py")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(worker), str(tmp_path / "run"), str(tmp_path / "diff.txt")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert float((tmp_path / "diff.txt").read_text()) < 1e-6
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 3 and metrics["training"]["train_seconds"] > 0
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["blocks_per_step"] for r in ranks] == [[2, 2, 2]] * 2  # batch 4 split over 2 processes
    assert ranks[0]["wrote"] and not ranks[1]["wrote"]  # rank 1 returned before writing anything


def test_images_folder_is_checked_when_the_config_loads(tmp_path, monkeypatch):
    """A wrong ``data.options.images`` fails at load time (before any run folder or sweep run), naming the key."""
    from proxlab.experiments.config import load_config
    from proxlab.experiments.runner import find_experiment

    toml = find_experiment("istanet-plus-cs25")
    with pytest.raises(ValueError, match=r"images.*has no train/ or val/"):
        load_config(toml, overrides=[f"data.options.images={tmp_path / 'nowhere'}"])
    (tmp_path / "photos" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"images.*has no val/"):
        load_config(toml, overrides=[f"data.options.images={tmp_path / 'photos'}"])
    (tmp_path / "photos" / "val").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_config(toml, overrides=["data.options.images=photos"]).data.options["images"] == "photos"


def test_training_blocks_are_flipped_and_rotated(monkeypatch):
    """The sampler draws blocks and applies one of the 8 flips/rotations to each (the authors' augmentation)."""
    from proxlab.experiments.config import load_config
    from proxlab.experiments.parts import SOURCES
    from proxlab.experiments.runner import find_experiment

    seen = []
    real = blockcs.augment_dihedral

    def spy(x, k):
        seen.append((x.clone(), k.clone()))
        return real(x, k)

    monkeypatch.setattr(blockcs, "augment_dihedral", spy)
    cfg = load_config(find_experiment("istanet-plus-cs25"), overrides=["data.options.qinit_blocks=600",
                                                                        "data.options.val_blocks=4"])
    splits = SOURCES.get("cs_blocks").build(cfg.data, cfg.seed, task=cfg.build_task())
    g = torch.Generator().manual_seed(0)
    x = splits.sampler(64, g)
    assert x.shape == (64, 1, 33, 33) and len(seen) == 1
    raw, k = seen[0]
    assert k.shape == (64,) and len(set(k.tolist())) > 4  # many of the 8 transforms among 64 blocks
    moved = k != 0
    assert torch.equal(x[~moved], raw[~moved])  # the identity leaves its blocks as drawn
    assert all(not torch.equal(x[i], raw[i]) for i in moved.nonzero().flatten().tolist())  # the rest are changed


def test_scales_options_set_the_training_and_validation_resolutions(tmp_path):
    """``scales`` / ``val_scales`` choose the resolutions of the pool and of the validation images; the defaults
    give the pool of before (scale 1 then 1/2) and the validation images at scale 1."""
    from proxlab.experiments.config import load_config
    from proxlab.experiments.parts import SOURCES
    from proxlab.experiments.runner import find_experiment

    folder = _photo_folder(tmp_path / "photos", train_sizes=((80, 70), (140, 132)), val_sizes=((60, 50), (132, 140)))
    pool, val = blockcs.folder_images(folder, scales=(0.5, 0.25), val_scales=(1.0, 0.5))
    assert [tuple(im.shape[-2:]) for im in pool] == [(35, 40), (66, 70), (33, 35)]  # 80x70 at 1/4 is dropped
    assert [tuple(im.shape[-2:]) for im in val] == [(50, 60), (140, 132), (70, 66)]
    full = blockcs.folder_images(folder)[0]
    torch.testing.assert_close(pool[0], full[2], rtol=0, atol=0)  # the same anti-aliased half as the default pool
    assert blockcs.at_scales(full[:1], (1.0,))[0] is full[0]
    for bad in ((), (0.0,), (1.5,)):
        with pytest.raises(ValueError, match=r"scales: expected a non-empty list of factors in \(0, 1\]"):
            blockcs.at_scales(full, bad)

    toml = find_experiment("istanet-plus-cs25")
    with pytest.raises(ConfigError, match=r"^data\.options\.scales\[0\]: expected a number > 0, got 0\.0"):
        load_config(toml, overrides=[f"data.options.images={folder}", "data.options.scales=[0.0]"])
    with pytest.raises(ConfigError, match=r"^data\.options\.val_scales: "):
        load_config(toml, overrides=[f"data.options.images={folder}", "data.options.val_scales=[]"])
    cfg = load_config(toml, overrides=[f"data.options.images={folder}", "data.options.scales=[0.5, 0.25]",
                                       "data.options.val_scales=[0.5]", "data.options.qinit_blocks=600",
                                       "data.options.val_blocks=6"])
    splits = SOURCES.get("cs_blocks").build(cfg.data, cfg.seed, task=cfg.build_task())
    assert splits.val.shape == (6, 1, 33, 33) and splits.extra["pool_images"] == 3
    cfg = load_config(toml, overrides=[f"data.options.images={folder}", "data.options.val_scales=[0.1]"])
    with pytest.raises(ValueError, match=r"data\.options\.val_scales: every validation image is smaller than one "
                                         r"33x33 block at scales \[0\.1\]"):
        SOURCES.get("cs_blocks").build(cfg.data, cfg.seed, task=cfg.build_task())
