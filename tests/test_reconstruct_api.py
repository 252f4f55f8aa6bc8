"""proxlab.reconstruct / proxlab.measure: a classic method by name, a zoo model (denoiser or built around the
operator), a block-CS zoo model measured with its own Φ, a module, and the errors for bad input."""

import subprocess
import sys

import pytest
import torch
from torch import nn

import proxlab
from proxlab import methods
from proxlab.data import shepp_logan
from proxlab.metrics import psnr
from proxlab.operators import BlockCompressedSensing, Measurement
from proxlab.tasks import make_task
from proxlab.zoo import load_zoo_model

CS_MODEL = "istanet-plus-cs25"


@pytest.fixture(scope="module")
def blurred():
    x = shepp_logan(34)
    task = make_task("deblur")
    A, y = task.measure(x, seed=0)
    return x, task, A, y


def test_classic_method_by_name_takes_the_tasks_weights(blurred):
    x, task, A, y = blurred
    want = methods.reconstruct("fista-tv", A, y, task, max_iter=10)
    got = proxlab.reconstruct("fista-tv", y, A, max_iter=10)  # task inferred from the operator: deblur
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(proxlab.reconstruct("fista-tv", y, A, task="deblur", max_iter=10), want)
    # another task's default weight (denoise: λ = 0.1, deblur: 0.001) gives another reconstruction
    other = proxlab.reconstruct("fista-tv", y, A, task="denoise", max_iter=10)
    assert float((other - want).abs().max()) > 1e-3
    # and an explicit weight overrides the default
    torch.testing.assert_close(proxlab.reconstruct("fista-tv", y, A, lam=0.1, max_iter=10), other)
    torch.testing.assert_close(proxlab.reconstruct("init", y, A), A.init(y))


def test_pnp_with_a_zoo_prior(blurred):
    _, task, A, y = blurred
    prior, _ = load_zoo_model("dncnn-mnist-s0.1")
    want = methods.reconstruct("pnp-admm", A, y, task, prior=prior, max_iter=3)
    got = proxlab.reconstruct("pnp-admm", y, A, prior="zoo:dncnn-mnist-s0.1", max_iter=3)
    torch.testing.assert_close(got, want)


def test_zoo_denoiser_acts_on_the_operators_first_estimate():
    x = shepp_logan(28)
    A, y = make_task("denoise").measure(x, seed=3)
    model, _ = load_zoo_model("dncnn-mnist-s0.1")
    with torch.no_grad():
        want = model(A.init(y))
    torch.testing.assert_close(proxlab.reconstruct("zoo:dncnn-mnist-s0.1", y, A), want)
    torch.testing.assert_close(proxlab.reconstruct(model, y, A), want)  # a module without model_name: a denoiser


def test_zoo_unrolled_net_is_built_around_the_given_operator():
    x = shepp_logan(28)
    task = make_task("deblur", blur_sigma=1.0, noise=0.02)
    A, y = task.measure(x, seed=4)
    model, info = load_zoo_model("pgd-dncnn-mnist-deblur", operator=A)
    assert info["task"]["name"] == "deblur"
    with torch.no_grad():
        want = model(y)
    torch.testing.assert_close(proxlab.reconstruct("zoo:pgd-dncnn-mnist-deblur", y, A), want)
    torch.testing.assert_close(proxlab.reconstruct(model, y, A, model_name="unrolled"), want)
    with pytest.raises(ValueError, match="pass model_name="):
        proxlab.reconstruct(model, y, A)


def test_block_cs_zoo_model_measures_with_its_own_phi():
    x = shepp_logan(66)
    task = make_task("cs", ratio=0.25, noise=0.0)
    model, _ = load_zoo_model(CS_MODEL)
    A, y = proxlab.measure(f"zoo:{CS_MODEL}", x, task)
    assert isinstance(A, BlockCompressedSensing) and A.image_size == (66, 66)
    torch.testing.assert_close(A.phi, model.operator.phi)
    task_A, _ = task.measure(x)
    assert float((task_A.phi - model.operator.phi).abs().max()) > 1e-2  # the task alone would use another Φ
    torch.testing.assert_close(y, Measurement(model.operator.resized((66, 66)), 0.0)(x, seed=task.seed))
    with torch.no_grad():
        want = model(y, image_size=(66, 66))
    got = proxlab.reconstruct(f"zoo:{CS_MODEL}", y, A)
    torch.testing.assert_close(got, want)
    assert got.shape == x.shape
    assert float(psnr(got.clamp(0, 1), x)) > float(psnr(A.init(y).clamp(0, 1), x)) + 3
    torch.testing.assert_close(proxlab.reconstruct(model, y, A, model_name="istanet"), want)
    # a y measured with the task's own Φ is refused, with the way out
    _, task_y = task.measure(x)
    with pytest.raises(ValueError, match=r"carries the Φ it was trained with .*proxlab.measure"):
        proxlab.reconstruct(f"zoo:{CS_MODEL}", task_y, task_A)
    with pytest.raises(ValueError, match="was trained at ratio 0.2498"):
        proxlab.measure(f"zoo:{CS_MODEL}", x, make_task("cs", ratio=0.1))


def test_bad_names_and_options_get_clear_errors(blurred):
    _, _, A, y = blurred
    with pytest.raises(ValueError, match="did you mean 'fista-tv'"):
        proxlab.reconstruct("fista-tw", y, A)
    with pytest.raises(ValueError, match="zoo model must be one of"):
        proxlab.reconstruct("zoo:no-such-model", y, A)
    with pytest.raises(TypeError, match="method_or_model: expected a method name, 'zoo:NAME' or an nn.Module, got int"):
        proxlab.reconstruct(3, y, A)
    with pytest.raises(TypeError, match="operator: expected a proxlab LinearOperator or None, got Tensor"):
        proxlab.reconstruct("init", y, y)
    with pytest.raises(ValueError, match="was trained for task 'denoise', not 'deblur'"):
        proxlab.reconstruct("zoo:dncnn-mnist-s0.1", y, A, task="deblur")
    with pytest.raises(ValueError, match="lam, max_iter apply to classic methods only"):
        proxlab.reconstruct("zoo:pgd-dncnn-mnist-deblur", y, A, lam=0.1, max_iter=3)
    with pytest.raises(ValueError, match="'pnp-pgd' needs a learned prior"):
        proxlab.reconstruct("pnp-pgd", y, A)
    with pytest.raises(ValueError, match="prior is only used by the plug-and-play methods"):
        proxlab.reconstruct("fista-tv", y, A, prior=nn.Identity())
    with pytest.raises(ValueError, match="did you mean 'dncnn-mnist-s0.1'"):
        proxlab.reconstruct("pnp-admm", y, A, prior="zoo:dncnn-mnist")
    with pytest.raises(ValueError, match="max_iter must be an int >= 1, got 0"):
        proxlab.reconstruct("fista-tv", y, A, max_iter=0)
    with pytest.raises(ValueError, match="no task has default weights for a ComposedOperator; pass task="):
        proxlab.reconstruct("fista-tv", y, A @ A)
    with pytest.raises(TypeError, match="task: expected a Task, a task name or None, got int"):
        proxlab.reconstruct("init", y, A, task=1)
    with pytest.raises(ValueError, match="model_name applies to a model passed as a module"):
        proxlab.reconstruct("init", y, A, model_name="dncnn")


def test_import_proxlab_loads_the_reconstruction_module_on_first_use():
    code = ("import sys, proxlab; before = [m for m in ('proxlab.reconstruction', 'proxlab.zoo', 'proxlab.experiments') "
            "if m in sys.modules]; f = proxlab.reconstruct; print(before, 'proxlab.reconstruction' in sys.modules, "
            "f.__module__, 'reconstruct' in dir(proxlab))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] True proxlab.reconstruction True", out
