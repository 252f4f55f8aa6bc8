"""GLOW (proxlab.priors.flow): exact inverses, brute-force log-determinants, a normalised density, gradients,
the latent-shrinkage prox, and the errors a user gets.

The zero-initialised layers (coupling outputs, split priors) would make many checks trivial (an identity
coupling has log-det 0), so every check first gives all parameters random values (:func:`_randomised`).
"""

from __future__ import annotations

import math

import pytest
import torch

from proxlab.priors import capabilities
from proxlab.priors.flow import (ActNorm, AffineCoupling, FlowPrior, Glow, InvConv1x1, SplitPrior, Squeeze,
                                 bits_per_dim, dequantize)

D = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomised(module: torch.nn.Module, seed: int = 0, scale: float = 0.2) -> torch.nn.Module:
    """``module`` in float64 with every parameter moved by a random amount (zero-initialised layers included)."""
    module = module.to(D)
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=D))
    return module.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


def _small_glow(levels: int = 2, steps: int = 2, coupling: str = "affine", channels: int = 1, seed: int = 0) -> Glow:
    return _randomised(Glow(channels, levels=levels, steps=steps, hidden=8, coupling=coupling, image_size=4, seed=seed),
                       seed, scale=0.1)


LAYERS = {
    "actnorm": lambda: ActNorm(4),
    "invconv": lambda: InvConv1x1(4, _gen(1)),
    "affine-coupling": lambda: AffineCoupling(4, 8),
    "additive-coupling": lambda: AffineCoupling(4, 8, additive=True),
    "bounded-coupling": lambda: AffineCoupling(4, 8, min_scale=0.2),
    "squeeze": lambda: Squeeze(),
}


# ---------------------------------------------------------------- exact inverses
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_inverse_of_forward_and_forward_of_inverse(name):
    layer = _randomised(LAYERS[name](), seed=3)
    x = torch.randn(3, 4, 4, 4, dtype=D, generator=_gen(4))
    y, _ = layer(x)
    assert _rel(layer.inverse(y), x) < 1e-10
    assert _rel(layer(layer.inverse(x))[0], x) < 1e-10


def test_split_prior_inverse():
    split = _randomised(SplitPrior(4), seed=5)
    x = torch.randn(3, 4, 4, 4, dtype=D, generator=_gen(6))
    h, eps, _ = split(x)
    assert h.shape == eps.shape == (3, 2, 4, 4)
    assert _rel(split.inverse(h, eps), x) < 1e-10


@pytest.mark.parametrize("coupling", ["affine", "additive"])
def test_whole_flow_inverse_of_forward_and_forward_of_inverse(coupling):
    # perturbations of 0.1 keep the flow well conditioned (at 0.2 nine random steps amplify round-off ~1e8-fold)
    flow = _randomised(Glow(1, levels=3, steps=3, hidden=16, coupling=coupling, image_size=16), seed=7, scale=0.1)
    x = torch.rand(2, 1, 16, 16, dtype=D, generator=_gen(8))
    z, _ = flow(x)
    assert z.shape == (2, 256)
    assert _rel(flow.inverse(z, 16, 16), x) < 1e-10
    # latents near the data's (a random flow's inverse of arbitrary N(0, I) draws can overflow: it divides by
    # coupling scales < 1 nine times)
    z2 = flow(torch.rand(2, 1, 16, 16, dtype=D, generator=_gen(9)))[0] + 0.05 * torch.randn(2, 256, dtype=D, generator=_gen(9))
    assert _rel(flow(flow.inverse(z2, 16, 16))[0], z2) < 1e-10


def test_rgb_and_non_square_images():
    flow = _randomised(Glow(3, levels=2, steps=1, hidden=8, image_size=8), seed=10)
    x = torch.rand(2, 3, 8, 12, dtype=D, generator=_gen(11))
    z, _ = flow(x)
    assert z.shape == (2, 3 * 8 * 12)
    assert _rel(flow.inverse(z, 8, 12), x) < 1e-10
    assert sum(c * h * w for c, h, w in flow.latent_shapes(8, 12)) == 3 * 8 * 12


# ---------------------------------------------------------------- log-determinants against the Jacobian
def _brute_logdet(fn, x: torch.Tensor) -> torch.Tensor:
    """log|det ∂fn/∂x| per sample by the full Jacobian (one sample at a time)."""
    out = []
    for i in range(x.shape[0]):
        xi = x[i: i + 1]
        jac = torch.autograd.functional.jacobian(lambda t: fn(t.view_as(xi)).reshape(-1), xi.reshape(-1))
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_logdet_matches_the_jacobian(name):
    layer = _randomised(LAYERS[name](), seed=12)
    x = torch.randn(2, 4, 4, 4, dtype=D, generator=_gen(13))
    _, logdet = layer(x)
    torch.testing.assert_close(logdet, _brute_logdet(lambda t: layer(t)[0], x), rtol=1e-9, atol=1e-9)


def test_split_prior_logdet_matches_the_jacobian():
    split = _randomised(SplitPrior(4), seed=14)
    x = torch.randn(2, 4, 4, 4, dtype=D, generator=_gen(15))
    _, _, logdet = split(x)

    def fn(t):
        h, eps, _ = split(t)
        return torch.cat([h, eps], 1)

    torch.testing.assert_close(logdet, _brute_logdet(fn, x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("coupling", ["affine", "additive"])
def test_whole_flow_logdet_matches_the_jacobian(coupling):
    """A 2-level flow on 4×4-pixel images: the Jacobian is 16×16."""
    flow = _small_glow(coupling=coupling, seed=16)
    x = torch.rand(3, 1, 4, 4, dtype=D, generator=_gen(17))
    _, logdet = flow(x)
    brute = _brute_logdet(lambda t: flow(t)[0], x)
    torch.testing.assert_close(logdet, brute, rtol=1e-9, atol=1e-9)
    assert float(logdet.detach().abs().min()) > 0.1  # a non-trivial volume change was checked


def test_data_dependent_actnorm_standardises_and_survives_a_constant_channel():
    act = ActNorm(3).to(D).train()
    x = torch.randn(64, 3, 5, 5, dtype=D, generator=_gen(18)) * 3.0 + 1.5
    x[:, 1] = 0.25  # zero variance
    y, logdet = act(x)
    assert torch.isfinite(y).all() and torch.isfinite(logdet).all()
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=D), atol=1e-12, rtol=0)
    std = y.std(dim=(0, 2, 3), unbiased=False)
    torch.testing.assert_close(std[[0, 2]], torch.ones(2, dtype=D), atol=1e-12, rtol=0)
    assert float(act.log_scale.detach()[0, 1]) == 0.0 and float(std.detach()[1]) == 0.0
    assert int(act.initialized) == 1
    before = act.bias.detach().clone()
    act(x + 10.0)  # initialised once only
    assert torch.equal(act.bias.detach(), before)


# ---------------------------------------------------------------- the density
def test_log_prob_is_a_normalised_density():
    """The smallest GLOW (1 level on 2×2 images: D = 4) integrated by the trapezoid rule on a 4-D grid."""
    flow = _randomised(Glow(1, levels=1, steps=2, hidden=8, image_size=2), seed=19, scale=0.1)
    t = torch.linspace(-5.5, 6.5, 28, dtype=D)
    grid = torch.cartesian_prod(t, t, t, t)  # (36**4, 4)
    with torch.no_grad():
        logp = torch.cat([flow.log_prob(chunk.view(-1, 1, 2, 2)) for chunk in grid.split(200_000)])
    h = float(t[1] - t[0])
    total = float(torch.exp(logp).sum()) * h ** 4
    assert abs(total - 1.0) < 1e-4, total


def test_log_prob_bits_per_dim_and_the_standard_normal_base():
    flow = _small_glow(seed=20)
    x = torch.rand(4, 1, 4, 4, dtype=D, generator=_gen(21))
    z, logdet = flow(x)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) + logdet
    torch.testing.assert_close(flow.log_prob(x), expected, rtol=1e-12, atol=1e-12)
    bpd = flow.bits_per_dim(x, dequantize=False)
    torch.testing.assert_close(bpd, -expected / (16 * math.log(2)) + 8.0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(bits_per_dim(z, logdet), bpd, rtol=1e-12, atol=1e-12)


def test_dequantisation_maps_8bit_images_into_their_bins():
    k = torch.arange(256, dtype=D).view(1, 1, 16, 16)
    xd = dequantize(k / 255.0, _gen(22))
    assert torch.all(xd >= k / 256.0) and torch.all(xd < (k + 1) / 256.0)
    torch.testing.assert_close(dequantize(k / 255.0, _gen(22)), xd, rtol=0, atol=0)  # seeded: reproducible


def test_samples_invert_to_their_latents_at_every_temperature():
    flow = _small_glow(seed=23)
    for temp in (0.0, 0.5, 1.0):
        x = flow.sample(3, temperature=temp, generator=_gen(24), size=4)
        assert x.shape == (3, 1, 4, 4)
        eps = temp * torch.randn(3, 16, generator=_gen(24), dtype=D)
        torch.testing.assert_close(flow.encode(x), eps, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- gradients
def test_gradcheck_log_prob_and_inverse():
    flow = _small_glow(levels=2, steps=1, seed=25)
    x = torch.rand(2, 1, 4, 4, dtype=D, generator=_gen(26), requires_grad=True)
    assert torch.autograd.gradcheck(flow.log_prob, (x,), eps=1e-6, atol=1e-6)
    z = torch.randn(2, 16, dtype=D, generator=_gen(27), requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: flow.inverse(t, 4, 4), (z,), eps=1e-6, atol=1e-6)


def test_grad_log_prob_matches_finite_differences():
    flow = _small_glow(seed=28)
    x = torch.rand(1, 1, 4, 4, dtype=D, generator=_gen(29))
    g = flow.grad_log_prob(x)
    d = torch.randn(1, 1, 4, 4, dtype=D, generator=_gen(30))
    eps = 1e-6
    fd = (flow.log_prob(x + eps * d) - flow.log_prob(x - eps * d)) / (2 * eps)
    torch.testing.assert_close((g * d).sum(), fd.sum(), rtol=1e-6, atol=1e-8)


def test_gradients_reach_every_parameter():
    flow = Glow(1, levels=2, steps=2, hidden=8, image_size=8).train()
    flow.bits_per_dim(torch.rand(8, 1, 8, 8, generator=_gen(31))).mean().backward()
    flow.bits_per_dim(torch.rand(8, 1, 8, 8, generator=_gen(32))).mean().backward()
    missing = [n for n, p in flow.named_parameters() if p.grad is None]
    assert not missing


# ---------------------------------------------------------------- the prior
def test_latent_shrinkage_is_the_exact_latent_prox():
    """f(prox(v, τ)) = f(v)/(1 + τ): the minimiser of ½‖z − f(v)‖² + τ/2 ‖z‖² (its gradient vanishes there)."""
    flow = _small_glow(seed=33)
    v = torch.rand(3, 1, 4, 4, dtype=D, generator=_gen(34))
    for tau in (0.0, 0.3, torch.tensor([0.1, 1.0, 4.0], dtype=D)):
        p = flow.prox(v, tau)
        z, zv = flow.encode(p), flow.encode(v)
        t = tau.view(-1, 1) if isinstance(tau, torch.Tensor) else tau
        grad = (z - zv) + t * z
        assert float(grad.detach().abs().max()) < 1e-9
    torch.testing.assert_close(flow.prox(v, 0.0), v, rtol=0, atol=1e-10)


def test_flow_prior_protocol():
    flow = _small_glow(seed=35)
    prior = flow.as_prior()
    assert isinstance(prior, FlowPrior)
    assert capabilities(prior) == {"prox", "log_prob", "grad_log_prob"}
    v = torch.rand(2, 1, 4, 4, dtype=D, generator=_gen(36))
    torch.testing.assert_close(prior(v, 0.5), flow.prox(v, 0.5), rtol=0, atol=0)
    torch.testing.assert_close(prior.log_prob(v), flow.log_prob(v), rtol=0, atol=0)
    with pytest.raises(TypeError, match="flow: expected a proxlab.priors.flow.Glow"):
        FlowPrior(torch.nn.Identity())


def test_torch_compile_smoke():
    torch._dynamo.reset()
    flow = _small_glow(levels=1, steps=1, seed=37)
    x = torch.rand(2, 1, 4, 4, dtype=D, generator=_gen(38))
    compiled = torch.compile(flow.log_prob, backend="eager")
    torch.testing.assert_close(compiled(x), flow.log_prob(x), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- errors
def test_bad_input_is_named():
    flow = Glow(1, levels=3, steps=1, hidden=8)
    with pytest.raises(ValueError, match=r"x: expected 1 channel\(s\), got 3"):
        flow(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"divisible by 2\*\*levels = 8, got 28×28"):
        flow(torch.rand(1, 1, 28, 28))
    with pytest.raises(ValueError, match=r"x: expected a tensor \(B, 1, H, W\), got \(1, 32, 32\)"):
        flow(torch.rand(1, 32, 32))
    with pytest.raises(ValueError, match=r"z: expected a flat latent \(B, 1024\) for 32×32 images, got \(1, 100\)"):
        flow.inverse(torch.randn(1, 100))
    with pytest.raises(ValueError, match="image_size: expected a multiple of 2\\*\\*levels = 8, got 28"):
        Glow(1, levels=3, image_size=28)
    with pytest.raises(ValueError, match="coupling"):
        Glow(1, coupling="affin")
    with pytest.raises(ValueError, match="levels: expected an int >= 1, got 0"):
        Glow(1, levels=0)


def test_non_finite_values_name_the_layer():
    flow = Glow(1, levels=2, steps=2, hidden=8, image_size=8).eval()
    x = torch.rand(2, 1, 8, 8, generator=_gen(39))
    with pytest.raises(FloatingPointError, match="Glow.forward input"):
        flow(x.masked_fill(x > 0.9, float("nan")))
    with torch.no_grad():
        flow.blocks[1][0].coupling.net[0].weight[0, 0, 0, 0] = float("nan")  # NaN passes a ReLU (an -inf would not)
    with pytest.raises(FloatingPointError, match="Glow.forward at level1.step0.coupling"):
        flow(x)
    with pytest.raises(FloatingPointError, match="Glow.inverse at level1.step0.coupling"):
        flow.inverse(torch.randn(2, 64, generator=_gen(43)), 8, 8)
    flow.check_finite = False  # the check can be switched off: then NaN passes through silently
    assert not torch.isfinite(flow(x)[0]).all()


def _actnorm_worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        act = ActNorm(2).to(D).train()
        x = torch.randn(8, 2, 3, 3, dtype=D, generator=_gen(40 + rank)) * (1 + 2 * rank) + 3 * rank
        act(x)
        torch.save({"bias": act.bias.detach(), "log_scale": act.log_scale.detach()}, f"{out_file}.{rank}")
    finally:
        dist.destroy_process_group()


def test_actnorm_initialisation_agrees_across_processes(tmp_path):
    """Two gloo processes with different batches start from the same ActNorm weights: those of both batches."""
    import torch.multiprocessing as mp

    mp.spawn(_actnorm_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "w")), nprocs=2, join=True)
    w0, w1 = (torch.load(tmp_path / f"w.{r}", weights_only=True) for r in (0, 1))
    torch.testing.assert_close(w0["bias"], w1["bias"], rtol=0, atol=1e-12)
    both = torch.cat([torch.randn(8, 2, 3, 3, dtype=D, generator=_gen(40 + r)) * (1 + 2 * r) + 3 * r for r in (0, 1)])
    single = ActNorm(2).to(D).train()
    single(both)
    torch.testing.assert_close(w0["bias"], single.bias.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(w0["log_scale"], single.log_scale.detach(), rtol=0, atol=1e-12)


def test_min_scale_bounds_the_coupling_scales():
    c = _randomised(AffineCoupling(4, 8, min_scale=0.3), seed=41, scale=3.0)  # large weights: extreme raw scales
    x = 10 * torch.randn(64, 4, 4, 4, dtype=D, generator=_gen(42))
    with torch.no_grad():
        _, s = c._shift_scale(x[:, :2])
        plain = _randomised(AffineCoupling(4, 8), seed=41, scale=3.0)
        s_plain = plain._shift_scale(x[:, :2])[1]
    assert float(s.min()) >= 0.3 and float(s.max()) <= 1.0 and float(s.min()) < 0.31  # saturated at both ends
    assert float(s_plain.min()) < 0.01  # without the bound the same weights go far lower
    with pytest.raises(ValueError, match=r"min_scale: expected a number in \[0, 1\), got 1.0"):
        AffineCoupling(4, 8, min_scale=1.0)
