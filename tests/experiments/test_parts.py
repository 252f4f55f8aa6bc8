"""Registered parts from outside the package: a toy source, loss and protocol run an experiment; stages and sweeps."""

import json

import pytest
import torch
from pydantic import BaseModel, ConfigDict

from proxlab.experiments.runner import run_experiment
from proxlab.experiments.config import ConfigError, load_config
from proxlab.experiments.datasets import Splits
from proxlab.experiments.parts import LOSSES, PROTOCOLS, SOURCES, Registry, Section, register_loss, register_protocol, \
    register_source
from proxlab.registry import list_models

CALLS: dict[str, list] = {"loss": [], "protocol": []}


class ToySourceOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    n: int = 24


class ToyLossOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    weight: float = 1.0


class ToyProtocolOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    images: int = 2


def _smooth(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=g)
    return torch.nn.functional.interpolate(x, size=(12, 12), mode="bilinear", align_corners=False)


@pytest.fixture(autouse=True, scope="module")
def toy_parts():
    @register_source("toy-images", ToySourceOptions, replace=True)
    def toy_images(cfg, seed, task=None):
        n = cfg.options.get("n", 24)
        return Splits(_smooth(n, seed), _smooth(4, seed + 1), _smooth(3, seed + 2))

    @register_loss("toy-weighted-mse", ToyLossOptions, replace=True)
    def toy_loss(opts, ctx):
        weight = ToyLossOptions.model_validate(opts.model_dump()).weight

        def loss_fn(model, batch, step):
            CALLS["loss"].append((weight, step.step))
            x = batch
            y = ctx.operator(x) + ctx.noise * torch.randn(x.shape, generator=step.generator)
            return weight * ((model(y) - x) ** 2).mean()

        return loss_fn

    @register_protocol("toy-count", ToyProtocolOptions, replace=True)
    def toy_count(opts, ctx):
        CALLS["protocol"].append(opts.images)
        with torch.no_grad():
            out = ctx.model(ctx.splits.test[: opts.images].to(ctx.device))
        return Section("Toy protocol", metrics={"images": opts.images, "mean_output": float(out.mean())},
                       html="<p>toy</p>", paper={"images": 2})

    yield
    for reg, name in ((SOURCES, "toy-images"), (LOSSES, "toy-weighted-mse"), (PROTOCOLS, "toy-count")):
        reg.unregister(name)


def _spec(**extra):
    spec = {
        "name": "toy",
        "data": {"source": "toy-images", "options": {"n": 16}},
        "operator": {"task": "denoise", "noise": 0.1},
        "model": {"name": "dncnn", "options": {"depth": 3, "features": 4}},
        "training": {"steps": 3, "batch_size": 4, "loss": "toy-weighted-mse", "loss_options": {"weight": 2.0},
                     "val_every": 3, "checkpoint_every": 3, "log_every": 1},
        "evaluation": {"baselines": ["init"], "protocols": [{"name": "test_split"},
                                                             {"name": "toy-count", "options": {"images": 2}}]},
    }
    spec.update(extra)
    return spec


def _write(tmp_path, spec):
    import tomli_w

    path = tmp_path / "toy.toml"
    path.write_text(tomli_w.dumps(spec))
    return path


def test_external_parts_run_an_experiment(tmp_path):
    CALLS["loss"].clear()
    CALLS["protocol"].clear()
    res = run_experiment(_write(tmp_path, _spec()), out=tmp_path / "run", progress=False, echo=False)
    assert [w for w, _ in CALLS["loss"]] == [2.0, 2.0, 2.0]  # the toy loss trained every step, with its option
    assert CALLS["protocol"] == [2]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["toy-count"]["images"] == 2 and metrics["paper"]["toy-count"] == {"images": 2}
    assert metrics["test_images"] == 3 and set(metrics["baselines"]) == {"init"}  # test_split at the top level
    assert res.metrics["training"]["steps"] == 3
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Toy protocol" in report and "Test images" in report


def test_external_part_options_are_validated_before_the_folder(tmp_path):
    bad = _spec()
    bad["training"]["loss_options"] = {"wieght": 2.0}
    with pytest.raises(ConfigError, match=r"^training\.loss_options\.wieght: unknown key; did you mean 'weight'\?"):
        run_experiment(_write(tmp_path, bad), out=tmp_path / "never", progress=False, echo=False)
    bad = _spec()
    bad["evaluation"]["protocols"] = [{"name": "toy-cont"}]
    with pytest.raises(ConfigError, match=r"^evaluation\.protocols\[0\]\.name: .*did you mean 'toy-count'\?"):
        run_experiment(_write(tmp_path, bad), out=tmp_path / "never", progress=False, echo=False)
    bad = _spec()
    bad["model"]["options"] = {"depth": 3, "featurez": 4}
    with pytest.raises(ConfigError, match=r"^model\.options\.featurez: unknown key; did you mean 'features'\?"):
        run_experiment(_write(tmp_path, bad), out=tmp_path / "never", progress=False, echo=False)
    bad["model"]["options"] = {"depth": "2"}
    with pytest.raises(ConfigError, match=r'^model\.options\.depth: expected an int, got "2" \(str\)'):
        run_experiment(_write(tmp_path, bad), out=tmp_path / "never", progress=False, echo=False)
    assert not (tmp_path / "never").exists()


def test_stages_chain_and_resume_skips_finished_stages(tmp_path):
    spec = _spec(stages=[{"name": "warm", "loss": "l1", "steps": 2},
                         {"name": "main", "steps": 3, "lr": 1e-4}])
    spec["evaluation"]["protocols"] = [{"name": "test_split"}]
    cfg = load_config(_write(tmp_path, spec), known_models=list_models())
    first, second = cfg.resolved_stages
    assert (first.loss, first.steps, first.init, first.loss_options) == ("l1", 2, "fresh", {})
    assert (second.loss, second.steps, second.lr, second.init) == ("toy-weighted-mse", 3, 1e-4, "previous")
    assert second.loss_options == {"weight": 2.0}  # inherited from [training]
    res = run_experiment(_write(tmp_path, spec), out=tmp_path / "run", progress=False, echo=False)
    stages = res.metrics["training"]["stages"]
    assert [s["name"] for s in stages] == ["warm", "main"] and res.metrics["training"]["steps"] == 5
    assert (tmp_path / "run" / "stages" / "stage0.safetensors").is_file()
    # a resume after both stages finished re-evaluates without training again
    CALLS["loss"].clear()
    run_experiment(resume=tmp_path / "run", progress=False, echo=False)
    assert CALLS["loss"] == []


def test_first_stage_cannot_start_from_previous(tmp_path):
    spec = _spec(stages=[{"init": "previous"}])
    with pytest.raises(ConfigError, match=r"^stages\[0\]\.init: .*no previous one"):
        load_config(spec)


def test_sweep_runs_each_entry_and_compares(tmp_path):
    seen = {}

    @register_protocol("toy-compare", replace=True)
    def compare(opts, ctx):
        seen.update({k: c["cfg"].training.loss_options["weight"] for k, c in ctx.children.items()})
        return Section("Compare", metrics={k: c["metrics"]["model"]["mean"]["psnr"] for k, c in ctx.children.items()})

    try:
        spec = _spec(sweep={"runs": [{"label": "w1", "set": ["training.loss_options.weight=1.0"]},
                                     {"label": "w3", "set": ["training.loss_options.weight=3.0"]}],
                            "protocols": [{"name": "toy-compare"}]})
        spec["evaluation"]["protocols"] = [{"name": "test_split"}]
        res = run_experiment(_write(tmp_path, spec), out=tmp_path / "sweep", progress=False, echo=False)
        assert seen == {"w1": 1.0, "w3": 3.0}
        assert set(res.metrics["toy-compare"]) == {"w1", "w3"}
        assert (tmp_path / "sweep" / "runs" / "w3" / "metrics.json").is_file()
        bad = _spec(sweep={"runs": [{"label": "x", "set": ["training.stpes=3"]}]})
        with pytest.raises(ConfigError, match=r"^sweep\.runs\[0\] \(x\): training\.stpes: unknown key"):
            load_config(bad)
    finally:
        PROTOCOLS.unregister("toy-compare")


def test_registry_errors():
    reg = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(lambda: 2)
    with pytest.raises(ValueError, match=r"unknown widget 'b'; known: a"):
        reg.get("b")
    with pytest.raises(TypeError, match="pydantic BaseModel"):
        reg.register("c", options=dict)
    with pytest.raises(ValueError, match="takes no options"):
        reg.get("a").validate_options({"x": 1})


def test_steps_zero_evaluates_the_initial_weights(tmp_path):
    from proxlab.registry import build_model
    from proxlab.training import save_model

    net = build_model("dncnn", depth=3, features=4)
    save_model(tmp_path / "init.safetensors", net, {})
    spec = _spec()
    spec["training"].update(steps=0, init=str(tmp_path / "init.safetensors"))
    spec["evaluation"]["protocols"] = [{"name": "toy-count", "options": {"images": 2}}]
    res = run_experiment(_write(tmp_path, spec), out=tmp_path / "eval", progress=False, echo=False)
    assert res.metrics["training"]["steps"] == 0
    x = _smooth(3, 2)[:2]
    with torch.no_grad():
        assert abs(res.metrics["toy-count"]["mean_output"] - float(net(x).mean())) < 1e-6


def test_a_sweep_run_starts_from_an_earlier_runs_weights(tmp_path):
    from safetensors.torch import load_file

    spec = _spec(sweep={"runs": [{"label": "pre", "set": ["training.loss_options.weight=1.0"]},
                                 {"label": "tuned", "set": ["training.init='run:pre'", "training.steps=0"]}]})
    spec["evaluation"]["protocols"] = [{"name": "test_split"}]
    res = run_experiment(_write(tmp_path, spec), out=tmp_path / "sweep", progress=False, echo=False)
    pre, tuned = (load_file(tmp_path / "sweep" / "runs" / k / "model.safetensors") for k in ("pre", "tuned"))
    assert set(pre) == set(tuned) and all(torch.equal(pre[k], tuned[k]) for k in pre)  # steps = 0: the init itself
    assert "weights from" in (tmp_path / "sweep" / "runs" / "tuned" / "run.log").read_text()
    assert res.metrics["training"]["runs"]["tuned"]["steps"] == 0
    # a run named later, or no sweep at all, is refused when the config loads
    later = _spec(sweep={"runs": [{"label": "a", "set": ["training.init='run:b'"]}, {"label": "b"}]})
    with pytest.raises(ConfigError, match=r"^sweep\.runs\[0\] \(a\): training\.init: expected 'run:LABEL' of an "
                                          r"earlier run of the sweep \[\], got 'run:b'"):
        load_config(later)
    with pytest.raises(ConfigError, match=r"^training\.init: 'run:LABEL' names a run of a sweep and this experiment"):
        load_config(_spec(training={**_spec()["training"], "init": "run:pre"}))
    # sweep.only without the run it starts from, where that run has not finished: refused before training
    with pytest.raises(ValueError, match=r"sweep run tuned: its init 'run:pre' needs run 'pre' to have finished"):
        run_experiment(_write(tmp_path, {**spec, "sweep": {**spec["sweep"], "only": ["tuned"]}}),
                       out=tmp_path / "other", progress=False, echo=False)
    assert not (tmp_path / "other" / "runs").exists()  # refused before any run folder was made
