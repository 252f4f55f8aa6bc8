import math

import numpy as np
import pytest
import torch

import proxlab.data as data

# Modified Shepp-Logan (Toft 1996): intensity, a, b, x0, y0, angle in degrees.
TOFT = [
    (1.0, 0.69, 0.92, 0.0, 0.0, 0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0),
]


def _toft_params(dtype=torch.float64):
    p = torch.tensor(TOFT, dtype=dtype)
    p[:, 5] = p[:, 5] * math.pi / 180
    return p[None]


class TestSheppLogan:
    def test_native_is_skimage(self):
        import skimage.data

        img = data.shepp_logan(400)
        assert img.shape == (1, 1, 400, 400) and img.dtype == torch.float32
        assert torch.equal(img[0, 0], torch.from_numpy(skimage.data.shepp_logan_phantom().astype(np.float32)))
        # the modified contrast: intensities 0, .1, .2, .3, .4, 1
        assert np.allclose(sorted(img.unique().tolist()), [0, 0.1, 0.2, 0.3, 0.4, 1.0], atol=2e-3)

    def test_matches_toft_table(self):
        # Rasterising the published ellipse table reproduces skimage's file except on edge pixels.
        ours = data.rasterize_ellipses(_toft_params(), 400)[0, 0].float()
        ref = data.shepp_logan(400)[0, 0]
        assert ((ours - ref).abs() > 0.02).float().mean() < 0.01

    def test_resize_range_and_shape(self):
        small = data.shepp_logan(64)
        assert small.shape == (1, 1, 64, 64)
        assert 0.0 <= small.min() and small.max() <= 1.0
        assert data.shepp_logan((50, 70)).shape == (1, 1, 50, 70)
        # mean intensity is preserved by anti-aliased resizing
        assert abs(small.mean() - data.shepp_logan(400).mean()) < 0.01

    def test_bad_size(self):
        with pytest.raises(ValueError, match="size must be positive"):
            data.shepp_logan(-3)
        with pytest.raises(TypeError, match="size: expected an int"):
            data.shepp_logan(64.0)


class TestRasterizeEllipses:
    def test_disc_area(self):
        # A centred disc of radius 0.5 covers pi/16 of the square [-1, 1]^2.
        p = torch.tensor([[[1.0, 0.5, 0.5, 0.0, 0.0, 0.0]]])
        img = data.rasterize_ellipses(p, 400)
        assert img.shape == (1, 1, 400, 400)
        assert abs(img.mean().item() - math.pi / 16) < 2e-3

    def test_orientation(self):
        # x to the right, y up (row 0 at the top), angles counter-clockwise.
        p = torch.tensor([[[1.0, 0.3, 0.1, 0.5, 0.5, 0.0]]])
        img = data.rasterize_ellipses(p, 64)[0, 0]
        assert img[:32, 32:].sum() == img.sum() > 0  # top-right quadrant
        assert img.amax(0).count_nonzero() > img.amax(1).count_nonzero()  # wider than tall
        diag = torch.tensor([[[1.0, 0.4, 0.05, 0.0, 0.0, math.pi / 4]]])
        img = data.rasterize_ellipses(diag, 64)[0, 0]
        # pixel centres (x, y) = (0.203, 0.203) is inside, (-0.203, 0.203) is outside
        assert img[25, 38] == 1.0 and img[25, 25] == 0.0

    def test_batch_equals_single(self):
        # 70 images span two internal chunks; each image depends on its own parameters only
        g = torch.Generator().manual_seed(0)
        p = torch.rand(70, 3, 6, generator=g, dtype=torch.float64) * 0.5 + 0.1
        img = data.rasterize_ellipses(p, 24)
        for i in (0, 63, 64, 69):
            assert torch.equal(img[i : i + 1], data.rasterize_ellipses(p[i : i + 1], 24))
        assert img.shape == (70, 1, 24, 24) and img.dtype == torch.float64

    def test_bad_params(self):
        with pytest.raises(ValueError, match=r"params must have shape \(N, E, 6\)"):
            data.rasterize_ellipses(torch.zeros(3, 6), 16)


class TestRandomEllipses:
    def test_shape_range_dtype(self):
        x = data.random_ellipses(8, 32, seed=1)
        assert x.shape == (8, 1, 32, 32) and x.dtype == torch.float32
        assert x.min() == 0.0
        assert torch.equal(x.amax(dim=(1, 2, 3)), torch.ones(8))
        assert data.random_ellipses(2, (24, 40), dtype=torch.float64).shape == (2, 1, 24, 40)
        assert data.random_ellipses(2, 16, dtype=torch.float64).dtype == torch.float64

    def test_deterministic_prefix_and_seed(self):
        a = data.random_ellipses(6, 32, seed=5)
        b = data.random_ellipses(3, 32, seed=5)
        assert torch.equal(a[:3], b)
        assert torch.equal(a, data.random_ellipses(6, 32, seed=5))
        assert not torch.equal(a, data.random_ellipses(6, 32, seed=6))
        # images within one batch differ
        assert not torch.equal(a[0], a[1])

    def test_prefix_across_chunks(self):
        a = data.random_ellipses(70, 16, seed=9)
        assert torch.equal(a[:66], data.random_ellipses(66, 16, seed=9))

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
    def test_cuda_matches_cpu(self):
        a = data.random_ellipses(8, 64, seed=4, dtype=torch.float64)
        b = data.random_ellipses(8, 64, seed=4, dtype=torch.float64, device="cuda")
        assert b.device.type == "cuda"
        assert (a - b.cpu()).abs().gt(1e-9).float().mean() < 0.001

    def test_float64_matches_float32(self):
        a = data.random_ellipses(4, 32, seed=2)
        b = data.random_ellipses(4, 32, seed=2, dtype=torch.float64)
        assert (a.double() - b).abs().gt(1e-5).float().mean() < 0.01  # only pixels right on an edge may flip

    def test_counts_control_complexity(self):
        one = data.random_ellipses(20, 32, seed=0, counts=(1, 1))
        # a single bright ellipse gives binary images
        assert set(one.unique().tolist()) <= {0.0, 1.0}

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="n must be >= 1"):
            data.random_ellipses(0, 16)
        with pytest.raises(ValueError, match="seed must be >= 0"):
            data.random_ellipses(1, 16, seed=-1)
        with pytest.raises(ValueError, match="counts must satisfy min <= max"):
            data.random_ellipses(1, 16, counts=(5, 2))
        with pytest.raises(ValueError, match=r"counts\[0\] must be >= 1"):
            data.random_ellipses(1, 16, counts=(0, 2))
        with pytest.raises(TypeError, match="counts: expected a pair"):
            data.random_ellipses(1, 16, counts=3)
        with pytest.raises(ValueError, match="intensity must satisfy low <= high"):
            data.random_ellipses(1, 16, intensity=(1.0, 0.0))
        with pytest.raises(TypeError, match="intensity: expected a pair"):
            data.random_ellipses(1, 16, intensity=0.5)
        with pytest.raises(TypeError, match="dtype: expected torch.float32 or torch.float64"):
            data.random_ellipses(1, 16, dtype=torch.float16)
