"""The built-in parts of the experiment spec: image sources, losses and evaluation protocols.

Sources: ``mnist5k``, ``skimage``, ``ellipses``, ``image_folder``, ``idx``, ``lfw`` (see
:mod:`proxlab.experiments.datasets`). Losses: ``mse``, ``l1``, ``nmse`` on simulated measurements
``y = A x + σ n`` of the training images, ``fistanet`` (MSE + FISTA-Net's symmetry and sparsity terms, on the
same measurements), and ``proximal_matching`` (LPN's ℓ1 → proximal-matching γ
schedule, denoising only). Protocols: ``test_split`` (the model and the classic baselines on the test
images, and on each of the task's test-time variants) and ``prior_perturbation`` (a learned
regularizer under noise, blur and convex combinations).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated, Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..losses import ProximalMatchingSchedule, denoising_schedule_loss, l1, mse, nmse, simulated
from .parts import LossContext, RunContext, Section, register_loss, register_protocol, register_source

_OPTS = ConfigDict(extra="forbid", strict=True, frozen=True)


# ---------------------------------------------------------------- sources
def _image_source(cfg, seed: int, task=None):
    from .datasets import build_splits

    return build_splits(cfg, seed)


for _name in ("mnist5k", "skimage", "ellipses", "image_folder", "idx", "lfw"):
    register_source(_name)(_image_source)


# ---------------------------------------------------------------- losses
def from_sampler(loss_fn, ctx: LossContext):
    """``loss_fn`` fed by the source's sampler when it has one (a fresh batch of ``len(batch)`` every step,
    drawn with the Trainer's generator, so that a resume continues the same stream)."""
    sampler = getattr(ctx.splits, "sampler", None)
    if sampler is None:
        return loss_fn

    def fed(model, batch, step):
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return loss_fn(model, sampler(len(x), step.generator), step)

    return fed


def _simulated_loss(criterion):
    def make(opts, ctx: LossContext):
        return from_sampler(simulated(ctx.operator, ctx.noise, criterion), ctx)

    return make


register_loss("mse")(_simulated_loss(mse))
register_loss("l1")(_simulated_loss(l1))
register_loss("nmse")(_simulated_loss(nmse))


class FISTANetLossOptions(BaseModel):
    """Weights of FISTA-Net's symmetry and sparsity terms (see :func:`~proxlab.losses.fistanet_loss`)."""

    model_config = _OPTS
    symmetry: Annotated[float, Field(ge=0)] = 0.01
    sparsity: Annotated[float, Field(ge=0)] = 0.001


@register_loss("fistanet", FISTANetLossOptions)
def _fistanet(opts: FISTANetLossOptions, ctx: LossContext):
    """MSE + ``symmetry`` × Σ mean(sym²) + ``sparsity`` × Σ mean|code| on simulated measurements (FISTA-Net)."""
    from ..losses import fistanet_loss, simulate_batch

    operator, sigma = ctx.operator, float(ctx.noise)

    def loss_fn(model, batch, step):
        x, y = simulate_batch(operator, sigma, batch, step.generator)
        out = model(y, return_aux=True)
        return fistanet_loss(out.x, x, out.aux, symmetry=opts.symmetry, sparsity=opts.sparsity)

    return from_sampler(loss_fn, ctx)


class ProximalMatchingOptions(BaseModel):
    """Options of the ``proximal_matching`` loss (see :class:`~proxlab.losses.ProximalMatchingSchedule`)."""

    model_config = _OPTS
    l1_steps: Annotated[int, Field(ge=0)]
    stage_steps: Annotated[int, Field(ge=1)]
    gamma_min: Annotated[float, Field(gt=0)] | None = None
    factors: Annotated[tuple[Annotated[float, Field(gt=0)], ...], Field(strict=False, min_length=1)] = (8.0, 4.0, 2.0, 1.0)


@register_loss("proximal_matching", ProximalMatchingOptions, evaluate="final")
def _proximal_matching(opts: ProximalMatchingOptions, ctx: LossContext):
    """LPN's schedule: ℓ1 for ``l1_steps``, then proximal matching with γ halved every ``stage_steps``."""
    if ctx.task.name != "denoise" or ctx.noise <= 0:
        raise ValueError(f"training.loss: 'proximal_matching' trains a prox as a denoiser; it needs operator.task = "
                         f"'denoise' with noise > 0, got task {ctx.task.name!r} with noise {ctx.noise}")
    schedule = ProximalMatchingSchedule(ctx.stage.scaled(opts.l1_steps), ctx.stage.scaled(opts.stage_steps),
                                        opts.gamma_min, tuple(opts.factors))
    return denoising_schedule_loss(ctx.noise, schedule)


class ProxDenoisingOptions(BaseModel):
    """Options of the ``prox_denoising`` loss: the noise level the stage's proxes are trained to remove."""

    model_config = _OPTS
    sigma: Annotated[float, Field(gt=0)]


@register_loss("prox_denoising", ProxDenoisingOptions, evaluate="final")
def _prox_denoising(opts: ProxDenoisingOptions, ctx: LossContext):
    r"""Denoiser pre-training of an unrolled network's proxes: every prox of ``model.proxes`` maps
    :math:`x + \sigma n` to :math:`x` (MSE, the mean over the proxes), the operator unused. A first stage of
    this loss, then a stage with ``init = "previous"`` and an end-to-end loss, is "trained from a denoiser
    pre-training". Single-process only: the proxes are called outside the (DDP) model's forward."""
    sigma = float(opts.sigma)

    def loss_fn(model, batch, step):
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            raise ValueError("training.loss: 'prox_denoising' calls the proxes directly and does not run under "
                             "torchrun; pre-train in one process")
        proxes = getattr(model, "proxes", None)
        if not isinstance(proxes, torch.nn.ModuleList) or len(proxes) == 0:
            raise ValueError(f"training.loss: 'prox_denoising' needs an unrolled model with .proxes, got "
                             f"{type(model).__name__}")
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        with torch.no_grad():
            n = torch.randn(x.shape, generator=step.generator, dtype=torch.float32)
            v = x + sigma * n.to(device=x.device, dtype=x.dtype)
        return sum(mse(prox(v, sigma), x) for prox in proxes) / len(proxes)

    return from_sampler(loss_fn, ctx)


# ---------------------------------------------------------------- protocols
METRIC_FNS: dict[str, Any] = {}


def _metric_fns():
    if not METRIC_FNS:
        from ..metrics import mse as mse_metric
        from ..metrics import nmse, psnr, ssim

        METRIC_FNS.update({"psnr": psnr, "ssim": ssim, "mse": mse_metric, "nmse": nmse})
    return METRIC_FNS


def scores(rec: torch.Tensor, x: torch.Tensor, metrics) -> dict[str, Any]:
    """Per-image and mean values of ``metrics`` (names of :data:`EVAL_METRICS`)."""
    fns = _metric_fns()
    per = {m: [float(v) for v in fns[m](rec, x)] for m in metrics}
    return {"mean": {m: sum(v) / len(v) for m, v in per.items()}, "per_image": per}


def _stack(pairs) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = zip(*(pairs[i] for i in range(len(pairs))))
    return torch.stack(ys), torch.stack(xs)


class _OperatorSwap:
    """``with _OperatorSwap(model, A):`` a network that unrolls a solver around ``model.operator`` runs with ``A``
    instead (a test-time variant of the task: another blur, mask or noise) and gets its own operator back
    afterwards (assigning ``operator`` drops the network's cached ‖A‖²). Without this a model-based network would
    keep the operator it was trained with and never see the variant's (an inpainting net scored on a smaller box
    would still zero the larger one)."""

    def __init__(self, model: torch.nn.Module, operator):
        self.model, self.operator, self.saved = model, operator, None

    def __enter__(self):
        from ..operators.base import LinearOperator

        if isinstance(getattr(self.model, "operator", None), LinearOperator):
            self.saved, self.model.operator = self.model.operator, self.operator
        return self.model

    def __exit__(self, *exc):
        if self.saved is not None:
            self.model.operator = self.saved
        return False


def _evaluate_task(ctx: RunContext, task, seed: int) -> tuple[dict, dict]:
    from ..data import MeasurementPairs
    from .figures import measurement_image
    from ..methods import reconstruct

    cfg = ctx.cfg
    test = ctx.splits.test
    if cfg.evaluation.max_test_images:
        test = test[: cfg.evaluation.max_test_images]
    A = task.operator(tuple(test.shape[-2:]), test.shape[1])
    y, x = _stack(MeasurementPairs(test, A, noise=task.options["noise"], seed=seed))
    batch = cfg.resolved_stages[-1].batch_size
    outs = []
    ctx.model.eval()
    swap = task is not ctx.task  # a variant: the network's own operator is the base task's
    with torch.no_grad(), _OperatorSwap(ctx.model, A.to(ctx.device)) if swap else nullcontext():
        for i in range(0, len(y), batch):
            outs.append(ctx.model(y[i: i + batch].to(ctx.device)).cpu())
    rec = torch.cat(outs).clamp(0, 1)
    results = {"model": scores(rec, x, cfg.evaluation.metrics), "baselines": {}}
    panels = {"truth": x[:4], "measurement": measurement_image(A, y[:4], tuple(x[:4].shape)),
              cfg.model.name: rec[:4]}
    for method in cfg.evaluation.baselines:
        r = reconstruct(method, A, y, task).clamp(0, 1)
        results["baselines"][method] = scores(r, x, cfg.evaluation.metrics)
        panels[method] = r[:4]
    results["test_images"] = len(x)
    return results, panels


@register_protocol("test_split")
def test_split(opts, ctx: RunContext) -> Section:
    """The model and the classic baselines on the test images (and on each test-time variant of the task)."""
    from .report import metrics_table, panel_figure

    cfg = ctx.cfg
    results, panels = _evaluate_task(ctx, ctx.task, cfg.seed + 2)
    html = metrics_table(cfg, results)
    figures = {"reconstructions.png": panel_figure(panels)}
    variants = {}
    for var in cfg.operator.variants:
        r, _ = _evaluate_task(ctx, var.build_task(cfg.operator, cfg.seed), cfg.seed + 2)
        variants[var.label] = r
        html += f"<h3>Variant: {var.label}</h3>" + metrics_table(cfg, r)
    if variants:
        results["variants"] = variants
    return Section("Test images", metrics=results, html=html, figures=figures)


class OODImagesOptions(BaseModel):
    """Options of ``ood_images``: ``name`` of the image set and its ``data`` table (a ``[data]`` section of its
    own, e.g. ``{ source = "mnist5k", pad = 2 }``), whose test split is scored."""

    model_config = _OPTS
    name: Annotated[str, Field(min_length=1)]
    data: Annotated[dict[str, Any], Field(strict=False)]


@register_protocol("ood_images", OODImagesOptions)
def ood_images(opts: OODImagesOptions, ctx: RunContext) -> Section:
    """The model and the classic baselines on out-of-distribution test images (another data set), same task."""
    import dataclasses

    from .config import DataConfig
    from .parts import SOURCES
    from .report import metrics_table, panel_figure

    data = DataConfig.model_validate(opts.data)
    test = SOURCES.get(data.source).build(data, ctx.cfg.seed, task=ctx.task).test  # any registered source
    if test.shape[1:] != ctx.splits.test.shape[1:]:
        raise ValueError(f"evaluation.protocols.ood_images.data: its test images are {tuple(test.shape[1:])}, the "
                         f"model's test images {tuple(ctx.splits.test.shape[1:])} (set size / pad to match)")
    other = dataclasses.replace(ctx, splits=dataclasses.replace(ctx.splits, test=test))
    results, panels = _evaluate_task(other, ctx.task, ctx.cfg.seed + 2)
    results["name"] = opts.name
    return Section(f"Out-of-distribution images: {opts.name}", metrics=results, html=metrics_table(ctx.cfg, results),
                   figures={"ood_images.png": panel_figure(panels)})


class PerturbationOptions(BaseModel):
    model_config = _OPTS
    images: Annotated[int, Field(ge=1)] = 64


@register_protocol("prior_perturbation", PerturbationOptions)
def prior_perturbation(opts: PerturbationOptions, ctx: RunContext) -> Section:
    """The learned regularizer R on test images under noise, blur and convex combinations (LPN paper, Fig. 5)."""
    from ..priors.base import require
    from .lpn_analysis import analysis_section

    require(ctx.model, "regularizer", "protocol prior_perturbation")
    ctx.log("evaluating the learned prior R on perturbed test images")
    n = min(opts.images, len(ctx.splits.test))
    med, html = analysis_section(ctx.model.cpu().eval(), ctx.splits.test[:n], seed=ctx.cfg.seed)
    return Section("The learned prior under perturbation", metrics=med, html=html)


# the parts of the method families (registered on import)
from . import blockcs  # noqa: E402,F401
from . import lista_parts  # noqa: E402,F401
from . import lpn_parts, pnp_parts  # noqa: E402,F401
from . import flow_parts, flow_solvers  # noqa: E402,F401
from . import ct_parts, ct_tables  # noqa: E402,F401
from . import mri_parts  # noqa: E402,F401
