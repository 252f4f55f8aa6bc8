"""``proxlab bench quality``: every classic method and every applicable zoo model per task and image set, in a
markdown table, JSON and an HTML page; a model trained for another setting is marked, not scored."""

import json

from proxlab.cli import bench
from proxlab.cli.main import main


def test_quick_quality_bench_tables_json_and_page(tmp_path, monkeypatch, capsys):
    import proxlab.zoo

    monkeypatch.setattr(proxlab.zoo, "list_zoo", lambda: ["dncnn-mnist-s0.1", "pgd-dncnn-mnist-deblur",
                                                          "lpn-laplacian", "glow-mnist", "istanet-plus-cs25"])
    monkeypatch.setattr(bench, "QUALITY_SETS", (("photos", ("denoise", "cs-own"), (1, 1)),
                                                ("MNIST digits", ("denoise", "deblur"), (2, 2)),
                                                (bench.FLOW_SET, ("denoise",), (2, 2))))
    from proxlab.methods import CLASSIC_METHODS

    monkeypatch.setattr("proxlab.methods.CLASSIC_METHODS",
                        {k: v for k, v in CLASSIC_METHODS.items() if k in ("init", "fista-tv", "pnp-admm")})
    assert main(["bench", "quality", "--quick", "--threads", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    rows = json.loads((tmp_path / "quality.json").read_text())["results"]
    scored = {(r["set"], r["task"], r["method"]) for r in rows if "psnr" in r}
    pnp = "pnp-admm + zoo:dncnn-mnist-s0.1 (prior trained for denoise σ=0.1)"
    assert ("MNIST digits", "deblur σ_blur=1.5 σ=0.01", pnp) in scored  # a prior serves every task through PnP
    assert ("photos", "denoise σ=0.1", "fista-tv") in scored and ("photos", "denoise σ=0.1", pnp) not in scored
    other = [r for r in rows if r.get("other_setting")]
    assert [r["method"] for r in other] == ["zoo:pgd-dncnn-mnist-deblur (trained for deblur σ_blur=1.0 σ=0.02)"]
    md = (tmp_path / "quality.md").read_text()
    assert "| zoo:pgd-dncnn-mnist-deblur (trained for deblur σ_blur=1.0 σ=0.02) |  | other setting |" in md
    assert "lpn-laplacian" not in md  # a 1-D prior is not an image prior: not on the board
    flows = {r["method"] for r in rows if r["set"] == bench.FLOW_SET and "psnr" in r}
    assert flows >= {"pnp-admm + zoo:glow-mnist (flow trained on MNIST)", "fista-tv"}
    assert not any("glow" in r["method"] for r in rows if r["set"] != bench.FLOW_SET)
    own = [r for r in rows if r["task"] == "block CS ratio=0.25 σ=0.0 (the networks' Φ)" and "psnr" in r]
    assert {"fista-tv", "zoo:istanet-plus-cs25 (trained for block CS ratio=0.2498 σ=0.0)"} <= \
        {r["method"] for r in own}
    page = (tmp_path / "quality.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 and "<h2>MNIST digits</h2>" in page
    assert "total" in capsys.readouterr().out
