"""Metrics: agreement with scikit-image on real images (camera, astronaut grey/colour), batching, errors."""

import math

import numpy as np
import pytest
import torch

from proxlab.metrics import mse, nmse, psnr, ssim

SSIM_SETTINGS = {
    "skimage-default": dict(),  # uniform 7x7, sample covariance
    "wang": dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False),
}


def _images():
    """(name, reference HxWxC in [0, 1], {degradation: estimate}) on 256x256 crops of real images, float64."""
    from skimage import color, data, filters

    rng = np.random.default_rng(0)
    cam = data.camera()[128:384, 128:384].astype(np.float64) / 255.0
    astro = data.astronaut()[64:320, 128:384].astype(np.float64) / 255.0
    out = []
    for name, img in (("camera", cam[..., None]), ("astronaut-grey", color.rgb2gray(astro)[..., None]), ("astronaut-colour", astro)):
        noisy = np.clip(img + 0.08 * rng.standard_normal(img.shape), 0.0, 1.0)
        blurred = filters.gaussian(img, sigma=1.5, channel_axis=-1)
        out.append((name, img, {"noise": noisy, "blur": blurred}))
    return out


def _to_torch(a, dtype):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(dtype)


def _skimage_ssim(ref, est, data_range, **kw):
    from skimage.metrics import structural_similarity

    return structural_similarity(ref, est, data_range=data_range, channel_axis=-1, **kw)


@pytest.fixture(scope="module")
def images():
    return _images()


def agreement(images=None):
    """Max |ours - skimage| over images x degradations x data ranges, per dtype and metric."""
    from skimage.metrics import peak_signal_noise_ratio

    images = images or _images()
    worst = {}
    for name, ref, ests in images:
        for deg, est in ests.items():
            for R in (1.0, 255.0):
                a, b = est * R, ref * R
                sk = {"psnr": peak_signal_noise_ratio(b, a, data_range=R)}
                for key, kw in SSIM_SETTINGS.items():
                    sk[f"ssim {key}"] = _skimage_ssim(b, a, R, **kw)
                for dtype in (torch.float32, torch.float64):
                    X, Y = _to_torch(a, dtype), _to_torch(b, dtype)
                    ours = {"psnr": float(psnr(X, Y, data_range=R))}
                    for key, kw in SSIM_SETTINGS.items():
                        ours[f"ssim {key}"] = float(ssim(X, Y, data_range=R, **kw))
                    for metric in sk:
                        k = (metric, str(dtype))
                        worst[k] = max(worst.get(k, 0.0), abs(ours[metric] - sk[metric]))
    return worst


class TestAgreementWithSkimage:
    def test_psnr_and_ssim(self, images):
        worst = agreement(images)
        assert len(worst) == 6
        for (metric, dtype), err in worst.items():
            assert err <= 1e-3, (metric, dtype, err)
        # float64 is the same computation as scikit-image's, up to round-off
        assert all(err <= 1e-9 for (metric, dtype), err in worst.items() if dtype == "torch.float64")

    def test_full_size_camera(self):
        from skimage import data
        from skimage.metrics import structural_similarity

        cam = data.camera().astype(np.float64)
        noisy = np.clip(cam + 20.0 * np.random.default_rng(1).standard_normal(cam.shape), 0, 255)
        X, Y = torch.from_numpy(noisy)[None, None].float(), torch.from_numpy(cam)[None, None].float()
        assert abs(float(ssim(X, Y, data_range=255.0)) - structural_similarity(cam, noisy, data_range=255.0)) <= 1e-3

    def test_batch_equals_per_image(self, images):
        refs = [_to_torch(ref, torch.float64) for name, ref, _ in images if ref.shape[-1] == 1]
        ests = [_to_torch(e[k], torch.float64) for name, ref, e in images if ref.shape[-1] == 1 for k in ("noise", "blur")]
        X = torch.cat(ests)  # camera-noise, camera-blur, grey-noise, grey-blur
        Y = torch.cat([refs[0], refs[0], refs[1], refs[1]])
        for fn in (psnr, ssim, mse, nmse):
            batch = fn(X, Y)
            assert batch.shape == (4,)
            single = torch.cat([fn(X[i : i + 1], Y[i : i + 1]) for i in range(4)])
            assert torch.allclose(batch, single, atol=1e-12, rtol=0), fn.__name__
            assert torch.allclose(fn(X, Y, reduction="mean"), batch.mean())
        # per-sample data range
        R = torch.tensor([1.0, 2.0, 1.0, 2.0], dtype=torch.float64)
        assert torch.allclose(psnr(X, Y, data_range=R)[1], psnr(X[1:2], Y[1:2], data_range=2.0)[0])
        assert torch.allclose(ssim(X, Y, data_range=R)[3], ssim(X[3:4], Y[3:4], data_range=2.0)[0])


class TestSimpleMetrics:
    def test_values(self):
        y = torch.ones(2, 1, 4, 4, dtype=torch.float64)
        x = y.clone()
        x[1] += 0.1
        assert torch.allclose(mse(x, y), torch.tensor([0.0, 0.01], dtype=torch.float64))
        assert torch.allclose(nmse(x, y), torch.tensor([0.0, 0.01], dtype=torch.float64))
        p = psnr(x, y)
        assert math.isinf(float(p[0])) and float(p[1]) == pytest.approx(20.0)
        assert float(psnr(x, y, data_range=255.0)[1]) == pytest.approx(20.0 + 20.0 * math.log10(255.0))
        assert torch.allclose(ssim(y, y, win_size=3), torch.ones(2, dtype=torch.float64))

    def test_nmse_reference_is_second(self):
        x, y = torch.full((1, 1, 3, 3), 2.0), torch.full((1, 1, 3, 3), 1.0)
        assert float(nmse(x, y)) == pytest.approx(1.0) and float(nmse(y, x)) == pytest.approx(0.25)

    def test_gradcheck(self):
        g = torch.Generator().manual_seed(0)
        x = torch.rand(2, 2, 9, 10, generator=g, dtype=torch.float64).requires_grad_()
        y = torch.rand(2, 2, 9, 10, generator=g, dtype=torch.float64)
        assert torch.autograd.gradcheck(lambda v: ssim(v, y), (x,))
        assert torch.autograd.gradcheck(lambda v: ssim(v, y, win_size=5, gaussian_weights=False), (x,))
        assert torch.autograd.gradcheck(lambda v: psnr(v, y), (x,))


class TestBadInput:
    def test_errors(self):
        x = torch.rand(2, 1, 16, 16)
        with pytest.raises(ValueError, match=r"psnr: x and y must have the same shape, got x \(2, 1, 16, 16\) and y \(2, 1, 16, 8\)"):
            psnr(x, x[..., :8])
        with pytest.raises(ValueError, match=r"ssim: x must have shape \(B, C, H, W\)"):
            ssim(x[0], x[0])
        with pytest.raises(ValueError, match="psnr: data_range must be > 0"):
            psnr(x, x, data_range=0.0)
        with pytest.raises(ValueError, match="ssim: data_range must be > 0"):
            ssim(x, x, data_range=-1.0)
        with pytest.raises(ValueError, match="data_range must be > 0 and finite, got a tensor"):
            psnr(x, x, data_range=torch.tensor([1.0, 0.0]))
        with pytest.raises(ValueError, match=r"data_range must be a number or a tensor of shape \(2,\)"):
            psnr(x, x, data_range=torch.ones(3))
        with pytest.raises(TypeError, match="data_range must be a number"):
            ssim(x, x, data_range="one")
        with pytest.raises(ValueError, match="win_size must be an odd int >= 3, got 6"):
            ssim(x, x, win_size=6)
        with pytest.raises(ValueError, match="win_size 7 exceeds the image size"):
            ssim(torch.rand(1, 1, 5, 20), torch.rand(1, 1, 5, 20))
        with pytest.raises(ValueError, match="sigma must be > 0"):
            ssim(x, x, gaussian_weights=True, sigma=0.0)
        with pytest.raises(ValueError, match="K2 must be >= 0"):
            ssim(x, x, K2=-0.1)
        with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', got 'maen'; did you mean 'mean'"):
            mse(x, x, reduction="maen")
        with pytest.raises(TypeError, match="nmse: y must be a real floating-point tensor"):
            nmse(x, torch.zeros(2, 1, 16, 16, dtype=torch.int64))
        with pytest.raises(TypeError, match="mse: x must be a torch.Tensor"):
            mse(np.zeros((1, 1, 2, 2)), x)


if __name__ == "__main__":
    torch.set_num_threads(1)
    for (metric, dtype), err in sorted(agreement().items()):
        print(f"{metric:22} {dtype:14} max |ours - skimage| = {err:.1e}")
