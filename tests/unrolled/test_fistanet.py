"""FISTA-Net: the authors' architecture and scalars, one shared block, FBP start, both gradient variants, loss."""

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from proxlab.losses import fistanet_loss
from proxlab.operators import Denoising, GaussianBlur, ParallelBeamCT
from proxlab.registry import build_model, model_entry
from proxlab.unrolled import FISTANet, UnrolledOutput
from proxlab.unrolled.fistanet import FISTANetBlock

SCALARS = ("w_theta", "b_theta", "w_mu", "b_mu", "w_rho", "b_rho")


@pytest.fixture(scope="module")
def op():
    return ParallelBeamCT(16, 12)


def _phantom(n: int, batch: int, seed: int) -> torch.Tensor:
    """Discs of random centre, radius and intensity inside the inscribed circle."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(n) - n // 2, torch.arange(n) - n // 2, indexing="ij")
    x = torch.zeros(batch, 1, n, n)
    for b in range(batch):
        for _ in range(3):
            c = (torch.rand(2, generator=g) - 0.5) * n * 0.4
            r = (0.1 + 0.15 * torch.rand(1, generator=g)) * n
            x[b, 0] += 0.4 * torch.rand(1, generator=g) * (((xx - c[0]) ** 2 + (yy - c[1]) ** 2) <= r**2)
    return x.clamp(0, 1)


def _dense_norm(op: ParallelBeamCT) -> float:
    """‖A‖² from the dense matrix of A (its columns A e_i), independent of the power iteration."""
    n = op.size
    eye = torch.eye(n * n, dtype=torch.float64).reshape(n * n, 1, n, n)
    return float(torch.linalg.matrix_norm(op(eye).reshape(n * n, -1), ord=2) ** 2)


def test_parameter_count_is_the_papers_74599(op):
    net = FISTANet(op)
    conv = lambda i, o: 9 * i * o + o  # noqa: E731 - 3×3 weights and biases
    block = conv(1, 32) + 8 * conv(32, 32) + conv(32, 1)
    assert block == 74_593
    assert sum(p.numel() for p in net.block.parameters()) == block
    # the authors' count, sum(p.numel() for p in fista_net.parameters()): the shared block once, plus 6 scalars
    assert sum(p.numel() for p in net.parameters()) == 74_599
    assert sorted(n for n, _ in net.named_parameters() if not n.startswith("block.")) == sorted(SCALARS)
    # the count does not grow with the number of phases: the block is shared
    assert sum(p.numel() for p in FISTANet(op, phases=11).parameters()) == 74_599
    # the authors' initialisation: zero biases, Xavier-normal weights
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in net.block.modules() if isinstance(m, torch.nn.Conv2d))
    w = net.block.forward_convs[0].weight
    torch.testing.assert_close(w.std(), torch.tensor(math.sqrt(2 / (2 * 9 * 32))), rtol=0.08, atol=0)


def test_initial_scalars_are_the_authors_values(op):
    net = FISTANet(op)
    # softplus(-0.5 k - 2), softplus(0.1 - 0.2 k), 1 - log(2) / softplus(0.5 k) at k = 0..5, worked out by hand
    torch.testing.assert_close(net.thresholds().detach(),
                               torch.tensor([0.126928, 0.078890, 0.048587, 0.029750, 0.018150, 0.011048]), atol=2e-6, rtol=0)
    torch.testing.assert_close(net.step_sizes().detach(),
                               torch.tensor([0.744397, 0.644397, 0.554355, 0.474077, 0.403186, 0.341154]), atol=2e-6, rtol=0)
    torch.testing.assert_close(net.momenta().detach(),
                               torch.tensor([0.0, 0.288406, 0.472194, 0.592605, 0.674109, 0.731223]), atol=2e-6, rtol=0)


def test_scalars_follow_their_formulas_for_other_values(op):
    net = FISTANet(op, phases=4)
    values = dict(zip(SCALARS, (0.3, -1.0, 0.25, -0.7, -0.4, 1.2)))
    with torch.no_grad():
        for name, v in values.items():
            getattr(net, name).fill_(v)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    w = values
    theta = [sp(w["w_theta"] * k + w["b_theta"]) for k in range(4)]
    mu = [sp(w["w_mu"] * k + w["b_mu"]) for k in range(4)]
    rho = [(sp(w["w_rho"] * k + w["b_rho"]) - sp(w["b_rho"])) / sp(w["w_rho"] * k + w["b_rho"]) for k in range(4)]
    for got, want in ((net.thresholds(), theta), (net.step_sizes(), mu), (net.momenta(), rho)):
        torch.testing.assert_close(got.detach(), torch.tensor(want), atol=1e-6, rtol=1e-6)
    assert net.momenta()[3] < 0  # a negative w_rho gives negative momenta: nothing clamps them


def test_one_block_runs_every_phase(op):
    net = FISTANet(op, phases=5, features=4)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10 and all(any(c is m for m in net.block.modules()) for c in convs)
    calls = []
    net.block.register_forward_hook(lambda mod, args, out: calls.append(args[1].detach().clone()))
    net(op(_phantom(16, 1, 0)))
    assert len(calls) == 5  # the one block, once per phase, each with its own threshold θ_k
    torch.testing.assert_close(torch.stack(calls), net.thresholds().detach())
    assert net.stages == 5 and net.tied


def test_start_is_fbp(op):
    net = FISTANet(op, phases=2, features=4)
    with torch.no_grad():
        net.b_mu.fill_(-60.0)  # μ_k ≈ 1e-26: the first block input r_0 is x_0 itself
    seen = []
    net.block.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    x = _phantom(16, 2, 1)
    y = op(x)
    net(y)
    torch.testing.assert_close(seen[0], op.fbp(y))
    assert float((op.fbp(y) - op.adjoint(y)).abs().max()) > 0.1  # FBP, not the plain back-projection
    x0 = torch.rand_like(x)
    seen.clear()
    net(y, x0=x0)
    torch.testing.assert_close(seen[0], x0)


@pytest.mark.parametrize("gradient", ["adjoint", "fbp"])
def test_zero_g_is_accelerated_projected_gradient(op, gradient):
    # G = 0 makes every phase x_{k+1} = ReLU(r_k): FISTA with the projection onto x >= 0 as the prox, the learned
    # μ_k and ρ_k. Written out here with ‖A‖² from the dense matrix.
    torch.manual_seed(0)
    net = FISTANet(op, phases=4, features=4, gradient=gradient)
    with torch.no_grad():
        net.block.conv_G.weight.zero_()
        net.block.conv_G.bias.zero_()
        net.w_rho.fill_(1.5)  # larger momenta than the start values, so that the ρ_k matter
    L = _dense_norm(op)
    mu, rho = net.step_sizes().detach(), net.momenta().detach()
    x = _phantom(16, 2, 2)
    b = op(x) + 0.05 * torch.randn(2, 1, 12, 16)
    xk = v = op.fbp(b)
    for k in range(4):
        d = op.adjoint(op(v) - b) / L if gradient == "adjoint" else op.fbp(op(v) - b)
        x_new = F.relu(v - mu[k] * d)
        v, xk = x_new + rho[k] * (x_new - xk), x_new
    with torch.no_grad():
        out = net(b)
    torch.testing.assert_close(out, xk, atol=1e-5, rtol=1e-4)
    assert float((out - F.relu(op.fbp(b))).abs().max()) > 1e-2  # the phases did move the estimate


def test_fbp_variant_has_no_gradient_through_the_data_term(op):
    torch.manual_seed(1)
    x = _phantom(16, 1, 3)
    for gradient in ("adjoint", "fbp"):
        net = FISTANet(op, phases=3, features=4, gradient=gradient)
        y = op(x).requires_grad_(True)
        (g_full,) = torch.autograd.grad(net(y).pow(2).sum(), y)
        # the same network with y entering the data term as a constant: only the path through x_0 = FBP(y) remains
        y2 = y.detach().clone().requires_grad_(True)
        (g_start,) = torch.autograd.grad(net(y2.detach(), x0=op.fbp(y2)).pow(2).sum(), y2)
        gap = float((g_full - g_start).abs().max()) / float(g_full.abs().max())
        if gradient == "fbp":
            assert gap < 1e-5
        else:
            assert gap > 1e-2
        # with x_0 given, y reaches the output only through the data term
        x0 = op.fbp(y.detach())
        (g_y,) = torch.autograd.grad(net(y, x0=x0).sum(), y, allow_unused=True)
        assert (g_y is None) == (gradient == "fbp")
        # μ is still learned in both variants
        net.zero_grad()
        net(y.detach()).pow(2).sum().backward()
        assert float(net.b_mu.grad.abs()) > 0 and float(net.w_mu.grad.abs()) > 0


def test_fbp_variant_jacobian_of_a_phase_is_the_relu_mask(op):
    # one phase, G = 0: x_1 = ReLU(x_0 - μ_0 FBP(A x_0 - b)) with the FBP term detached, so ∂x_1/∂x_0 = 1[x_1 > 0]
    net = FISTANet(op, phases=1, features=4, gradient="fbp")
    with torch.no_grad():
        net.block.conv_G.weight.zero_()
        net.block.conv_G.bias.zero_()
    b = op(_phantom(16, 1, 4))
    x0 = torch.rand(1, 1, 16, 16, requires_grad=True)
    out = net(b, x0=x0)
    (g,) = torch.autograd.grad(out.sum(), x0)
    torch.testing.assert_close(g, (out > 0).to(g.dtype))
    adj = FISTANet(op, phases=1, features=4)
    adj.block.load_state_dict(net.block.state_dict())
    (g2,) = torch.autograd.grad(adj(b, x0=x0).sum(), x0)
    assert float((g2 - (adj(b, x0=x0) > 0).to(g2.dtype)).abs().max()) > 1e-3


def test_gradcheck_float64():
    op = ParallelBeamCT(8, 4)
    torch.manual_seed(2)
    net = FISTANet(op, phases=2, features=3).double()
    with torch.no_grad():
        for m in net.block.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.bias.normal_(0, 0.3)  # no pixel sits at a ReLU kink (zero biases give exact zeros)
    x = _phantom(8, 1, 5).double()
    y = (op(x) + 0.05 * torch.randn(1, 1, 4, 8, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: net(v), (y,), eps=1e-6, atol=1e-5)
    scalars = tuple(getattr(net, n).detach().clone().requires_grad_(True) for n in SCALARS)
    w = net.block.conv_D.weight.detach().clone().requires_grad_(True)

    def f(*params):
        return functional_call(net, dict(zip(SCALARS + ("block.conv_D.weight",), params)), (y.detach(),))

    assert torch.autograd.gradcheck(f, scalars + (w,), eps=1e-6, atol=1e-5)
    # "fbp": one phase has its data term at x_0 = FBP(b), which no weight changes, so its gradient is exact
    for phases in (1, 2):
        fbp = FISTANet(op, phases=phases, features=3, gradient="fbp").double()
        fbp.block.load_state_dict(net.block.state_dict())
        g = lambda *s: functional_call(fbp, dict(zip(SCALARS, s)), (y.detach(),))  # noqa: E731
        # with two phases the detached FBP(A y_1 - b) moves with the weights but passes them no gradient: the
        # authors' surrogate gradient is not the derivative of their forward map
        assert torch.autograd.gradcheck(g, scalars, eps=1e-6, atol=1e-5, raise_exception=False) == (phases == 1)


def test_aux_terms_are_the_symmetry_residual_and_the_code(op):
    torch.manual_seed(3)
    net = FISTANet(op, phases=3, features=4)
    y = op(_phantom(16, 2, 6))
    inputs, outputs = [], []
    net.block.register_forward_pre_hook(lambda mod, args: inputs.append(args[0].detach()))
    net.block.register_forward_hook(lambda mod, args, res: outputs.append(res.detach()))
    plain = net(y)  # the hooks see the plain call's phases
    out = net(y, return_aux=True)
    assert isinstance(plain, torch.Tensor)
    assert isinstance(out, UnrolledOutput) and set(out.aux) == {"symmetry", "sparsity"}
    assert all(len(t) == 3 for t in out.aux.values())
    assert all(t.shape == (2, 4, 16, 16) for ts in out.aux.values() for t in ts)
    torch.testing.assert_close(plain, out.x)
    # phase 1 written out: D, four forward convs with ReLU between, soft(θ_1); sym = H̃(H(Dr)) - Dr without θ or G
    blk = net.block
    c = lambda v, m: F.conv2d(v, m.weight, m.bias, padding=1)  # noqa: E731
    r = inputs[1]
    d = c(r, blk.conv_D)
    f = blk.forward_convs
    z = c(F.relu(c(F.relu(c(F.relu(c(d, f[0])), f[1])), f[2])), f[3])
    theta = net.thresholds()[1]
    code = torch.sign(z) * (z.abs() - theta).clamp(min=0)
    bw = blk.backward_convs
    back = lambda u: c(F.relu(c(F.relu(c(F.relu(c(u, bw[0])), bw[1])), bw[2])), bw[3])  # noqa: E731
    torch.testing.assert_close(out.aux["sparsity"][1], code)
    torch.testing.assert_close(out.aux["symmetry"][1], back(z) - d)
    x2 = F.relu(r + c(back(code), blk.conv_G))
    torch.testing.assert_close(outputs[1], x2)
    # the momentum: phase 2 steps from v = x_2 + ρ_1 (x_2 - x_1), its block input is v - μ_2 Aᵀ(Av - b) / ‖A‖²
    v = x2 + net.momenta()[1].detach() * (x2 - outputs[0])
    r2 = v - net.step_sizes()[2].detach() * op.adjoint(op(v) - y) / _dense_norm(op)
    torch.testing.assert_close(inputs[2], r2, atol=1e-5, rtol=1e-4)
    assert 0.05 < float((code == 0).float().mean()) < 1  # the threshold zeroes part of the code


def test_bad_input_is_named():
    op = ParallelBeamCT(8, 4)
    for phases in (0, -2, True, 2.0):
        with pytest.raises(ValueError, match="phases"):
            FISTANet(op, phases=phases)
    with pytest.raises(ValueError, match="gradient.*'adjoint', 'fbp'.*'xyz'"):
        FISTANet(op, gradient="xyz")
    with pytest.raises(ValueError, match="features"):
        FISTANet(op, features=0)
    with pytest.raises(TypeError, match="operator.*LinearOperator.*Linear"):
        FISTANet(torch.nn.Linear(4, 4))
    with pytest.raises(TypeError, match="operator.*gradient='fbp'.*ParallelBeamCT.*GaussianBlur"):
        FISTANet(GaussianBlur(1.0), gradient="fbp")
    with pytest.raises(ValueError, match="operator.*single-channel.*3, 8, 8"):
        FISTANet(Denoising((3, 8, 8)))
    FISTANet(GaussianBlur(1.0), phases=1)  # the adjoint variant takes any single-channel operator
    with pytest.raises(ValueError, match="y"):
        FISTANet(op)(torch.zeros(1, 1, 5, 8))


def test_registered_model():
    op = ParallelBeamCT(8, 4)
    assert model_entry("fistanet").needs_operator
    net = build_model("fistanet", operator=op, phases=2, gradient="fbp")
    assert isinstance(net, FISTANet) and net.phases == 2 and net.gradient == "fbp" and net.operator is op


def test_loss_is_mse_plus_weighted_terms_by_hand():
    pred, target = torch.full((2, 1, 4, 4), 0.3), torch.full((2, 1, 4, 4), 0.2)
    aux = {"symmetry": (torch.full((2, 3, 4, 4), 2.0), torch.full((2, 3, 4, 4), -1.0)),
           "sparsity": (torch.full((2, 3, 4, 4), -3.0), torch.ones(2, 3, 4, 4))}
    # 0.1² + 0.5 (2² + 1²) + 0.25 (3 + 1)
    torch.testing.assert_close(fistanet_loss(pred, target, aux, symmetry=0.5, sparsity=0.25), torch.tensor(3.51))
    # the defaults are the paper's 0.01 and 0.001
    torch.testing.assert_close(fistanet_loss(pred, target, aux), torch.tensor(0.01 + 0.01 * 5 + 0.001 * 4))
    torch.testing.assert_close(fistanet_loss(pred, target, None), torch.tensor(0.01))
    with pytest.raises(ValueError, match="sparsity"):
        fistanet_loss(pred, target, aux, sparsity=-1.0)


def test_experiment_loss_matches_the_function(op):
    import proxlab.experiments.builtin  # noqa: F401 - registers the built-in losses
    from proxlab.experiments.parts import LOSSES, LossContext

    part = LOSSES.get("fistanet")
    opts = part.validate_options({"symmetry": 0.2, "sparsity": 0.05})
    with pytest.raises(ValueError, match="symetry"):
        part.validate_options({"symetry": 0.2})
    ctx = LossContext(cfg=None, task=None, operator=op, noise=0.0, splits=None, stage=None)
    loss_fn = part.build(opts, ctx)
    net = FISTANet(op, phases=2, features=4)
    x = _phantom(16, 2, 7)
    got = loss_fn(net, (x,), SimpleNamespace(generator=torch.Generator().manual_seed(0)))
    out = net(op(x), return_aux=True)
    torch.testing.assert_close(got, fistanet_loss(out.x, x, out.aux, symmetry=0.2, sparsity=0.05))
    assert float(got.detach()) > float(F.mse_loss(out.x, x).detach()) + 1e-6


@pytest.mark.parametrize("gradient", ["adjoint", "fbp"])
def test_adam_steps_reduce_the_loss(gradient):
    op = ParallelBeamCT(16, 6)
    torch.manual_seed(4)
    net = FISTANet(op, phases=3, features=8, gradient=gradient)
    x = 2 * _phantom(16, 4, 8)
    y = op(x) + 0.01 * torch.randn(4, 1, 6, 16)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = net(y, return_aux=True)
        loss = fistanet_loss(out.x, x, out.aux)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        out = net(y, return_aux=True)
        final = float(fistanet_loss(out.x, x, out.aux))
    assert final < 0.75 * losses[0], (losses[0], final)  # measured: about 0.5 x for both variants


def test_theta_start_sets_the_first_threshold_and_keeps_the_rest(op):
    net = FISTANet(op, phases=6, features=4, theta_start=0.03)
    assert float(net.thresholds()[0].detach()) == pytest.approx(0.03, rel=1e-6)
    ref = FISTANet(op, phases=6, features=4)
    assert float(net.w_theta.detach()) == float(ref.w_theta.detach()) and float(net.b_mu.detach()) == float(ref.b_mu.detach())
    # the later thresholds keep the authors' slope in k: θ_k = softplus(w_θ k + b_θ)
    assert torch.allclose(net.thresholds(), torch.nn.functional.softplus(ref.w_theta * torch.arange(6.) + net.b_theta))
    assert "theta_start=0.03" in repr(net)
    for bad, err in ((0.0, ValueError), (-1.0, ValueError), ("a", TypeError)):
        with pytest.raises(err, match="theta_start"):
            FISTANet(op, theta_start=bad)
