"""The LPN experiments' machinery: the Laplacian program at a tiny scale, and the perturbation analysis."""

import json

import pytest
import torch

from proxlab.experiments.lpn_analysis import PERTURBATIONS, analysis_section, perturbed
from proxlab.experiments.runner import run_experiment


def test_laplacian_program_runs_and_reports(tmp_path):
    res = run_experiment("lpn-laplacian", out=tmp_path, overrides=["steps_scale=0.0005"], progress=False, echo=False)
    summary = json.loads((tmp_path / "results.json").read_text())
    assert set(summary["results"]) == {"ℓ2", "ℓ1", "proximal matching"}
    for r in summary["results"].values():  # 32 steps: R is defined (f invertible) on part of [-3, 3] at least
        assert 0 < r["R_defined_fraction"] <= 1 and r["R_rms_error"] >= 0 and r["inversion_residual_max"] < 1e-3
    assert (tmp_path / "lpn_pm.safetensors").is_file() and (tmp_path / "figure_laplacian.png").is_file()
    assert res.metrics["closest_to_truth"] in summary["results"]
    with pytest.raises(ValueError, match="unknown setting"):
        run_experiment("lpn-laplacian", out=tmp_path / "x", overrides=["stepsscale=1"], progress=False, echo=False)


def test_perturbations_are_what_they_say():
    x = torch.rand(4, 1, 16, 16)
    assert torch.equal(perturbed(x, "gaussian noise σ", 0.0), x)
    noisy = perturbed(x, "gaussian noise σ", 0.2, seed=1)
    assert abs(float((noisy - x).std()) - 0.2) < 0.03
    torch.testing.assert_close(perturbed(x, "convex combination λ", 1.0), torch.roll(x, 1, 0))
    blurred = perturbed(x, "blur σ", 2.0)
    assert blurred.shape == x.shape and float((blurred - blurred.mean()).std()) < float((x - x.mean()).std())


def test_analysis_with_a_known_prior():
    class Quadratic(torch.nn.Module):
        """R(x) = ½‖x − m‖² around a template m: grows with any departure from it."""

        def __init__(self, m):
            super().__init__()
            self.m = m

        def regularizer(self, x, tol=None, max_iter=None, return_residual=False):
            r = 0.5 * (x - self.m).flatten(1).pow(2).sum(1)
            return (r, torch.zeros_like(r)) if return_residual else r

    template = torch.zeros(1, 1, 12, 12)
    template[..., 4:8, 4:8] = 1
    images = template.repeat(6, 1, 1, 1)
    summary, html = analysis_section(Quadratic(template), images)
    assert summary["grows"]["gaussian noise σ"] and summary["grows"]["blur σ"]
    assert set(summary["medians"]) == set(PERTURBATIONS) and "<img" in html


def test_pnp_program_on_one_setting(tmp_path, monkeypatch):
    import proxlab.experiments.lpn_pnp as lpn_pnp
    import proxlab.zoo as zoo
    from proxlab.priors.lpn import LPNConv
    from proxlab.training import save_model

    # a small LPN in a private zoo, standing in for zoo:lpn-mnist
    monkeypatch.setattr(zoo, "ZOO_DIR", tmp_path / "zoo")
    (tmp_path / "zoo").mkdir()
    torch.manual_seed(0)
    save_model(tmp_path / "zoo" / "lpn-mnist.safetensors", LPNConv(hidden=8, features=8))
    (tmp_path / "zoo" / "lpn-mnist.json").write_text(json.dumps({
        "name": "lpn-mnist", "model": {"name": "lpn-conv", "options": {"hidden": 8, "features": 8}},
        "task": {"name": "denoise", "options": {"noise": 0.1}}, "data": {"source": "mnist5k"},
        "training_command": "test", "test_metrics": {"model": {"mean": {"psnr": 0.0}}}}))
    monkeypatch.setattr(lpn_pnp, "SETTINGS", lpn_pnp.SETTINGS[:1])
    monkeypatch.setattr(lpn_pnp, "CLASSIC", ["init", "fista-tv"])
    summary = run_experiment("lpn-pnp", out=tmp_path / "out", overrides=["images=3", "iters=3"], progress=False,
                             echo=False).metrics
    row = summary["results"]["deblur σ_b=1 σ=0.02"]
    assert set(row) == {"init", "fista-tv", "pnp-admm", "pnp-pgd"}
    assert row["pnp-admm"]["weight"] in lpn_pnp.RHO_GRID and row["fista-tv"]["weight"] in lpn_pnp.LAM_GRID["fista-tv"]
    curves = summary["convergence_last_rel_change"]["deblur σ_b=1 σ=0.02"]
    assert set(curves) == {"pnp-admm", "pnp-pgd"} and all(v >= 0 for v in curves.values())
    assert (tmp_path / "out" / "figure_convergence.png").is_file() and (tmp_path / "out" / "report.html").is_file()
