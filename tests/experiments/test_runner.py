"""The experiment runner, its report, resume through the runner, and the model zoo."""

import json
from pathlib import Path

import pytest
import torch

from proxlab.experiments.runner import find_experiment, run_experiment, shipped_experiments

TINY = """
name = "tiny"
description = "a tiny run for the tests"
seed = 3

[data]
source = "mnist5k"

[operator]
task = "{task}"
{options}

[model]
name = "{model}"

[model.options]
{model_options}

[training]
steps = {steps}
batch_size = 16
lr = 1e-3
val_every = 5
checkpoint_every = 5
log_every = 1

[evaluation]
metrics = ["psnr", "ssim"]
baselines = ["init", "fista-tv"]
max_test_images = 6
"""


def write(tmp_path, steps=10, task="denoise", options="noise = 0.1", model="dncnn",
          model_options="depth = 3\nfeatures = 4"):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(steps=steps, task=task, options=options, model=model, model_options=model_options))
    return path


def test_run_writes_folder_report_and_metrics(tmp_path):
    res = run_experiment(write(tmp_path), out=tmp_path / "run", progress=False, echo=False)
    folder = res.folder
    for f in ("config.toml", "metrics.json", "run.log", "report.html", "checkpoints/best.safetensors",
              "checkpoints/checkpoint.json", "checkpoints/log.jsonl", "figure_reconstructions.png"):
        assert (folder / f).is_file(), f
    m = json.loads((folder / "metrics.json").read_text())
    assert set(m["baselines"]) == {"init", "fista-tv"} and m["test_images"] == 6
    assert len(m["model"]["per_image"]["psnr"]) == 6 and m["training"]["steps"] == 10
    html = (folder / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "<table>" in html and "fista-tv" in html
    with pytest.raises(FileExistsError, match="already holds a run"):
        run_experiment(write(tmp_path), out=tmp_path / "run", progress=False, echo=False)


def test_a_folder_killed_before_its_first_checkpoint_is_not_stuck(tmp_path):
    stuck = tmp_path / "stuck"
    stuck.mkdir()
    (stuck / "config.toml").write_text(write(tmp_path).read_text())  # what a run leaves if killed in its first minute
    (stuck / "run.log").write_text("[00:00:00] experiment tiny: starting\n")
    (stuck / "overrides.json").write_text('["training.steps=99"]')
    (stuck / "checkpoints").mkdir()
    res = run_experiment(write(tmp_path, steps=5), out=stuck, progress=False, echo=False)  # a fresh run takes it over
    assert res.metrics["training"]["steps"] == 5 and json.loads((stuck / "overrides.json").read_text()) == []
    assert "stopped before its first checkpoint; starting it anew" in (stuck / "run.log").read_text()
    again = tmp_path / "again"
    again.mkdir()
    (again / "config.toml").write_text(write(tmp_path).read_text())
    res = run_experiment(resume=again, progress=False, echo=False)  # --resume with no checkpoint: from the start
    assert res.metrics["training"]["steps"] == 10


def test_a_warm_up_longer_than_the_run_is_clipped_and_said(tmp_path):
    from proxlab.experiments.config import load_config

    cfg = load_config(find_experiment("dncnn-mnist-s0.1"), overrides=["training.steps=30"])  # its warm-up is 100
    assert cfg.training.warmup_steps == 3
    res = run_experiment(write(tmp_path, steps=5), out=tmp_path / "w", overrides=["training.warmup_steps=50"],
                         progress=False, echo=False)
    assert res.metrics["training"]["steps"] == 5
    assert "training.warmup_steps: 50 is not below steps = 5; the warm-up is clipped to 0 steps" in \
        (tmp_path / "w" / "run.log").read_text()
    assert "warmup_steps = 0" in (tmp_path / "w" / "config.toml").read_text()  # the folder says what ran


def test_bad_model_options_and_devices_fail_before_the_folder_exists(tmp_path):
    from proxlab.experiments import ConfigError

    with pytest.raises(ConfigError, match=r"^model\.options\.featurs: unknown key; did you mean 'features'\?"):
        run_experiment(write(tmp_path, model_options="featurs = 4"), out=tmp_path / "never", progress=False, echo=False)
    if not torch.cuda.is_available():
        with pytest.raises((ConfigError, RuntimeError, ValueError), match=r"cuda"):
            run_experiment(write(tmp_path), out=tmp_path / "never", overrides=["training.device=cuda"], progress=False,
                           echo=False)
    assert not (tmp_path / "never").exists()


def test_resume_through_runner_matches_straight_run(tmp_path):
    from proxlab.training import load_model_weights
    from proxlab.priors.networks import DnCNN

    straight = run_experiment(write(tmp_path, steps=20), out=tmp_path / "a", progress=False, echo=False)
    first = run_experiment(write(tmp_path, steps=10), out=tmp_path / "b", progress=False, echo=False)
    resumed = run_experiment(resume=first.folder, overrides=["training.steps=20"], progress=False, echo=False)
    assert resumed.metrics["training"]["steps"] == 20
    assert "steps = 20" in (first.folder / "config.toml").read_text()  # the folder says what the run did
    assert json.loads((first.folder / "overrides.json").read_text()) == ["training.steps=20"]
    a, b = DnCNN(depth=3, features=4), DnCNN(depth=3, features=4)
    load_model_weights(straight.folder / "checkpoints" / "ckpt-00000020.safetensors", a, prefix="model.")
    load_model_weights(resumed.folder / "checkpoints" / "ckpt-00000020.safetensors", b, prefix="model.")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_unrolled_model_gets_the_task_operator(tmp_path):
    res = run_experiment(write(tmp_path, steps=4, task="deblur", options="blur_sigma = 1.0\nnoise = 0.02",
                               model="unrolled",
                               model_options='stages = 2\nprox_options = { depth = 3, features = 4 }'),
                         out=tmp_path / "u", progress=False, echo=False)
    assert res.metrics["model"]["mean"]["psnr"] > 5


def test_config_errors_reach_the_user(tmp_path):
    from proxlab.experiments import ConfigError

    path = write(tmp_path)
    path.write_text(path.read_text().replace("steps = 10", "stpes = 10"))
    with pytest.raises(ConfigError, match="training.stpes: unknown key; did you mean 'steps'"):
        run_experiment(path, out=tmp_path / "x", progress=False, echo=False)
    with pytest.raises(ValueError, match="did you mean 'dncnn-mnist-s0.1'"):
        find_experiment("dncnn-mnist-s01")
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        run_experiment(resume=tmp_path / "nothing", progress=False, echo=False)


def test_shipped_experiments_are_valid():
    from proxlab.experiments import load_config
    from proxlab.registry import list_models

    from proxlab.experiments.runner import PROGRAM_EXPERIMENTS

    names = shipped_experiments()
    assert {"dncnn-mnist-s0.1", "pgd-dncnn-mnist-deblur", "lpn-mnist", "lpn-laplacian", "lpn-pnp", "lista"} <= set(names)
    for n in names:
        if n in PROGRAM_EXPERIMENTS:
            with pytest.raises(ValueError, match="is a program, not a config file"):
                find_experiment(n)
        else:
            assert load_config(find_experiment(n), known_models=list_models()).name == n


def test_zoo_export_load_and_architecture_check(tmp_path, monkeypatch):
    import proxlab.zoo as zoo
    from proxlab.experiments.export import export_run
    from proxlab.training import CheckpointError

    res = run_experiment(write(tmp_path, steps=5), out=tmp_path / "run", progress=False, echo=False)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    export_run(res.folder, "tiny-dncnn")
    assert zoo.list_zoo() == ["tiny-dncnn"]
    model, info = zoo.load_zoo_model("tiny-dncnn")
    assert res.metrics["training"]["test_image_size"] == [28, 28] and info["data"]["image_size"] == [28, 28]
    assert info["task"]["name"] == "denoise" and info["training_command"] == "proxlab run tiny"
    assert info["test_metrics"]["model"]["mean"]["psnr"] == res.metrics["model"]["mean"]["psnr"]
    y = torch.rand(2, 1, 28, 28)
    assert model(y).shape == y.shape
    meta = json.loads((tmp_path / "zoo" / "tiny-dncnn.json").read_text())
    meta["model"]["options"]["features"] = 8  # the weights no longer fit the architecture
    (tmp_path / "zoo" / "tiny-dncnn.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match DnCNN: shape mismatch"):
        zoo.load_zoo_model("tiny-dncnn")
    with pytest.raises(ValueError, match="did you mean 'tiny-dncnn'"):
        zoo.zoo_info("tiny-dncn")


def test_a_folder_named_like_an_experiment_does_not_shadow_it(tmp_path, monkeypatch):
    """A run folder called ``lpn-mnist`` in the working directory (``proxlab run lpn-mnist --out lpn-mnist``) must
    not hide the shipped experiment of that name; any other folder is refused with a pointer to ``--resume``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lpn-mnist").mkdir()
    assert find_experiment("lpn-mnist").name == "lpn-mnist.toml" and find_experiment("lpn-mnist").is_file()
    (tmp_path / "my-run").mkdir()
    with pytest.raises(FileNotFoundError, match=r"my-run is a folder, not a TOML file .*proxlab run --resume my-run"):
        find_experiment("my-run")


def test_zoo_export_does_not_need_the_runs_data(tmp_path, monkeypatch):
    """The run records its test image size, so exporting it works after the user's data folder is gone."""
    import proxlab.zoo as zoo
    from proxlab.experiments import export

    res = run_experiment(write(tmp_path, steps=2), out=tmp_path / "run", progress=False, echo=False)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")

    def gone(*args, **kwargs):
        raise FileNotFoundError("the run's data folder was deleted")

    monkeypatch.setattr(export, "_image_size", gone)  # what rebuilding the data source would meet
    assert json.loads(export.export_run(res.folder, "tiny").read_text())["data"]["image_size"] == [28, 28]
    metrics = json.loads((res.folder / "metrics.json").read_text())
    del metrics["training"]["test_image_size"]  # a run made before the size was recorded: the data is rebuilt
    (res.folder / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(FileNotFoundError, match="data folder was deleted"):
        export.export_run(res.folder, "tiny2")


def test_resume_from_another_directory_reads_relative_paths_from_where_the_run_started(tmp_path, monkeypatch):
    """A config's relative paths (here ``data.path``) mean what they meant at the start, wherever --resume is typed;
    the caller's working directory is restored afterwards."""
    import numpy as np
    from PIL import Image

    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    (start / "imgs").mkdir(parents=True)
    elsewhere.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray((rng.random((28, 28)) * 255).astype(np.uint8)).save(start / "imgs" / f"im{i:02d}.png")
    toml = write(tmp_path, steps=5)
    toml.write_text(toml.read_text().replace('source = "mnist5k"', 'source = "image_folder"\npath = "imgs"'))
    monkeypatch.chdir(start)
    first = run_experiment(toml, out=tmp_path / "run", progress=False, echo=False)
    assert (first.folder / "started_in.txt").read_text().strip() == str(start)
    monkeypatch.chdir(elsewhere)
    res = run_experiment(resume="../run", overrides=["training.steps=10"], progress=False, echo=False)
    assert res.metrics["training"]["steps"] == 10
    assert Path.cwd() == elsewhere
    assert f"read from {start}, where the run started" in (tmp_path / "run" / "run.log").read_text()
    (tmp_path / "run" / "started_in.txt").unlink()  # a folder without the record: paths are read from here
    with pytest.raises(FileNotFoundError, match="imgs"):
        run_experiment(resume=tmp_path / "run", overrides=["training.steps=15"], progress=False, echo=False)
