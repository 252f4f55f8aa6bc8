import pytest
import torch

from proxlab.operators import Inpainting


def test_box_is_centred_and_sized():
    op = Inpainting.box((20, 30), (4, 6))
    missing = op.mask[0] == 0
    rows, cols = torch.nonzero(missing, as_tuple=True)
    assert int(missing.sum()) == 24
    assert (int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())) == (8, 11, 12, 17)


def test_random_mask_keeps_exact_fraction_and_is_seeded():
    a = Inpainting.random(16, 0.3, seed=5)
    b = Inpainting.random(16, 0.3, seed=5)
    c = Inpainting.random(16, 0.3, seed=6)
    assert int(a.mask.sum()) == round(0.3 * 256)
    assert torch.equal(a.mask, b.mask) and not torch.equal(a.mask, c.mask)
    assert abs(a.ratio - 77 / 256) < 1e-9


def test_forward_zeroes_missing_pixels():
    op = Inpainting.box(8, 2)
    y = op(torch.ones(2, 3, 8, 8))
    assert float(y.sum()) == 2 * 3 * (64 - 4)


def test_solve_normal_minimum_norm_when_rho_zero():
    op = Inpainting.box(6, 2)
    b = torch.rand(1, 1, 6, 6)
    x = op.solve_normal(b, 0.0)
    assert torch.all(x[op.mask.expand_as(x) == 0] == 0)
    assert torch.isfinite(x).all()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: Inpainting(torch.ones(1, 1, 4, 4)), r"mask must have shape"),
        (lambda: Inpainting.box(8, 10), "does not fit"),
        (lambda: Inpainting.box(8, 4, center=(1, 1)), "leaves the image"),
        (lambda: Inpainting.random(8, 1.5), r"ratio must be in \[0.0, 1.0\]"),
        (lambda: Inpainting.random(0, 0.5), "image_size must be a positive int"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_channel_mismatch_is_reported():
    op = Inpainting(torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match=r"dimension 1 is 1, expected 3"):
        op(torch.rand(1, 1, 8, 8))
