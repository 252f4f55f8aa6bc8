"""ADMM-CSNet: parameter counts, the layers against dense-matrix maths, the ADMM it reduces to, data consistency,
tied/untied stages, gradients, masks, bad input, training."""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from proxlab.operators import MRI
from proxlab.registry import build_model, model_entry
from proxlab.unrolled import ADMMCSNet
from proxlab.unrolled.admmcsnet import PiecewiseLinear


def stage_count(filters, kernel, points, bias=True):
    """C₁ (F k² + F), PLF F (M + 2), C₂ (F k² + 1), ρ and η; without biases F + 1 fewer."""
    return 2 * filters * kernel**2 + filters * (points + 2) + 2 + ((filters + 1) if bias else 0)


def _dft(n):
    """The orthonormal 2-D DFT as a dense matrix on row-major n×n vectors."""
    f = np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n) / np.sqrt(n)
    return np.kron(f, f)


def _real_operator(mask):
    """A = P F as a real matrix: real images (n²) to stacked (Re, Im) k-space (2n²)."""
    n = mask.shape[0]
    A = np.diag(mask.numpy().astype(float).ravel()) @ _dft(n)
    return np.vstack([A.real, A.imag])


def _stack(y):
    y = y.numpy().ravel()
    return np.concatenate([y.real, y.imag])


def _flip(m):
    """m(-k) in fft2 layout."""
    return torch.roll(torch.flip(m, (0, 1)), (1, 1), (0, 1))


def _perturb(net, g, scale=0.05):
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


# --- parameter counts -----------------------------------------------------------------------------------------------
def test_parameter_counts_follow_the_formula():
    op = MRI.radial(16, 0.3)
    # defaults: the port's 19,715 (tied), 10 stages of it (untied); without the final data-consistency step an
    # untied net has the final reconstruction's own rho
    assert stage_count(128, 5, 101) == 19_715
    assert ADMMCSNet(op, tied=True).num_parameters() == 19_715
    assert ADMMCSNet(op, tied=False).num_parameters() == 10 * 19_715 == 197_150
    assert ADMMCSNet(op, tied=False, final_dc=False).num_parameters() == 197_151
    assert ADMMCSNet(op, tied=True, final_dc=False).num_parameters() == 19_715
    for filters, kernel, points, stages, bias in ((4, 3, 11, 3, True), (6, 5, 21, 2, False), (1, 1, 2, 1, True)):
        kw = dict(stages=stages, filters=filters, kernel=kernel, plf_points=points, bias=bias)
        per_stage = stage_count(filters, kernel, points, bias)
        assert ADMMCSNet(op, tied=True, **kw).num_parameters() == per_stage
        assert ADMMCSNet(op, tied=False, **kw).num_parameters() == stages * per_stage
        assert ADMMCSNet(op, tied=False, final_dc=False, **kw).num_parameters() == stages * per_stage + 1


# --- the layers -----------------------------------------------------------------------------------------------------
def test_reconstruction_is_the_exact_solve_of_its_normal_equations():
    n = 6
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(n, n, generator=g) < 0.4).double()
    mask[0, 0] = 1
    assert not torch.equal(mask, _flip(mask))  # a mask that is not conjugate-symmetric
    net = ADMMCSNet(mask, stages=1, filters=2, kernel=3, dtype=torch.float64)
    x = torch.rand(1, 1, n, n, generator=g, dtype=torch.float64)
    y = mask * torch.fft.fft2(x, norm="ortho") + 0.05 * mask * torch.randn(1, 1, n, n, generator=g,
                                                                          dtype=torch.complex128)
    v = torch.randn(1, 1, n, n, generator=g, dtype=torch.float64)
    rho = torch.tensor(0.37, dtype=torch.float64)
    Ar = _real_operator(mask)
    aty = net.operator.adjoint(y)
    np.testing.assert_allclose(aty.numpy().ravel(), Ar.T @ _stack(y), atol=1e-13)
    # argmin over real x of ½‖Ax − y‖² + ρ/2‖x − v‖²: (AᵀA + ρI) x = Aᵀy + ρ v
    lhs = Ar.T @ Ar + 0.37 * np.eye(n * n)
    want = np.linalg.solve(lhs, Ar.T @ _stack(y) + 0.37 * v.numpy().ravel())
    np.testing.assert_allclose(net.reconstruct(aty, v, rho).numpy().ravel(), want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.reconstruct(aty, None, rho).numpy().ravel(), np.linalg.solve(lhs, Ar.T @ _stack(y)),
                               rtol=0, atol=1e-12)
    # the paper's complex formula F⁻¹[(P + ρ)⁻¹(y + ρFv)] is not a real image for this mask ...
    paper = torch.fft.ifft2((y + rho * torch.fft.fft2(v, norm="ortho")) / (mask + rho), norm="ortho")
    assert float(paper.imag.abs().max()) > 1e-2
    # ... and is the same solve for a conjugate-symmetric mask with noiseless data
    sym = torch.maximum(mask, _flip(mask))
    net = ADMMCSNet(sym, stages=1, filters=2, kernel=3, dtype=torch.float64)
    y = sym * torch.fft.fft2(x, norm="ortho")
    paper = torch.fft.ifft2((y + rho * torch.fft.fft2(v, norm="ortho")) / (sym + rho), norm="ortho")
    torch.testing.assert_close(net.reconstruct(net.operator.adjoint(y), v, rho), paper.real, rtol=0, atol=1e-12)
    assert float(paper.imag.abs().max()) < 1e-12


def test_plf_interpolates_its_knots_per_channel_and_starts_as_a_relu():
    plf = PiecewiseLinear(3, points=11, dtype=torch.float64)
    knots = plf.knots()
    torch.testing.assert_close(knots, torch.linspace(-1, 1, 11, dtype=torch.float64))
    t = torch.linspace(-3.1, 2.9, 601, dtype=torch.float64).view(1, 1, 1, -1).expand(1, 3, 1, -1)
    torch.testing.assert_close(plf(t), torch.relu(t), rtol=0, atol=1e-15)  # a ReLU, also beyond [-1, 1]
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        plf.values.copy_(torch.randn(3, 11, generator=g, dtype=torch.float64))
        plf.slopes.copy_(torch.randn(3, 2, generator=g, dtype=torch.float64))
    q, s = plf.values.detach().numpy(), plf.slopes.detach().numpy()
    torch.testing.assert_close(plf(knots.view(1, 1, 1, -1).expand(1, 3, 1, -1))[0, :, 0], plf.values.detach())
    out = plf(t)[0, :, 0].detach().numpy()
    tt, kk = t[0, 0, 0].numpy(), knots.numpy()
    for c in range(3):  # each channel its own function: linear between the knots, its own slopes outside
        want = np.interp(tt, kk, q[c])
        want = np.where(tt < -1, q[c, 0] + s[c, 0] * (tt + 1), np.where(tt > 1, q[c, -1] + s[c, 1] * (tt - 1), want))
        np.testing.assert_allclose(out[c], want, rtol=0, atol=1e-13)
    assert np.abs(out[0] - out[1]).max() > 0.1
    with pytest.raises(ValueError, match=r"t must have shape \(N, 3, H, W\), got shape \(1, 2, 4, 4\)"):
        plf(torch.zeros(1, 2, 4, 4, dtype=torch.float64))


def test_with_c2_zeroed_the_net_is_the_proximal_point_admm_of_the_data_term():
    """C₂ = 0 makes z = u = x + β, so β ← (1 − η)β stays 0 from β = 0 and the net is ADMM with g ≡ 0: the proximal
    point iteration x ← (AᵀA + ρₙI)⁻¹(Aᵀy + ρₙx) from x = 0, whatever C₁, the PLFs and η are."""
    n, stages = 6, 3
    g = torch.Generator().manual_seed(2)
    op = MRI.cartesian(n, 0.5)
    net = ADMMCSNet(op, stages=stages, filters=3, kernel=3, plf_points=11, final_dc=False, dtype=torch.float64)
    _perturb(net, g, 0.3)  # distinct rho_n, eta_n, C1, PLF per stage
    with torch.no_grad():
        for n_ in range(stages):
            net.stage(n_).conv2.weight.zero_()
            net.stage(n_).conv2.bias.zero_()
    rhos = net.penalties().tolist()
    assert min(rhos) > 0 and max(rhos) - min(rhos) > 0.05
    x_true = torch.rand(1, 1, n, n, generator=g, dtype=torch.float64)
    y = op(x_true)
    Ar = _real_operator(op.mask)
    x = np.zeros(n * n)
    for rho in rhos:
        x = np.linalg.solve(Ar.T @ Ar + rho * np.eye(n * n), Ar.T @ _stack(y) + rho * x)
    out = net(y)
    np.testing.assert_allclose(out.detach().numpy().ravel(), x, rtol=0, atol=1e-12)
    # nothing but the rhos (and C₂) reaches the output
    out.sum().backward()
    for k in range(stages):
        s = net.stage(k)
        for p in (s.conv1.weight, s.conv1.bias, s.plf.values, s.plf.slopes, s.eta):
            assert float(p.grad.abs().max()) < 1e-12
        assert float(s.rho_raw.grad.abs()) > 1e-6 and float(s.conv2.weight.grad.abs().max()) > 1e-6
    # and a non-zero C₂ does change the output
    with torch.no_grad():
        net.stage(1).conv2.weight.fill_(0.05)
        assert float((net(y) - out).abs().max()) > 1e-3


def _plf_np(c, plf):
    """The PLF written out: np.interp between the knots, the end slopes outside."""
    q, s, kk = plf.values.detach().numpy(), plf.slopes.detach().numpy(), plf.knots().numpy()
    out = np.empty_like(c)
    for ch in range(c.shape[1]):
        t = c[:, ch]
        inside = np.interp(t, kk, q[ch])
        out[:, ch] = np.where(t < kk[0], q[ch, 0] + s[ch, 0] * (t - kk[0]),
                              np.where(t > kk[-1], q[ch, -1] + s[ch, 1] * (t - kk[-1]), inside))
    return out


def test_forward_is_the_papers_recursion_written_out():
    """Dense solves, u = x + β, z = u − C₂ PLF(C₁u), β += η(x − z), a last reconstruction, then the projection
    x − A⁺(Ax − y) onto the real images that match y (the hard data consistency, for noiseless y)."""
    n, stages = 8, 3
    g = torch.Generator().manual_seed(8)
    op = MRI.cartesian(n, 0.4)
    net = ADMMCSNet(op, stages=stages, filters=3, kernel=3, plf_points=11, dtype=torch.float64)
    _perturb(net, g, 0.2)
    y = op(torch.rand(1, 1, n, n, generator=g, dtype=torch.float64))
    Ar, yr = _real_operator(op.mask), _stack(y)
    rhos, etas = net.penalties().tolist(), [float(net.stage(k).eta.detach()) for k in range(stages)]
    conv = lambda m, v: torch.nn.functional.conv2d(torch.from_numpy(v), m.weight, m.bias, padding=1).numpy()  # noqa
    solve = lambda rho, v: np.linalg.solve(Ar.T @ Ar + rho * np.eye(n * n), Ar.T @ yr + rho * v.ravel())  # noqa
    z = beta = np.zeros((1, 1, n, n))
    with torch.no_grad():
        for k in range(stages):
            s = net.stage(k)
            x = solve(rhos[k], z - beta).reshape(1, 1, n, n)
            u = x + beta
            z = u - conv(s.conv2, _plf_np(conv(s.conv1, u), s.plf))
            beta = beta + etas[k] * (x - z)
        x = solve(rhos[-1], z - beta)
        want = x - np.linalg.pinv(Ar) @ (Ar @ x - yr)
        np.testing.assert_allclose(net(y).numpy().ravel(), want, rtol=0, atol=1e-10)
        net.final_dc = False
        np.testing.assert_allclose(net(y).numpy().ravel(), x, rtol=0, atol=1e-10)
    assert np.abs(want - x).max() > 1e-3 and np.abs(beta).max() > 1e-3  # the step and the multipliers do act


@pytest.mark.parametrize("kind", ["radial", "cartesian"])
def test_final_data_consistency_matches_the_measurements(kind):
    g = torch.Generator().manual_seed(3)
    op = MRI.radial(16, 0.3) if kind == "radial" else MRI.cartesian(16, 0.3)
    assert torch.equal(op.mask, _flip(op.mask)) == (kind == "radial")
    net = ADMMCSNet(op, stages=2, filters=4, kernel=3, plf_points=21, dtype=torch.float64)
    _perturb(net, g)
    x = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64)  # B = 2, C = 3: every channel an image
    y = op(x)
    out = net(y)
    assert out.shape == x.shape and out.dtype == torch.float64 and bool(torch.isfinite(out).all())
    torch.testing.assert_close(op(out), y, rtol=0, atol=1e-12)
    net.final_dc = False
    before = net(y).detach()
    assert float((op(before) - y).abs().max()) > 1e-2  # without the step the measurements are not met
    # the step keeps the network's k-space where neither k nor -k is sampled
    free = (torch.maximum(op.mask, _flip(op.mask)) == 0).double()
    torch.testing.assert_close(free * torch.fft.fft2(out), free * torch.fft.fft2(before), rtol=0, atol=1e-11)
    if kind == "radial":  # symmetric mask: the port's Re F⁻¹[y + (1 − P) F x]
        port = torch.fft.ifft2(y + (1 - op.mask.double()) * torch.fft.fft2(before, norm="ortho"), norm="ortho")
        torch.testing.assert_close(out, port.real, rtol=0, atol=1e-12)
    torch.testing.assert_close(net(y)[1:, 2:], net(y[1:, 2:]), rtol=0, atol=1e-12)  # images do not interact
    # the port's unnormalised k-space gives the same images
    net.final_dc, net.norm = True, "backward"
    torch.testing.assert_close(net(op.mask * torch.fft.fft2(x)), out, rtol=0, atol=1e-12)


def test_radial_and_cartesian_masks_run_in_float32():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(2, 1, 16, 16, generator=g)
    for op in (MRI.radial(16, 0.25), MRI.cartesian(16, 0.3, seed=1)):
        net = ADMMCSNet(op, stages=3, filters=8)
        with torch.no_grad():
            out = net(op(x))
        assert out.shape == (2, 1, 16, 16) and out.dtype == torch.float32 and bool(torch.isfinite(out).all())
        torch.testing.assert_close(op(out), op(x), rtol=0, atol=1e-5)


# --- tied and untied stages -----------------------------------------------------------------------------------------
def test_tied_shares_one_set_of_stage_parameters_and_untied_does_not():
    torch.manual_seed(9)
    op = MRI.radial(8, 0.4)
    tied = ADMMCSNet(op, stages=4, filters=2, kernel=3, plf_points=5, tied=True)
    assert len(tied.blocks) == 1 and all(tied.stage(k) is tied.stage(0) for k in range(4))
    assert tied.final_rho_raw is None
    assert {k.split(".")[1] for k in tied.state_dict() if k.startswith("blocks.")} == {"0"}
    untied = ADMMCSNet(op, stages=4, filters=2, kernel=3, plf_points=5, tied=False, final_dc=False)
    assert len(untied.blocks) == 4 and untied.final_rho_raw is not None
    ptrs = [{p.data_ptr() for p in untied.stage(k).parameters()} for k in range(4)]
    assert all(not (ptrs[i] & ptrs[j]) for i in range(4) for j in range(i + 1, 4))
    w = [untied.stage(k).conv1.weight.detach() for k in range(4)]
    assert min(float((w[i] - w[j]).abs().max()) for i in range(4) for j in range(i + 1, 4)) > 1e-3  # own He draws
    y = op(torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(5)))
    untied(y).pow(2).sum().backward()
    for k in range(4):  # every stage's own parameters get their own gradient
        assert float(untied.stage(k).conv2.weight.grad.abs().max()) > 0
    assert float(untied.final_rho_raw.grad.abs()) > 0
    with torch.no_grad():  # the final rho matters without the data-consistency step, not after it
        aty = untied.operator.adjoint(y)
        first = untied(y)
        untied.final_rho_raw.add_(1.0)
        assert float((untied(y) - first).abs().max()) > 1e-4
        torch.testing.assert_close(untied.data_consistency(untied(y), aty), untied.data_consistency(first, aty),
                                   rtol=0, atol=1e-5)
    with torch.no_grad():  # changing stage 1 changes no other stage
        before = [p.clone() for p in untied.stage(2).parameters()]
        untied.stage(1).conv1.weight.add_(1.0)
        assert all(torch.equal(a, b) for a, b in zip(before, untied.stage(2).parameters()))
        before = tied(y)
        tied.stage(3).eta.add_(0.5)  # the same eta in every stage
        assert float(tied.stage(0).eta) == pytest.approx(1.5)
        assert float((tied(y) - before).abs().max()) > 0


@torch.no_grad()
def test_init_is_the_papers():
    net = ADMMCSNet(MRI.radial(16, 0.3), stages=2, final_dc=False)
    for k in range(2):
        s = net.stage(k)
        assert float(s.rho.detach()) == pytest.approx(0.1) and float(s.eta.detach()) == pytest.approx(1.0)
        torch.testing.assert_close(s.plf.values, s.plf.knots().clamp_min(0).repeat(128, 1))
        assert s.plf.slopes.tolist() == [[0.0, 1.0]] * 128
        assert float(s.conv1.bias.abs().max()) == 0 and float(s.conv2.bias.abs().max()) == 0
        # He-normal, fan-in: std sqrt(2/25) for C₁ (3,200 weights), sqrt(2/3200) for C₂ (3,200 weights)
        assert float(s.conv1.weight.std()) == pytest.approx((2 / 25) ** 0.5, rel=0.08)
        assert float(s.conv2.weight.std()) == pytest.approx((2 / 3200) ** 0.5, rel=0.08)
    torch.testing.assert_close(net.penalties(), torch.full((3,), 0.1))
    port = ADMMCSNet(MRI.radial(16, 0.3), stages=1, conv_init="port").stage(0)
    for conv in (port.conv1, port.conv2):
        assert float(conv.weight.std()) == pytest.approx(0.025, rel=0.08) and float(conv.bias.abs().max()) == 0


# --- gradients, training --------------------------------------------------------------------------------------------
def test_gradcheck_float64_two_stages():
    g = torch.Generator().manual_seed(6)
    op = MRI.cartesian(8, 0.4)
    net = ADMMCSNet(op, stages=2, filters=4, kernel=3, plf_points=11, dtype=torch.float64)  # 2·131 + 1 parameters
    _perturb(net, g, 0.1)
    y = op(torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64))
    with torch.no_grad():
        c = net.stage(0).conv1(net.reconstruct(net.operator.adjoint(y), None, net.stage(0).rho))
    assert bool((c.abs() > 1).any()) and bool((c.abs() < 1).any())  # both the knots and the end slopes are used
    names = [k for k, _ in net.named_parameters()]
    params = dict(net.named_parameters())

    def f(*tensors):
        return functional_call(net, dict(zip(names, tensors)), (y,))

    inputs = tuple(params[k].detach().clone().requires_grad_(True) for k in names)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    grads = torch.autograd.grad(f(*inputs).pow(2).sum(), inputs)
    assert all(float(gr.abs().max()) > 0 for gr in grads)


def test_a_few_adam_steps_reduce_the_nmse():
    g = torch.Generator().manual_seed(7)
    torch.manual_seed(7)
    op = MRI.radial(16, 0.25)
    base = torch.rand(8, 1, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(base, size=16, mode="bilinear", align_corners=False)  # smooth images
    y = op(x)
    net = ADMMCSNet(op, stages=2, filters=8, kernel=3, plf_points=21)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3, weight_decay=1e-4)

    def nmse():
        out = net(y)
        return (torch.linalg.vector_norm(out - x, dim=(1, 2, 3)) / torch.linalg.vector_norm(x, dim=(1, 2, 3))).mean()

    with torch.no_grad():
        start = float(nmse())
    for _ in range(30):
        opt.zero_grad()
        loss = nmse()
        loss.backward()
        opt.step()
    with torch.no_grad():
        end = float(nmse())
    assert end < 0.5 * start, (start, end)


# --- bad input, registry --------------------------------------------------------------------------------------------
def test_bad_input_names_the_argument():
    op = MRI.radial(8, 0.4)
    net = ADMMCSNet(op, stages=1, filters=2)
    with pytest.raises(ValueError, match=r"y must have shape \(B, C, 8, 8\).*got shape \(1, 1, 8, 7\)"):
        net(torch.zeros(1, 1, 8, 7, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"y must have shape \(B, C, 8, 8\).*got shape \(8, 8\)"):
        net(torch.zeros(8, 8, dtype=torch.complex64))
    with pytest.raises(TypeError, match="y must be complex k-space, got dtype torch.float32"):
        net(torch.zeros(1, 1, 8, 8))
    with pytest.raises(TypeError, match="y: expected a torch.Tensor, got list"):
        net([0.0])
    with pytest.raises(ValueError, match="stages must be an int >= 1, got 0"):
        ADMMCSNet(op, stages=0)
    with pytest.raises(ValueError, match=r"kernel must be odd .*got 4"):
        ADMMCSNet(op, kernel=4)
    with pytest.raises(ValueError, match="filters must be an int >= 1, got 0"):
        ADMMCSNet(op, filters=0)
    with pytest.raises(ValueError, match="plf_points must be an int >= 2, got 1"):
        ADMMCSNet(op, plf_points=1)
    with pytest.raises(ValueError, match=r"rho must be > 0 .*got -0.1"):
        ADMMCSNet(op, rho=-0.1)
    with pytest.raises(TypeError, match="tied must be a bool, got 1"):
        ADMMCSNet(op, tied=1)
    with pytest.raises(ValueError, match="conv_init must be one of 'he', 'port', got 'xavier'"):
        ADMMCSNet(op, conv_init="xavier")
    with pytest.raises(ValueError, match="norm must be one of"):
        ADMMCSNet(op, norm="forward")
    with pytest.raises(ValueError, match=r"operator_or_mask: the mask must hold only 0 and 1, got values in \[0.5"):
        ADMMCSNet(torch.full((8, 8), 0.5))
    with pytest.raises(ValueError, match=r"operator_or_mask: the mask must be a real \(H, W\) tensor, got shape \(8,"):
        ADMMCSNet(torch.ones(8))
    with pytest.raises(TypeError, match="operator_or_mask: expected an MRI operator.*got list"):
        ADMMCSNet([[1, 0], [0, 1]])


def test_registered_admm_csnet_takes_the_mri_operator():
    assert model_entry("admm-csnet").needs_operator
    op = MRI.cartesian(8, 0.5)
    net = build_model("admm-csnet", operator=op, stages=2, filters=4, tied=True)
    assert isinstance(net, ADMMCSNet) and net.stages == 2 and net.tied and net.norm == "ortho" and net.final_dc
    torch.testing.assert_close(net.mask, op.mask)
    assert net.num_parameters() == stage_count(4, 5, 101)
    with pytest.raises(TypeError, match="operator must be an MRI operator"):
        build_model("admm-csnet", operator=torch.nn.Identity())
