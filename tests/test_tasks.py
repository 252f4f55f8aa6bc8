"""Named tasks: each builds its operator for an image size, with the documented default noise and options;
measurements are reproducible from the seed; bad names and options are refused with the option named."""

import pytest
import torch

from proxlab.operators import (
    MRI,
    BlockCompressedSensing,
    Denoising,
    GaussianBlur,
    Inpainting,
    ParallelBeamCT,
    adjoint_test,
)

from proxlab.tasks import TASKS, make_task, task_options

OPERATOR_TYPE = {"denoise": Denoising, "inpaint": Inpainting, "deblur": GaussianBlur, "cs": BlockCompressedSensing,
                 "mri": MRI, "ct": ParallelBeamCT}
DEFAULT_NOISE = {"denoise": 0.1, "inpaint": 0.01, "deblur": 0.01, "cs": 0.0, "mri": 0.01, "ct": 0.5}


def test_the_six_tasks():
    assert tuple(TASKS) == ("denoise", "inpaint", "deblur", "cs", "mri", "ct")


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("size", [(24, 24), (40, 40), (24, 40)])
def test_every_task_builds_its_operator_for_a_size(name, size):
    task = make_task(name)
    assert task.options["noise"] == DEFAULT_NOISE[name]  # a stored default, not a computed value
    if name == "ct":
        size = (size[0], size[0])  # CT needs a square image (tested below)
    A = task.operator(size)
    assert isinstance(A, OPERATOR_TYPE[name])
    x = torch.rand(2, 1, *size)
    with torch.no_grad():
        y = A(x)
        assert A.init(y).shape == x.shape  # the first estimate is an image of the size asked
    assert adjoint_test(A, (1, *size)) < 1e-10


@pytest.mark.parametrize("name", TASKS)
def test_measure_is_reproducible_from_the_seed(name):
    x = torch.rand(1, 1, 33, 33)
    task = make_task(name, seed=3)
    A, y = task.measure(x)
    _, y_again = make_task(name, seed=3).measure(x)
    torch.testing.assert_close(y_again, y, rtol=0, atol=0)
    _, y_seeded = task.measure(x, seed=3)  # the task's seed is the default measurement seed
    torch.testing.assert_close(y_seeded, y, rtol=0, atol=0)
    if DEFAULT_NOISE[name] > 0:
        _, y_other = task.measure(x, seed=4)
        assert float((y_other - y).abs().max()) > 1e-3


@pytest.mark.parametrize("name", TASKS)
def test_noise_level_is_the_options(name):
    x = torch.rand(1, 1, 66, 66)
    sigma = 0.05
    task = make_task(name, noise=sigma)
    A, y = task.measure(x, seed=1)
    with torch.no_grad():
        n = y - A(x)
    # E|n_i|² = σ² per entry (complex k-space noise: σ/√2 in each of the real and imaginary parts)
    assert float(n.abs().pow(2).mean().sqrt()) == pytest.approx(sigma, rel=0.1)
    _, clean = make_task(name, noise=0.0).measure(x)
    with torch.no_grad():
        torch.testing.assert_close(clean, A(x))


def test_inpainting_masks():
    task = make_task("inpaint", ratio=0.3)
    A = task.operator((20, 30))
    assert A.mask.shape[-2:] == (20, 30) and int(A.mask.sum()) == round(0.3 * 600)
    assert torch.equal(make_task("inpaint", ratio=0.3).operator((20, 30)).mask, A.mask)  # seeded
    assert not torch.equal(make_task("inpaint", ratio=0.3, seed=1).operator((20, 30)).mask, A.mask)
    box = make_task("inpaint", mask="box").operator((20, 32))
    assert int((box.mask == 0).sum()) == 5 * 5  # default box side: a quarter of the shorter side
    assert int((make_task("inpaint", mask="box", box_size=3).operator((20, 32)).mask == 0).sum()) == 9


def test_deblur_cs_mri_ct_options_reach_the_operator():
    assert make_task("deblur", blur_sigma=2.5).operator((16, 16)).sigma == 2.5
    assert make_task("deblur").options["blur_sigma"] == 1.5
    cs = make_task("cs", ratio=0.1).operator((50, 70))
    assert cs.m == round(0.1 * 1089) and cs.image_size == (50, 70)
    radial = make_task("mri", ratio=0.3).operator((32, 32))
    assert 0.3 <= float(radial.mask.mean()) < 0.4  # the fewest radial lines that sample at least 30 %
    cart = make_task("mri", mask="cartesian", ratio=0.25).operator((32, 32))
    assert float(cart.mask.mean()) == pytest.approx(8 / 32)  # whole columns: round(0.25 · 32)
    ct = make_task("ct", angles=12).operator((32, 32))
    assert len(ct.angles) == 12


def test_mri_mask_file(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    import numpy as np

    mask = np.zeros((16, 16))
    mask[:, :5] = 1
    scipy_io.savemat(tmp_path / "mask.mat", {"mask_matrix": mask})
    task = make_task("mri", mask_file=str(tmp_path / "mask.mat"))
    assert float(task.operator((16, 16)).mask.mean()) == pytest.approx(5 / 16)
    with pytest.raises(ValueError, match=r"mask\.mat: mask is \(16, 16\), image is \(20, 20\)"):
        task.operator((20, 20))


def test_task_options_and_descriptions():
    assert task_options("deblur") == ("noise", "blur_sigma")
    assert set(task_options("cs")) == {"noise", "ratio", "phi", "qinit"}
    assert make_task("deblur").describe() == "deblur σ_blur=1.5 σ=0.01"
    assert make_task("ct", angles=30).describe() == "CT 30 angles σ=0.5"
    assert make_task("inpaint", mask="box").describe() == "inpaint box σ=0.01"
    assert len({make_task(n).describe() for n in TASKS}) == len(TASKS)  # one description each


def test_unset_options_take_the_defaults():
    t = make_task("mri", ratio=None, noise=None)
    assert t.options == {"noise": 0.01, "mask": "radial", "ratio": 0.2, "mask_file": None}


@pytest.mark.parametrize("name, options, err, match", [
    ("denoize", {}, ValueError, r"task must be one of .*got 'denoize'; did you mean 'denoise'\?"),
    ("deblur", {"sigma": 2}, ValueError, r"task 'deblur' has no option 'sigma'; its options are: blur_sigma, noise"),
    ("denoise", {"noise": -0.1}, ValueError, r"noise must be >= 0, got -0.1"),
    ("denoise", {"noise": "loud"}, TypeError, r"noise: expected a number, got 'loud'"),
    ("inpaint", {"mask": "circle"}, ValueError, r"mask must be one of 'random', 'box', got 'circle'"),
    ("inpaint", {"ratio": 1.5}, ValueError, r"ratio must be in \(0.0, 1.0\], got 1.5"),
    ("inpaint", {"ratio": 0.0}, ValueError, r"ratio must be in \(0.0, 1.0\], got 0.0"),
    ("inpaint", {"box_size": -2}, ValueError, r"box_size must be >= 0, got -2"),
    ("deblur", {"blur_sigma": 0}, ValueError, r"blur_sigma must be > 0, got 0"),
    ("cs", {"ratio": 0.9}, ValueError, r"ratio must be in \[0.01, 0.5\], got 0.9"),
    ("mri", {"ratio": 0}, ValueError, r"ratio must be in \(0.0, 1.0\], got 0"),
    ("mri", {"mask": "spiral"}, ValueError, r"mask must be one of 'radial', 'cartesian', got 'spiral'"),
    ("ct", {"angles": 0}, ValueError, r"angles must be a positive int, got 0"),
    ("ct", {"angles": 2.5}, ValueError, r"angles must be a positive int, got 2.5"),
])
def test_bad_tasks_and_options_are_named(name, options, err, match):
    with pytest.raises(err, match=match):
        make_task(name, **options)


def test_ct_needs_a_square_image():
    with pytest.raises(ValueError, match="the ct task needs a square image, got 32x40"):
        make_task("ct").operator((32, 40))
