"""The LISTA experiment program at a tiny scale, and its sparse-coding helpers."""

import json

import pytest
import torch

from proxlab.experiments import lista as exp

TINY = {"scale": "0.01", "atoms": "100,400", "layers": "1,2", "fista_iters": "20", "synthetic_layers": "3"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lista")
    lines = []
    summary = exp.run(out, dict(TINY), progress=False, log=lines.append)
    return out, summary, lines


def test_results_structure_and_files(tiny_run):
    out, summary, lines = tiny_run
    saved = json.loads((out / "results.json").read_text())
    assert set(saved) == {"settings", "paper_table1", "seconds", "table1", "synthetic"}
    t = saved["table1"]
    assert t["n_train"] == 400 and t["n_test"] == 32 and set(t["images"]) == set(exp.NATURAL_IMAGES)
    assert set(t["by_atoms"]) == {"100", "400"}
    for r in t["by_atoms"].values():
        assert len(r["fista"]) == len(r["ista"]) == 20
        assert set(r["lista"]) == {"1", "2"}
        assert all(v > 0 for v in r["lista"].values())
    s = saved["synthetic"]
    assert s["shape"] == [250, 500] and s["theta0"] == pytest.approx(0.4 / s["lipschitz"])
    assert len(s["lista_nmse_db"]) == len(s["lista_untrained_nmse_db"]) == 3
    assert len(s["ista_nmse_db"]) == len(s["fista_nmse_db"]) == 20
    for name in ("figure_table1.png", "figure_synthetic.png", "report.html"):
        assert (out / name).is_file()
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "1.5" in html and ">35<" in html  # paper numbers beside ours
    assert summary["table1"]["by_atoms"][100]["lista"][1] == saved["table1"]["by_atoms"]["100"]["lista"]["1"]
    assert any("FISTA iterations to match" in line for line in lines)


def test_iteration_curves_and_lista_beats_one_fista_iteration(tiny_run):
    _, summary, _ = tiny_run
    for m, r in summary["table1"]["by_atoms"].items():
        fista_err, ista_err = r["fista"], r["ista"]
        # ISTA distance to the minimiser is Fejér-monotone; FISTA's is not in general but is here
        assert all(b <= a * (1 + 1e-6) for a, b in zip(ista_err, ista_err[1:])), m
        assert all(b <= a * (1 + 1e-6) for a, b in zip(fista_err, fista_err[1:])), m
        assert fista_err[-1] < 0.7 * fista_err[0]
        assert fista_err[0] == pytest.approx(ista_err[0], rel=1e-6)  # both start with the same ISTA step from 0
        assert r["lista"][1] < fista_err[0]  # trained 1-layer LISTA beats its own initialisation
        # the paper's "LISTA, 1 iteration" is two shrinkage layers: FISTA iterations to match are counted against it
        hit, e2 = r["fista_to_match_lista1"], r["lista"][2]
        assert hit is not None and hit > 2  # the tiny run's 2-layer LISTA is worth several FISTA iterations
        assert fista_err[hit - 1] <= e2 and all(e > e2 for e in fista_err[:hit - 1])
    s = summary["synthetic"]
    assert s["ista_nmse_db"][0] == pytest.approx(s["fista_nmse_db"][0], abs=1e-4)
    assert s["lista_nmse_db"][-1] < s["lista_nmse_db"][0] < 0


def test_bad_settings(tmp_path):
    cases = [({"scal": "1"}, "unknown setting"), ({"protocol": "tabel1"}, "did you mean 'table1'"),
             ({"layers": "0,3"}, "layers must be ints >= 1"), ({"atoms": "a"}, "atoms must be comma-separated"),
             ({"scale": "-1"}, "scale must be > 0"), ({"alpha": "0"}, "alpha must be > 0"),
             ({"seed": "x"}, "seed must be one int, got 'x'"), ({"fista_iters": "50,60"}, "fista_iters must be one int"),
             ({"synthetic_layers": "0"}, "synthetic_layers must be >= 1")]
    for overrides, msg in cases:
        with pytest.raises(ValueError, match=msg):
            exp.run(tmp_path, overrides, progress=False, log=lambda m: None)


def test_sparse_codes_satisfy_the_lasso_optimality_conditions():
    g = torch.Generator().manual_seed(0)
    D = torch.randn(20, 50, generator=g)
    D = D / D.norm(dim=0)
    x = torch.randn(8, 20, generator=g)
    alpha = 0.3
    z = exp.sparse_codes(D, x, alpha, 3000, tol=1e-9, chunk=3).double()
    grad = (x.double() - z @ D.double().T) @ D.double()  # W_dᵀ(X − W_d Z) must be α·sign(Z) on the support
    assert float(grad.abs().max()) <= alpha + 1e-4
    on = z != 0
    torch.testing.assert_close(grad[on], alpha * z[on].sign(), atol=1e-4, rtol=0)
    assert 0 < float(on.double().mean()) < 1


def test_learn_dictionary_has_unit_atoms_and_fits_better_than_its_start():
    patches = exp.natural_patches(600, seed=1)
    patches = (patches - patches.mean(1, keepdim=True)) / patches.std()
    D = exp.learn_dictionary(patches, 30, 0.5, iterations=15, batch_size=200, seed=0)
    assert D.shape == (100, 30)
    torch.testing.assert_close(D.norm(dim=0), torch.ones(30), atol=1e-5, rtol=0)
    D0 = exp.learn_dictionary(patches, 30, 0.5, iterations=0, seed=0)  # the initial atoms only

    def objective(W):
        z = exp.sparse_codes(W, patches, 0.5, 300)
        return float((0.5 * (patches - z @ W.T).pow(2).sum(1) + 0.5 * z.abs().sum(1)).mean())

    assert objective(D) < 0.95 * objective(D0)


def test_synthetic_problem_matrix():
    A = exp.synthetic_problem(0)
    assert A.shape == (250, 500)
    torch.testing.assert_close(A.norm(dim=0), torch.ones(500), atol=1e-5, rtol=0)
    assert torch.equal(A, exp.synthetic_problem(0)) and not torch.equal(A, exp.synthetic_problem(1))


def test_table1_patches_normalisations():
    (tr, va, te), std = exp.table1_patches(200, 20, seed=0)
    assert (tr.shape, va.shape, te.shape) == ((200, 100), (20, 100), (20, 100)) and std > 0
    assert float(tr.mean(1).abs().max()) < 1e-4 and abs(float(tr.std()) - 1) < 1e-3  # one constant: the train std
    (tr, va, te), std = exp.table1_patches(200, 20, seed=0, per_patch=True)
    assert std is None and tr.shape == (200, 100)
    torch.testing.assert_close(torch.cat([tr, va, te]).std(1), torch.ones(240))  # every patch unit variance


def test_protocol_presets_run_one_protocol(tmp_path):
    from proxlab.experiments.runner import PROGRAM_EXPERIMENTS, run_program_experiment

    assert PROGRAM_EXPERIMENTS["lista-table1"] == PROGRAM_EXPERIMENTS["lista-synthetic"] == "proxlab.experiments.lista"
    res = run_program_experiment("lista-synthetic", tmp_path / "s", ["scale=0.01", "synthetic_layers=2",
                                                                     "fista_iters=5"], progress=False, echo=False)
    assert "synthetic" in res.metrics and "table1" not in res.metrics
