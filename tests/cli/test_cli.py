"""The command line: a real run end to end, and one-line errors with exit code 2 for bad input."""

import json
import subprocess
import sys

import pytest
import torch

from proxlab.cli.main import main


def test_reconstruct_writes_png_and_prints_scores(tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "rec.png"
    code = main(["reconstruct", "--task", "deblur", "--blur-sigma", "1.0", "--method", "fista-tv", "--iters", "20",
                 "--size", "64", "--threads", "1", "skimage:camera", str(out)])
    assert code == 0
    line = capsys.readouterr().out
    assert "PSNR" in line and "SSIM" in line
    psnr = float(line.split("PSNR")[1].split("dB")[0])
    assert psnr > 22  # 64x64 camera, blur 1.0, noise 0.01: TV deblurring does far better than the blurred input
    img = Image.open(out)
    assert img.size == (64, 64) and img.mode == "L"


def test_reconstruct_from_file(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40)) * 255).astype("uint8")).save(src)
    assert main(["reconstruct", "--task", "denoise", "--method", "init", "--threads", "1", str(src), str(tmp_path / "o.png")]) == 0
    assert (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["reconstruct", "--task", "denoize", "--method", "init", "skimage:camera", "o.png"], "did you mean 'denoise'"),
        (["reconstruct", "--task", "deblur", "--method", "tv", "skimage:camera", "o.png"], "method must be one of"),
        (["reconstruct", "--task", "deblur", "--blur-sigma", "-1", "--method", "init", "skimage:camera", "o.png"],
         "blur_sigma must be > 0"),
        (["reconstruct", "--task", "cs", "--ratio", "0.9", "--method", "init", "skimage:camera", "o.png"], "ratio must be in"),
        (["reconstruct", "--task", "deblur", "--angles", "30", "--method", "init", "skimage:camera", "o.png"],
         "--angles does not apply to task 'deblur'"),
        (["reconstruct", "--task", "denoise", "--method", "init", "missing.png", "o.png"], "image file not found"),
        (["reconstruct", "--task", "denoise", "--method", "init", "skimage:camra", "o.png"], "did you mean 'camera'"),
        (["reconstruct", "--task", "denoise", "--method", "init", "skimage:camera", "o.jpg"], "output must be a .png"),
        (["reconstruct", "--task", "denoise", "--noise", "abc", "--method", "init", "skimage:camera", "o.png"],
         "invalid float value"),
        (["demo", "--tasks", "deblur,foo"], "task must be one of"),
        (["demo", "--size", "8"], "size must be >= 33"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_one_line_exit_2(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        sys.exit(main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unreadable_image_file(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    assert main(["reconstruct", "--task", "denoise", "--method", "init", str(bad), str(tmp_path / "o.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_demo_subset_writes_table_json_and_figure(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--tasks", "denoise,mri", "--methods", "init,fista-tv", "--size", "48",
                 "--iters", "10", "--threads", "1", "--no-progress", "--no-zoo"])
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    rows = {(r["task"], r["method"]): r for r in data["results"]}
    assert set(rows) == {("denoise", "init"), ("denoise", "fista-tv"), ("mri", "init"), ("mri", "fista-tv")}
    assert rows[("denoise", "fista-tv")]["psnr"] > rows[("denoise", "init")]["psnr"]
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert "| task |" in capsys.readouterr().out


def test_demo_with_the_whole_zoo_one_row_per_setting(tmp_path, capsys):
    from proxlab.cli.demo import figure_rows
    from proxlab.reconstruction import is_density_model
    from proxlab.zoo import list_zoo, zoo_info

    assert main(["demo", "--out", str(tmp_path), "--tasks", "denoise,deblur,cs", "--methods", "init,fista-tv",
                 "--size", "40", "--iters", "5", "--mnist-images", "2", "--threads", "1", "--no-progress"]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["results"]
    zoo_used = {r["method"] for r in rows if r["method"].startswith("zoo:")}
    flows = {f"zoo:{n}" for n in list_zoo() if is_density_model(zoo_info(n))}
    assert flows and not zoo_used & flows  # flows are priors, not reconstruction methods: left out, not crashing
    assert {"zoo:dncnn-mnist-s0.1", "zoo:lpn-mnist", "zoo:istanet-plus-cs25"} <= zoo_used
    by_task = {}
    for r in rows:
        by_task.setdefault(r["task"], set()).add(r["method"])
    assert {"zoo:dncnn-mnist-s0.1", "zoo:lpn-mnist"} <= by_task["denoise (MNIST)"]  # side by side in one row
    md = (tmp_path / "results.md").read_text()
    header = md.splitlines()[0]
    assert header == "| task | init | fista-tv | learned |" and "zoo:" not in header
    assert "tikhonov" not in md  # a method not run has no column
    panels = {t: {m: torch.zeros(1, 1, 4, 4) for m in ("truth", "measurement", *ms)} for t, ms in by_task.items()}
    fig = dict(figure_rows(rows, panels))
    assert [c for c, _ in fig["denoise"]][:2] == ["truth", "measurement"]
    assert fig["denoise"][2][0].startswith("best classic: ") and len(fig["denoise"]) == 3
    assert any(c.startswith("zoo:lpn-mnist ") and c.endswith(" dB") for c, _ in fig["denoise (MNIST)"])
    capsys.readouterr()
    assert main(["reconstruct", "--task", "denoise", "--method", "zoo:glow-mnist", "skimage:camera",
                 str(tmp_path / "o.png")]) == 2
    assert "'glow-mnist' is a normalizing flow" in capsys.readouterr().err and not (tmp_path / "o.png").exists()


def test_console_script_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "proxlab.cli.main", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("proxlab ")


TINY_RUN = """
name = "tiny-cli"
[data]
source = "mnist5k"
[operator]
task = "denoise"
noise = 0.1
[model]
name = "dncnn"
[model.options]
depth = 3
features = 4
[training]
steps = 6
batch_size = 16
val_every = 3
checkpoint_every = 3
[evaluation]
baselines = ["init"]
max_test_images = 4
"""


def test_run_list_and_tiny_run_then_zoo_export(tmp_path, monkeypatch, capsys):
    import proxlab.zoo as zoo

    assert main(["run", "--list"]) == 0
    assert "dncnn-mnist-s0.1" in capsys.readouterr().out
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY_RUN)
    assert main(["run", str(cfg), "--out", str(tmp_path / "run"), "--threads", "1", "--no-progress"]) == 0
    assert (tmp_path / "run" / "report.html").is_file()
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    assert main(["zoo", "export", str(tmp_path / "run"), "tiny"]) == 0
    capsys.readouterr()
    before = (tmp_path / "zoo" / "tiny.json").read_text()
    assert main(["zoo", "export", str(tmp_path / "run"), "tiny"]) == 2  # an existing entry is not replaced silently
    err = capsys.readouterr().err
    assert "zoo entry 'tiny' exists already" in err and "--force" in err
    assert (tmp_path / "zoo" / "tiny.json").read_text() == before
    assert main(["zoo", "export", str(tmp_path / "run"), "tiny", "--force"]) == 0
    capsys.readouterr()
    assert main(["zoo"]) == 0
    listing = capsys.readouterr().out
    assert "tiny" in listing and "denoise" in listing and "proxlab run tiny-cli" in listing
    out = tmp_path / "z.png"
    assert main(["reconstruct", "--task", "denoise", "--method", "zoo:tiny", "--size", "28", "--threads", "1",
                 "skimage:camera", str(out)]) == 0
    assert out.is_file()
    assert main(["reconstruct", "--task", "deblur", "--method", "zoo:tiny", "skimage:camera", str(out)]) == 2
    assert "was trained for task 'denoise', not 'deblur'" in capsys.readouterr().err
    code = main(["demo", "--out", str(tmp_path / "demo"), "--tasks", "denoise", "--methods", "init", "--size", "40",
                 "--mnist-images", "4", "--threads", "1", "--no-progress"])
    assert code == 0
    rows = json.loads((tmp_path / "demo" / "results.json").read_text())["results"]
    assert {r["method"] for r in rows} == {"init", "zoo:tiny"}


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["run"], "give an experiment name or file"),
        (["run", "no-such-experiment"], "experiment must be one of"),
        (["run", "missing.toml"], "experiment file not found"),
        (["run", "dncnn-mnist-s0.1", "--set", "training.stpes=3"], "did you mean 'steps'"),
        (["run", "--resume", "nowhere"], "cannot resume"),
        (["zoo", "export"], "usage: proxlab zoo export RUN_DIR NAME"),
        (["reconstruct", "--task", "denoise", "--method", "zoo:nope", "skimage:camera", "o.png"], "zoo model must be one of"),
    ],
)
def test_run_and_zoo_bad_input(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_prior_command_prints_R_and_residual(tmp_path, capsys):
    from PIL import Image

    from proxlab.data import mnist5k

    digit = (mnist5k("test")[0][0, 0] * 255).round().byte().numpy()
    Image.fromarray(digit).save(tmp_path / "d.png")
    assert main(["prior", "--model", "zoo:lpn-mnist", "--threads", "1", str(tmp_path / "d.png"), "skimage:camera"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    r_digit, res_digit = (float(v) for v in lines[1].split()[-2:])
    r_camera = float(lines[2].split()[-2])
    assert res_digit < 1e-3 and r_digit < r_camera  # a digit is more likely under the MNIST prior than a photo
    assert main(["prior", "--model", "zoo:dncnn-mnist-s0.1", str(tmp_path / "d.png")]) == 2
    assert "needs prior.regularizer(x); DnCNN does not have it" in capsys.readouterr().err
    assert main(["prior", "--model", "lpn-mnist", str(tmp_path / "d.png")]) == 2
    assert "--model must be zoo:NAME" in capsys.readouterr().err


def test_prior_command_prints_bits_per_dim_of_a_flow(tmp_path, capsys, monkeypatch):
    """A zoo flow (stood in for by a small GLOW; the command reads the padding from its config) prints bits/dim."""
    from PIL import Image

    import proxlab.zoo
    from proxlab.data import mnist5k
    from proxlab.priors.flow import Glow

    flow = Glow(1, levels=2, steps=1, hidden=8, image_size=32).eval()
    monkeypatch.setattr(proxlab.zoo, "load_zoo_model", lambda name: (flow, {"config": {"data": {"pad": 2}}}))
    digit = (mnist5k("test")[0][0, 0] * 255).round().byte().numpy()
    Image.fromarray(digit).save(tmp_path / "d.png")
    assert main(["prior", "--model", "zoo:glow-test", "--threads", "1", str(tmp_path / "d.png")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "bits/dim" in lines[0] and "bits/original pixel (28×28)" in lines[0]
    bpd, nll, per_pixel = (float(v) for v in lines[1].split()[-3:])
    assert per_pixel == pytest.approx(bpd * 1024 / 784, rel=1e-3)
    assert nll == pytest.approx((bpd - 8.0) * 1024 * 0.6931471805599453, rel=1e-3)
    x = torch.nn.functional.pad(mnist5k("test")[0][:1], (2, 2, 2, 2))
    from proxlab.priors.flow import dequantize

    with torch.no_grad():
        expected = float(flow.bits_per_dim(dequantize(x, torch.Generator().manual_seed(0)), dequantize=False)[0])
    assert bpd == pytest.approx(expected, abs=2e-4)


def test_reconstruct_with_pnp_and_a_zoo_prior(tmp_path, capsys):
    from PIL import Image

    from proxlab.data import mnist5k

    digit = (mnist5k("test")[0][0, 0] * 255).round().byte().numpy()
    Image.fromarray(digit).save(tmp_path / "d.png")
    argv = ["reconstruct", "--task", "deblur", "--blur-sigma", "1", "--noise", "0.02", "--threads", "1"]
    assert main(argv + ["--method", "pnp-admm", "--prior", "zoo:lpn-mnist", str(tmp_path / "d.png"), str(tmp_path / "o.png")]) == 0
    pnp = float(capsys.readouterr().out.split("PSNR")[1].split("dB")[0])
    assert main(argv + ["--method", "init", str(tmp_path / "d.png"), str(tmp_path / "o.png")]) == 0
    blurred = float(capsys.readouterr().out.split("PSNR")[1].split("dB")[0])
    assert pnp > blurred + 3
    assert main(argv + ["--method", "pnp-admm", str(tmp_path / "d.png"), str(tmp_path / "o.png")]) == 2
    assert "needs --prior zoo:NAME" in capsys.readouterr().err
    assert main(argv + ["--method", "fista-tv", "--prior", "zoo:lpn-mnist", str(tmp_path / "d.png"), str(tmp_path / "o.png")]) == 2
    assert "--prior is only used by pnp-admm and pnp-pgd" in capsys.readouterr().err


def test_reconstruct_with_a_block_cs_zoo_model_uses_its_own_phi(tmp_path, monkeypatch, capsys):
    import proxlab.zoo as zoo
    from proxlab.experiments.export import add_entry
    from proxlab.operators import BlockCompressedSensing
    from proxlab.training import save_model
    from proxlab.unrolled import ISTANet

    torch.manual_seed(0)
    op = BlockCompressedSensing(0.25, seed=5)
    net = ISTANet(BlockCompressedSensing(None, phi=op.phi, qinit=op.phi.T.contiguous()))
    save_model(tmp_path / "w.safetensors", net)
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    add_entry("tiny-ista", tmp_path / "w.safetensors", {
        "model": {"name": "istanet", "options": {"ratio": op.ratio, "plus": True}},
        "task": {"name": "cs", "options": {"ratio": round(op.ratio, 4), "noise": 0.0}},
        "data": {"source": "test"}, "training_command": "-", "test_metrics": {}})
    out = tmp_path / "r.png"
    assert main(["reconstruct", "--task", "cs", "--ratio", "0.25", "--method", "zoo:tiny-ista", "--size", "50",
                 "--threads", "1", "skimage:camera", str(out)]) == 0
    assert out.is_file() and "PSNR" in capsys.readouterr().out
    assert main(["reconstruct", "--task", "cs", "--ratio", "0.1", "--method", "zoo:tiny-ista", "skimage:camera",
                 str(out)]) == 2
    assert "trained at ratio 0.2498" in capsys.readouterr().err
    code = main(["demo", "--out", str(tmp_path / "demo"), "--tasks", "cs", "--methods", "init", "--size", "40",
                 "--threads", "1", "--no-progress"])
    assert code == 0
    rows = json.loads((tmp_path / "demo" / "results.json").read_text())["results"]
    assert {r["task"] for r in rows} == {"cs", "cs (the Φ of zoo:tiny-ista)"}
    zoo_row = next(r for r in rows if r["method"] == "zoo:tiny-ista")
    assert zoo_row["psnr"] > 5


def test_method_help_lists_every_classic_method_and_the_pnp_ones(capsys):
    from proxlab.cli.main import METHOD_NAMES
    from proxlab.methods import CLASSIC_METHODS

    assert tuple(CLASSIC_METHODS) == METHOD_NAMES
    with pytest.raises(SystemExit):
        main(["reconstruct", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(m in text for m in METHOD_NAMES) and "pnp-admm / pnp-pgd take a learned prox with --prior" in text


def test_a_zoo_model_far_from_its_training_images_warns(capsys, tmp_path):
    import warnings

    from proxlab.reconstruction import measure
    from proxlab.tasks import make_task

    with pytest.warns(UserWarning, match=r"zoo:dncnn-mnist-s0\.1 was trained on 28×28 images \(mnist5k\); this input "
                                         r"is 512×512, outside its training domain"):
        measure("zoo:dncnn-mnist-s0.1", torch.rand(1, 1, 512, 512), make_task("denoise"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in its domain: no warning
        measure("zoo:dncnn-mnist-s0.1", torch.rand(1, 1, 28, 28), make_task("denoise"))
    with warnings.catch_warnings():  # as outside pytest: warnings go to stderr, as the command line formats them
        warnings.simplefilter("always")
        warnings.showwarning = lambda m, c, f, n, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(m, c, f, n, line))
        assert main(["reconstruct", "--task", "denoise", "--method", "zoo:dncnn-mnist-s0.1", "--size", "128",
                     "--threads", "1", "skimage:camera", str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err
    assert err.startswith("proxlab: warning: zoo:dncnn-mnist-s0.1 was trained on 28×28") and err.count("\n") == 1


def test_listings_say_what_each_entry_is_and_give_runnable_commands(capsys):
    from proxlab.cli.run import portable_command
    from proxlab.experiments.runner import shipped_experiments

    assert main(["run", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(shipped_experiments())
    row = next(line for line in lines if line.startswith("lista-table1 "))
    assert "LISTA (Gregor & LeCun, ICML 2010), Table 1 protocol" in row
    assert main(["zoo"]) == 0
    listing = capsys.readouterr().out
    assert "shared/data" not in listing and "operator.phi=$DATA/ISTA-Net_sampling_matrix/phi_0_25_1089.mat" in listing
    assert "$DATA: the folder where you keep the authors' released files" in listing
    assert portable_command("proxlab run x --set a=../../shared/data/M/f.mat --set b=/work/shared/data/N/g.mat") == (
        "proxlab run x --set a=$DATA/M/f.mat --set b=$DATA/N/g.mat", True)
    assert portable_command("proxlab run lpn-mnist") == ("proxlab run lpn-mnist", False)
