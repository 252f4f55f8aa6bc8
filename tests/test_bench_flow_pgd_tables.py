"""benchmarks/flow_pgd_tables.py merges the flow-pgd-fashion tables of runs trained in separate folders: a sweep
folder's section and one-run summaries land in one set of Tables I–IV, and a cell given twice is refused."""

from __future__ import annotations

import json

import pytest


def _sweep(folder, psnr=25.0):
    folder.mkdir()
    cell = lambda p: {"psnr": p, "ssim": 0.8}  # noqa: E731
    tables = {"I": {"unet": {"inpaint": cell(psnr)}, "admm-tv": {"inpaint": cell(20.0), "denoise": cell(21.3)}},
              "II": {}, "III": {"unet": {"inpaint": cell(psnr - 1)}}, "IV": {"unet": {"inpaint": cell(psnr - 8)}}}
    metrics = {"flow_unrolling_tables": tables, "training": {"runs": {"unet-inpaint": {"train_seconds": 400.0}}}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def _summary(path, psnr=19.6):
    cell = lambda p: {"psnr": p, "ssim": 0.6}  # noqa: E731
    path.write_text(json.dumps({"train_seconds": 5000.0, "test": cell(psnr), "admm_tv": {"psnr": 21.3, "ssim": 0.8},
                                "ood_noise_0.25": cell(18.3), "ood_images_mnist": cell(18.0)}))
    return path


def test_a_sweep_folder_and_a_summary_merge_into_one_set_of_tables(tmp_path, load_benchmark):
    tables = load_benchmark("flow_pgd_tables")
    sweep = _sweep(tmp_path / "sweep")
    glow = _summary(tmp_path / "flow-pgd-fashion-1.0-glow-denoise.json")
    pnp = _summary(tmp_path / "flow-pgd-fashion-1.0-pnp-glow-deblur.json", psnr=16.0)
    tenth = tmp_path / "tenth.json"
    tenth.write_text(json.dumps({"tables": {"I": {"unet": {"inpaint": {"psnr": 27.49, "ssim": 0.88}}}}}))
    out = tmp_path / "out"
    assert tables.main([str(sweep), str(glow), str(pnp), "--tenth", str(tenth), "--name", "t", "--out", str(out)]) == 0
    got = json.loads((out / "flow_pgd_tables_t.json").read_text())
    t = got["tables"]
    assert t["I"]["unet"]["inpaint"]["psnr"] == 25.0 and t["I"]["glow"]["denoise"]["psnr"] == 19.6
    assert t["II"]["pnp-glow"]["deblur"]["psnr"] == 16.0 and "pnp-glow" not in t["I"]
    assert t["II"]["glow"] == t["I"]["glow"]  # flow-PGD's row of Table II is its Table I row
    assert t["III"]["glow"]["denoise"]["psnr"] == 18.3 and t["IV"]["glow"]["denoise"]["psnr"] == 18.0
    assert "pnp-glow" not in t["III"]  # PnP-GLOW has no out-of-distribution rows
    assert got["train_seconds"] == {"unet-inpaint": 400.0, "glow-denoise": 5000.0, "pnp-glow-deblur": 5000.0}
    md = (out / "flow_pgd_tables_t.md").read_text()
    assert "| unet |  (paper 28.18) | 25.00 / 0.800 (tenth 27.49; paper 35.16) |" in md
    assert "- denoise: admm-tv 21.30 > glow 19.60" in md


def test_a_cell_given_twice_and_a_misnamed_summary_are_refused(tmp_path, load_benchmark):
    tables = load_benchmark("flow_pgd_tables")
    a, b = _sweep(tmp_path / "a"), _sweep(tmp_path / "b", psnr=26.0)
    with pytest.raises(SystemExit, match="Table I, unet, inpaint: given by both"):
        tables.merge([a, b])
    odd = _summary(tmp_path / "glow.json")
    with pytest.raises(SystemExit, match="flow-pgd-fashion-1.0-METHOD-TASK.json"):
        tables.merge([odd])
    with pytest.raises(SystemExit, match="expected a sweep folder with metrics.json"):
        tables.merge([tmp_path])
