"""The command line: a real run end to end, and one-line errors with exit code 2 for bad input."""

import json
import subprocess
import sys

import pytest

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
                 "--iters", "10", "--threads", "1", "--no-progress"])
    assert code == 0
    data = json.loads((tmp_path / "results.json").read_text())
    rows = {(r["task"], r["method"]): r for r in data["results"]}
    assert set(rows) == {("denoise", "init"), ("denoise", "fista-tv"), ("mri", "init"), ("mri", "fista-tv")}
    assert rows[("denoise", "fista-tv")]["psnr"] > rows[("denoise", "init")]["psnr"]
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert "| task |" in capsys.readouterr().out


def test_console_script_runs_as_module():
    r = subprocess.run([sys.executable, "-m", "proxlab.cli.main", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("proxlab ")
