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
from .parts import LossContext, RunContext, Section, register_loss, register_protocol

_OPTS = ConfigDict(extra="forbid", strict=True, frozen=True)


class FlowNLLOptions(BaseModel):
    """Options of ``flow_nll``: ``val_images`` validation images scored every validation (0: all); ``noise`` the
    standard deviation of Gaussian noise added to the dequantised images in training and validation (0: the
    plain likelihood). A smoothed density keeps the flow from collapsing the near-constant pixels of digits
    (the flow's inverse off the data then stays usable, see ``benchmarks/flow_inverse_stability.py``); the
    test report's bits/dim are always those of the clean images."""

    model_config = _OPTS
    val_images: Annotated[int, Field(ge=0)] = 2000
    noise: Annotated[float, Field(ge=0)] = 0.0


def _images(batch) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def flow_nll_loss(noise: float = 0.0):
    """``loss_fn(model, batch, step)``: mean bits/dim of the batch, dequantised (and, with ``noise`` > 0, with
    Gaussian noise of that standard deviation added) with the Trainer's generator."""

    def loss_fn(model, batch, step):
        x = _images(batch)
        xd = dequantize(x.cpu(), step.generator)
        if noise > 0:
            xd = xd + noise * torch.randn(xd.shape, generator=step.generator, dtype=xd.dtype)
        return bits_per_dim(*model(xd.to(x.device))).mean()

    return loss_fn


@torch.no_grad()
def validation_bits_per_dim(model, images: torch.Tensor, batch_size: int = 256, seed: int = 0, noise: float = 0.0) -> float:
    """Mean bits/dim of ``images`` under ``model`` (a :class:`~proxlab.priors.flow.Glow`), dequantised (plus
    Gaussian ``noise``) with draws fixed by ``seed`` so that successive validations compare like with like."""
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(images), batch_size):
        xd = dequantize(images[i: i + batch_size], gen)
        if noise > 0:
            xd = xd + noise * torch.randn(xd.shape, generator=gen, dtype=xd.dtype)
        total += float(bits_per_dim(*model(xd.to(device))).sum())
    model.train(was_training)
    return total / len(images)


def _make_validate(opts: FlowNLLOptions, ctx: LossContext):
    val = ctx.splits.val if opts.val_images == 0 else ctx.splits.val[: opts.val_images]

    def validate(model) -> dict[str, float]:
        return {"loss": validation_bits_per_dim(model, val, seed=ctx.cfg.seed + 1, noise=opts.noise)}

    return validate


@register_loss("flow_nll", FlowNLLOptions, validate=_make_validate)
def _flow_nll(opts: FlowNLLOptions, ctx: LossContext):
    """A flow's negative log-likelihood in bits/dim (dequantised 8-bit images); validation: bits/dim."""
    if ctx.cfg.model.name != "glow":
        raise ValueError(f"training.loss: 'flow_nll' trains a normalizing flow (model.name = 'glow'), "
                         f"got model.name = {ctx.cfg.model.name!r}")
    return flow_nll_loss(opts.noise)


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


def grids_figure(batches: list[torch.Tensor], titles: list[str], width: float = 3.2) -> bytes:
    """One square grid of grey images per batch ``(n, 1, H, W)``, side by side with its title, as PNG bytes."""
    from .figures import png_bytes, pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(batches), figsize=(width * len(batches), width + 0.2), squeeze=False)
    for ax, x, title in zip(axes[0], batches, titles):
        side = max(1, int(len(x) ** 0.5))
        x = x[: side * side].clamp(0, 1).detach().cpu()
        h, w = x.shape[-2:]
        grid = x[:, 0].reshape(side, side, h, w).permute(0, 2, 1, 3).reshape(side * h, side * w)
        ax.imshow(grid.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return png_bytes(fig, dpi=110)


def sample_grid_figure(model, temperatures, n: int, seed: int = 0) -> bytes:
    """One grid of ``n`` samples per temperature, side by side, as PNG bytes."""
    batches = [model.sample(n, temperature=t, generator=torch.Generator().manual_seed(seed)) for t in temperatures]
    return grids_figure(batches, [f"T = {t:g}" for t in temperatures])


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


# ---------------------------------------------------------------- probing
class FlowProbeOptions(BaseModel):
    """Options of ``flow_probe``: ``images`` test images; ``original_size`` (> 0: perturb only the central
    ``original_size`` square, the image before padding, and re-pad); ``ood_source`` out-of-distribution test images
    (``"mnist5k"``, or an IDX file, e.g. Fashion-MNIST's test file) scored beside the in-distribution ones;
    ``compare_lpn`` a zoo LPN (e.g. ``"lpn-mnist"``) whose R(x) is probed on the same images (cropped)."""

    model_config = _OPTS
    images: Annotated[int, Field(ge=2)] = 64
    original_size: Annotated[int, Field(ge=0)] = 0
    ood_source: str = ""
    ood_name: str = ""
    compare_lpn: str = ""


def _crop_pad(x: torch.Tensor, side: int):
    """``(crop, pad_back)``: the central ``side`` square of ``x`` and the map that zero-pads it back."""
    if side <= 0 or side == x.shape[-1]:
        return x, (lambda t: t)
    p = (x.shape[-1] - side) // 2
    return x[..., p:p + side, p:p + side], (lambda t: torch.nn.functional.pad(t, (p, p, p, p)))


@torch.no_grad()
def probe_bits_per_dim(flow, images: torch.Tensor, original_size: int = 0, seed: int = 0) -> dict:
    r"""Bits/dim of ``images`` under growing perturbations (those of the LPN probing: Gaussian noise, blur,
    convex combinations), ``{mode: {level: [bpd_i]}}``. Every level gets the same uniform dither of one 8-bit
    bin, :math:`x \cdot 255/256 + u/256` (the dequantisation of the clean images), so the levels compare."""
    from .lpn_analysis import PERTURBATIONS, perturbed

    core, pad_back = _crop_pad(images, original_size)
    dither = torch.rand(images.shape, generator=torch.Generator().manual_seed(seed + 7)) / 256.0
    out: dict[str, dict[float, list[float]]] = {}
    for mode, levels in PERTURBATIONS.items():
        out[mode] = {}
        for level in levels:
            x = pad_back(perturbed(core, mode, level, seed)) * (255.0 / 256.0) + dither
            out[mode][level] = [float(v) for v in flow.bits_per_dim(x, dequantize=False)]
    return out


def _ood_images(source: str, like: torch.Tensor, n: int, original_size: int) -> torch.Tensor:
    from ..data import load_idx_images
    from ..data.sources import mnist5k

    x = mnist5k("test")[0] if source == "mnist5k" else load_idx_images(source)
    x = x[:n]
    target = original_size or like.shape[-1]
    if x.shape[-1] != target:
        from ..data._common import resize

        x = resize(x, target)
    pad = (like.shape[-1] - x.shape[-1]) // 2
    return torch.nn.functional.pad(x, (pad,) * 4) if pad > 0 else x


def _ood_figure(ind: list[float], ood: list[float], names: tuple[str, str]) -> bytes:
    from .figures import png_bytes, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3))
    lo, hi = min(ind + ood), max(ind + ood)
    bins = torch.linspace(lo, hi, 30).tolist()
    ax.hist(ind, bins=bins, alpha=0.6, label=names[0])
    ax.hist(ood, bins=bins, alpha=0.6, label=names[1])
    ax.set_xlabel("bits/dim")
    ax.set_ylabel("test images")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png_bytes(fig, dpi=100)


@register_protocol("flow_probe", FlowProbeOptions)
def flow_probe(opts: FlowProbeOptions, ctx: RunContext) -> Section:
    """−log p (bits/dim) of test images under noise, blur and convex combinations; in- vs out-of-distribution
    images; optionally a zoo LPN's R(x) on the same images."""
    import html as _html
    from pathlib import Path

    from .lpn_analysis import _increasing, medians, medians_table_html, violin_figure

    flow = ctx.model.cpu().eval()
    test = ctx.splits.test[: opts.images]
    values = probe_bits_per_dim(flow, test, opts.original_size, seed=ctx.cfg.seed)
    meds = medians(values)
    grows = {
        "gaussian noise σ": _increasing(list(meds["gaussian noise σ"].values())),
        "blur σ": _increasing(list(meds["blur σ"].values())),
        "convex combination λ (0 → 0.5)": _increasing(list(meds["convex combination λ"].values())[:3]),
    }
    m: dict = {"images": len(test), "medians_bits_per_dim": meds, "grows": grows}
    figures = {"flow_probe.png": violin_figure(values, ylabel="bits/dim")}
    parts = [f"<p>Bits/dim of {len(test)} test images under growing perturbations (median per level); grows with "
             f"the perturbation: {_html.escape(', '.join(f'{k}: {v}' for k, v in grows.items()))}.</p>",
             medians_table_html(meds).replace("median R by level", "median bits/dim by level")]
    if opts.ood_source:
        source = opts.ood_source if opts.ood_source == "mnist5k" else str(Path(opts.ood_source).expanduser())
        ood = _ood_images(source, test, opts.images, opts.original_size)
        gen = torch.Generator().manual_seed(ctx.cfg.seed + 3)
        with torch.no_grad():
            ind_bpd = [float(v) for v in flow.bits_per_dim(test, generator=gen)]
            ood_bpd = [float(v) for v in flow.bits_per_dim(ood, generator=gen)]
        name = opts.ood_name or opts.ood_source
        ind_med, ood_med = float(torch.tensor(ind_bpd).median()), float(torch.tensor(ood_bpd).median())
        m["ood"] = {"name": name, "in_distribution_median": ind_med, "ood_median": ood_med,
                    "ood_scored_more_likely": ood_med < ind_med,
                    "fraction_ood_below_in_median": sum(v < ind_med for v in ood_bpd) / len(ood_bpd)}
        figures["flow_ood.png"] = _ood_figure(ind_bpd, ood_bpd, ("test images (in distribution)", name))
        parts.append(f"<p>Out of distribution ({_html.escape(name)}): median {ood_med:.3f} bits/dim against "
                     f"{ind_med:.3f} in distribution; the flow scores the out-of-distribution images "
                     f"{'<b>more</b>' if ood_med < ind_med else 'less'} likely.</p>")
    if opts.compare_lpn:
        from ..zoo import load_zoo_model
        from .lpn_analysis import prior_under_perturbation

        lpn, _ = load_zoo_model(opts.compare_lpn)
        core, _ = _crop_pad(test, opts.original_size)
        lpn_values = prior_under_perturbation(lpn.eval(), core, seed=ctx.cfg.seed)
        m["lpn"] = {"name": opts.compare_lpn, "medians_R": medians(lpn_values)}
        figures["lpn_probe.png"] = violin_figure(lpn_values)
        parts.append(f"<p>The LPN {_html.escape(opts.compare_lpn)}'s R(x) on the same images (cropped to "
                     f"{core.shape[-1]}×{core.shape[-1]}):</p>" + medians_table_html(m["lpn"]["medians_R"]))
    return Section("The flow prior under perturbation, and out of distribution", metrics=m, html="".join(parts),
                   figures=figures)
