r"""GLOW against a second implementation: ``normflows`` (an optional extra, ``pip install proxlab[oracle]``).

The weights of proxlab's layers are copied into normflows' equivalents and both are run in float64 on
the same input; outputs, log-determinants and log-densities must agree to 1e-10. Skipped when
``normflows`` is not importable.

What is compared
----------------
* each layer alone (ActNorm, LU 1×1 convolution, affine coupling), forward and inverse;
* one whole flow step (normflows' ``GlowBlock``) forward and inverse;
* a whole multi-scale ``Glow(1, levels=3, steps=2)`` against ``normflows.MultiscaleFlow`` built as
  normflows' own Glow example builds it (``GlowBlock``\ s and ``Squeeze`` per level, ``Merge`` between
  levels, one base distribution per latent): latents, log-det, ``log_prob`` and the inverse.

How proxlab's parameters map onto normflows'
--------------------------------------------
normflows writes every flow in the *generative* direction: its ``forward`` maps latent → data and its
``inverse`` maps data → latent, returning the log-det of the direction it runs. proxlab's ``forward``
is data → latent. So proxlab's ``forward`` is compared with normflows' ``inverse`` (same sign of
log-det, both are ``log|det ∂z/∂x|``) and proxlab's ``inverse`` with normflows' ``forward``.

* **Order inside a step.** normflows' ``GlowBlock.flows`` is ``[coupling, 1×1 conv, ActNorm]`` in the
  generative direction, so data → latent runs ActNorm, 1×1 conv, coupling: proxlab's order. In the
  multi-scale flow, proxlab's step ``j`` of level ``l`` is normflows' ``flows[L-1-l][K-1-j]`` (normflows
  lists levels from the coarsest and steps in generative order; ``flows[i][K]`` is its ``Squeeze``).
* **ActNorm.** proxlab ``y = (x + b) e^{s}``; normflows' inverse ``y = (x - t) e^{-s'}``.
  Mapping: ``s' = -s``, ``t = -b``; its data-dependent initialisation flag is set so the copy is kept.
* **1×1 conv (LU).** Both assemble ``W = P L (U + diag(sign · e^{log_s}))`` and normflows' inverse applies
  ``W`` itself (its forward applies ``W^{-1}``). Mapping is one-to-one: ``P = perm``, ``L = lower``,
  ``U = upper``, ``sign_S = sign``, ``log_S = log_diag``.
* **Affine coupling.** Both split channels with the first half conditioning the second (normflows'
  ``split_mode="channel"`` is ``chunk(2)``: the same halves for even channel counts, which every level
  of a grey Glow has), use the net ``conv3×3 → ReLU → conv1×1 → ReLU → conv3×3`` (normflows'
  ``ConvNet2d`` with kernel sizes ``(3, 1, 3)`` and ``leaky=0``) and read shift / scale as the even / odd
  output channels, scale ``σ(r + 2)``. proxlab: ``y_b = (x_b + t) σ(r+2)``; normflows with
  ``scale_map="sigmoid"``, inverse: ``y_b = (x_b - t') σ(r+2)``. Mapping: the conv weights are copied and
  the even (shift) output channels of the last conv, weight and bias, are negated (``t' = -t``).
* **Squeeze.** normflows' ``Squeeze.inverse`` is space-to-depth with output channel ``4c + 2i + j``, the
  ordering of ``pixel_unshuffle``: no mapping needed.
* **Split priors — matched only in part.** proxlab's ``SplitPrior`` is *conditional*:
  ``(μ, log σ) = ZeroConv(h)`` of the kept half, ``log σ`` soft-clamped ``4 tanh(·/4)``, and the split
  latent is standardised inside the flow. normflows' ``GlowBase`` is an *unconditional* per-channel
  Gaussian ``N(loc_c, e^{2 log_scale_c})`` evaluated after the flow. They coincide only when the
  split prior's conv weights are zero (only its bias acts): then ``loc = bias[0::2]``,
  ``log_scale = 4 tanh(bias[1::2] / 4)`` (``loc_logs = log_scale_logs = 0``). The multi-scale check uses
  such split priors; the conditional part (non-zero conv weights) has no normflows counterpart and is
  covered by proxlab's own exactness tests (tests/priors/test_flow.py). Consequently proxlab's latent of a
  split is normflows' ``(z - loc) / e^{log_scale}``, and proxlab's log-det is normflows' flow log-det
  minus ``HW Σ_c log_scale_c`` for each split; the log-densities agree as they stand.
* **Centring.** proxlab's flow sees ``x - 1/2``; normflows is given ``x - 1/2`` (a shift, log-det 0).
"""

from __future__ import annotations

import pytest
import torch

nf = pytest.importorskip("normflows")

# normflows' LU 1x1 conv factorises its initial rotation with the deprecated ``Tensor.lu``.
pytestmark = pytest.mark.filterwarnings("ignore:torch.lu is deprecated:UserWarning")

from proxlab.priors.flow import ActNorm, AffineCoupling, FlowStep, Glow, InvConv1x1  # noqa: E402

D = torch.float64
TOL = dict(rtol=1e-10, atol=1e-10)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randomise(module: torch.nn.Module, seed: int, scale: float = 0.15) -> None:
    """Move every parameter by a random amount (zero-initialised layers would make the checks trivial)."""
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _nf_glow_block(channels: int, hidden: int) -> "nf.flows.GlowBlock":
    torch.manual_seed(123)  # normflows draws its 1x1 conv's rotation from the global generator
    return nf.flows.GlowBlock(channels, hidden, scale=True, scale_map="sigmoid", split_mode="channel",
                              leaky=0.0, init_zeros=True, use_lu=True).to(D)


# ---------------------------------------------------------------- weight copies
@torch.no_grad()
def _copy_actnorm(src: ActNorm, dst) -> None:
    dst.s.copy_(-src.log_scale)
    dst.t.copy_(-src.bias)
    dst.data_dep_init_done.fill_(1.0)


@torch.no_grad()
def _copy_invconv(src: InvConv1x1, dst) -> None:
    assert dst.use_lu
    dst.P.copy_(src.perm)
    dst.L.copy_(src.lower)
    dst.U.copy_(src.upper)
    dst.sign_S.copy_(src.sign)
    dst.log_S.copy_(src.log_diag)


@torch.no_grad()
def _copy_coupling(src: AffineCoupling, dst) -> None:
    """``dst`` is normflows' ``AffineCouplingBlock``; its net's last conv gets the shift channels negated."""
    coupling = dst.flows[1]
    assert coupling.scale and coupling.scale_map == "sigmoid"
    src_convs = [m for m in src.net if isinstance(m, torch.nn.Conv2d)]
    dst_convs = [m for m in coupling.param_map.net if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in src_convs] == [c.kernel_size for c in dst_convs] == [(3, 3), (1, 1), (3, 3)]
    assert [type(m) for m in coupling.param_map.net][1::2] == [torch.nn.LeakyReLU] * 2
    for a, b in zip(src_convs, dst_convs):
        b.weight.copy_(a.weight)
        b.bias.copy_(a.bias)
    last = dst_convs[-1]
    last.weight[0::2].neg_()
    last.bias[0::2].neg_()


def _copy_step(src: FlowStep, dst) -> None:
    coupling, invconv, actnorm = dst.flows
    _copy_actnorm(src.actnorm, actnorm)
    _copy_invconv(src.invconv, invconv)
    _copy_coupling(src.coupling, coupling)


def _random_step(channels: int = 8, hidden: int = 16, seed: int = 0) -> FlowStep:
    step = FlowStep(channels, hidden, generator=_gen(seed)).to(D)
    _randomise(step, seed + 1)
    step.actnorm.initialized.fill_(1)
    return step.eval()


def _nontrivial(x: torch.Tensor, y: torch.Tensor, logdet: torch.Tensor) -> None:
    """The layer must move its input and have a non-zero log-det, or agreement would prove nothing."""
    x, y, logdet = x.detach(), y.detach(), logdet.detach()
    assert float((y - x).norm() / x.norm()) > 1e-2
    assert float(logdet.abs().min()) > 1e-3


# ---------------------------------------------------------------- one layer, one step
@pytest.mark.parametrize("layer", ["actnorm", "invconv", "coupling"])
def test_each_layer_matches_normflows(layer):
    step = _random_step(seed=2)
    block = _nf_glow_block(8, 16)
    _copy_step(step, block)
    ours = {"actnorm": step.actnorm, "invconv": step.invconv, "coupling": step.coupling}[layer]
    theirs = {"actnorm": block.flows[2], "invconv": block.flows[1], "coupling": block.flows[0]}[layer]
    x = torch.randn(3, 8, 6, 5, generator=_gen(7), dtype=D)

    y, ld = ours(x)
    y_nf, ld_nf = theirs.inverse(x)  # data -> latent in normflows
    _nontrivial(x, y, ld)
    torch.testing.assert_close(y, y_nf, **TOL)
    torch.testing.assert_close(ld, torch.as_tensor(ld_nf, dtype=D).expand(3), **TOL)

    x_nf, ld_back = theirs.forward(y)  # latent -> data; its log-det is that of the inverse map
    torch.testing.assert_close(ours.inverse(y), x_nf, **TOL)
    torch.testing.assert_close(torch.as_tensor(ld_back, dtype=D).expand(3), -ld, **TOL)


def test_glow_step_matches_normflows_glow_block():
    step = _random_step(seed=5)
    block = _nf_glow_block(8, 16)
    _copy_step(step, block)
    x = torch.randn(4, 8, 7, 6, generator=_gen(11), dtype=D)

    y, ld = x, x.new_zeros(4)
    for _, layer in step.layers():
        y, l_ = layer(y)
        ld = ld + l_
    y_nf, ld_nf = block.inverse(x)
    _nontrivial(x, y, ld)
    torch.testing.assert_close(y, y_nf, **TOL)
    torch.testing.assert_close(ld, ld_nf, **TOL)

    x_back, ld_back = block.forward(y)
    torch.testing.assert_close(x_back, x, **TOL)
    torch.testing.assert_close(ld_back, -ld, **TOL)


def test_copy_is_needed_for_agreement():
    """The shift's sign flip is what makes the couplings agree: without it they differ (the check can fail)."""
    step = _random_step(seed=5)
    block = _nf_glow_block(8, 16)
    _copy_step(step, block)
    last = [m for m in block.flows[0].flows[1].param_map.net if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight[0::2].neg_()
        last.bias[0::2].neg_()
    x = torch.randn(2, 8, 5, 5, generator=_gen(3), dtype=D)
    with torch.no_grad():
        y, _ = step.coupling(x)
        y_nf, _ = block.flows[0].inverse(x)
    assert float((y - y_nf).norm() / y.norm()) > 1e-3


# ---------------------------------------------------------------- the multi-scale flow
LEVELS, STEPS, HIDDEN, SIZE = 3, 2, 16, 16


def _pair() -> tuple[Glow, "nf.MultiscaleFlow"]:
    glow = Glow(1, levels=LEVELS, steps=STEPS, hidden=HIDDEN, image_size=SIZE, seed=4).to(D)
    _randomise(glow, seed=9, scale=0.1)
    with torch.no_grad():
        for split in glow.splits:  # normflows' base is unconditional: only the split prior's bias can match
            split.net.weight.zero_()
        for block in glow.blocks:
            for step in block:
                step.actnorm.initialized.fill_(1)
    glow.eval()

    q0, merges, flows = [], [], []
    for i in range(LEVELS):  # as normflows' Glow example builds it, for 1 channel
        flows.append([_nf_glow_block(2 ** (LEVELS + 1 - i), HIDDEN) for _ in range(STEPS)] + [nf.flows.Squeeze()])
        if i > 0:
            merges.append(nf.flows.Merge())
            shape = (2 ** (LEVELS - i), SIZE // 2 ** (LEVELS - i), SIZE // 2 ** (LEVELS - i))
        else:
            shape = (2 ** (LEVELS + 1), SIZE // 2 ** LEVELS, SIZE // 2 ** LEVELS)
        q0.append(nf.distributions.GlowBase(shape))
    model = nf.MultiscaleFlow(q0, flows, merges, class_cond=False).to(D)

    for level in range(LEVELS):
        i = LEVELS - 1 - level
        for j, step in enumerate(glow.blocks[level]):
            _copy_step(step, model.flows[i][STEPS - 1 - j])
        if level < LEVELS - 1:
            bias = glow.splits[level].net.bias
            with torch.no_grad():
                model.q0[i].loc.copy_(bias[0::2].view(1, -1, 1, 1))
                model.q0[i].log_scale.copy_((4.0 * torch.tanh(bias[1::2] / 4.0)).view(1, -1, 1, 1))
    return glow, model.eval()


def _nf_latents_standardised(model, z: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
    """normflows' per-level latents in proxlab's flat order, split ones standardised, and their log-det."""
    flat, ld = [], 0.0
    for i in range(LEVELS - 1, 0, -1):  # proxlab's level 0 split is normflows' q0[L-1]
        q = model.q0[i]
        flat.append(((z[i] - q.loc) * torch.exp(-q.log_scale)).flatten(1))
        ld = ld - z[i].shape[2] * z[i].shape[3] * q.log_scale.sum()
    flat.append(z[0].flatten(1))
    return flat, ld


def test_multiscale_glow_matches_normflows():
    glow, model = _pair()
    g = _gen(21)
    x = (torch.randint(0, 256, (3, 1, SIZE, SIZE), generator=g).to(D) + torch.rand(3, 1, SIZE, SIZE, generator=g,
                                                                                   dtype=D)) / 256.0
    z, ld = glow(x)
    z_nf, ld_nf = model.inverse_and_log_det(x - 0.5)
    flat, ld_split = _nf_latents_standardised(model, z_nf)
    assert [p.shape[1] for p in flat] == [c * h * w for c, h, w in glow.latent_shapes(SIZE, SIZE)]
    assert float(ld.detach().abs().min()) > 1.0 and float(ld_split.detach().abs()) > 1e-2  # non-trivial flow and split priors
    torch.testing.assert_close(z, torch.cat(flat, 1), **TOL)
    torch.testing.assert_close(ld, ld_nf + ld_split, **TOL)
    torch.testing.assert_close(glow.log_prob(x), model.log_prob(x - 0.5, None), **TOL)

    x_nf, ld_back = model.forward_and_log_det(z_nf)
    torch.testing.assert_close(glow.inverse(z, SIZE, SIZE), x_nf + 0.5, **TOL)
    torch.testing.assert_close(ld_back, -ld_nf, **TOL)
