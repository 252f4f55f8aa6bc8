"""Deep ADMM-Net: the released MATLAB nets reproduce the authors' PSNRs; the layers against dense-matrix maths."""

import math

import numpy as np
import pytest
import torch
from torch.func import functional_call

from proxlab.operators import MRI
from proxlab.operators.compressed_sensing import load_mat_array
from proxlab.registry import build_model, model_entry
from proxlab.unrolled import ADMMNet
from proxlab.unrolled.admmnet import dct_filter_bases, piecewise_linear

# The repository README (20 % pseudo-radial mask): PSNR of abs(rec) against abs(im_ori), peak 1, and NMSE.
README = {7: ((35.60, 0.0578), (30.40, 0.0957)), 14: ((35.83, 0.0562), (30.65, 0.0929)),
          15: ((35.85, 0.0561), (30.67, 0.0927))}
STAGES = {7: 9, 14: 16, 15: 17}  # full stages in net-stage{7,14,15}.mat (the names count the middle ones)


# --- the reproduction ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def brain(shared_data):
    """Brain_data1/2 (MATLAB orientation), the 20 % mask (fft2 layout), the authors' k-space ifftshift(mask)·fft2(x)."""
    folder = shared_data / "ADMM-Net_brain"
    x = torch.stack([load_mat_array(folder / f"Brain_data{i}.mat", ["im_ori"]) for i in (1, 2)])[:, None]
    mask = MRI.from_mat(folder / "mask_20.mat").mask.double()
    return x, mask, mask * torch.fft.fft2(x)


def _psnr_nmse(rec, x):
    mse = (rec.abs() - x.abs()).pow(2).mean(dim=(1, 2, 3))
    nmse = torch.linalg.vector_norm(rec - x, dim=(1, 2, 3)) / torch.linalg.vector_norm(x, dim=(1, 2, 3))
    return (10 * torch.log10(1 / mse)).tolist(), nmse.tolist()


@pytest.mark.parametrize("name", [7, 14, 15])
def test_released_nets_reproduce_the_readme(brain, shared_data, name):
    x, mask, y = brain
    net = ADMMNet.from_matlab(shared_data / "ADMM-Net_weights" / f"net-stage{name}.mat", mask)
    assert net.stages == STAGES[name] and net.norm == "backward" and net.rec_rho.dtype == torch.float64
    with torch.no_grad():
        psnrs, nmses = _psnr_nmse(net(y), x)
    for got, got_nmse, (want, want_nmse) in zip(psnrs, nmses, README[name]):
        assert abs(got - want) < 0.05, (name, psnrs)
        assert abs(got_nmse - want_nmse) < 6e-5, (name, nmses)  # the README's 4 decimals


def test_float32_and_orthonormal_kspace_give_the_same_images(brain, shared_data):
    x, mask, y = brain
    path = shared_data / "ADMM-Net_weights" / "net-stage7.mat"
    net = ADMMNet.from_matlab(path, shared_data / "ADMM-Net_brain" / "mask_20.mat")  # the mask from its file
    torch.testing.assert_close(net.mask, mask)
    ortho = ADMMNet.from_matlab(path, MRI(mask), norm="ortho", dtype=torch.float32)
    x, y = x[:1], y[:1]
    with torch.no_grad():
        want = net(y)
        got = ortho(MRI(mask.float())(x.float()))  # proxlab's MRI measures the orthonormal k-space
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=0, atol=2e-5)
    assert abs(_psnr_nmse(got.double(), x)[0][0] - _psnr_nmse(want, x)[0][0]) < 0.005


def test_wrong_files_are_refused(shared_data, tmp_path):
    for other in (shared_data / "ADMM-Net_brain" / "Brain_data1.mat", shared_data / "ADMM-Net_brain" / "mask_20.mat"):
        with pytest.raises(ValueError, match=r"path: .* is not a Deep ADMM-Net file: expected a struct 'net'"):
            ADMMNet.from_matlab(other, torch.ones(256, 256))
    with pytest.raises(TypeError, match="mask: expected an"):
        ADMMNet.from_matlab(shared_data / "ADMM-Net_weights" / "net-stage7.mat", [1, 0])


# --- dense-matrix references ----------------------------------------------------------------------------------------
def _dctmtx(n):
    """MATLAB's dctmtx(n), written out."""
    d = np.array([[np.cos(np.pi * (2 * j + 1) * k / (2 * n)) for j in range(n)] for k in range(n)]) * np.sqrt(2 / n)
    d[0] = np.sqrt(1 / n)
    return d


def _matlab_bases(s=3):
    """filter_base.m: B(:, i-1) = kron(D, D)(i, :), each reshaped column-major into an s×s filter."""
    dd = np.kron(_dctmtx(s), _dctmtx(s))
    return np.stack([dd[i].reshape(s, s, order="F") for i in range(1, s * s)])


def _circulant(kernel, n):
    """Dense matrix of imfilter(x, kernel, 'same', 'circular', 'conv') on n×n images (row-major vectors)."""
    s, c = kernel.shape[0], kernel.shape[0] // 2
    M = np.zeros((n * n, n * n))
    for i in range(n):
        for j in range(n):
            for u in range(s):
                for v in range(s):
                    M[i * n + j, ((i - u + c) % n) * n + (j - v + c) % n] += kernel[u, v]
    return M


def _dft(n):
    """The orthonormal 2-D DFT as a dense matrix on row-major n×n vectors."""
    f = np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n) / np.sqrt(n)
    return np.kron(f, f)


def _filters(gamma):
    return np.einsum("lm,mij->lij", gamma, _matlab_bases())


def test_dct_bases_are_filter_base_m():
    bases = dct_filter_bases(3)
    np.testing.assert_allclose(bases.numpy(), _matlab_bases(), atol=1e-14)
    flat = bases.reshape(8, 9)
    torch.testing.assert_close(flat @ flat.T, torch.eye(8, dtype=torch.float64))  # orthonormal
    torch.testing.assert_close(flat.sum(1), torch.zeros(8, dtype=torch.float64))  # no DC
    assert float(bases[0].std()) > 0.1


def _random_mask(n, g, symmetric):
    mask = (torch.rand(n, n, generator=g, dtype=torch.float64) < 0.4).double()
    if symmetric:
        mask = torch.maximum(mask, torch.roll(torch.flip(mask, (0, 1)), (1, 1), (0, 1)))
    mask[0, 0] = 1
    return mask


def test_reconstruction_layer_is_the_exact_solve_of_its_normal_equations():
    n, L = 8, 8
    g = torch.Generator().manual_seed(0)
    mask = _random_mask(n, g, symmetric=False)
    assert not torch.equal(mask, torch.roll(torch.flip(mask, (0, 1)), (1, 1), (0, 1)))
    net = ADMMNet(mask, stages=1, norm="ortho", dtype=torch.float64)
    gamma = torch.eye(L, 8, dtype=torch.float64) + 0.3 * torch.randn(L, 8, generator=g, dtype=torch.float64)
    rho = 0.1 + torch.rand(L, generator=g, dtype=torch.float64)
    x = torch.rand(1, 1, n, n, generator=g, dtype=torch.float64)
    y = mask * torch.fft.fft2(x, norm="ortho")
    v = 0.1 * torch.randn(1, L, n, n, generator=g, dtype=torch.float64)
    got = net.reconstruct(y, v, gamma, rho)
    # (F^H P F + Σ ρ_l H_lᵀ H_l) x = F^H y + Σ ρ_l H_lᵀ v_l over complex x, then the real part (as the authors)
    Fm, P = _dft(n), np.diag(mask.numpy().ravel())
    Hs = [_circulant(h, n) for h in _filters(gamma.numpy())]
    lhs = Fm.conj().T @ P @ Fm + sum(r * h.T @ h for r, h in zip(rho.numpy(), Hs))
    rhs = Fm.conj().T @ y.numpy().ravel() + sum(r * h.T @ vl.ravel() for r, h, vl in zip(rho.numpy(), Hs, v[0].numpy()))
    want = np.linalg.solve(lhs, rhs).real.reshape(n, n)
    np.testing.assert_allclose(got[0, 0].numpy(), want, rtol=0, atol=1e-11)
    # the convolution layer is imfilter(.., 'circular', 'conv') with D_l
    c = net.convolve(x, gamma)
    np.testing.assert_allclose(c[0].reshape(L, -1).numpy(), np.stack([h @ x.numpy().ravel() for h in Hs]), atol=1e-12)
    # no v (the first stage): y alone
    np.testing.assert_allclose(net.reconstruct(y, None, gamma, rho)[0, 0].numpy(),
                               np.linalg.solve(lhs, Fm.conj().T @ y.numpy().ravel()).real.reshape(n, n), atol=1e-11)
    # a zero denominator (ρ = 0 at an unsampled frequency) gets the authors' 1e-6: the zero-filled image, finite
    zero_filled = net.reconstruct(y, v, gamma, torch.zeros(L, dtype=torch.float64))
    torch.testing.assert_close(zero_filled, torch.fft.ifft2(y, norm="ortho").real, rtol=0, atol=1e-12)
    # the DCT filters have no DC response, so an unsampled DC leaves the image mean undetermined: refused
    mask[0, 0] = 0
    with pytest.raises(ValueError, match=r"mask must sample the DC frequency"):
        ADMMNet(mask, stages=1)


def test_plf_returns_its_values_at_the_knots_and_is_linear_between():
    g = torch.Generator().manual_seed(1)
    values = torch.randn(3, 101, generator=g, dtype=torch.float64)
    knots = torch.linspace(-1, 1, 101, dtype=torch.float64)
    t = knots.view(1, 1, 1, -1).expand(1, 3, 1, 101)
    torch.testing.assert_close(piecewise_linear(t, values)[0, :, 0], values)  # each channel its own values
    w = torch.rand(1, 3, 1, 100, generator=g, dtype=torch.float64)
    between = piecewise_linear(knots[:-1] + w * 0.02, values)
    torch.testing.assert_close(between[0, :, 0], (1 - w[0, :, 0]) * values[:, :-1] + w[0, :, 0] * values[:, 1:])
    # beyond [-1, 1]: slope 1 from the end values (the authors' nnlinemex)
    out = torch.tensor([-3.0, -1.5, 1.25, 4.0], dtype=torch.float64).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    want = torch.cat([out[0, :, 0, :2] + 1 + values[:, :1], out[0, :, 0, 2:] - 1 + values[:, -1:]], -1)
    torch.testing.assert_close(piecewise_linear(out, values)[0, :, 0], want)


def test_init_net_is_initnet_m():
    mask = torch.ones(6, 6)
    net = ADMMNet.init_net(mask, stages=3)
    assert net.rec_gamma.shape == (4, 8, 8) and net.conv_gamma.shape == (3, 8, 8)
    assert net.plf_values.shape == (3, 8, 101)
    torch.testing.assert_close(net.rec_gamma, torch.eye(8).repeat(4, 1, 1))
    torch.testing.assert_close(net.conv_gamma, torch.eye(8).repeat(3, 1, 1))
    torch.testing.assert_close(net.rec_rho, torch.full((4, 8), 0.2))
    torch.testing.assert_close(net.eta, torch.full((3, 8), 1.6))
    p = torch.linspace(-1, 1, 101)
    torch.testing.assert_close(net.plf_values[1, 5], torch.sign(p) * (p.abs() - 0.05).clamp_min(0))  # nnsoft(LL, 0.05)
    assert float(net.plf_values[0, 0, 50 + 3].detach()) == pytest.approx(0.01)  # at 0.06: soft(0.06, 0.05)
    assert sum(p.numel() for p in net.parameters()) == 4 * (64 + 8) + 3 * (64 + 808 + 8)


def _soft(v, t):
    return np.sign(v) * np.maximum(np.abs(v) - t, 0)


def test_initnet_stages_are_admm_for_the_dct_sparse_model():
    """With γ = I the net runs ADMM for min ½‖PFx − y‖² + λ Σ_l ‖B_l x‖₁ (B_l the DCT bases) with penalty ρ,
    shrinkage λ/ρ and relaxed multiplier steps η; a threshold on a PLF knot (0.06) makes the PLF the exact
    soft-threshold."""
    n, rho, eta, t = 6, 0.2, 1.6, 0.06
    g = torch.Generator().manual_seed(2)
    mask = _random_mask(n, g, symmetric=True)  # real images: the real part of the complex solve is the real solve
    x_true = torch.rand(1, 1, n, n, generator=g, dtype=torch.float64)
    y = mask * torch.fft.fft2(x_true)  # the authors' unnormalised k-space
    net = ADMMNet.init_net(mask, stages=2, rho=rho, eta=eta, threshold=t, dtype=torch.float64)
    # by hand, in real arithmetic: A = P F (orthonormal F), y/n for the orthonormal data
    Fm = _dft(n)
    A = np.diag(mask.numpy().ravel()) @ Fm
    AtA, Aty = (A.conj().T @ A).real, (A.conj().T @ (y.numpy().ravel() / n)).real
    Bs = [_circulant(b, n) for b in _matlab_bases()]
    lhs = AtA + rho * sum(b.T @ b for b in Bs)
    z = beta = np.zeros((8, n * n))
    xs = []
    for _ in range(3):
        xk = np.linalg.solve(lhs, Aty + rho * sum(b.T @ (zl - bl) for b, zl, bl in zip(Bs, z, beta)))
        xs.append(xk)
        c = np.stack([b @ xk for b in Bs])
        z = _soft(c + beta, t)
        beta = beta + eta * (c - z)
    first = ADMMNet.init_net(mask, stages=1, rho=rho, eta=eta, threshold=t, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(first.reconstruct(y / n, None, first.rec_gamma[0], first.rec_rho[0])[0, 0]
                                   .numpy().ravel(), xs[0], atol=1e-11)
        np.testing.assert_allclose(first(y)[0, 0].numpy().ravel(), xs[1], atol=1e-11)
        np.testing.assert_allclose(net(y)[0, 0].numpy().ravel(), xs[2], atol=1e-11)
    assert np.abs(xs[2] - xs[1]).max() > 1e-4  # the stages do move


def test_gradcheck_float64_two_stages():
    n = 6
    g = torch.Generator().manual_seed(3)
    mask = _random_mask(n, g, symmetric=True)
    net = ADMMNet.init_net(mask, stages=2, filters=2, plf_points=11, dtype=torch.float64)  # 134 parameters
    with torch.no_grad():  # away from InitNet's exact values, so that every parameter matters
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    y = mask * torch.fft.fft2(torch.rand(1, 1, n, n, generator=g, dtype=torch.float64))
    names = ("rec_rho", "rec_gamma", "conv_gamma", "plf_values", "eta")
    params = {k: v for k, v in net.named_parameters()}

    def f(*tensors):
        return functional_call(net, {**params, **dict(zip(names, tensors))}, (y,))

    inputs = tuple(params[k].detach().clone().requires_grad_(True) for k in names)
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
    grads = torch.autograd.grad(f(*inputs).sum(), inputs)
    assert all(float(gr.abs().max()) > 0 for gr in grads)


# --- bad input, registry, file formats ------------------------------------------------------------------------------
def test_bad_input_names_the_argument(tmp_path):
    net = ADMMNet(torch.ones(8, 8), stages=1)
    with pytest.raises(ValueError, match=r"y must have shape \(B, C, 8, 8\).*got shape \(1, 1, 8, 7\)"):
        net(torch.zeros(1, 1, 8, 7, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"y must have shape \(B, C, 8, 8\)"):
        net(torch.zeros(8, 8, dtype=torch.complex64))
    with pytest.raises(TypeError, match="y must be complex k-space, got dtype torch.float32"):
        net(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        ADMMNet(torch.full((8, 8), 0.5), stages=1)
    with pytest.raises(ValueError, match="stages must be an int >= 1, got 0"):
        ADMMNet(torch.ones(8, 8), stages=0)
    with pytest.raises(ValueError, match="filter_size must be odd"):
        ADMMNet(torch.ones(8, 8), stages=1, filter_size=4)
    with pytest.raises(ValueError, match="norm must be one of"):
        ADMMNet(torch.ones(8, 8), stages=1, norm="forward")
    with pytest.raises(FileNotFoundError, match="path: no such file"):
        ADMMNet.from_matlab(tmp_path / "none.mat", torch.ones(8, 8))
    text = tmp_path / "net.mat"
    text.write_text("not a mat file")
    with pytest.raises(ValueError, match="path: .* is not a MATLAB .mat file"):
        ADMMNet.from_matlab(text, torch.ones(8, 8))


def _save_v5(path, net):
    """A net in the authors' MATLAB layout (v5 .mat), as InitNet.m builds it."""
    import scipy.io as sio

    K = net.stages
    layers = []

    def layer(kind, *weights):
        cell = np.empty(len(weights), dtype=object)
        for i, w in enumerate(weights):
            cell[i] = w
        layers.append({"type": kind, "weights": cell})

    for k in range(K):
        mid = "org" if k == 0 else "mid"
        layer(f"X_{mid}", net.rec_gamma[k].detach().numpy().T, net.rec_rho[k].detach().numpy()[:, None])
        layer("Convo", net.conv_gamma[k].detach().numpy().T)
        layer(f"Non_lin{mid}", net.plf_values[k].detach().numpy().T)
        layer("Multi_final" if k == K - 1 else f"Multi_{mid}", net.eta[k].detach().numpy()[None, :])
    layer("X_mid", net.rec_gamma[K].detach().numpy().T, net.rec_rho[K].detach().numpy()[:, None])
    cells = np.empty(len(layers) + 1, dtype=object)
    for i, lay in enumerate(layers):
        cells[i] = lay
    cells[-1] = {"type": "loss"}
    sio.savemat(path, {"net": {"layers": cells}})
    return layers


def test_a_v5_file_round_trips_and_a_wrong_order_is_named(tmp_path):
    g = torch.Generator().manual_seed(4)
    net = ADMMNet.init_net(torch.ones(8, 8), stages=3, dtype=torch.float64)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    _save_v5(tmp_path / "net.mat", net)
    back = ADMMNet.from_matlab(tmp_path / "net.mat", torch.ones(8, 8))
    assert back.stages == 3
    for name, p in net.named_parameters():
        torch.testing.assert_close(getattr(back, name), p, msg=name)
    import scipy.io as sio

    sio.savemat(tmp_path / "other.mat", {"im_ori": np.zeros((4, 4))})
    with pytest.raises(ValueError, match=r"not a Deep ADMM-Net file.*found variables \['im_ori'\]"):
        ADMMNet.from_matlab(tmp_path / "other.mat", torch.ones(8, 8))
    layers = _save_v5(tmp_path / "net.mat", net)
    layers[1], layers[2] = layers[2], layers[1]
    cells = np.empty(len(layers), dtype=object)
    for i, lay in enumerate(layers):
        cells[i] = lay
    sio.savemat(tmp_path / "swapped.mat", {"net": {"layers": cells}})
    with pytest.raises(ValueError, match="layer 2 is 'Non_linorg', expected 'Convo'"):
        ADMMNet.from_matlab(tmp_path / "swapped.mat", torch.ones(8, 8))


def test_registered_admm_net_takes_the_mri_operator():
    assert model_entry("admm-net").needs_operator
    g = torch.Generator().manual_seed(5)
    mask = _random_mask(8, g, symmetric=True)
    op = MRI(mask)
    net = build_model("admm-net", operator=op, stages=2)
    assert isinstance(net, ADMMNet) and net.norm == "ortho" and net.stages == 2
    torch.testing.assert_close(net.mask, mask.float())
    x = torch.rand(2, 1, 8, 8, generator=g)
    authors = ADMMNet.init_net(mask, stages=2)
    with torch.no_grad():
        torch.testing.assert_close(net(op(x)), authors(mask * torch.fft.fft2(x)), rtol=0, atol=1e-5)
    with pytest.raises(TypeError, match="operator must be an MRI operator"):
        build_model("admm-net", operator=torch.nn.Identity())


def test_backward_works_for_training():
    mask = torch.ones(8, 8)
    mask[::2, 1::2] = 0
    net = ADMMNet.init_net(mask, stages=2)
    x = torch.rand(1, 1, 8, 8)
    loss = torch.linalg.vector_norm(net(mask * torch.fft.fft2(x)) - x) / torch.linalg.vector_norm(x)  # NMSE
    loss.backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in net.parameters())
    assert math.isfinite(float(loss.detach()))


def _plf_reference(t, values, low=-1.0, high=1.0, slopes=None):
    """The piecewise-linear function written with autograd's own ops (the formula the fused one must equal)."""
    L, M = values.shape
    s_low, s_high = (1.0, 1.0) if slopes is None else (slopes[:, 0].view(1, L, 1, 1), slopes[:, 1].view(1, L, 1, 1))
    step = (high - low) / (M - 1)
    u = (t - low) / step
    k = torch.floor(u).clamp(0, M - 2)
    frac = u - k
    idx = k.long() + (torch.arange(L) * M).view(1, L, 1, 1)
    flat = values.reshape(-1)
    inside = flat[idx] + (flat[idx + 1] - flat[idx]) * frac
    below = (t - low) * s_low + values[:, 0].view(1, L, 1, 1)
    above = (t - high) * s_high + values[:, -1].view(1, L, 1, 1)
    return torch.where(u < 0, below, torch.where(u >= M - 1, above, inside))


@pytest.mark.parametrize("with_slopes", [False, True])
def test_fused_piecewise_linear_equals_the_formula_and_passes_gradcheck(with_slopes):
    g = torch.Generator().manual_seed(3)
    t = (torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64) * 3 - 1.5)  # inside and beyond both ends
    t[0, 0, 0, :3] = torch.tensor([-1.0, 1.0, 0.0], dtype=torch.float64)  # on the knots and the ends
    values = torch.randn(3, 11, generator=g, dtype=torch.float64)
    slopes = torch.randn(3, 2, generator=g, dtype=torch.float64) if with_slopes else None
    torch.testing.assert_close(piecewise_linear(t, values, slopes=slopes), _plf_reference(t, values, slopes=slopes),
                               rtol=0, atol=1e-14)
    t_off = t.clone()
    t_off[0, 0, 0, :3] = torch.tensor([-0.93, 0.97, 0.05], dtype=torch.float64)  # gradcheck away from the kinks
    args = [t_off.requires_grad_(), values.requires_grad_()] + ([slopes.requires_grad_()] if with_slopes else [])
    assert torch.autograd.gradcheck(lambda *a: piecewise_linear(a[0], a[1], slopes=a[2] if with_slopes else None),
                                    tuple(args))
    for a, b in zip(torch.autograd.grad(piecewise_linear(*args[:2], slopes=args[2] if with_slopes else None).sum(), args),
                    torch.autograd.grad(_plf_reference(*args[:2], slopes=args[2] if with_slopes else None).sum(), args)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
