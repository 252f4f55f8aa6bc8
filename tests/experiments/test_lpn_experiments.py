"""The LPN experiments as specs: lpn-laplacian (the paper's Figure 1) and lpn-pnp (plug-and-play), run tiny;
their parts; the perturbation analysis. The full reproductions are marked slow."""

import json
import math
import tomllib
from importlib import resources

import pytest
import torch

from proxlab.experiments.config import ConfigError, load_config
from proxlab.experiments.lpn_analysis import PERTURBATIONS, analysis_section, perturbed
from proxlab.experiments.runner import PROGRAM_EXPERIMENTS, find_experiment, run_experiment
from proxlab.registry import list_models


def _shipped(name: str) -> dict:
    return tomllib.loads((resources.files("proxlab.experiments") / "configs" / f"{name}.toml").read_text())


def _write(tmp_path, raw: dict, name: str = "spec.toml"):
    import tomli_w

    path = tmp_path / name
    path.write_text(tomli_w.dumps(raw))
    return path


def _log(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]


def test_lpn_experiments_are_specs_not_programs():
    for name in ("lpn-laplacian", "lpn-pnp"):
        assert name not in PROGRAM_EXPERIMENTS and find_experiment(name).suffix == ".toml"
        load_config(find_experiment(name), known_models=list_models())  # the whole spec, every sweep run, validates


# ---------------------------------------------------------------- lpn-laplacian
class _SoftThreshold(torch.nn.Module):
    """An oracle: prox = soft-thresholding at t, R = t|x| + 5 + bump·x², defined (residual 0) only on |x| < 2."""

    def __init__(self, t: float, bump: float = 0.0):
        super().__init__()
        self.t, self.bump = t, bump

    def forward(self, y):
        return torch.sign(y) * (y.abs() - self.t).clamp_min(0)

    def regularizer(self, x, tol=None, max_iter=None, return_residual=False):
        r = self.t * x[:, 0].abs() + 5.0 + self.bump * x[:, 0] ** 2
        res = torch.where(x[:, 0].abs() < 2, 0.0, 1.0)
        return (r, res) if return_residual else r


def test_laplacian_errors_against_known_answers():
    from proxlab.experiments.lpn_parts import laplacian_curves, laplacian_errors

    exact = laplacian_errors(laplacian_curves(_SoftThreshold(0.5), threshold=0.5))
    assert exact["R_rms_error"] < 1e-6 and exact["R_max_error"] < 1e-6 and exact["prox_rms_error"] < 1e-7
    grid = [-3 + 0.01 * k for k in range(601)]
    inside = [x for x in grid if abs(x) < 2 - 1e-9]
    assert exact["R_defined_fraction"] == pytest.approx(len(inside) / 601, abs=1e-6)
    # R off by 0.1·x² on (−2, 2): after removing the best constant, the error is 0.1·(x² − mean x²)
    bumped = laplacian_errors(laplacian_curves(_SoftThreshold(0.5, bump=0.1), threshold=0.5))
    sq = [x * x for x in inside]
    mean = sum(sq) / len(sq)
    assert bumped["R_rms_error"] == pytest.approx(0.1 * math.sqrt(sum((s - mean) ** 2 for s in sq) / len(sq)), rel=1e-4)
    assert bumped["R_max_error"] == pytest.approx(0.1 * max(abs(s - mean) for s in sq), rel=1e-4)
    # the identity as a prox, against soft-thresholding at 1: the error is min(|y|, 1) on [−4, 4]
    identity = _SoftThreshold(0.0)
    far = laplacian_errors(laplacian_curves(identity, threshold=1.0))
    ys = [-4 + 0.01 * k for k in range(801)]
    assert far["prox_rms_error"] == pytest.approx(math.sqrt(sum(min(abs(y), 1) ** 2 for y in ys) / 801), rel=1e-4)


def test_laplace_samples_follow_the_distribution():
    from proxlab.experiments.lpn_parts import laplace_samples

    x = laplace_samples(200_000, seed=3, scale=2.0)
    assert x.shape == (200_000, 1) and x.dtype == torch.float32
    assert torch.equal(x, laplace_samples(200_000, seed=3, scale=2.0))
    # Laplace(0, b): mean 0, E|x| = b, P(|x| > b) = e^-1
    assert abs(float(x.mean())) < 0.02 and float(x.abs().mean()) == pytest.approx(2.0, rel=0.01)
    assert float((x.abs() > 2.0).float().mean()) == pytest.approx(math.exp(-1), abs=0.005)


def _soft_threshold_error(model):
    """RMS distance of a 1-D prox from soft-thresholding at 1 (the MAP denoiser for Laplace(0, 1), σ = 1) on [−4, 4]."""
    y = torch.linspace(-4, 4, 801)[:, None]
    with torch.no_grad():
        return float((model(y) - torch.sign(y) * (y.abs() - 1).clamp_min(0)).pow(2).mean().sqrt())


# three tiny trainings, then R(x) by L-BFGS inversion for each model (the error maths against oracles and the
# schedule checks stay in the default run)
@pytest.mark.slow
def test_laplacian_experiment_tiny(tmp_path):
    from proxlab.experiments.lpn_parts import export_laplacian_to_zoo
    from proxlab.experiments.parts import PROTOCOLS, RunContext
    from proxlab.priors.lpn import LPNFullyConnected
    from proxlab.registry import build_model
    from proxlab.weights import load_model_weights

    out = tmp_path / "lap"
    # 1/2000 of the schedules; R by at most 50 L-BFGS steps (a model this young is invertible near 0 only)
    res = run_experiment("lpn-laplacian", out=out, overrides=["training.steps_scale=0.0005",
                                                              "evaluation.protocols.0.options.inversion_iters=50"],
                         progress=False, echo=False)
    table = res.metrics["laplacian_comparison"]
    results = table["results"]
    assert set(results) == {"ℓ2", "ℓ1", "proximal matching"}
    # the scaled schedules: l2 10 steps (lr 1e-3 → 1e-4 at step 5); proximal matching 10 steps of l1, then 12 with
    # lr 1e-3 → 1e-4 → 1e-5 → 1e-6 at steps 1, 6, 10 and γ = 0.5 … 0.1 in stages of 2 steps
    l2 = json.loads((out / "runs" / "l2" / "metrics.json").read_text())
    assert l2["training"]["steps"] == 10 and _log(out / "runs" / "l2" / "checkpoints")[-1]["lr"] == pytest.approx(1e-4)
    pm = out / "runs" / "proximal-matching"
    stages = json.loads((pm / "metrics.json").read_text())["training"]["stages"]
    assert [(s["loss"], s["steps"], s["chosen"]) for s in stages] == [("l1", 10, "final"), ("proximal_matching", 12, "final")]
    last = _log(pm / "checkpoints" / "stage1")[-1]
    assert last["lr"] == pytest.approx(1e-6) and last["gamma"] == pytest.approx(0.1)
    # proximal matching continues from the l1 model: its first stage ends with the l1 run's weights
    net = build_model("lpn-fc", dim=1, hidden=50, layers=4, beta=10.0, alpha=0.0)
    ref = build_model("lpn-fc", dim=1, hidden=50, layers=4, beta=10.0, alpha=0.0)
    load_model_weights(pm / "stages" / "stage0.safetensors", net)
    load_model_weights(out / "runs" / "l1" / "model.safetensors", ref)
    for a, b in zip(net.state_dict().values(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-7)
    # every run moves the prox from the seed-1 LPN towards soft-thresholding (measured, as with the former
    # program: start 1.503, ℓ2 1.446, ℓ1 1.446, proximal matching 1.427); proximal matching gets closest
    torch.manual_seed(1)
    start = _soft_threshold_error(LPNFullyConnected(dim=1, hidden=50, layers=4, beta=10.0, alpha=0.0))
    for name, r in results.items():
        assert r["prox_rms_error"] < start - 0.03, name
    assert results["proximal matching"]["prox_rms_error"] < results["ℓ1"]["prox_rms_error"]
    # the comparison drew each run's own curves; computed again from the models they give the same errors
    children = {}
    for label, name in (("l2", "ℓ2"), ("l1", "ℓ1"), ("proximal-matching", "proximal matching")):
        own = json.loads((out / "runs" / label / "metrics.json").read_text())["laplacian_errors"]
        assert own == pytest.approx(results[name], nan_ok=True)
        (out / "runs" / label / "laplacian_curves.safetensors").unlink()
        model = build_model("lpn-fc", dim=1, hidden=50, layers=4, beta=10.0, alpha=0.0)
        load_model_weights(out / "runs" / label / "model.safetensors", model)
        cfg = load_config(out / "runs" / label / "config.toml")
        children[label] = {"cfg": cfg, "model": model, "folder": out / "runs" / label}
    part = PROTOCOLS.get("laplacian_comparison")
    ctx = RunContext(cfg=None, model=None, task=None, operator=None, splits=None, folder=tmp_path, device="cpu",
                     log=lambda msg: None, children=children)
    again = part.build(part.validate_options({"inversion_iters": 50}), ctx).metrics["results"]
    for label, r in again.items():
        for key in ("prox_rms_error", "R_rms_error", "R_defined_fraction"):
            assert r[key] == pytest.approx(results[{"l2": "ℓ2", "l1": "ℓ1"}.get(label, "proximal matching")][key],
                                           abs=1e-6, nan_ok=True), (label, key)
    defined = {k: r for k, r in results.items() if not math.isnan(r["R_rms_error"])}
    assert table["closest_to_truth"] == min(defined, key=lambda k: defined[k]["R_rms_error"])
    assert (out / "figure_laplacian.png").is_file() and "closest to the truth" in (out / "report.html").read_text().lower()
    # the zoo entry of the proximal-matching run, with the command that trained it
    entry = json.loads(export_laplacian_to_zoo(out, "tiny-laplacian", zoo_dir=tmp_path / "zoo").read_text())
    assert entry["training_command"] == "proxlab run lpn-laplacian --set training.steps_scale=0.0005"
    assert entry["model"]["name"] == "lpn-fc" and set(entry["test_metrics"]) == set(results)
    for name, r in results.items():
        assert entry["test_metrics"][name] == pytest.approx(r, nan_ok=True), name
    load_model_weights(tmp_path / "zoo" / "tiny-laplacian.safetensors", ref)
    load_model_weights(pm / "model.safetensors", net)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), ref.state_dict().values()))


def test_laplacian_schedule_scale_is_checked():
    path = find_experiment("lpn-laplacian")
    with pytest.raises(ConfigError, match=r"^training\.steps_scale: expected a number > 0, got 0"):
        load_config(path, overrides=["training.steps_scale=0"])
    with pytest.raises(ConfigError, match=r"^training\.step_scale: unknown key; did you mean 'steps_scale'\?"):
        load_config(path, overrides=["training.step_scale=0.5"])
    # 1e-4 of the proximal-matching schedule would put its lr milestones 2000, 12000 at the same step
    with pytest.raises(ConfigError, match=r"^sweep\.runs\[2\] \(proximal-matching\): stages\[1\]\.steps_scale: "
                                          r"expected a factor that keeps the milestones apart"):
        load_config(path, overrides=["training.steps_scale=0.0001"])
    assert load_config(path, overrides=["training.steps_scale=1"]).training.steps_scale == 1.0


@pytest.mark.slow  # 84,000 steps at batch 2000 (about 20 minutes on one core)
def test_laplacian_reproduces_the_shipped_table(tmp_path):
    from proxlab.zoo import zoo_info

    res = run_experiment("lpn-laplacian", out=tmp_path / "full", progress=False, echo=False)
    shipped = zoo_info("lpn-laplacian")["test_metrics"]
    results = res.metrics["laplacian_comparison"]["results"]
    # 84,000 Adam steps do not retrace the shipped run bit for bit on another thread count or machine (reduction
    # order): re-run through the spec on 1 thread, the errors moved by up to 0.004 (R rms: 0.1646 / 0.1231 / 0.0121
    # against the shipped 0.1641 / 0.1193 / 0.0154). The claim is the ordering and the size of the gap.
    for name, r in results.items():
        for key in ("R_rms_error", "R_max_error", "prox_rms_error"):
            assert r[key] == pytest.approx(shipped[name][key], abs=0.01), (name, key)
    rms = {name: r["R_rms_error"] for name, r in results.items()}
    assert rms["proximal matching"] < 0.2 * rms["ℓ1"] and rms["ℓ1"] < rms["ℓ2"]


# ---------------------------------------------------------------- lpn-pnp
@pytest.fixture
def tiny_lpn_zoo(tmp_path, monkeypatch):
    """A small random LPN as zoo:lpn-mnist in a private zoo folder."""
    import proxlab.weights as weights
    from proxlab.priors.lpn import LPNConv
    from proxlab.training import save_model

    zoo = tmp_path / "zoo"
    zoo.mkdir()
    monkeypatch.setattr(weights, "ZOO_DIR", zoo)
    torch.manual_seed(0)
    save_model(zoo / "lpn-mnist.safetensors", LPNConv(hidden=8, features=8))
    (zoo / "lpn-mnist.json").write_text(json.dumps({"name": "lpn-mnist", "model": {"name": "lpn-conv"}}))
    return zoo


def _tiny_pnp(**protocol_options) -> dict:
    raw = _shipped("lpn-pnp")
    raw["model"]["options"] = {"image_size": 28, "hidden": 8, "features": 8, "beta": 10.0, "alpha": 0.01}
    raw["sweep"]["runs"] = raw["sweep"]["runs"][:1]  # deblur σ_b = 1, σ = 0.02
    raw["evaluation"]["protocols"][0]["options"] = {
        "methods": ["init", "fista-tv", "pnp-admm", "pnp-pgd"], "val_images": 3, "test_images": 3, "iters": 3,
        **protocol_options}
    raw["evaluation"]["protocols"][1]["options"] = {"images": 3, "iters": 100}
    return raw


# weight scans on validation digits and 2 x 100 PnP iterations of an LPN (the option checks and the ellipse source
# stay in the default run; PnP itself is in tests/test_methods.py)
@pytest.mark.slow
def test_pnp_experiment_on_one_setting(tmp_path, tiny_lpn_zoo):
    from proxlab.data import mnist5k
    from proxlab.methods import reconstruct
    from proxlab.metrics import psnr
    from proxlab.experiments.pnp_parts import DEFAULT_GRIDS, measure

    res = run_experiment(_write(tmp_path, _tiny_pnp()), out=tmp_path / "out", progress=False, echo=False)
    child = json.loads((tmp_path / "out" / "runs" / "deblur-b1-n0.02" / "metrics.json").read_text())
    row = child["validated_methods"]
    assert list(row) == ["init", "fista-tv", "pnp-admm", "pnp-pgd"] and child["training"]["steps"] == 0
    for method in ("fista-tv", "pnp-admm"):  # the chosen value is a grid value itself, the best on validation
        scan = {float(k): v for k, v in row[method]["validation_scan"].items()}
        assert sorted(scan) == sorted(DEFAULT_GRIDS[method]) and row[method]["weight"] in DEFAULT_GRIDS[method]
        assert row[method]["weight"] == max(scan, key=scan.get)
    assert row["init"]["weight"] is None and row["pnp-pgd"]["weight"] is None
    # the classic baseline works (measured: FISTA-TV 26.5 dB against 16.0 for Aᵀy on 3 digits)
    assert row["fista-tv"]["psnr"] > row["init"]["psnr"] + 5
    # the test score is that of the chosen value times ‖A‖², on the test digits' own measurements
    cfg = load_config(tmp_path / "out" / "runs" / "deblur-b1-n0.02" / "config.toml")
    task, x = cfg.build_task(), mnist5k("test")[0][:3]
    A, y = measure(task, x, cfg.seed + 1)
    lam = row["fista-tv"]["weight"] * A.norm((1, 28, 28))
    got = float(psnr(reconstruct("fista-tv", A, y, task, lam=lam, rho=30 * lam).clamp(0, 1), x).mean())
    assert got == pytest.approx(row["fista-tv"]["psnr"], abs=1e-4)
    # convergence at the chosen PnP-ADMM ρ; this (untrained) LPN prox settles: relative change after 100
    # iterations, measured 3.0e-4 (ADMM) and 1.2e-8 (PGD), from about 1 at the first iteration
    conv = child["pnp_convergence"]
    assert conv["rho"] == row["pnp-admm"]["weight"] and [len(v) for v in conv["curves"].values()] == [100, 100]
    assert all(v < 1e-3 for v in conv["last_rel_change"].values()), conv["last_rel_change"]
    # the sweep's table holds each setting's row and last relative changes
    table = res.metrics["pnp_table"]
    assert json.loads(json.dumps(table["results"]["deblur-b1-n0.02"])) == row  # (JSON: the scan's keys as strings)
    assert table["convergence_last_rel_change"]["deblur-b1-n0.02"] == conv["last_rel_change"]
    assert (tmp_path / "out" / "figure_convergence.png").is_file() and "pnp-admm" in (tmp_path / "out" / "report.html").read_text()


def test_pnp_options_are_checked(tmp_path, tiny_lpn_zoo):
    for options, match in [
        ({"grids": {"pnp-pgd": [0.1]}}, r"grids\.pnp-pgd\[key\]: expected one of 'tikhonov', .*got 'pnp-pgd'"),
        ({"methods": ["fista-tvv"]}, r"methods\[0\]: expected one of 'init', .*got 'fista-tvv'; did you mean 'fista-tv'\?"),
        ({"methods": ["init", "init"]}, r"methods: expected no repeated methods, got 'init' twice"),
        ({"grids": {"fista-tv": [-1.0]}}, r"grids\.fista-tv\[0\]: expected a number > 0, got -1\.0")]:
        with pytest.raises(ConfigError, match=r"^evaluation\.protocols\[0\]\.options\." + match):
            load_config(_tiny_pnp(**options))
    raw = _tiny_pnp()
    raw["evaluation"]["protocols"] = raw["evaluation"]["protocols"][1:]  # convergence without a chosen ρ
    with pytest.raises(ValueError, match="options.rho is not set and no validated_methods protocol"):
        run_experiment(_write(tmp_path, raw), out=tmp_path / "x", progress=False, echo=False)


def test_ellipse_sets_source():
    from proxlab.data import random_ellipses
    from proxlab.experiments.parts import SOURCES

    cfg = load_config(_shipped("lpn-pnp")).sweep_run("ct60-n0.5")
    assert cfg.data.source == "ellipse_sets" and cfg.training.init == "zoo:lpn-ellipses"
    data = load_config({**_tiny_pnp(), "data": {"source": "ellipse_sets", "options": {"size": 32, "val_count": 2,
                                                                                      "test_count": 3}}}).data
    splits = SOURCES.get("ellipse_sets").build(data, 7)
    assert splits.train.shape == (0, 1, 32, 32)
    assert torch.equal(splits.val, random_ellipses(2, 32, seed=507))
    assert torch.equal(splits.test, random_ellipses(3, 32, seed=907))
    with pytest.raises(ConfigError, match=r"^data\.options.*test_seed: expected a seed other than val_seed"):
        load_config({**_tiny_pnp(), "data": {"source": "ellipse_sets", "options": {"val_seed": 5, "test_seed": 5}}})


@pytest.mark.slow  # six settings, each with weight scans on 16 validation images and 100-iteration convergence runs
def test_pnp_reproduces_the_readme_table(tmp_path):
    from pathlib import Path

    runs = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "runs"
    old = {}
    for f in ("deblur", "cs", "ct"):
        d = json.loads((runs / f"lpn-pnp-{f}.json").read_text())
        old.update(d.get("results", d))
    labels = {"deblur-b1-n0.02": "deblur σ_b=1 σ=0.02", "deblur-b1-n0.04": "deblur σ_b=1 σ=0.04",
              "deblur-b2-n0.02": "deblur σ_b=2 σ=0.02", "deblur-b2-n0.04": "deblur σ_b=2 σ=0.04",
              "cs25-n0.01": "block CS 25% σ=0.01", "ct60-n0.5": "CT 60 angles σ=0.5"}
    res = run_experiment("lpn-pnp", out=tmp_path / "full", progress=False, echo=False)
    for label, row in res.metrics["pnp_table"]["results"].items():
        for method, r in row.items():
            assert r["psnr"] == pytest.approx(old[labels[label]][method]["psnr"], abs=0.02), (label, method)


# ---------------------------------------------------------------- the perturbation analysis
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
