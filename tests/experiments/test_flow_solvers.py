"""The flow as a prior in classic solvers: the scaled latent shrinkage, latent MAP, and the ``flow_solvers``
protocol through an evaluation-only spec."""

from __future__ import annotations

import pytest
import torch

from proxlab.experiments.flow_solvers import latent_map
from proxlab.experiments.runner import run_experiment
from proxlab.operators.denoising import Denoising
from proxlab.priors.flow import FlowPrior, Glow
from proxlab.training.checkpoint import save_model


def _flow(seed: int = 0) -> Glow:
    flow = Glow(1, levels=2, steps=1, hidden=8, image_size=8)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return flow.eval()


def test_latent_shrinkage_scales_tau_by_lambda():
    flow = _flow()
    v = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    prior = FlowPrior(flow, 0.3)
    torch.testing.assert_close(prior(v, 0.5), flow.prox(v, 0.15), rtol=0, atol=0)
    z = flow.encode(prior(v, 2.0))
    torch.testing.assert_close(z, flow.encode(v) / 1.6, rtol=1e-4, atol=1e-5)


def test_latent_map_lowers_its_objective_and_shrinks_with_lambda():
    flow = _flow(2)
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    A = Denoising()
    y = x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4))

    @torch.no_grad()
    def objective(rec, lam):
        z = flow.encode(rec)
        return float(0.5 * ((rec - y) ** 2).sum() + lam * (z * z).sum())

    start = y.clamp(0, 1)
    for lam in (0.01, 1.0):
        rec = latent_map(flow, A, y, lam, iters=30, lr=0.05)
        assert objective(rec, lam) < objective(start, lam) - 1e-3
    small, large = (flow.encode(latent_map(flow, A, y, lam, iters=30)).norm() for lam in (0.01, 1.0))
    assert large < small


def test_flow_solvers_protocol_chooses_from_the_grid_and_scores_the_centre(tmp_path):
    flow = Glow(1, levels=3, steps=1, hidden=8, image_size=32)
    save_model(tmp_path / "flow.safetensors", flow)
    opts = ('evaluation.protocols.0.options={ val_images = 2, test_images = 3, iters = 3, map_iters = 3, '
            'original_size = 28, methods = ["tv", "pnp-pgd-flow", "latent-map", "pnp-admm-dncnn"], '
            'grids = { tv = [0.001, 0.1], pnp-pgd-flow = [0.1], latent-map = [0.01], pnp-admm-dncnn = [0.3] } }')
    res = run_experiment("glow-solvers-mnist", out=tmp_path / "run", progress=False, overrides=[
        f"training.init={tmp_path / 'flow.safetensors'}",
        "model.options={ in_channels = 1, levels = 3, steps = 1, hidden = 8, image_size = 32 }", opts,
        "sweep.runs=[{ label = \"denoise\" }]"])
    row = res.metrics["flow_solvers_table"]["results"]["denoise"]
    assert list(row) == ["tv", "pnp-pgd-flow", "latent-map", "pnp-admm-dncnn"]
    assert row["tv"]["weight"] in (0.001, 0.1) and set(row["tv"]["validation_scan"]) == {0.001, 0.1}
    assert row["tv"]["validation_scan"][row["tv"]["weight"]] == max(row["tv"]["validation_scan"].values())
    assert row["tv"]["at_grid_edge"] is True  # a two-point grid: any choice is an edge, and says so
    assert row["tv"]["psnr"] > 15.0  # TV on σ = 0.2 noise of digits: well above the noisy input's ~14 dB
    assert (tmp_path / "run" / "runs" / "denoise" / "figure_flow_solvers.png").is_file()


def test_a_diverging_weight_is_recorded_not_raised():
    from proxlab.experiments.flow_solvers import validation_scan

    def score(w):
        if w > 1:
            raise FloatingPointError("Glow.inverse at level0.step0.coupling: 3 non-finite value(s)")
        return 20.0 + w

    assert validation_scan((0.5, 1.0, 2.0), score) == {0.5: 20.5, 1.0: 21.0, 2.0: None}
    with pytest.raises(ZeroDivisionError):  # only the flow's own divergence is caught
        validation_scan((1.0,), lambda w: 1 / 0)
