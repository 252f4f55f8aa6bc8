"""LISTA (Gregor & LeCun, 2010): at its ISTA initialisation K stages are K ISTA iterations from 0."""

import pytest
import torch

from proxlab.operators import CompressedSensing
from proxlab.priors.classic import L1
from proxlab.solvers import ista
from proxlab.unrolled.lista import LISTA, ista_parameters

N, M = 12, 30


@pytest.fixture
def problem():
    g = torch.Generator().manual_seed(0)
    # float32-representable entries: CompressedSensing keeps its matrix in float32, so the reference
    # ISTA below sees exactly the same dictionary as LISTA.
    D = torch.randn(N, M, generator=g).double()
    x = torch.randn(5, N, generator=g, dtype=torch.float64)
    return D, x


def _ista(D, x, alpha, iters, lipschitz):
    A = CompressedSensing(matrix=D).double()
    z0 = torch.zeros(x.shape[0], D.shape[1], dtype=x.dtype)
    return ista(A, x, L1(alpha), step_size=1.0 / lipschitz, x0=z0, max_iter=iters, tol=0, history=False).x


class TestLISTA:
    @pytest.mark.parametrize("tied", [True, False])
    def test_init_equals_k_ista_iterations_float64(self, problem, tied):
        D, x = problem
        alpha, K = 1.0, 6
        net = LISTA(D, alpha, K, tied=tied)
        assert net.encoder.dtype == torch.float64
        outs = net(x, return_all=True)
        assert len(outs) == K
        for k, z in enumerate(outs, start=1):
            ref = _ista(D, x, alpha, k, net.lipschitz)
            torch.testing.assert_close(z, ref, rtol=0, atol=1e-12)
        # the shrinkage is really exercised: some code entries are zero, some are not
        assert 0 < float((outs[-1] == 0).double().mean()) < 1

    def test_init_values_and_custom_lipschitz(self, problem):
        D, x = problem
        L = float(torch.linalg.matrix_norm(D, ord=2) ** 2)
        net = LISTA(D, 0.5, 3, tied=True)
        assert net.lipschitz == pytest.approx(L, rel=1e-12)
        torch.testing.assert_close(net.encoder, D.T / L)
        torch.testing.assert_close(net.inhibition[0], torch.eye(M, dtype=torch.float64) - D.T @ D / L)
        torch.testing.assert_close(net.threshold, torch.full((1, M), 0.5 / L, dtype=torch.float64))
        net2 = LISTA(D, 0.4, 4, lipschitz=1.001 * L)  # LISTA-CPSS's θ0 = 0.4 / (1.001 ‖A‖²)
        torch.testing.assert_close(net2.threshold, torch.full((4, M), 0.4 / (1.001 * L), dtype=torch.float64))
        torch.testing.assert_close(net2(x), _ista(D, x, 0.4, 4, 1.001 * L), rtol=0, atol=1e-12)

    def test_float32_matches_ista(self, problem):
        D, x = problem
        net = LISTA(D.float(), 1.0, 5)
        assert net.encoder.dtype == torch.float32
        z = net(x.float())
        assert z.dtype == torch.float32
        torch.testing.assert_close(z.double(), _ista(D, x, 1.0, 5, net.lipschitz), rtol=1e-4, atol=1e-5)
        # a float64 input on float32 weights runs in float64 (weights cast to the input)
        assert net(x).dtype == torch.float64

    def test_shapes(self, problem):
        D, x = problem
        for K in (1, 2, 7):
            net = LISTA(D, 0.3, K)
            assert net(x).shape == (5, M)
            assert [tuple(z.shape) for z in net(x, return_all=True)] == [(5, M)] * K
        assert LISTA(D, 0.3, 2)(x[:1]).shape == (1, M)

    @pytest.mark.parametrize("K", [1, 2, 5])
    def test_parameter_counts_tied_and_untied(self, problem, K):
        D, _ = problem
        count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
        n_S_tied = 0 if K == 1 else 1
        assert count(LISTA(D, 0.5, K, tied=True)) == M * N + n_S_tied * M * M + M
        assert count(LISTA(D, 0.5, K, tied=False)) == M * N + (K - 1) * M * M + K * M
        assert len(LISTA(D, 0.5, K, tied=False).inhibition) == K - 1

    @pytest.mark.parametrize("tied", [True, False])
    def test_gradients_reach_encoder_inhibition_threshold(self, problem, tied):
        D, x = problem
        net = LISTA(D, 0.5, 4, tied=tied)
        target = torch.randn(5, M, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        (net(x) - target).pow(2).sum().backward()
        assert float(net.encoder.grad.abs().sum()) > 0
        assert all(float(p.grad.abs().sum()) > 0 for p in net.inhibition)
        if tied:
            assert float(net.threshold.grad.abs().sum()) > 0
        else:  # every stage's threshold gets a gradient
            assert bool((net.threshold.grad.abs().sum(1) > 0).all())

    def test_gradcheck(self, problem):
        D, x = problem
        net = LISTA(D[:4, :6], 0.3, 3, tied=False)
        names = [n for n, _ in net.named_parameters()]

        def f(xx, *params):
            return torch.func.functional_call(net, dict(zip(names, params)), (xx,))

        params = [p.detach().clone().requires_grad_() for p in net.parameters()]
        xx = x[:2, :4].clone().requires_grad_()
        assert torch.autograd.gradcheck(f, (xx, *params))

    def test_reset_to_ista(self, problem):
        D, x = problem
        net = LISTA(D, 1.0, 3, tied=False)
        ref = net(x).detach()
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.01)
        assert not torch.allclose(net(x), ref)
        torch.testing.assert_close(net.reset_to_ista()(x), ref)

    def test_negative_threshold_is_used_by_magnitude(self, problem):
        D, x = problem
        net = LISTA(D, 1.0, 2, tied=True)
        ref = net(x).detach()
        with torch.no_grad():
            net.threshold.neg_()
        torch.testing.assert_close(net(x), ref)

    def test_ista_parameters(self, problem):
        D, _ = problem
        We, S, theta, L = ista_parameters(D, 2.0, lipschitz=10.0)
        assert L == 10.0 and theta == pytest.approx(2.0 / 10.0)  # L as given; θ = α / L computed
        torch.testing.assert_close(We, D.T / 10)
        torch.testing.assert_close(S, torch.eye(M, dtype=torch.float64) - D.T @ D / 10)

    def test_bad_inputs(self, problem):
        D, x = problem
        for stages in (0, -1, 1.5, True, "3", None):
            with pytest.raises(ValueError, match="stages must be an int >= 1"):
                LISTA(D, 0.5, stages)
        for bad in (D[0], D[None], torch.zeros(0, 3)):
            with pytest.raises(ValueError, match=r"dictionary must be a matrix W_d of shape \(n, m\)"):
                LISTA(bad, 0.5, 2)
        with pytest.raises(TypeError, match="dictionary: expected a torch.Tensor"):
            LISTA(D.tolist(), 0.5, 2)
        with pytest.raises(TypeError, match="dictionary must be a real floating-point tensor"):
            LISTA(torch.ones(3, 4, dtype=torch.int64), 0.5, 2)
        with pytest.raises(ValueError, match="dictionary must be finite"):
            LISTA(torch.full((3, 4), float("nan")), 0.5, 2)
        with pytest.raises(ValueError, match="dictionary must not be zero"):
            LISTA(torch.zeros(3, 4), 0.5, 2)
        for alpha in (0, -0.1, float("nan")):
            with pytest.raises(ValueError, match="alpha must be > 0"):
                LISTA(D, alpha, 2)
        with pytest.raises(TypeError, match="alpha: expected a number"):
            LISTA(D, "big", 2)
        with pytest.raises(ValueError, match="lipschitz must be > 0"):
            LISTA(D, 0.5, 2, lipschitz=0.0)
        with pytest.raises(TypeError, match="tied must be a bool"):
            LISTA(D, 0.5, 2, tied="yes")
        net = LISTA(D, 0.5, 2)
        with pytest.raises(ValueError, match=r"LISTA.forward: x must have shape \(B, 12\)"):
            net(torch.zeros(5, N + 1, dtype=torch.float64))
        with pytest.raises(ValueError, match="LISTA.forward: x must have shape"):
            net(torch.zeros(N, dtype=torch.float64))
        with pytest.raises(TypeError, match="x must be a floating-point tensor"):
            net(torch.zeros(5, N, dtype=torch.int64))


def test_alpha_and_lipschitz_travel_with_the_weights():
    g = torch.Generator().manual_seed(0)
    a = LISTA(torch.randn(8, 12, generator=g, dtype=torch.float64), 0.5, 3, tied=True, lipschitz=40.0)
    b = LISTA(torch.randn(8, 12, generator=g, dtype=torch.float64), 0.1, 3, tied=True)
    b.load_state_dict(a.state_dict())
    assert (b.alpha, b.lipschitz) == (0.5, 40.0)
    with torch.no_grad():
        b.encoder.add_(1.0)
    b.reset_to_ista()  # back to ISTA for the loaded dictionary, α and L
    We, S, theta, _ = ista_parameters(a.dictionary, 0.5, 40.0)
    torch.testing.assert_close(b.encoder, We)
    torch.testing.assert_close(b.inhibition[0], S)
    torch.testing.assert_close(b.threshold, torch.full_like(b.threshold, theta))


def test_layers_is_a_deprecated_alias_of_stages():
    D = torch.randn(6, 9, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="use stages="):
        old = LISTA(D, 0.5, layers=3)
    assert old.stages == 3 and old.layers == 3
    x = torch.randn(2, 6, dtype=torch.float64)
    torch.testing.assert_close(old(x), LISTA(D, 0.5, stages=3)(x))
    with pytest.raises(ValueError, match="not both"):
        LISTA(D, 0.5, 3, layers=3)
