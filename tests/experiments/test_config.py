"""Experiment configs: TOML in, typed frozen pydantic models out, one-line errors, overrides, TOML back."""

import datetime
import sys

import pydantic
import pytest

from proxlab.experiments import _toml as _validate
from proxlab.experiments.config import (
    ConfigError,
    DataConfig,
    EvaluationConfig,
    ExperimentConfig,
    ModelConfig,
    OperatorConfig,
    TrainingConfig,
    config_to_dict,
    dump_toml,
    load_config,
    loads_config,
)
from proxlab.experiments.parts import LOSSES, register_loss
from proxlab.tasks import Task


class _FreeOptions(pydantic.BaseModel, extra="allow"):
    """A loss whose options are free-form: the spec's TOML handling of loss_options is tested with it."""


if "test-free-options" not in LOSSES:
    register_loss("test-free-options", _FreeOptions)(lambda opts, ctx: None)

toml = _validate.toml_module()  # tomllib, or tomli on Python 3.10

FULL = """\
name = "lpn-skimage.v2"
description = "a \\"full\\" config\\nwith every section"
seed = 7

[data]
source = "skimage"
names = ["coffee", "chelsea"]
test_names = ["camera"]
size = 64
patch_size = 32
patches_per_image = 4
augment = true

[operator]
task = "deblur"
noise = 0.02
blur_sigma = 2

[model]
name = "lpn"

[model.options]
depth = 4
widths = [16, 32]
act = "softplus"
beta = 1e-3
nested = {a = 1, b = [true, false], when = 2024-01-02}
blocks = [{kind = "conv", k = 3}, {kind = "pool"}]

[training]
steps = 500
batch_size = 8
lr = 1
lr_groups = {step_size = 1e-2, "layers.0.weight" = 5e-4}
weight_decay = 1e-5
schedule = "multistep"
warmup_steps = 10
milestones = [100, 300]
gamma = 0.5
loss = "test-free-options"
loss_options = {gamma_schedule = [10.0, 1.0], weird = inf}
grad_clip = 1.0
val_every = 50
checkpoint_every = 50
log_every = 5
patience = 3
metric = "ssim"
num_workers = 2
device = "cuda:1"
precision = "bf16"

[evaluation]
metrics = ["psnr", "ssim", "nmse"]
baselines = ["init", "tikhonov", "admm-tv"]
max_test_images = 10
"""

MINIMAL = {"name": "m", "data": {"source": "mnist5k"}, "operator": {"task": "denoise"}, "model": {"name": "dncnn"}}


def with_(section, **kv):
    """MINIMAL with ``kv`` merged into ``section`` ("" for the top level)."""
    raw = {k: dict(x) if isinstance(x, dict) else x for k, x in MINIMAL.items()}
    if section:
        raw.setdefault(section, {}).update(kv)
    else:
        raw.update(kv)
    return raw


class TestLoad:
    def test_full_file(self, tmp_path):
        path = tmp_path / "exp.toml"
        path.write_text(FULL, encoding="utf-8")
        cfg = load_config(path)
        assert isinstance(cfg, ExperimentConfig)
        assert cfg.name == "lpn-skimage.v2" and cfg.seed == 7 and cfg.description.endswith("\nwith every section")
        assert cfg.data == DataConfig(source="skimage", names=("coffee", "chelsea"), test_names=("camera",), size=64,
                                      patch_size=32, patches_per_image=4, augment=True)
        assert cfg.operator == OperatorConfig(task="deblur", noise=0.02, options={"blur_sigma": 2.0})
        assert cfg.model.options["nested"] == {"a": 1, "b": [True, False], "when": datetime.date(2024, 1, 2)}
        t = cfg.training
        assert (t.lr, type(t.lr), t.milestones, t.lr_groups) == (1.0, float, (100, 300),
                                                                 {"step_size": 1e-2, "layers.0.weight": 5e-4})
        assert cfg.evaluation == EvaluationConfig(metrics=("psnr", "ssim", "nmse"),
                                                  baselines=("init", "tikhonov", "admm-tv"), max_test_images=10)
        with pytest.raises(pydantic.ValidationError, match="frozen"):
            cfg.training.steps = 3  # type: ignore[misc]

    def test_round_trip(self, tmp_path):
        src = tmp_path / "exp.toml"
        src.write_text(FULL, encoding="utf-8")
        cfg = load_config(str(src))
        text = dump_toml(cfg)
        out = tmp_path / "resolved.toml"
        out.write_text(text, encoding="utf-8")
        assert load_config(out) == cfg
        assert loads_config(text) == cfg
        assert load_config(config_to_dict(cfg)) == cfg
        assert load_config(toml.loads(text)) == cfg
        assert dump_toml(load_config(out)) == text  # stable

    def test_defaults_filled(self):
        cfg = load_config(MINIMAL)
        assert cfg.description == "" and cfg.seed == 0
        assert cfg.data == DataConfig(source="mnist5k")
        assert (cfg.data.train, cfg.data.val, cfg.data.test, cfg.data.size) == ("train", "val", "test", 0)
        assert cfg.operator == OperatorConfig(task="denoise", noise=0.1, options={})
        assert cfg.model == ModelConfig(name="dncnn", options={})
        assert cfg.training == TrainingConfig()
        t = cfg.training
        assert (t.steps, t.batch_size, t.lr, t.schedule, t.loss, t.metric, t.device, t.precision) == (
            1000, 32, 1e-3, "constant", "mse", "psnr", "auto", "fp32")
        assert cfg.evaluation.metrics == ("psnr", "ssim") and cfg.evaluation.baselines == ("init", "fista-tv")
        d = config_to_dict(cfg)
        assert list(d) == ["name", "description", "seed", "data", "operator", "model", "training", "evaluation"]
        assert d["training"]["milestones"] == [] and d["operator"] == {"task": "denoise", "noise": 0.1}

    def test_task_defaults_and_build_task(self):
        cfg = load_config(with_("operator", task="cs", ratio=0.1) | {"seed": 3})
        assert cfg.operator.noise == 0.0 and cfg.operator.options == {"ratio": 0.1, "phi": None, "qinit": None}
        task = cfg.build_task()
        assert isinstance(task, Task) and task.seed == 3 and task.options["ratio"] == 0.1
        assert "phi" not in config_to_dict(cfg)["operator"]  # None is not TOML
        assert load_config(with_("operator", task="ct")).operator.options == {"angles": 60}

    def test_dict_source_not_mutated(self):
        raw = with_("model", options={"depth": 3})
        load_config(raw, overrides=["model.options.depth=5", "training.steps=9"])
        assert raw["model"]["options"] == {"depth": 3} and "training" not in raw

    def test_known_models(self):
        assert load_config(MINIMAL, known_models=["dncnn", "lpn"]).model.name == "dncnn"
        with pytest.raises(ConfigError, match=r"^model\.name: expected one of 'dcnn', 'lpn', got 'dncnn'; did you "
                                              r"mean 'dcnn'\?$"):
            load_config(MINIMAL, known_models=["dcnn", "lpn"])

    def test_bad_arguments(self, tmp_path):
        with pytest.raises(TypeError, match="source: expected a path or a dict, got int"):
            load_config(3)
        with pytest.raises(TypeError, match="known_models: expected a list of names, got str"):
            load_config(MINIMAL, known_models="dncnn")
        with pytest.raises(TypeError, match="overrides: expected a list of 'section.key=value' strings, got str"):
            load_config(MINIMAL, overrides="training.steps=3")
        with pytest.raises(TypeError, match=r"overrides: expected str items, got 3 \(int\)"):
            load_config(MINIMAL, overrides=[3])


class TestFiles:
    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="nope.toml"):
            load_config(tmp_path / "nope.toml")
        with pytest.raises(FileNotFoundError, match="use loads_config"):
            load_config('name = "x"\n[data]\n')

    def test_syntax_error_keeps_line(self, tmp_path):
        path = tmp_path / "bad.toml"
        path.write_text('name = "x"\n\n[training]\nsteps = = 3\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML: .*line 4") as e:
            load_config(path)
        assert e.value.key == str(path) and "\n" not in str(e.value)
        with pytest.raises(ConfigError, match=r"^<string>: invalid TOML: .*line 2"):
            loads_config('name = "x"\nseed = ]\n')

    def test_not_utf8(self, tmp_path):
        path = tmp_path / "latin.toml"
        path.write_bytes(b'name = "caf\xe9"\n')
        with pytest.raises(ConfigError, match=r"latin\.toml: invalid TOML: not UTF-8"):
            load_config(path)

    def test_tomli_fallback(self, monkeypatch):
        monkeypatch.setattr(sys, "version_info", (3, 10, 0))
        monkeypatch.setitem(sys.modules, "tomli", toml)  # stands in for the real tomli
        assert _validate.toml_module() is toml
        monkeypatch.setitem(sys.modules, "tomli", None)
        with pytest.raises(ImportError, match="needs the 'tomli' package"):
            _validate.toml_module()


ERRORS = [
    # unknown keys, with and without a close match
    (with_("training", stpes=3), r"training\.stpes: unknown key; did you mean 'steps'\?"),
    (with_("", trainig={}), r"trainig: unknown key; did you mean 'training'\?"),
    (with_("model", depth=4), r"model\.depth: unknown key; expected one of: name, options"),
    (with_("operator", task="deblur", blur_sigam=1.0), r"operator\.blur_sigam: unknown key; did you mean "
                                                       r"'blur_sigma'\?"),
    (with_("operator", zzz=1.0), r"operator\.zzz: unknown key; expected one of: task, noise$"),
    (with_("operator", ratio=0.3), r"operator\.ratio: not an option of task 'denoise' \(its options: noise\)"),
    # missing required keys
    ({k: x for k, x in MINIMAL.items() if k != "model"}, r"model: missing required key 'name'"),
    ({k: x for k, x in MINIMAL.items() if k != "name"}, r"config: missing required key 'name'"),
    (with_("", data={}), r"data: missing required key 'source'"),
    (with_("", operator={"noise": 0.1}), r"operator: missing required key 'task'"),
    # types and ranges
    (with_("training", lr=-1), r"training\.lr: expected a number > 0, got -1$"),
    (with_("training", lr="1e-3"), r'training\.lr: expected a number > 0, got "1e-3" \(str\)'),
    (with_("training", lr=float("nan")), r"training\.lr: expected a number > 0, got nan"),
    (with_("training", steps="100"), r'training\.steps: expected an int >= 0, got "100" \(str\)'),
    (with_("training", steps=-1), r"training\.steps: expected an int >= 0, got -1$"),
    (with_("training", steps=10.0), r"training\.steps: expected an int >= 0, got 10\.0 \(float\)"),
    (with_("training", gamma=1.5), r"training\.gamma: expected a number in \(0, 1\], got 1\.5"),
    (with_("training", lr_groups={"step": 0}), r"training\.lr_groups\.step: expected a number > 0, got 0"),
    (with_("training", lr_groups=[1]), r"training\.lr_groups: expected a table, got \[1\] \(list\)"),
    (with_("training", device="gpu"), r"training\.device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    (with_("training", schedule="cosin"), r"training\.schedule: expected one of 'constant', 'cosine', 'step', "
                                          r"'multistep', got 'cosin'; did you mean 'cosine'\?"),
    # every registered source, the built-in ones among them (a family's parts may register theirs first)
    (with_("data", source="minst"), r"data\.source: expected one of ('[\w-]+', )*'mnist5k', 'skimage', 'ellipses', "
                                    r"'image_folder', 'idx', 'lfw'(, '[\w-]+')*, got 'minst'; did you mean 'mnist5k'\?"),
    (with_("data", source=5), r"data\.source: expected a string, got 5 \(int\)"),
    (with_("data", augment=1), r"data\.augment: expected true or false, got 1 \(int\)"),
    (with_("", name="Bad Name"), r'name: expected a str matching \[a-z0-9\._-\]\+, got "Bad Name"$'),
    (with_("", seed=-1), r"seed: expected an int >= 0, got -1"),
    (with_("", training=5), r"training: expected a table, got 5 \(int\)"),
    (with_("model", options={"act": None}), r"model\.options\.act: expected a TOML value .*, got None \(NoneType\)"),
    (with_("evaluation", metrics=["psnr", "psnr"]), r"evaluation\.metrics: expected no repeated entries, got "
                                                    r'"psnr" twice'),
    (with_("evaluation", metrics=[]), r"evaluation\.metrics: expected a non-empty list, got \[\]"),
    (with_("evaluation", baselines=["fista_tv"]), r"evaluation\.baselines\[0\]: expected one of .*got 'fista_tv'; "
                                                  r"did you mean 'fista-tv'\?"),
    (with_("evaluation", metrics="psnr"), r'evaluation\.metrics: expected a list, got "psnr" \(str\)'),
    # task options, checked by make_task
    (with_("operator", task="denose"), r"operator\.task: expected one of 'denoise', .*got 'denose'; did you mean "
                                       r"'denoise'\?"),
    (with_("operator", noise=-0.1), r"operator\.noise: expected a number >= 0, got -0\.1"),
    (with_("operator", task="inpaint", ratio=2), r"operator\.ratio: expected a number in \(0\.0, 1\.0\], got 2\.0"),
    (with_("operator", task="cs", ratio=0.9), r"operator\.ratio: expected a number in \[0\.01, 0\.5\], got 0\.9"),
    (with_("operator", task="mri", mask="box"), r"operator\.mask: expected one of 'radial', 'cartesian', got 'box'"),
    (with_("operator", task="ct", angles=0), r"operator\.angles: expected an int >= 1, got 0"),
    (with_("operator", task="deblur", blur_sigma="2"), r'operator\.blur_sigma: expected a number > 0, got "2" \(str\)'),
    # cross-field checks
    (with_("training", milestones=[5, 1000]), r"training\.milestones\[1\]: expected an int in \(0, steps=1000\), "
                                              r"got 1000"),
    (with_("training", milestones=[0]), r"training\.milestones\[0\]: expected an int in \(0, steps=1000\), got 0"),
    (with_("training", milestones=[50, 20]), r"training\.milestones: expected strictly increasing ints, "
                                             r"got \[50, 20\]"),
    (with_("training", schedule="multistep"), r"training\.milestones: expected at least one milestone"),
    (with_("training", schedule="step"), r"training\.step_size: expected an int >= 1 for schedule 'step', got 0"),
    (with_("data", size=28, patch_size=32), r"data\.patch_size: expected an int <= size \(28\), got 32"),
    (with_("data", patches_per_image=4), r"data\.patches_per_image: expected 0 when patch_size = 0"),
    (with_("data", source="image_folder"), r"data: missing required key 'path' \(source 'image_folder' needs it\)"),
    (with_("data", source="idx", path=""), r"data\.path: expected a non-empty path for source 'idx', got \"\""),
    (with_("data", source="skimage"), r"data: missing required key 'names' \(source 'skimage' needs it\)"),
    (with_("data", source="skimage", names=["cofee"]), r"data\.names\[0\]: expected one of .*got 'cofee'; did you "
                                                      r"mean 'coffee'\?"),
    (with_("data", source="ellipses", count=0), r"data\.count: expected an int >= 1 for source 'ellipses', got 0"),
    (with_("data", count=5), r"data\.count: only used with source 'ellipses', not 'mnist5k'"),
    (with_("data", labels_path="l.idx"), r"data\.labels_path: only used with source 'idx', not 'mnist5k'"),
    (with_("data", train="training"), r"data\.train: expected one of 'train', 'val', 'test', got 'training'; did "
                                      r"you mean 'train'\?"),
]


@pytest.mark.parametrize("raw,pattern", ERRORS, ids=[p[:40] for _, p in ERRORS])
def test_errors(raw, pattern):
    with pytest.raises(ConfigError, match="^(" + pattern + ")") as e:
        load_config(raw)
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value)
    assert str(e.value).startswith(e.value.key + ": ")


class TestTypes:
    @pytest.mark.parametrize("section,key", [("training", "steps"), ("", "seed"), ("data", "size"),
                                             ("evaluation", "max_test_images"), ("operator", "box_size")])
    def test_bool_is_not_an_int(self, section, key):
        raw = with_(section, **{key: True})
        if section == "operator":
            raw["operator"]["task"] = "inpaint"
        with pytest.raises(ConfigError, match=rf"{key}: expected an int.*, got true \(bool\)"):
            load_config(raw)

    def test_bool_is_not_a_number(self):
        with pytest.raises(ConfigError, match=r"training\.lr: expected a number > 0, got true \(bool\)"):
            load_config(with_("training", lr=True))

    def test_int_accepted_as_float(self):
        cfg = load_config(with_("training", lr=1, weight_decay=0, gamma=1, grad_clip=2, lr_groups={"a": 3}))
        t = cfg.training
        assert [type(x) for x in (t.lr, t.weight_decay, t.gamma, t.grad_clip, t.lr_groups["a"])] == [float] * 5
        assert (t.lr, t.gamma, t.grad_clip) == (1.0, 1.0, 2.0)
        op = load_config(with_("operator", task="deblur", noise=0, blur_sigma=3)).operator
        assert (op.noise, op.options["blur_sigma"]) == (0.0, 3.0) and type(op.options["blur_sigma"]) is float

    def test_tuples_accepted_from_dicts(self):
        cfg = load_config(with_("evaluation", metrics=("mse",)) | {"model": {"name": "x", "options": {"w": (1, 2)}}})
        assert cfg.evaluation.metrics == ("mse",) and cfg.model.options == {"w": [1, 2]}
        assert load_config(config_to_dict(cfg)) == cfg


class TestOverrides:
    def test_values(self):
        cfg = load_config(
            with_("data", source="skimage", names=["camera"]),
            overrides=[
                "training.steps=50",
                "model.options.depth=4",
                'data.names=["coffee", "chelsea"]',
                "training.device=cuda:1",  # bare word -> string
                "training.schedule = cosine",
                'training.lr_groups."layers.0" = 1e-2',
                "seed=5",
                "training.loss=test-free-options",
                "training.loss_options={beta = 2}",
            ],
        )
        assert cfg.training.steps == 50 and cfg.model.options == {"depth": 4} and cfg.seed == 5
        assert cfg.data.names == ("coffee", "chelsea") and cfg.training.device == "cuda:1"
        assert cfg.training.schedule == "cosine" and cfg.training.lr_groups == {"layers.0": 1e-2}
        assert cfg.training.loss_options == {"beta": 2}

    def test_later_wins_and_validation_applies(self):
        assert load_config(MINIMAL, overrides=["training.steps=5", "training.steps=6"]).training.steps == 6
        with pytest.raises(ConfigError, match=r"^training\.stpes: unknown key; did you mean 'steps'\?"):
            load_config(MINIMAL, overrides=["training.stpes=5"])
        with pytest.raises(ConfigError, match=r'^training\.steps: expected an int >= 0, got "fifty" \(str\)'):
            load_config(MINIMAL, overrides=["training.steps=fifty"])  # bare word -> str -> type error
        with pytest.raises(ConfigError, match=r"^override 'training\.steps=5x': .*line 1"):
            load_config(MINIMAL, overrides=["training.steps=5x"])  # not TOML, not a bare word

    @pytest.mark.parametrize("text,pattern", [
        ("training.steps", r"override 'training\.steps': expected 'section\.key=value'"),
        ("=5", r"override '=5': expected 'section\.key=value'"),
        ("training.steps=", r"override 'training\.steps=': expected 'section\.key=value'"),
        ("training..steps=5", r"override 'training\.\.steps=5': .*line 1"),
        ("data.names=[1, ", r"override 'data\.names=\[1, ': .*(end of document|line 1)"),
        ('training.device="cpu', r"override 'training\.device=\"cpu': "),
        ("training.steps=5\nseed=1", r"override 'training\.steps=5\\nseed=1': expected one line"),
        ("name.x=1", r"override 'name\.x=1': name is not a table"),
    ])
    def test_bad_syntax(self, text, pattern):
        with pytest.raises(ConfigError, match="^" + pattern) as e:
            load_config(MINIMAL, overrides=[text])
        assert "\n" not in str(e.value)


class TestDump:
    def test_strings_and_free_form_values(self, tmp_path):
        tricky = 'quote " back \\ tab \t nl \n cr \r bell \x07 del \x7f é ✓'
        options = {"a b": 1, "x.y": {"z": [1.5, -0.0, float("inf")]}, "empty": {},
                   "t": datetime.datetime(2024, 5, 6, 7, 8, 9), "list": [[1, 2], ["a"], [{"k": "v"}]],
                   "big": 10**15, "tiny": 1e-300}
        raw = with_("", description=tricky) | {"model": {"name": "m", "options": options}}
        cfg = load_config(raw)
        text = dump_toml(cfg)
        assert all(ord(c) >= 0x20 or c in "\n\t" for c in text) and "\x7f" not in text  # TOML allows a raw tab
        assert loads_config(text) == cfg
        opts = toml.loads(text)["model"]["options"]
        assert opts["a b"] == 1 and opts["x.y"]["z"][2] == float("inf") and opts["empty"] == {}

    def test_full_dump_is_complete(self):
        cfg = load_config(MINIMAL)
        parsed = toml.loads(dump_toml(cfg))
        assert parsed == config_to_dict(cfg)
        assert set(parsed["training"]) == set(TrainingConfig.model_fields)

    def test_toml_value_rejects_objects(self):
        with pytest.raises(TypeError, match="not a TOML value"):
            _validate.toml_value(object())


def test_an_evaluation_only_override_needs_no_schedule_changes(tmp_path):
    """``training.steps = 0`` on a training spec: the schedule keys (warm-up, milestones) are not checked against 0."""
    from proxlab.experiments.runner import find_experiment

    path = find_experiment("lpn-mnist")  # multistep, milestones = [2000], warm-up none
    cfg = load_config(path, overrides=["training.steps=0", "training.init=zoo:lpn-mnist"])
    assert cfg.resolved_stages[0].steps == 0
    with pytest.raises(ConfigError, match=r"training.milestones\[0\]: expected an int in \(0, steps=10\), got 2000"):
        load_config(path, overrides=["training.steps=10"])
    glow = find_experiment("glow-mnist")  # warm-up 200
    assert load_config(glow, overrides=["training.steps=0", f"training.init={tmp_path / 'w.safetensors'}"])
    short = load_config(glow, overrides=["training.steps=100"])  # the warm-up is clipped (and the run's log says so)
    assert short.resolved_stages[-1].warmup_steps == 10 and "clipped to 10 steps" in short.resolved_stages[-1]._notes[0]
