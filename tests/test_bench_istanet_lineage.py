"""benchmarks/istanet_lineage.py lays chained training rounds end to end: each round starts at the step its
predecessor kept, and a kept step that is not a scored snapshot is refused."""

from __future__ import annotations

import json

import pytest


def _curve(path, init, psnrs, released=32.44):
    rows = [{"step": 250 * i, "set11_psnr": p, "set11_ssim": 0.9} for i, p in enumerate(psnrs)]
    path.write_text(json.dumps({"init": init, "released_set11": released, "rows": rows}))
    return path


def test_rounds_start_at_the_kept_step_of_the_one_before(tmp_path, load_benchmark, capsys):
    pytest.importorskip("matplotlib")
    lin = load_benchmark("istanet_lineage")
    a = _curve(tmp_path / "a.json", "zoo:start", [31.0, 31.2, 31.3, 31.4])
    b = _curve(tmp_path / "b.json", "zoo:a", [31.2, 31.5, 31.6])
    c = _curve(tmp_path / "c.json", "zoo:b", [31.5, 31.7])
    out, fig = tmp_path / "out", tmp_path / "fig.png"
    assert lin.main(["--chain", "net", "32.2", f"{a}@250", f"{b}@500", str(c), "--out", str(out),
                     "--figure", str(fig)]) == 0
    chain = json.loads((out / "istanet_lineage.json").read_text())["chains"][0]
    assert [r["offset"] for r in chain["rounds"]] == [0, 250, 750]
    assert [q["x"] for q in chain["rounds"][2]["points"]] == [750, 1000]
    assert chain["rounds"][1]["kept"] == 500 and chain["rounds"][2]["kept"] is None
    assert chain["goal"] == 32.2 and chain["released"] == 32.44
    md = (out / "istanet_lineage.md").read_text()
    assert "| net | 2 (b.json) | 250 | 500 | 500 | 31.20 | 31.60 | 31.60 | 32.2 | 32.44 |" in md
    assert fig.stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


def test_a_kept_step_must_be_a_snapshot_and_every_round_but_the_last_needs_one(tmp_path, load_benchmark):
    lin = load_benchmark("istanet_lineage")
    a = _curve(tmp_path / "a.json", "zoo:start", [31.0, 31.2])
    b = _curve(tmp_path / "b.json", "zoo:a", [31.2, 31.5])
    with pytest.raises(SystemExit, match="step 300 is not a scored snapshot"):
        lin.chain("net", 32.2, [f"{a}@300", str(b)])
    with pytest.raises(SystemExit, match="for every round but the last"):
        lin.chain("net", 32.2, [str(a), str(b)])
    with pytest.raises(SystemExit, match="the goal in dB"):
        lin.main(["--chain", "net", "high", str(a)])
