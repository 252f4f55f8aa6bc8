"""The LPN experiments' machinery: the Laplacian program at a tiny scale, and the perturbation analysis."""

import json

import pytest
import torch

from proxlab.experiments.lpn_analysis import PERTURBATIONS, analysis_section, perturbed
from proxlab.experiments.runner import run_experiment


def _soft_threshold_error(model):
    """RMS distance of a 1-D prox from soft-thresholding at 1 (the MAP denoiser for Laplace(0, 1), σ = 1) on [−4, 4]."""
    y = torch.linspace(-4, 4, 801)[:, None]
    with torch.no_grad():
        return float((model(y) - torch.sign(y) * (y.abs() - 1).clamp_min(0)).pow(2).mean().sqrt())


@pytest.mark.slow  # three trainings, then R(x) by L-BFGS inversion on 601 points for each model, twice
def test_laplacian_program_runs_and_reports(tmp_path):
    from proxlab.priors.lpn import LPNFullyConnected

    res = run_experiment("lpn-laplacian", out=tmp_path, overrides=["steps_scale=0.0005"], progress=False, echo=False)
    summary = json.loads((tmp_path / "results.json").read_text())
    assert set(summary["results"]) == {"ℓ2", "ℓ1", "proximal matching"}
    # every model starts from the program's seed-1 LPN; 10 steps (ℓ2, ℓ1) and 12 more (proximal matching, from ℓ1)
    # move the prox towards soft-thresholding. Measured once: start 1.503, ℓ2 1.446, ℓ1 1.446, proximal matching 1.427.
    torch.manual_seed(1)
    start = _soft_threshold_error(LPNFullyConnected(dim=1, hidden=50, layers=4, beta=10.0, alpha=0.0))
    for name, r in summary["results"].items():
        assert r["prox_rms_error"] < start - 0.03, name
        # R is evaluated where the learned prox is invertible, to the inversion tolerance
        assert 0 < r["R_defined_fraction"] <= 1 and r["inversion_residual_max"] < 1e-3, name
    assert summary["results"]["proximal matching"]["prox_rms_error"] < summary["results"]["ℓ1"]["prox_rms_error"]
    assert (tmp_path / "lpn_pm.safetensors").is_file() and (tmp_path / "figure_laplacian.png").is_file()
    assert res.metrics["closest_to_truth"] == min(summary["results"], key=lambda k: summary["results"][k]["R_rms_error"])


def test_laplacian_program_refuses_unknown_settings(tmp_path):
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


@pytest.mark.slow  # weight scans on validation digits, then 100 PnP iterations of an LPN per solver
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
    # grid values are stored as given: exact membership is the claim
    assert row["pnp-admm"]["weight"] in lpn_pnp.RHO_GRID and row["fista-tv"]["weight"] in lpn_pnp.LAM_GRID["fista-tv"]
    # the classic baseline works (measured: FISTA-TV 26.5 dB against 16.0 for Aᵀy on 3 digits)
    assert row["fista-tv"]["psnr"] > row["init"]["psnr"] + 5
    # PnP with this (untrained) LPN prox settles: relative change after 100 iterations, measured 3.0e-4 (ADMM)
    # and 1.2e-8 (PGD), from about 1 at the first iteration
    curves = summary["convergence_last_rel_change"]["deblur σ_b=1 σ=0.02"]
    assert set(curves) == {"pnp-admm", "pnp-pgd"} and all(v < 1e-3 for v in curves.values()), curves
    assert (tmp_path / "out" / "figure_convergence.png").is_file() and (tmp_path / "out" / "report.html").is_file()
