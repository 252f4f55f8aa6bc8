import math

import numpy as np
import pytest
import torch

from proxlab.operators import Convolution, GaussianBlur, gaussian_kernel


class TestGaussianKernel:
    def test_normalised_symmetric_default_size(self):
        k = gaussian_kernel(1.5)
        assert k.shape == (2 * math.ceil(4.5) + 1,) * 2
        assert abs(float(k.sum()) - 1) < 1e-12
        torch.testing.assert_close(k, k.T)
        torch.testing.assert_close(k, k.flip(0))

    @pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
    def test_bad_sigma(self, bad):
        with pytest.raises(ValueError, match="sigma"):
            gaussian_kernel(bad)

    def test_even_kernel_size_rejected(self):
        with pytest.raises(ValueError, match="kernel_size must be a positive odd int"):
            gaussian_kernel(1.0, 4)


class TestConvolution:
    def test_matches_circular_convolution_by_scipy(self):
        from scipy.ndimage import convolve

        g = torch.Generator().manual_seed(0)
        k = torch.rand(3, 5, generator=g, dtype=torch.float64)
        x = torch.rand(1, 1, 11, 13, generator=g, dtype=torch.float64)
        ours = Convolution(k)(x)[0, 0].numpy()
        # scipy's convolve with mode="wrap" is circular convolution centred at (kh//2, kw//2)
        ref = convolve(x[0, 0].numpy(), k.numpy(), mode="wrap")
        np.testing.assert_allclose(ours, ref, atol=1e-12)

    def test_blur_preserves_mean_and_constant(self):
        x = torch.full((2, 3, 16, 16), 0.7)
        torch.testing.assert_close(GaussianBlur(2.0)(x), x)

    def test_kernel_larger_than_image(self):
        with pytest.raises(ValueError, match="larger than the image"):
            GaussianBlur(3.0)(torch.rand(1, 1, 8, 8))

    def test_bad_kernel(self):
        with pytest.raises(ValueError, match=r"kernel must have shape \(kh, kw\)"):
            Convolution(torch.rand(1, 3, 3))
        with pytest.raises(TypeError, match="kernel: expected a torch.Tensor"):
            Convolution([[1.0]])

    def test_norm_is_max_spectrum(self):
        op = GaussianBlur(1.0)
        assert abs(op.norm((1, 32, 32)) - 1.0) < 1e-12  # a normalised non-negative kernel has |k̂(0)| = 1

    def test_cache_follows_dtype_change(self):
        op = GaussianBlur(1.0)
        x = torch.rand(1, 1, 16, 16)
        y32 = op(x)
        y64 = op.double()(x.double())
        torch.testing.assert_close(y64.float(), y32, atol=1e-6, rtol=1e-5)
