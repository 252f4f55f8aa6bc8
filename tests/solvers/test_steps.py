"""The table of steps: its built-in entries are the classic solvers' own, scalars keep their ranges, registration
checks its arguments."""

import math

import pytest
import torch

from proxlab.operators import CompressedSensing
from proxlab.priors.classic import L1
from proxlab.solvers import (STEP_TABLE, FISTAState, Scalar, admm_step, beck_teboulle_momentum, fista,
                             fista_momentum, fista_step, get_step, hqs_step, pgd_step, register_step)
from proxlab.solvers.steps import PARAMETRISATIONS


def test_builtin_entries_use_the_classic_step_functions_and_the_norm_convention():
    assert {n: STEP_TABLE[n].step for n in ("pgd", "fista", "admm", "hqs")} == {
        "pgd": pgd_step, "fista": fista_step, "admm": admm_step, "hqs": hqs_step}
    scales = {n: {k: s.scale for k, s in STEP_TABLE[n].scalars.items()} for n in ("pgd", "fista", "admm", "hqs")}
    assert scales == {"pgd": {"step_size": "inv_norm"}, "fista": {"step_size": "inv_norm", "momentum": "none"},
                      "admm": {"rho": "norm"}, "hqs": {"mu": "norm"}}
    assert get_step("hqs").resolve("rho") == "mu" and get_step("pgd").resolve("rho") is None


def test_builtin_states_and_readouts():
    x0 = torch.randn(2, 5)
    assert get_step("pgd").init(x0, None, None, None) is x0
    s = get_step("admm").init(x0, None, None, None)
    torch.testing.assert_close(s.z, x0)
    torch.testing.assert_close(s.u, torch.zeros_like(x0))
    assert s.z is not x0  # the state never aliases the caller's tensor
    assert get_step("admm").readout(s) is s.z and get_step("fista").readout(FISTAState(x0, 2 * x0)) is x0


def test_beck_teboulle_momentum_is_the_sequence_classic_fista_uses():
    t, expect = 1.0, []
    for _ in range(6):
        t, beta = fista_momentum(t)
        expect.append(beta)
    assert [beck_teboulle_momentum(k) for k in range(6)] == pytest.approx(expect, rel=1e-15)
    assert beck_teboulle_momentum(0) == 0.0 and 0 < beck_teboulle_momentum(1) < 0.3
    with pytest.raises(ValueError, match="k must be an int >= 0, got -1"):
        beck_teboulle_momentum(-1)


def test_classic_fista_with_the_sequence_passed_as_momentum_is_unchanged():
    A = CompressedSensing(10, 20, seed=0).double()
    y = torch.randn(2, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    gamma = 1.0 / A.norm()
    ref = fista(A, y, L1(0.05), step_size=gamma, max_iter=5, tol=0).x
    state = get_step("fista").init(A.init(y), A, y, None)
    for k in range(5):
        state = fista_step(state, A, y, L1(0.05), gamma, momentum=beck_teboulle_momentum(k))
    torch.testing.assert_close(state.x, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name, value", [("softplus", 0.37), ("sigmoid", 0.81), ("tanh", -0.6), ("identity", -3.0)])
def test_parametrisations_round_trip(name, value):
    sc = Scalar(value, name)
    raw = torch.tensor(sc.raw(value), dtype=torch.float64)
    assert float(sc.value(raw)) == pytest.approx(value, rel=1e-12)
    assert math.isfinite(sc.raw(value))
    assert set(PARAMETRISATIONS) == {"softplus", "sigmoid", "tanh", "identity"}


def test_scalar_ranges_and_stage_dependent_starts():
    assert Scalar(lambda k: 0.1 * k, "identity").start(3) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="init must be > 0, got -1"):
        Scalar(-1, "softplus")
    with pytest.raises(ValueError, match=r"init must be in \(0, 1\), got 0.0"):
        Scalar(lambda k: 0.0, "sigmoid").start(0)
    with pytest.raises(ValueError, match="parametrisation must be one of"):
        Scalar(1.0, "exp")
    with pytest.raises(ValueError, match="scale must be one of"):
        Scalar(1.0, scale="sqrt_norm")
    with pytest.raises(TypeError, match="rho: expected a number, got True"):
        Scalar(1.0).check("rho", True)


@pytest.fixture
def cleanup():
    names = []
    yield names
    for n in names:
        STEP_TABLE.pop(n, None)


def test_register_step_checks_its_arguments(cleanup):
    ok = dict(init=lambda x0, A, y, prox: x0, step=pgd_step, readout=lambda s: s)
    with pytest.raises(ValueError, match="step 'pgd' is already registered; pass replace=True"):
        register_step("pgd", **ok)
    with pytest.raises(TypeError, match="readout must be callable, got int"):
        register_step("toy", **{**ok, "readout": 3})
    with pytest.raises(ValueError, match="scalar names must be Python identifiers"):
        register_step("toy", **ok, scalars={"step-size": Scalar(1.0)})
    with pytest.raises(TypeError, match=r"scalars\['step_size'\] must be a Scalar, got float"):
        register_step("toy", **ok, scalars={"step_size": 1.0})
    with pytest.raises(ValueError, match="alias 'rho' points to 'mu', which is not among the scalars"):
        register_step("toy", **ok, scalars={"step_size": Scalar(1.0)}, aliases={"rho": "mu"})
    with pytest.raises(ValueError, match="name must be a non-empty str"):
        register_step("", **ok)
    assert "toy" not in STEP_TABLE
    cleanup.append("toy")
    entry = register_step("toy", **ok, scalars={"step_size": Scalar(1.0, scale="inv_norm")})
    assert get_step("toy") is entry
    again = register_step("toy", **ok, replace=True)
    assert get_step("toy") is again and again.scalars == {}
    with pytest.raises(ValueError, match="did you mean 'toy'"):
        get_step("tyo")
