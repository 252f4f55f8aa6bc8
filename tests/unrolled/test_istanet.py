"""ISTA-Net / ISTA-Net+ / ResNet-prox PGD: faithful architecture, block independence, positivity, gradients."""

import pytest
import torch
import torch.nn.functional as F

from proxlab.operators import BlockCompressedSensing
from proxlab.registry import build_model
from proxlab.training import load_model_weights, save_model
from proxlab.losses import istanet_loss
from proxlab.solvers import pgd_step
from proxlab.unrolled import ISTANet, ISTANetProx, UnrolledOutput, resnet_unrolled
from proxlab.priors.classic import soft_threshold
from proxlab.unrolled.istanet import conv_macs_per_pixel


@pytest.fixture(scope="module")
def op():
    return BlockCompressedSensing(0.1, seed=3)


def test_parameter_counts_match_the_authors_networks(op):
    # 171,090 (ISTA-Net) and 336,978 (ISTA-Net+) parameters in the authors' 9-phase models.
    assert sum(p.numel() for p in ISTANet(op, plus=False).parameters()) == 171_090
    assert sum(p.numel() for p in ISTANet(op, plus=True).parameters()) == 336_978


def test_istanet_plus_stage_matches_the_written_out_formula(op):
    torch.manual_seed(0)
    prox = ISTANetProx(8, plus=True).train()
    r = torch.rand(3, 1, 33, 33)
    out, aux = prox.forward_aux(r, None)
    torch.testing.assert_close(prox(r, None), out)
    w = {n: m.weight for n, m in prox.named_children()}
    c = lambda x, n: F.conv2d(x, w[n], padding=1)  # noqa: E731
    x_d = c(r, "conv_D")
    z = c(F.relu(c(x_d, "conv1_forward")), "conv2_forward")
    theta = F.softplus(prox.raw_threshold)
    s = torch.sign(z) * torch.clamp(z.abs() - theta, min=0)
    expect = r + c(c(F.relu(c(s, "conv1_backward")), "conv2_backward"), "conv_G")
    torch.testing.assert_close(out, expect)
    sym = c(F.relu(c(z, "conv1_backward")), "conv2_backward") - x_d
    torch.testing.assert_close(aux["symmetry"], sym)


def test_istanet_first_stage_is_a_gradient_step_then_the_prox(op):
    torch.manual_seed(1)
    net = ISTANet(op, stages=1, plus=False, channels=4).eval()
    x = torch.rand(2, 1, 33, 33)
    y = op(x)
    rho = float(F.softplus(net.raw_step_size[0].detach()))
    assert rho == pytest.approx(0.5, rel=1e-6)  # the authors' initial step
    x0 = op.init(y)
    r = x0 - rho * op.adjoint(op(x0) - y)
    with torch.no_grad():
        torch.testing.assert_close(net(y), net.proxes[0](r, None))


def test_blocks_are_reconstructed_independently(op):
    torch.manual_seed(2)
    A = op.resized((60, 70))
    net = ISTANet(op, stages=2, channels=4).eval()
    x = torch.rand(1, 1, 60, 70)
    y = A(x)
    with torch.no_grad():
        whole = net(y)
        assert whole.shape == (1, 1, 66, 99)
        assert net(y, image_size=(60, 70)).shape == (1, 1, 60, 70)
        for i in range(2):
            for j in range(3):
                one = net(y[:, :, i : i + 1, j : j + 1])
                torch.testing.assert_close(whole[..., 33 * i : 33 * i + 33, 33 * j : 33 * j + 33], one)


def test_steps_and_thresholds_stay_positive(op):
    net = ISTANet(op, stages=3, channels=2)
    with torch.no_grad():
        net.raw_step_size.fill_(-50.0)
        for p in net.proxes:
            p.raw_threshold.fill_(-50.0)
    assert bool((net.step_sizes() > 0).all())
    assert all(float(p.threshold.detach()) > 0 for p in net.proxes)
    assert float(soft_threshold(torch.tensor(0.3), torch.tensor(0.1))) == pytest.approx(0.2)


@pytest.mark.parametrize("plus", [False, True])
def test_aux_holds_every_stage_symmetry_residual(op, plus):
    # what the stages' prox modules used to keep on themselves: F~(F(s)) - s of each stage's input s
    torch.manual_seed(3)
    net = ISTANet(op, stages=3, plus=plus, channels=4).train()
    x = torch.rand(4, 1, 33, 33)
    y = op(x)
    out = net(y, return_aux=True)
    assert isinstance(out, UnrolledOutput) and set(out.aux) == {"symmetry"} and len(out.aux["symmetry"]) == 3
    torch.testing.assert_close(out.x, net(y))
    flat_y = y.reshape(-1, 1, 1, 1, y.shape[-1])
    A = net.operator
    state, ATy = A.init(flat_y), A.adjoint(flat_y)
    for k, prox in enumerate(net.proxes):
        gamma = float(net.step_sizes()[k].detach()) / A.norm()
        r = state - gamma * (A.gram(state) - ATy)
        src = prox.conv_D(r) if plus else r
        z = prox.conv2_forward(F.relu(prox.conv1_forward(src)))
        torch.testing.assert_close(out.aux["symmetry"][k], prox._backward(z) - src)
        state = pgd_step(state, A, flat_y, prox, gamma, ATy)
    torch.testing.assert_close(out.x, A.from_blocks(state.reshape(*y.shape[:4], -1)))
    # the loss: MSE + γ Σ_k mean(sym_k²); nothing is left on the module
    loss = istanet_loss(out.x, x, out.aux, gamma=0.01)
    sym = sum(t.pow(2).mean() for t in out.aux["symmetry"])
    assert float(sym.detach()) > 1e-6
    torch.testing.assert_close(loss, F.mse_loss(net(y), x) + 0.01 * sym)
    assert not any(hasattr(p, "symmetry") for p in net.proxes)
    # eval mode, too, returns the terms when asked (and only then computes them)
    with torch.no_grad():
        again = net.eval()(y, return_aux=True)
    torch.testing.assert_close(again.aux["symmetry"][2], out.aux["symmetry"][2].detach())


def test_gradcheck_float64():
    op = BlockCompressedSensing(0.1, seed=0, block=5).double()
    torch.manual_seed(4)
    net = ISTANet(op, stages=2, channels=2).double().train()
    for mod in (net, resnet_unrolled(op, stages=2, channels=3).double()):
        y = op(torch.rand(1, 1, 5, 5, dtype=torch.float64)).requires_grad_()
        assert torch.autograd.gradcheck(lambda v: mod(v), (y,), eps=1e-6, atol=1e-5)
    # and with respect to the learned step and threshold
    params = [net.raw_step_size, net.proxes[0].raw_threshold]
    y = op(torch.rand(2, 1, 5, 5, dtype=torch.float64))
    out = net(y, return_aux=True)
    loss = istanet_loss(out.x, torch.rand(2, 1, 5, 5, dtype=torch.float64), out.aux)
    grads = torch.autograd.grad(loss, params)
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_weights_carry_phi_and_qinit(tmp_path):
    phi = BlockCompressedSensing(0.25, seed=11).phi
    op = BlockCompressedSensing(None, phi=phi, qinit=torch.randn(1089, phi.shape[0]) * 0.01)
    net = build_model("istanet", operator=op, plus=False, stages=2)
    save_model(tmp_path / "w.safetensors", net)
    fresh = build_model("istanet", ratio=0.25, plus=False, stages=2)  # placeholder Φ (seed 0) and zero Qinit
    assert not torch.equal(fresh.operator.phi, phi)
    load_model_weights(tmp_path / "w.safetensors", fresh)
    assert torch.equal(fresh.operator.phi, phi) and torch.equal(fresh.operator.qinit, op.qinit)
    # the factors of ΦΦᵀ behind solve_normal/norm follow the loaded Φ
    v = torch.rand(1, 1, 33, 33)
    torch.testing.assert_close(fresh.operator.solve_normal(v, 0.3), op.solve_normal(v, 0.3))
    assert fresh.operator.norm() == pytest.approx(op.norm())
    x = torch.rand(1, 1, 33, 33)
    with torch.no_grad():
        torch.testing.assert_close(fresh.eval()(op(x)), net.eval()(op(x)))


def test_conv_macs_count():
    op = BlockCompressedSensing(0.25)
    assert conv_macs_per_pixel(ISTANet(op)) == 9 * 9 * (32 + 4 * 32 * 32 + 32)
    # a tied prox is run once per stage
    r = resnet_unrolled(op, stages=5, channels=8, blocks=1)
    assert conv_macs_per_pixel(r) == 5 * 9 * (8 + 2 * 64 + 8)


def test_bad_inputs_name_the_argument(op):
    with pytest.raises(TypeError, match="BlockCompressedSensing"):
        ISTANet(torch.nn.Identity())
    net = ISTANet(op, stages=1, channels=2)
    with pytest.raises(ValueError, match=r"y must have shape \(B, C, Hb, Wb, 109\)"):
        net(torch.zeros(1, 1, 1, 1, 50))
    with pytest.raises(ValueError, match="channels"):
        ISTANetProx(0)


def test_loading_a_matrix_refreshes_cached_factors(tmp_path):
    from proxlab.operators import CompressedSensing

    a, b = CompressedSensing(20, 30, seed=1), CompressedSensing(20, 30, seed=2)
    b.load_state_dict(a.state_dict())
    v = torch.randn(2, 30)
    torch.testing.assert_close(b.solve_normal(v, 0.3), a.solve_normal(v, 0.3))
    assert b.norm() == pytest.approx(a.norm())


def test_plain_istanet_split_identity_start_is_soft_thresholding(op):
    torch.manual_seed(5)
    prox = ISTANetProx(8, plus=False, zero_residual=True).double().train()
    v = torch.randn(3, 1, 33, 33, dtype=torch.float64)
    out, aux = prox.forward_aux(v)
    torch.testing.assert_close(out, soft_threshold(v, prox.threshold))
    # an exact left inverse to start with (exactly 0 in a direct convolution; a transform-based one may round)
    assert float(aux["symmetry"].detach().abs().max()) <= 1e-12
    # every weight still receives a gradient path: the unused channels are Xavier, not zero (but the output's)
    assert float(prox.conv2_forward.weight[2:].detach().abs().sum()) > 0
    dop = BlockCompressedSensing(0.1, seed=3).double()
    net = ISTANet(dop, stages=2, plus=False, channels=4, zero_residual=True).double().eval()
    x = torch.rand(2, 1, 33, 33, dtype=torch.float64)
    y = dop(x)
    rhos = F.softplus(net.raw_step_size.detach())
    ref = dop.init(y)
    for k in range(2):
        r = ref - rhos[k] * dop.adjoint(dop(ref) - y)
        ref = soft_threshold(r, net.proxes[k].threshold)
    with torch.no_grad():
        torch.testing.assert_close(net(y), ref)
    with pytest.raises(ValueError, match="channels >= 2"):
        ISTANetProx(1, plus=False, zero_residual=True)


def test_plain_istanet_stage_and_symmetry_match_the_written_out_formula():
    torch.manual_seed(8)
    prox = ISTANetProx(6, plus=False).double().train()
    r = torch.rand(2, 1, 33, 33, dtype=torch.float64)
    out, aux = prox.forward_aux(r, None)
    conv = lambda v, m: F.conv2d(v, m.weight, padding=1)  # noqa: E731
    z = conv(F.relu(conv(r, prox.conv1_forward)), prox.conv2_forward)
    back = lambda v: conv(F.relu(conv(v, prox.conv1_backward)), prox.conv2_backward)  # noqa: E731
    theta = F.softplus(prox.raw_threshold)
    torch.testing.assert_close(out, back(torch.sign(z) * torch.clamp(z.abs() - theta, min=0)))
    torch.testing.assert_close(aux["symmetry"], back(z) - r)


def test_wrapped_model_returns_the_symmetry_term(op, tmp_path):
    # through DistributedDataParallel the stages' residuals come back with the output (one CPU process, gloo)
    import torch.distributed as dist

    torch.manual_seed(9)
    net = ISTANet(op, stages=2, plus=False, channels=4).train()
    x = torch.rand(2, 1, 33, 33)
    y = op(x)
    out = net(y, return_aux=True)
    bare = istanet_loss(out.x, x, out.aux, gamma=0.5)
    assert float((bare - F.mse_loss(net(y), x)).detach()) > 1e-6  # the symmetry term is really part of the loss
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        wrapped = torch.nn.parallel.DistributedDataParallel(net)(y, return_aux=True)
        loss = istanet_loss(wrapped.x, x, wrapped.aux, gamma=0.5)
        loss.backward()
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(loss, bare)
    assert float(net.proxes[1].conv1_backward.weight.grad.abs().sum()) > 0


def test_loading_weights_after_a_forward_uses_the_new_phi():
    # the step 1/‖Φ‖² is cached per shape; loading weights that carry another Φ must refresh it
    torch.manual_seed(10)
    src_op = BlockCompressedSensing(None, phi=3.0 * torch.randn(109, 1089) / 33)  # rows not orthonormal, m as dst
    src = ISTANet(src_op, stages=2, channels=4).eval()
    dst = ISTANet(BlockCompressedSensing(0.1, seed=3), stages=2, channels=4).eval()
    y = src_op(torch.rand(1, 1, 33, 33))
    y_dst = dst.operator(torch.rand(1, 1, 33, 33))
    with torch.no_grad():
        dst(y_dst)  # fills dst's cache with the old ‖Φ‖²
        dst.load_state_dict(src.state_dict())
        torch.testing.assert_close(dst(y), src(y))


def test_network_owns_a_copy_of_the_operator(op):
    net = ISTANet(op, stages=1, channels=2)
    phi0 = op.phi.clone()
    other = ISTANet(BlockCompressedSensing(0.1, seed=4), stages=1, channels=2)
    net.load_state_dict(other.state_dict())
    torch.testing.assert_close(op.phi, phi0)  # the caller's operator is untouched
    torch.testing.assert_close(net.operator.phi, other.operator.phi)
    assert net.operator.norm() == pytest.approx(other.operator.norm())
    dop = BlockCompressedSensing(0.1, seed=3).double()
    assert ISTANet(dop, stages=1, channels=2).operator.phi.dtype == torch.float64


def test_phases_is_a_deprecated_alias_of_stages(op):
    with pytest.warns(DeprecationWarning, match="use stages="):
        net = ISTANet(op, phases=2, channels=2)
    assert net.stages == 2 and net.phases == 2 and len(net.proxes) == 2
    with pytest.warns(DeprecationWarning):
        assert build_model("istanet", operator=op, phases=3, channels=2).stages == 3
    assert build_model("istanet", operator=op, stages=3, channels=2).stages == 3
    with pytest.raises(ValueError, match="not both"):
        ISTANet(op, stages=2, phases=2)


def test_stages_and_threshold_errors_name_the_argument(op):
    with pytest.raises(ValueError, match="stages must be an int >= 1, got 0"):
        ISTANet(op, stages=0)
    with pytest.raises(ValueError, match="gamma must be >= 0, got -0.1"):
        istanet_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), None, gamma=-0.1)
    with pytest.raises(ValueError, match="channels must be a positive int, got True"):
        ISTANetProx(True)
    with pytest.raises(ValueError, match="threshold must be a number > 0, got 'a'"):
        ISTANetProx(4, threshold="a")
