import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import proxlab.data as data
from proxlab.operators import Denoising, LinearOperator


class ComplexScale(LinearOperator):
    """y = (1 + 2i) x: a real image to complex measurements (for the complex-noise convention)."""

    def __init__(self):
        super().__init__((None, None, None), (None, None, None))

    def _forward(self, x):
        return x * torch.tensor(1 + 2j, dtype=torch.complex128 if x.dtype == torch.float64 else torch.complex64)

    def _adjoint(self, y):
        return (y * torch.tensor(1 - 2j, dtype=y.dtype)).real


class RowSums(LinearOperator):
    """y = sum over rows: (1, H, W) -> (1, W)."""

    def __init__(self):
        super().__init__((1, None, None), (1, None))

    def _forward(self, x):
        return x.sum(-2)

    def _adjoint(self, y):
        raise AssertionError("not needed")


def _images(n=6, c=1, h=8, w=8):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(0))


class TestMeasurementPairs:
    def test_denoising_noiseless(self):
        x = _images()
        ds = data.MeasurementPairs(x, Denoising())
        assert len(ds) == 6
        y, xi = ds[2]
        assert torch.equal(y, x[2]) and torch.equal(xi, x[2])

    def test_denoising_gaussian_statistics(self):
        x = torch.full((1, 1, 256, 256), 0.5)
        y, _ = data.MeasurementPairs(x, Denoising(), noise=0.1)[0]
        n = y - 0.5
        assert y.shape == (1, 256, 256) and y.dtype == torch.float32
        assert abs(n.mean().item()) < 3 * 0.1 / 256
        assert abs(n.std().item() - 0.1) < 0.002

    def test_same_index_bit_identical_any_order(self):
        ds = data.MeasurementPairs(_images(), Denoising(), noise=0.05, seed=7)
        forward = [ds[i][0] for i in range(6)]
        backward = [ds[i][0] for i in reversed(range(6))][::-1]
        for a, b in zip(forward, backward):
            assert torch.equal(a, b)
        assert torch.equal(ds[-1][0], forward[5])
        assert torch.equal(ds[np.int64(2)][0], forward[2]) and torch.equal(ds[torch.tensor(3)][0], forward[3])
        # a fresh dataset with the same seed gives the same measurements; another seed does not
        again = data.MeasurementPairs(_images(), Denoising(), noise=0.05, seed=7)
        assert torch.equal(again[4][0], forward[4])
        other = data.MeasurementPairs(_images(), Denoising(), noise=0.05, seed=8)
        assert not torch.equal(other[4][0], forward[4])

    def test_noise_differs_between_indices(self):
        x = torch.zeros(3, 1, 8, 8)
        ds = data.MeasurementPairs(x, Denoising(), noise=1.0)
        assert not torch.equal(ds[0][0], ds[1][0])

    def test_dataloader_shuffled_matches_direct(self):
        x = _images(10)
        ds = data.MeasurementPairs(x, Denoising(), noise=0.1, seed=3)
        loader = DataLoader(ds, batch_size=4, sampler=list(reversed(range(10))))
        ys = torch.cat([y for y, _ in loader])
        assert ys.shape == (10, 1, 8, 8)
        direct = torch.stack([ds[i][0] for i in range(10)])
        assert torch.equal(ys, direct.flip(0))

    def test_float64_same_noise(self):
        y32 = data.MeasurementPairs(_images(), Denoising(), noise=0.1)[1][0]
        y64 = data.MeasurementPairs(_images().double(), Denoising(), noise=0.1)[1][0]
        assert y64.dtype == torch.float64
        assert torch.allclose(y32.double(), y64, atol=1e-6)

    def test_complex_noise_convention(self):
        x = torch.zeros(1, 1, 200, 200)
        y, _ = data.MeasurementPairs(x, ComplexScale(), noise=0.2)[0]
        assert y.is_complex() and y.dtype == torch.complex64
        s = 0.2 / 2**0.5  # proxlab.operators.GaussianNoise: sigma/sqrt(2) per part, E|n|^2 = sigma^2
        assert abs(y.real.std().item() - s) < 0.004 and abs(y.imag.std().item() - s) < 0.004
        assert abs((y.real * y.imag).mean().item()) < 0.002  # independent parts
        assert abs(y.abs().pow(2).mean().item() - 0.04) < 0.002

    def test_callable_noise(self):
        def poisson_like(y, generator):
            assert y.shape == (1, 1, 8, 8) and generator.device.type == "cpu"
            return y + 0.01 * torch.rand(y.shape, generator=generator)

        ds = data.MeasurementPairs(_images(), Denoising(), noise=poisson_like)
        y, x = ds[0]
        assert torch.equal(ds[0][0], y)
        d = y - x
        assert 0 <= d.min() and d.max() <= 0.01 and d.max() > 0

    def test_operator_changes_shape(self):
        y, x = data.MeasurementPairs(_images(w=5), RowSums())[0]
        assert y.shape == (1, 5) and torch.allclose(y, x.sum(-2))

    def test_dataset_of_tuples(self):
        x = _images(4)
        ds = data.MeasurementPairs(TensorDataset(x, torch.arange(4)), Denoising(), noise=0.0)
        assert len(ds) == 4 and torch.equal(ds[3][1], x[3]) and torch.equal(ds[3][0], x[3])

    def test_real_images(self):
        x = data.mnist5k("val")[0][:5]
        ds = data.MeasurementPairs(x, Denoising((1, 28, 28)), noise=0.1)
        y, xi = ds[4]
        assert y.shape == (1, 28, 28) and torch.equal(xi, x[4])

    def test_no_grad(self):
        x = _images().requires_grad_()
        y, _ = data.MeasurementPairs(x, Denoising(), noise=0.1)[0]
        assert not y.requires_grad

    def test_errors(self):
        with pytest.raises(TypeError, match="operator: expected a proxlab.operators.LinearOperator"):
            data.MeasurementPairs(_images(), lambda x: x)
        with pytest.raises(ValueError, match=r"images must have shape \(N, C, H, W\)"):
            data.MeasurementPairs(torch.zeros(3, 8, 8), Denoising())
        with pytest.raises(TypeError, match="images: expected a tensor"):
            data.MeasurementPairs(42, Denoising())
        with pytest.raises(ValueError, match="noise: a Gaussian sigma must be >= 0"):
            data.MeasurementPairs(_images(), Denoising(), noise=-0.1)
        with pytest.raises(TypeError, match="noise: expected None, a float sigma or a callable"):
            data.MeasurementPairs(_images(), Denoising(), noise="gaussian")
        with pytest.raises(ValueError, match="seed must be >= 0"):
            data.MeasurementPairs(_images(), Denoising(), seed=-1)
        with pytest.raises(ValueError, match="images is empty"):
            data.MeasurementPairs(torch.zeros(0, 1, 8, 8), Denoising())
        # the operator's input shape is checked when the dataset is built
        with pytest.raises(ValueError, match=r"Denoising.forward: images\[0\] must have shape \(B, 3, 8, 8\)"):
            data.MeasurementPairs(_images(c=1), Denoising((3, 8, 8)))

    def test_item_errors(self):
        ds = data.MeasurementPairs(_images(), Denoising(), noise=lambda y, g: y[..., :2])
        with pytest.raises(ValueError, match=r"noise\(y, generator\) must return a tensor of shape \(1, 1, 8, 8\)"):
            ds[0]
        with pytest.raises(IndexError, match="index 6 out of range for 6 items"):
            ds[6]
        with pytest.raises(TypeError, match="index: expected an int"):
            ds["a"]
        with pytest.raises(TypeError, match="index: expected an int, got 1.5"):
            ds[1.5]
        bad = data.MeasurementPairs(TensorDataset(torch.zeros(2, 1, 8, 8)), Denoising())
        bad.images = [torch.zeros(1, 8, 8), "x"]
        with pytest.raises(TypeError, match=r"images\[1\]: expected a tensor"):
            bad[1]
