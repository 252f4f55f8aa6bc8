"""Smoke test of benchmarks/istanet_learning_curve.py on a two-step run made here (photo folder and Set11 stand-ins
written by the test): the start weights are scored as step 0, each snapshot once, and a rerun reuses the scores."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest


def _write_images(folder: Path, names: list[str], size: int, suffix: str, seed: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i, name in enumerate(names):
        smooth = 0.5 + 0.4 * np.sin(2 * np.pi * (i + 1) * xx) * np.cos(2 * np.pi * yy)
        img = np.clip(smooth + 0.05 * rng.standard_normal((size, size)), 0, 1)
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / f"{name}{suffix}")


def test_curve_scores_start_and_snapshots_and_reuses_them(tmp_path, capsys, load_benchmark):
    pytest.importorskip("PIL")
    pytest.importorskip("matplotlib")
    from proxlab.data.files import SET11_NAMES
    from proxlab.experiments.runner import run_experiment

    photos, set11 = tmp_path / "photos", tmp_path / "set11"
    _write_images(photos / "train", ["a", "b"], 99, ".png", 0)
    _write_images(photos / "val", ["v"], 66, ".png", 1)
    _write_images(set11, list(SET11_NAMES), 66, ".tif", 2)
    run = tmp_path / "run"

    def train(seed: int) -> None:
        run_experiment("istanet-plus-cs25", out=run, progress=False, echo=False, overrides=[
            f"data.options.images={photos}", "data.options.qinit_blocks=600", "data.options.val_blocks=8",
            "training.init=zoo:istanet-plus-cs25", "training.steps=2", "training.batch_size=4", f"seed={seed}",
            "training.snapshot_every=1", "training.val_every=1", "training.precision=fp32", "evaluation.protocols=[]"])

    train(0)
    bench = load_benchmark("istanet_learning_curve")
    argv = [str(run), "--set11", str(set11), "--out", str(tmp_path / "res"), "--name", "t"]
    assert bench.main(argv) in (0, None)
    data = json.loads((tmp_path / "res" / "istanet_curve_t.json").read_text())
    rows = data["rows"]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert all(math.isfinite(r["set11_psnr"]) and 0 < r["set11_ssim"] <= 1 for r in rows)
    assert rows[0]["val_psnr"] is None and all(math.isfinite(r["val_psnr"]) for r in rows[1:])
    capsys.readouterr()
    assert bench.main(argv) in (0, None)
    again = capsys.readouterr().out
    assert "Set11" not in again and "wrote" in again  # every score reused, nothing re-evaluated
    assert json.loads((tmp_path / "res" / "istanet_curve_t.json").read_text())["rows"] == rows
    assert (tmp_path / "res" / "istanet_curve_t.md").is_file() and (tmp_path / "res" / "istanet_curve_t.png").is_file()
    _check_val_scales(run, tmp_path / "res", load_benchmark)

    # a new run in the same folder with another seed: same file names and sizes, but other weights and another
    # random Φ (no operator.phi here), so every row, the start included, is scored afresh; a torn log line is skipped
    import shutil

    shutil.rmtree(run)
    train(1)
    # the old curve scored the old snapshots: pairing its Set11 with the new run's validation is refused
    with pytest.raises(SystemExit):
        load_benchmark("istanet_val_scales").main([str(run), "--curve", str(tmp_path / "res" / "istanet_curve_t.json"),
                                                   "--blocks", "4", "--out", str(tmp_path / "res2")])
    assert "scored other files than" in capsys.readouterr().err
    with open(run / "checkpoints" / "log.jsonl", "a") as f:
        f.write('{"step": 3, "val_ps')
    assert bench.main(argv) in (0, None)
    out = capsys.readouterr().out
    assert all(f"step       {k}:" in out for k in (0, 1, 2))
    new = json.loads((tmp_path / "res" / "istanet_curve_t.json").read_text())["rows"]
    assert [r["step"] for r in new] == [0, 1, 2]
    assert all(a["sha256"] != b["sha256"] and a["set11_psnr"] != b["set11_psnr"] for a, b in zip(new, rows))



def _check_val_scales(run: Path, res: Path, load_benchmark) -> None:
    """benchmarks/istanet_val_scales.py on the same run: one row per snapshot (the start included) with a validation
    PSNR per scale, Set11 read from the curve JSON, and per scale a rank correlation and the step it would keep."""
    bench = load_benchmark("istanet_val_scales")
    curve = res / "istanet_curve_t.json"
    assert bench.main([str(run), "--curve", str(curve), "--scales", "1", "0.5", "--blocks", "16", "--out", str(res),
                       "--name", "t"]) in (0, None)
    out = json.loads((res / "istanet_valscales_t.json").read_text())
    rows = out["rows"]
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert [r["set11_psnr"] for r in rows] == [r["set11_psnr"] for r in json.loads(curve.read_text())["rows"]]
    assert all(math.isfinite(r["val_1"]) and math.isfinite(r["val_0.5"]) for r in rows)
    assert rows[0]["val_1"] != rows[-1]["val_1"]  # each snapshot is scored with its own weights
    for s in ("1", "0.5"):
        v = out["per_scale"][s]
        assert -1 <= v["spearman_vs_set11"] <= 1
        assert v["keeps_step"] == max(rows[1:], key=lambda r: r[f"val_{s}"])["step"]  # never the start
        assert v["keeps_step"] in (1, 2)
        assert v["range_db"] == max(r[f"val_{s}"] for r in rows) - min(r[f"val_{s}"] for r in rows)
    assert out["set11_best_step"] == max(rows, key=lambda r: r["set11_psnr"])["step"]
    assert (res / "istanet_valscales_t.md").read_text().count("\n| ") >= 5
    with pytest.raises(SystemExit):
        bench.main([str(run), "--curve", str(curve), "--blocks", "0", "--out", str(res)])
