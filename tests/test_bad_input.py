"""Bad input found when proxlab was tried as a new user would: each case gets a clear error naming the input (or
simply works), before any long work starts."""

from __future__ import annotations

import math

import pytest
import torch

from proxlab.cli.main import main
from proxlab.metrics import mse, psnr, ssim
from proxlab.operators import Denoising, GaussianBlur, Inpainting
from proxlab.priors.classic import L1, TV, WaveletL1
from proxlab.solvers import admm, fista, pgd
from proxlab.tasks import make_task
from proxlab.training.distributed import resolve_device

EMPTY = torch.zeros(0, 1, 16, 16)


# ---------------------------------------------------------------- the command line: options and output paths
@pytest.mark.parametrize("argv, needle", [
    (["--task", "inpaint", "--ratio", "0"], "ratio must be in (0.0, 1.0], got 0.0"),
    (["--task", "denoise", "--noise", "inf"], "noise must be finite and >= 0, got inf"),
    (["--task", "denoise", "--noise", "nan"], "noise must be >= 0, got nan"),
    (["--task", "denoise", "--size", "100000"], "--size 100000: a 100000×100000 reconstruction needs about 640.0 GB"),
    (["--task", "denoise", "--size", "0"], "--size: expected an int >= 1, got 0"),
])
def test_reconstruct_refuses_impossible_options(argv, needle, capsys, tmp_path):
    assert main(["reconstruct", *argv, "--method", "init", "skimage:camera", str(tmp_path / "o.png")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_size_estimate_uses_the_memory_there_is(monkeypatch):
    from proxlab.cli import reconstruct as rc

    monkeypatch.setattr(rc, "available_memory", lambda: 1e9)
    rc.check_size(2000)  # 16 copies of 2000² float32: 0.256 GB
    with pytest.raises(ValueError, match=r"--size 4000: .* about 1\.0 GB .* has 1\.0 GB available"):
        rc.check_size(4000)  # 1.024 GB
    assert rc.available_memory.__name__ == "<lambda>" and math.isfinite(rc.COPIES)


@pytest.mark.parametrize("output, needle", [
    ("missing/o.png", "output folder does not exist"),
    ("o.xyz", "output must be a .png file, got"),
    (".", "output must be a .png file, got"),
])
def test_output_paths_are_checked_before_the_reconstruction(output, needle, capsys, tmp_path, monkeypatch):
    import proxlab.reconstruction as rec

    def never(*a, **k):
        raise AssertionError("the reconstruction ran before the output path was checked")

    monkeypatch.setattr(rec, "reconstruct", never)
    monkeypatch.chdir(tmp_path)
    assert main(["reconstruct", "--task", "denoise", "--method", "init", "skimage:camera", output]) == 2
    assert needle in capsys.readouterr().err


# ---------------------------------------------------------------- solvers: measurements that are not finite
@pytest.mark.parametrize("solver", [fista, admm, pgd])
def test_nan_or_inf_in_y_is_refused(solver):
    y = torch.rand(2, 1, 8, 8)
    y[0, 0, 1, 1] = float("nan")
    y[1, 0, 2, 2] = float("inf")
    with pytest.raises(ValueError, match=rf"^{solver.__name__}: y holds 1 NaN and 1 infinite values \(of 128\); "
                                         "a measurement must be finite"):
        solver(Denoising(), y, TV(0.1), max_iter=3)


# ---------------------------------------------------------------- empty batches, half precision, device names
@pytest.mark.parametrize("prior", [TV(0.1), L1(0.1)], ids=["tv", "l1"])
def test_empty_batch_priors_work(prior):
    assert prior.regularizer(EMPTY).shape == (0,)
    assert prior.prox(EMPTY, 0.5).shape == EMPTY.shape


@pytest.mark.parametrize("call, needle", [
    (lambda: WaveletL1(0.1).regularizer(EMPTY), r"WaveletTransform\.forward: x is an empty batch"),
    (lambda: psnr(EMPTY, EMPTY), r"psnr: x is an empty batch \(shape \(0, 1, 16, 16\)\)"),
    (lambda: ssim(EMPTY, EMPTY), r"ssim: x is an empty batch"),
    (lambda: mse(EMPTY, EMPTY), r"mse: x is an empty batch"),
    (lambda: GaussianBlur(1.0)(EMPTY), r"GaussianBlur\.forward: x is an empty batch"),
    (lambda: Inpainting.random((16, 16), 0.5).adjoint(EMPTY), r"Inpainting\.adjoint: y is an empty batch"),
    (lambda: fista(GaussianBlur(1.0), EMPTY, TV(0.1)), r"fista: y is an empty batch"),
    (lambda: admm(GaussianBlur(1.0), EMPTY, TV(0.1)), r"admm: y is an empty batch"),
])
def test_empty_batch_gets_a_clear_error(call, needle):
    with pytest.raises(ValueError, match=needle):
        call()


def test_empty_batch_lpn_regularizer_gets_a_clear_error():
    from proxlab.zoo import load_zoo_model

    lpn, _ = load_zoo_model("lpn-mnist")
    with pytest.raises(ValueError, match=r"x is an empty batch \(shape \(0, 1, 28, 28\)\)"):
        lpn.regularizer(torch.zeros(0, 1, 28, 28))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_blur_in_half_precision_works_in_that_precision(dtype):
    x = torch.rand(2, 1, 16, 16)
    A = GaussianBlur(1.0)
    for f in (A, A.adjoint, A.gram):
        out = f(x.to(dtype))
        assert out.dtype == dtype
        torch.testing.assert_close(out.float(), f(x), atol=2e-2, rtol=0)  # half precision of the float32 result
    assert A.solve_normal(x.to(dtype), 0.5).dtype == dtype


@pytest.mark.parametrize("module", [GaussianBlur(1.0), TV(0.1)], ids=["operator", "prior"])
def test_unknown_device_names_get_a_clear_error(module):
    with pytest.raises(ValueError, match=r"\.to: unknown device 'gpu'; expected 'cpu', 'cuda', .*did you mean 'cuda'"):
        module.to("gpu")
    assert module.to("cpu") is module


def test_resolve_device_names_the_choices():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu' \(did you"):
        resolve_device("gpu")
    with pytest.raises(ValueError, match=r"^noise must be finite and >= 0, got inf"):
        make_task("denoise", noise=float("inf"))
