"""``proxlab bench speed``: every operator, the solvers and the zoo networks get a timed row; DeepInverse's column
is filled when it is importable (here a stand-in module with its physics classes)."""

import json
import sys
import types

import torch

from proxlab.cli.main import main


def _run(tmp_path, monkeypatch, zoo):
    import proxlab.zoo

    monkeypatch.setattr(proxlab.zoo, "list_zoo", lambda: list(zoo))
    assert main(["bench", "speed", "--quick", "--threads", "1", "--size", "40", "--out", str(tmp_path)]) == 0
    return json.loads((tmp_path / "speed.json").read_text())


def test_speed_rows_for_operators_solvers_and_networks(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "deepinv", None)  # not importable
    data = _run(tmp_path, monkeypatch, ["dncnn-mnist-s0.1", "lpn-mnist", "glow-mnist"])
    names = [r["name"] for r in data["rows"]]
    for op in ("Denoising", "Inpainting 50 %", "GaussianBlur σ=1.5", "block CS 25 % (33×33)", "MRI radial 20 %",
               "CT 60 views"):
        assert f"{op}: A" in names and f"{op}: Aᵀ" in names
    assert any(n.startswith("FISTA-TV") for n in names) and any(n.startswith("ADMM-TV") for n in names)
    nets = {r["name"]: r for r in data["rows"] if r["group"] == "network"}
    assert set(nets) == {"zoo:dncnn-mnist-s0.1 (28×28)", "zoo:lpn-mnist (28×28)", "zoo:glow-mnist log_prob (32×32)"}
    assert all(r["seconds"] > 0 and r["images_per_s"] > 0 for r in data["rows"])
    assert 0 < nets["zoo:dncnn-mnist-s0.1 (28×28)"]["conv_fraction"] < 3  # counted convolutions against the machine's
    assert nets["zoo:lpn-mnist (28×28)"]["conv_fraction"] is None  # its prox is a gradient: the counter cannot follow
    assert data["meta"]["conv_flops_per_s"] > 1e8 and data["meta"]["deepinv"] is False
    assert "DeepInverse (not importable here)" in capsys.readouterr().out


def test_vector_and_kspace_networks_get_timed_rows(tmp_path, monkeypatch):
    """The 1-D Laplacian LPN takes vectors and ADMM-Net takes complex k-space through its own mask: both were
    skipped with a shape / dtype error before."""
    monkeypatch.setitem(sys.modules, "deepinv", None)
    data = _run(tmp_path, monkeypatch, ["lpn-laplacian", "admmnet-mri20"])
    nets = {r["name"]: r for r in data["rows"] if r["group"] == "network"}
    assert set(nets) == {"zoo:lpn-laplacian (vectors of 1)", "zoo:admmnet-mri20 (256×256)"}, nets
    assert all("skipped" not in r and r["seconds"] > 0 for r in nets.values())


def test_deepinverse_column_when_it_is_importable(tmp_path, monkeypatch, capsys):
    class Physics:
        def A(self, x):  # noqa: N802
            return x.clone()

        def A_adjoint(self, y):  # noqa: N802
            return y.clone()

    fake = types.ModuleType("deepinv")
    # the keyword signatures of DeepInverse 0.5 (a wrong keyword fails here as it does there)
    fake.physics = types.SimpleNamespace(Denoising=Physics, Inpainting=lambda img_size, mask: Physics(),
                                         BlurFFT=lambda img_size, filter: Physics(),
                                         Tomography=lambda angles, img_width: Physics(),
                                         blur=types.SimpleNamespace(gaussian_blur=lambda sigma: torch.ones(1, 1, 3, 3)))
    monkeypatch.setitem(sys.modules, "deepinv", fake)
    data = _run(tmp_path, monkeypatch, [])
    ratios = {r["name"]: r.get("deepinv_ratio") for r in data["rows"]}
    assert ratios["Denoising: A"] > 0 and ratios["GaussianBlur σ=1.5: Aᵀ"] > 0 and ratios["CT 60 views: Aᵀ"] > 0
    assert ratios["MRI radial 20 %: A"] is None  # no direct DeepInverse counterpart timed
    assert "DeepInverse / proxlab time" in capsys.readouterr().out
