"""Parts of the normalizing-flow experiments (``glow-mnist``, ``glow-fashion``): the likelihood loss and
its validation, and the protocols that report a flow (bits/dim and samples, probing, the flow as a prior).

Loss ``flow_nll``: bits/dim of dequantised training images (:func:`proxlab.priors.flow.bits_per_dim`),
through the model's ``forward`` so that DDP and ``torch.compile`` wrappers see the call; its validation is
the bits/dim of the validation images with a fixed dequantisation noise (``metric = "loss"``).
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..priors.flow import bits_per_dim, dequantize
from .parts import LossContext, register_loss

_OPTS = ConfigDict(extra="forbid", strict=True, frozen=True)


class FlowNLLOptions(BaseModel):
    """Options of ``flow_nll``: ``val_images`` validation images scored every validation (0: all)."""

    model_config = _OPTS
    val_images: Annotated[int, Field(ge=0)] = 2000


def _images(batch) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def flow_nll_loss():
    """``loss_fn(model, batch, step)``: mean bits/dim of the batch, dequantised with the Trainer's generator."""

    def loss_fn(model, batch, step):
        x = _images(batch)
        xd = dequantize(x.cpu(), step.generator).to(x.device)
        return bits_per_dim(*model(xd)).mean()

    return loss_fn


@torch.no_grad()
def validation_bits_per_dim(model, images: torch.Tensor, batch_size: int = 256, seed: int = 0) -> float:
    """Mean bits/dim of ``images`` under ``model`` (a :class:`~proxlab.priors.flow.Glow`), dequantised with
    a noise fixed by ``seed`` so that successive validations compare like with like."""
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(images), batch_size):
        xd = dequantize(images[i: i + batch_size], gen).to(device)
        total += float(bits_per_dim(*model(xd)).sum())
    model.train(was_training)
    return total / len(images)


def _make_validate(opts: FlowNLLOptions, ctx: LossContext):
    val = ctx.splits.val if opts.val_images == 0 else ctx.splits.val[: opts.val_images]

    def validate(model) -> dict[str, float]:
        return {"loss": validation_bits_per_dim(model, val, seed=ctx.cfg.seed + 1)}

    return validate


@register_loss("flow_nll", FlowNLLOptions, validate=_make_validate)
def _flow_nll(opts: FlowNLLOptions, ctx: LossContext):
    """A flow's negative log-likelihood in bits/dim (dequantised 8-bit images); validation: bits/dim."""
    if ctx.cfg.model.name != "glow":
        raise ValueError(f"training.loss: 'flow_nll' trains a normalizing flow (model.name = 'glow'), "
                         f"got model.name = {ctx.cfg.model.name!r}")
    return flow_nll_loss()


# ---------------------------------------------------------------- protocols
#: Published test bits/dim on MNIST (as reported in FFJORD, Grathwohl et al. 2019, Table 2), 28×28 images.
PUBLISHED_BPD = {"mnist": {"Glow": 1.05, "RealNVP": 1.06}}


class FlowLikelihoodOptions(BaseModel):
    """Options of ``flow_likelihood``: ``original_size`` (> 0: the images were padded from this side, and the
    code length is also given per original pixel), the sample ``temperatures``, ``samples`` per grid,
    ``published`` (a key of :data:`PUBLISHED_BPD` to show beside ours, or ``""``), ``max_images`` (0: all)."""

    model_config = _OPTS
    original_size: Annotated[int, Field(ge=0)] = 0
    temperatures: Annotated[tuple[Annotated[float, Field(ge=0)], ...], Field(strict=False, min_length=1)] = (0.5, 0.7, 1.0)
    samples: Annotated[int, Field(ge=1, le=256)] = 64
    published: str = ""
    max_images: Annotated[int, Field(ge=0)] = 0


def sample_grid_figure(model, temperatures, n: int, seed: int = 0) -> bytes:
    """One grid of ``n`` samples per temperature, side by side, as PNG bytes."""
    from .figures import png_bytes, pyplot

    plt = pyplot()
    side = int(round(n ** 0.5))
    fig, axes = plt.subplots(1, len(temperatures), figsize=(3.2 * len(temperatures), 3.4), squeeze=False)
    for ax, t in zip(axes[0], temperatures):
        x = model.sample(side * side, temperature=t, generator=torch.Generator().manual_seed(seed)).clamp(0, 1).cpu()
        h, w = x.shape[-2:]
        grid = x[:, 0].reshape(side, side, h, w).permute(0, 2, 1, 3).reshape(side * h, side * w)
        ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"T = {t:g}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


def _likelihood_html(m: dict) -> str:
    rows = [f"<tr><td>proxlab GLOW ({m['parameters']:,} parameters)</td><td>{m['bits_per_dim']:.3f}</td>"
            f"<td>{m.get('bits_per_original_pixel', float('nan')):.3f}</td></tr>"]
    for name, v in m.get("published", {}).items():
        rows.append(f"<tr><td>{name} (published)</td><td></td><td>{v:.2f}</td></tr>")
    return ("<table><tr><th>model</th><th>test bits/dim (padded image)</th><th>bits per original pixel</th></tr>"
            + "".join(rows) + "</table>"
            f"<p>{m['test_images']} test images, dequantised once (seed {m['seed']}); bits per original pixel = "
            "the whole image's code length over the pixels before padding (the padding's share included, so it "
            "is an upper bound on the digit's own code length).</p>")


from .parts import RunContext, Section, register_protocol  # noqa: E402


@register_protocol("flow_likelihood", FlowLikelihoodOptions)
def flow_likelihood(opts: FlowLikelihoodOptions, ctx: RunContext) -> Section:
    """Test bits/dim (and per original pixel), published numbers beside ours, sample grids by temperature."""
    if opts.published and opts.published not in PUBLISHED_BPD:
        raise ValueError(f"evaluation.protocols.flow_likelihood.published: expected one of {sorted(PUBLISHED_BPD)} "
                         f"or '', got {opts.published!r}")
    test = ctx.splits.test if opts.max_images == 0 else ctx.splits.test[: opts.max_images]
    seed = ctx.cfg.seed + 2
    bpd = validation_bits_per_dim(ctx.model, test, seed=seed)
    c, h, w = test.shape[1:]
    m = {"bits_per_dim": bpd, "test_images": len(test), "seed": seed,
         "parameters": sum(p.numel() for p in ctx.model.parameters()), "dims": c * h * w}
    if opts.original_size:
        m["bits_per_original_pixel"] = bpd * (c * h * w) / (c * opts.original_size ** 2)
    if opts.published:
        m["published"] = dict(PUBLISHED_BPD[opts.published])
    m["temperatures"] = list(opts.temperatures)
    fig = sample_grid_figure(ctx.model, opts.temperatures, opts.samples, seed=ctx.cfg.seed)
    return Section("Likelihood: test bits/dim, and samples by temperature", metrics=m, html=_likelihood_html(m),
                   figures={"samples.png": fig}, paper=m.get("published"))
