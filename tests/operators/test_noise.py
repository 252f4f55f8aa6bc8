import pytest
import torch

from proxlab.operators import MRI, GaussianBlur, GaussianNoise, Measurement


def test_measurement_reproducible_from_seed():
    meas = Measurement(GaussianBlur(1.0), 0.05)
    x = torch.rand(2, 1, 16, 16)
    y1, y2, y3 = meas(x, seed=7), meas(x, seed=7), meas(x, seed=8)
    assert torch.equal(y1, y2) and not torch.equal(y1, y3)


def test_noise_level_real_and_complex():
    g = torch.Generator().manual_seed(0)
    n = GaussianNoise(0.2)
    real = n(torch.zeros(1, 1, 256, 256), generator=g)
    assert abs(float(real.std()) - 0.2) < 0.005
    cplx = n(torch.zeros(1, 1, 256, 256, dtype=torch.complex64), generator=g)
    assert cplx.dtype == torch.complex64
    assert abs(float(cplx.abs().pow(2).mean().sqrt()) - 0.2) < 0.005
    assert abs(float(cplx.real.std()) - 0.2 / 2**0.5) < 0.005


def test_same_noise_in_float32_and_float64():
    meas = Measurement(MRI.radial(16, 0.3), 0.1)
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(meas(x, seed=1).to(torch.complex64), meas(x.float(), seed=1), atol=1e-6, rtol=1e-5)


def test_zero_noise_and_no_noise():
    x = torch.rand(1, 1, 8, 8)
    assert torch.equal(Measurement(GaussianBlur(0.5), 0.0)(x, seed=1), GaussianBlur(0.5)(x))
    assert torch.equal(Measurement(GaussianBlur(0.5))(x), GaussianBlur(0.5)(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        GaussianNoise(-0.1)
    with pytest.raises(TypeError, match="operator must be a proxlab LinearOperator"):
        Measurement(lambda x: x)
    with pytest.raises(TypeError, match="noise must be a callable"):
        Measurement(GaussianBlur(1.0), noise="loud")
