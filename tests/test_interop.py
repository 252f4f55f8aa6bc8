"""proxlab objects where DeepInverse-style code expects its physics and denoisers, checked with a stand-in of such
code (a half-quadratic-splitting loop that uses only the physics / denoiser methods)."""

import pytest
import torch

from proxlab.interop import as_denoiser, as_physics
from proxlab.metrics import psnr
from proxlab.operators import MRI, CompressedSensing, GaussianBlur, Inpainting
from proxlab.priors.classic import TV

X = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("op", [GaussianBlur(1.0), Inpainting.random((16, 16), 0.5, seed=1), MRI.radial((16, 16), 0.4),
                                CompressedSensing(128, 256, seed=2, signal_shape=(1, 16, 16))],
                         ids=["blur", "inpaint", "mri", "cs"])
def test_prox_l2_is_the_data_proximal_point(op):
    op = op.double() if hasattr(op, "double") else op
    physics = as_physics(op)
    y, z, gamma = physics.A(X), torch.rand_like(X), 0.7
    x = physics.prox_l2(z, y, gamma)
    grad = physics.A_adjoint(physics.A(x) - y) + (x - z) / gamma  # the optimality condition of prox_l2
    scale = float(physics.A_adjoint(y).abs().max() + z.abs().max() / gamma)
    assert float(grad.abs().max()) < 1e-6 * scale
    assert torch.equal(physics.A_dagger(y), op.init(y))


def test_calling_the_physics_measures_with_its_noise():
    physics = as_physics(GaussianBlur(1.0).double(), noise=0.1)
    y = physics(X, generator=torch.Generator().manual_seed(3))
    assert abs(float((y - physics.A(X)).std()) - 0.1) < 0.01
    torch.testing.assert_close(as_physics(GaussianBlur(1.0).double())(X), physics.A(X))


def test_a_prior_as_a_denoiser_is_its_prox_at_sigma_squared():
    tv = TV(0.2)
    den = as_denoiser(tv)
    v = X + 0.1 * torch.randn_like(X)
    torch.testing.assert_close(den(v, 0.3), tv.prox(v, 0.09))
    torch.testing.assert_close(den(v, torch.tensor(0.3)), tv.prox(v, 0.09))
    assert torch.equal(as_denoiser(lambda v, tau: v * 0 + tau)(v, 0.5), v * 0 + 0.25)  # any prox(v, tau) callable
    with pytest.raises(TypeError, match=r"as_denoiser.*prox"):
        as_denoiser(object())


def _stand_in_hqs(physics, denoiser, y, sigmas, gammas):
    """What a DeepInverse-style plug-and-play loop does with a physics and a denoiser, and nothing else."""
    x = physics.A_dagger(y)
    for sigma, gamma in zip(sigmas, gammas):
        x = denoiser(physics.prox_l2(x, y, gamma), sigma)
    return x


def test_a_deepinverse_style_loop_runs_on_proxlab_objects():
    from proxlab.data import random_ellipses

    truth = random_ellipses(2, 32, seed=5).double()
    physics = as_physics(Inpainting.random((32, 32), 0.5, seed=6).double(), noise=0.02)
    y = physics(truth, generator=torch.Generator().manual_seed(4))
    x = _stand_in_hqs(physics, as_denoiser(TV(1.0)), y, sigmas=[0.3, 0.2, 0.1, 0.05] * 5, gammas=[1.0] * 20)
    assert float(psnr(x, truth).mean()) > float(psnr(physics.A_dagger(y), truth).mean()) + 3.0


def test_vjp_is_the_adjoint_as_deepinverse_data_fidelities_call_it():
    """DeepInverse's L2 data fidelity takes its gradient as ``physics.A_vjp(x, A x - y)``: for a linear operator that
    is ``Aᵀ(Ax - y)`` whatever ``x``."""
    op = GaussianBlur(1.0).double()
    physics = as_physics(op)
    v = torch.rand_like(X)
    assert torch.allclose(physics.A_vjp(torch.rand_like(X), v), op.adjoint(v), rtol=0, atol=1e-12)
