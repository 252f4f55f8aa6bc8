import numpy as np
import pytest
import torch

from proxlab.operators import MRI, cartesian_mask, radial_mask


def test_forward_is_masked_orthonormal_fft():
    mask = cartesian_mask(8, 0.5, seed=1)
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    y = MRI(mask)(x)
    ref = np.fft.fft2(x[0, 0].numpy(), norm="ortho") * mask.numpy()
    np.testing.assert_allclose(y[0, 0].numpy(), ref, atol=1e-12)


def test_full_mask_is_unitary():
    op = MRI(torch.ones(8, 8))
    x = torch.rand(2, 1, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(op.init(op(x)), x)
    torch.testing.assert_close(op(x).abs().pow(2).sum(), x.pow(2).sum())


def test_istanet_and_admmnet_masks_agree(shared_data):
    for pct in (10, 20, 30, 40, 50):
        a = MRI.from_mat(shared_data / "ISTA-Net_sampling_matrix" / f"mask_{pct}.mat")
        b = MRI.from_mat(shared_data / "ADMM-Net_brain" / f"mask_{pct}.mat")
        assert torch.equal(a.mask, b.mask)
        assert abs(a.ratio - pct / 100) < 0.01
        assert a.mask[0, 0] == 1  # DC sampled, at the corner in fft2 layout


@pytest.mark.parametrize("ratio", [0.1, 0.2, 0.35])
def test_radial_mask_reaches_ratio_with_few_lines(ratio):
    m = radial_mask(64, ratio)
    assert ratio <= float(m.mean()) < ratio + 0.05
    assert m[0, 0] == 1


def test_cartesian_mask_columns_and_seed():
    m = cartesian_mask(32, 0.25, center_fraction=0.1, seed=4)
    cols = m[0]
    assert int(cols.sum()) == 8
    assert torch.equal(m, m[0:1].expand(32, 32))  # whole columns
    assert cols[0] == 1  # low frequencies are always sampled
    assert torch.equal(m, cartesian_mask(32, 0.25, center_fraction=0.1, seed=4))
    assert not torch.equal(m, cartesian_mask(32, 0.25, center_fraction=0.1, seed=5))


def test_real_input_required_and_complex_output():
    op = MRI.radial(8, 0.3)
    with pytest.raises(TypeError, match="must be a real image"):
        op(torch.zeros(1, 1, 8, 8, dtype=torch.complex64))
    with pytest.raises(TypeError, match="must be complex k-space"):
        op.adjoint(torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: MRI(torch.ones(1, 8, 8)), r"mask must have shape \(H, W\)"),
        (lambda: radial_mask(16, 0.0), r"ratio must be in \(0.0, 1.0\]"),
        (lambda: cartesian_mask(1, 0.5), "size must be an int > 1"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_solve_normal_rejects_zero_rho_with_unsampled_frequencies():
    with pytest.raises(ValueError, match="rho must be > 0"):
        MRI.radial(8, 0.3).solve_normal(torch.zeros(1, 1, 8, 8), 0.0)
