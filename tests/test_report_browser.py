"""A run's report.html as a person sees it: opened in headless Chromium (Debian's ``chromium``; skipped without it),
with no console error, and every image on the page present and decodable."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from proxlab.experiments.runner import run_experiment

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

TINY = """
name = "tiny-browser"
description = "a tiny run whose report a browser opens"
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
steps = 4
batch_size = 8
val_every = 2
checkpoint_every = 2
[evaluation]
baselines = ["init"]
max_test_images = 3
"""


def page_images(html: str, folder: Path) -> list[Image.Image]:
    """Every ``<img src=...>`` of a page, decoded (data URIs or files beside it); raises if one is missing."""
    images = []
    for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', html):
        if src.startswith("data:image/png;base64,"):
            data = base64.b64decode(src.split(",", 1)[1], validate=True)
        else:
            data = (folder / src).read_bytes()
        img = Image.open(io.BytesIO(data))
        img.load()
        images.append(img)
    return images


def console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def test_page_checks_catch_a_broken_page(tmp_path):
    (tmp_path / "bad.html").write_text('<img src="missing.png">')
    with pytest.raises(FileNotFoundError):
        page_images((tmp_path / "bad.html").read_text(), tmp_path)
    assert console_errors('[1:1:INFO:CONSOLE:1] "Uncaught ReferenceError: f is not defined"\n[1:1:WARNING:x] y') \
        == ['[1:1:INFO:CONSOLE:1] "Uncaught ReferenceError: f is not defined"']


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("browser")
    (d / "tiny.toml").write_text(TINY)
    run_experiment(d / "tiny.toml", out=d / "run", progress=False, echo=False)
    return d / "run" / "report.html"


def test_report_images_are_all_there(report):
    images = page_images(report.read_text(), report.parent)
    assert len(images) >= 2 and all(min(im.size) > 50 for im in images)  # the reconstructions and the training curves


@pytest.fixture(scope="module")
def bench_page(tmp_path_factory):
    """``proxlab bench quality``'s page, from a two-setting run."""
    import proxlab.zoo
    from proxlab.cli import bench
    from proxlab.cli.main import main

    d = tmp_path_factory.mktemp("bench")
    mp = pytest.MonkeyPatch()
    mp.setattr(proxlab.zoo, "list_zoo", lambda: ["dncnn-mnist-s0.1"])
    mp.setattr(bench, "QUALITY_SETS", (("photos", ("denoise",), (1, 1)), ("MNIST digits", ("deblur",), (2, 2))))
    try:
        assert main(["bench", "quality", "--quick", "--threads", "1", "--out", str(d), "--no-progress"]) == 0
    finally:
        mp.undo()
    return d / "quality.html"


def test_bench_page_images_are_all_there(bench_page):
    assert len(page_images(bench_page.read_text(), bench_page.parent)) >= 3  # bar charts and reconstructions


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
@pytest.mark.parametrize("page", ["report", "bench_page"])
def test_pages_open_in_headless_chromium(page, request, tmp_path):
    path = request.getfixturevalue(page)
    shot = tmp_path / "page.png"
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                        f"--screenshot={shot}", "--window-size=1200,1400", path.resolve().as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert console_errors(r.stderr) == []
    img = Image.open(shot).convert("L")
    assert img.size == (1200, 1400)
    lo, hi = img.getextrema()
    assert hi - lo > 100  # a page was drawn: text and figures, not a blank screen
    dark = sum(img.histogram()[:128]) / (img.size[0] * img.size[1])
    assert 0.005 < dark < 0.5
