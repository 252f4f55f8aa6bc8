r"""Block compressed sensing (ISTA-Net's setting, Zhang & Ghanem, CVPR 2018) as registered experiment parts.

- source ``cs_blocks``: random 33×33 blocks drawn fresh every step from grey natural images, with a random
  flip/rotation (dihedral group) per block; Φ from the task (``operator.phi = FILE.mat``, ISTA-Net's
  ``phi_0_25_1089.mat`` …, or orthonormal Gaussian rows drawn from the experiment's seed) and Qinit fitted
  by least squares on ``qinit_blocks`` training blocks; validation on 512 fixed blocks (the weights best
  on them are kept). Images: by default the photographs the installed packages bundle — scikit-image's
  (:data:`TRAIN_IMAGES`; ``camera`` is left out, it is Set11's *cameraman*) and PyWavelets' ``aero`` and
  ``ascent`` — at full and half resolution, with ``chelsea`` held out for validation; ``images = FOLDER``
  takes the grey images of ``FOLDER/train`` (both scales) and validates on ``FOLDER/val`` (the photo set
  that ``python -m proxlab.data.photos`` writes). ``scales`` (default ``[1.0, 0.5]``) and ``val_scales``
  (default ``[1.0]``) set the resolutions the training and validation images are used at (anti-aliased
  downscaling; a scaled copy smaller than one block is left out): a block of a 1024-px photo holds finer
  detail than a block of Set11's 256-px images. Set11 and BSD68 are never used for training or tuning.
- loss ``istanet``: MSE + ``gamma`` × ISTA-Net's symmetry term (returned with the output:
  ``net(y, return_aux=True)``); ``channels_last`` / ``compile`` train in channels-last memory format / with a
  ``torch.compile``'d forward (the weights are the same module either way; evaluation runs uncompiled).
- protocol ``set11``: Set11 exactly as ISTA-Net's test script (grey, zero-padded to multiples of 33,
  output clipped to [0, 1], PSNR on the 0–255 scale without rounding, SSIM by scikit-image with
  ``data_range=255``), timing per image, beside the paper's Table 1 and the authors' released weights.
  Its folder is ``options.root`` or the ``PROXLAB_SET11`` environment variable; without one it is skipped
  (said in the report).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Sequence

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..data import augment_dihedral, random_patches, skimage_image
from ..data._common import resize
from ..metrics import psnr
from ..operators import BlockCompressedSensing, fit_qinit
from .datasets import Splits
from .parts import LossContext, RunContext, Section, register_loss, register_protocol, register_source

__all__ = ["TRAIN_IMAGES", "PYWT_IMAGES", "VAL_IMAGE", "PAPER_SET11", "RELEASED_SET11", "training_images",
           "at_scales", "folder_split", "folder_images", "block_operator", "evaluate_set11", "set11_scores", "whole_psnr"]

#: scikit-image photographs used for training (``camera`` = Set11's cameraman is excluded).
TRAIN_IMAGES = ("astronaut", "brick", "clock", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
                "immunohistochemistry", "moon", "page", "rocket", "text")
PYWT_IMAGES = ("aero", "ascent")
VAL_IMAGE = "chelsea"
#: ISTA-Net paper, Table 1 (Set11 mean PSNR, dB) by CS ratio in percent.
PAPER_SET11 = {"istanet-plus": {1: 17.34, 4: 21.31, 10: 26.64, 25: 32.57, 30: 33.82, 40: 36.06, 50: 38.07},
               "istanet": {1: 17.30, 4: 21.23, 10: 25.80, 25: 31.53, 30: 32.91, 40: 35.36, 50: 37.43}}
#: The authors' released weights measured on the same Set11 files (REFERENCE.md).
RELEASED_SET11 = {"istanet-plus": {1: 17.45, 4: 21.56, 10: 26.49, 25: 32.44, 30: 33.70, 40: 36.02},
                  "istanet": {1: 17.36, 4: 21.15, 10: 26.26, 25: 31.85, 30: 33.09, 40: 35.38}}
_OPTS = ConfigDict(extra="forbid", strict=True, frozen=True)


def training_images(scales: Sequence[float] = (1.0, 0.5)) -> list[torch.Tensor]:
    """The bundled training pool: :data:`TRAIN_IMAGES` and PyWavelets' images, grey in [0, 1], at ``scales``."""
    import numpy as np
    import pywt.data

    imgs = [skimage_image(n, grey=True) for n in TRAIN_IMAGES]
    imgs += [torch.from_numpy(np.asarray(getattr(pywt.data, n)(), dtype=np.float32) / 255.0)[None, None]
             for n in PYWT_IMAGES]
    return at_scales(imgs, scales)


def at_scales(imgs: Sequence[torch.Tensor], scales: Sequence[float]) -> list[torch.Tensor]:
    """Every image at every scale in ``scales`` (scale by scale; anti-aliased; sides floored), leaving out the
    scaled copies smaller than one 33×33 block. Scale 1 keeps the image itself."""
    bad = [s for s in scales if not (isinstance(s, (int, float)) and 0 < s <= 1)]
    if not scales or bad:
        raise ValueError(f"scales: expected a non-empty list of factors in (0, 1], got {list(scales)!r}")
    out = []
    for s in scales:
        for im in imgs:
            small = im if s == 1 else resize(im, (int(im.shape[-2] * s), int(im.shape[-1] * s)))
            if min(small.shape[-2:]) >= 33:
                out.append(small)
    return out


def folder_split(folder: str | Path, split: str) -> list[torch.Tensor]:
    """The grey images of ``folder/split`` (``train`` or ``val``) as ``(1, 1, H, W)`` tensors, each at least one block."""
    from ..data import ImageFolder

    root = Path(folder).expanduser() / split
    if not root.is_dir():
        raise ValueError(f"data.options.images: expected a folder with train/ and val/ image folders (python -m "
                         f"proxlab.data.photos writes one); {str(folder)!r} has no {split}/")
    ds = ImageFolder(root, grey=True)
    imgs = [ds[i][None] for i in range(len(ds))]
    small = [n for n, im in zip(ds.names, imgs) if min(im.shape[-2:]) < 33]
    if small:
        raise ValueError(f"data.options.images: {root} has images smaller than one 33x33 block: {small}")
    return imgs


def folder_images(folder: str | Path, scales: Sequence[float] = (1.0, 0.5),
                  val_scales: Sequence[float] = (1.0,)) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(pool, val)`` from an image folder: the grey images of ``folder/train`` at ``scales`` (default 1 and
    1/2), and those of ``folder/val`` at ``val_scales`` (default 1)."""
    return at_scales(folder_split(folder, "train"), scales), at_scales(folder_split(folder, "val"), val_scales)


def block_operator(task, seed: int, pool: list[torch.Tensor], qinit_blocks: int) -> BlockCompressedSensing:
    """Φ of the ``cs`` task (its ``phi`` file, or orthonormal rows from ``seed``) with Qinit fitted on blocks of ``pool``."""
    ratio = task.options["ratio"]
    if task.options.get("phi"):
        from ..operators.compressed_sensing import load_mat_array

        phi = load_mat_array(task.options["phi"], ["phi", "Phi"]).float()
        op = BlockCompressedSensing(None, phi=phi)
        if abs(op.ratio - ratio) > 0.01:
            raise ValueError(f"operator.phi {task.options['phi']} has ratio {op.ratio:.3f}, operator.ratio is {ratio}")
    else:
        op = BlockCompressedSensing(ratio, seed=seed)
    if qinit_blocks < 2 * op.m:  # checked here, before the blocks are drawn and long before training starts
        raise ValueError(f"data.options.qinit_blocks: expected at least 2·m = {2 * op.m} blocks to fit Qinit "
                         f"(m = {op.m} measurements per block at ratio {ratio}), got {qinit_blocks}")
    blocks = random_patches(pool, qinit_blocks, 33, seed=7).reshape(qinit_blocks, -1)
    return BlockCompressedSensing(None, phi=op.phi, qinit=fit_qinit(op.phi, blocks))


def whole_psnr(rec: torch.Tensor, x: torch.Tensor) -> float:
    """PSNR of the whole tensor (float64); the same value as on the 0–255 scale with peak 255."""
    return float(psnr(rec.double().reshape(1, 1, 1, -1), x.double().reshape(1, 1, 1, -1)))


def _device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


def _unwrap(net: torch.nn.Module) -> torch.nn.Module:
    return net.module if isinstance(getattr(net, "module", None), torch.nn.Module) else net


# ---------------------------------------------------------------- source
class BlocksOptions(BaseModel):
    """Options of the ``cs_blocks`` source (``[data] options = {...}``)."""

    model_config = _OPTS
    images: str = ""
    qinit_blocks: Annotated[int, Field(ge=1)] = 50_000
    val_blocks: Annotated[int, Field(ge=1)] = 512
    scales: Annotated[tuple[Annotated[float, Field(gt=0, le=1)], ...], Field(strict=False, min_length=1)] = (1.0, 0.5)
    val_scales: Annotated[tuple[Annotated[float, Field(gt=0, le=1)], ...], Field(strict=False, min_length=1)] = (1.0,)

    @field_validator("images")
    @classmethod
    def _image_folder(cls, v: str) -> str:
        """Checked when the config loads, before a run folder is written or a sweep's first run trains."""
        if not v:
            return v
        folder = Path(v).expanduser()
        missing = [f"{s}/" for s in ("train", "val") if not (folder / s).is_dir()]
        if missing:
            raise ValueError(f"expected a folder with train/ and val/ image folders (python -m proxlab.data.photos "
                             f"writes one); {v!r} has no {' or '.join(missing)}")
        return str(folder)


@register_source("cs_blocks", BlocksOptions)
def cs_blocks(cfg, seed: int, task=None) -> Splits:
    """33×33 blocks for block CS, drawn fresh every step; Φ from the task, Qinit fitted on training blocks."""
    opts = BlocksOptions.model_validate(dict(cfg.options))
    if task is None or task.name != "cs":
        raise ValueError(f"data.source: 'cs_blocks' needs operator.task = 'cs', got {getattr(task, 'name', None)!r}")
    if opts.images:
        pool, val_imgs = folder_images(opts.images, opts.scales, opts.val_scales)
    else:
        pool, val_imgs = training_images(opts.scales), at_scales([skimage_image(VAL_IMAGE, grey=True)], opts.val_scales)
    for what, imgs, key in (("training", pool, "scales"), ("validation", val_imgs, "val_scales")):
        if not imgs:
            raise ValueError(f"data.options.{key}: every {what} image is smaller than one 33x33 block at scales "
                             f"{list(getattr(opts, key))}; expected at least one block-sized image")
    op = block_operator(task, seed, pool, opts.qinit_blocks)
    val_x = random_patches(val_imgs if len(val_imgs) > 1 else val_imgs[0], opts.val_blocks, 33, seed=1234)

    def sampler(n: int, generator: torch.Generator) -> torch.Tensor:
        block_seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        x = random_patches(pool, n, 33, seed=block_seed)
        return augment_dihedral(x, torch.randint(8, (x.shape[0],), generator=generator))

    def validate(net: torch.nn.Module) -> dict[str, float]:
        net.eval()
        x = val_x.to(_device(net))
        with torch.no_grad():
            rec = net(_unwrap(net).operator(x)).clamp(0, 1)
        return {"psnr": whole_psnr(rec, x), "loss": float(((rec - x) ** 2).mean())}

    empty = val_x[:0]
    return Splits(empty, val_x, empty, sampler=sampler, operator=op, validate=validate,
                  extra={"pool_images": len(pool), "m": op.m})


# ---------------------------------------------------------------- loss
class ISTANetLossOptions(BaseModel):
    model_config = _OPTS
    gamma: Annotated[float, Field(ge=0)] = 0.01
    channels_last: bool = False
    compile: bool = False


@register_loss("istanet", ISTANetLossOptions)
def istanet_training_loss(opts: ISTANetLossOptions, ctx: LossContext):
    """MSE + γ × ISTA-Net's symmetry term: on blocks from the source's sampler (block CS, ``cs_blocks``), or, for a
    source without one, on simulated measurements ``y = A x + σ n`` of its images by the task's operator (ISTA-Net
    over any operator, e.g. CT). Networks without symmetry terms (ResNet-PGD) get the MSE alone."""
    from ..losses import istanet_loss, simulate_batch

    sampler = ctx.splits.sampler
    if sampler is None:
        operator, sigma = ctx.operator, float(ctx.noise)

        def simulated_fn(net, batch, step):
            x, y = simulate_batch(operator, sigma, batch, step.generator)
            out = net(y, return_aux=True)
            return istanet_loss(out.x, x, out.aux, gamma=opts.gamma)

        if opts.channels_last or opts.compile:
            raise ValueError("training.loss_options: channels_last / compile apply to block CS (data.source = "
                             "'cs_blocks') only")
        return simulated_fn
    compiled: dict[int, torch.nn.Module] = {}
    converted: list[bool] = []

    def loss_fn(net, batch, step):
        if opts.channels_last and not converted:  # the parameters keep their identity (the optimizer holds them)
            _unwrap(net).to(memory_format=torch.channels_last)
            converted.append(True)
        # ``net`` is the model, or its DistributedDataParallel wrapper under torchrun: the forward goes through
        # it (that is what all-reduces the gradients); each process draws its share of the global batch
        x = sampler(len(batch), step.generator).to(_device(net))
        if opts.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if opts.compile and id(net) not in compiled:
            compiled[id(net)] = torch.compile(net)
        out = compiled.get(id(net), net)(_unwrap(net).operator(x), return_aux=True)
        return istanet_loss(out.x, x, out.aux, gamma=opts.gamma)

    return loss_fn


# ---------------------------------------------------------------- Set11
def set11_scores(rec: torch.Tensor, x: torch.Tensor) -> tuple[float, float]:
    """ISTA-Net's test-script scores of one grey image ``(1, 1, H, W)`` in [0, 1]: PSNR on the 0–255 scale (no
    rounding) and scikit-image SSIM of the 0–255 images with ``data_range=255``."""
    from skimage.metrics import structural_similarity

    ssim = structural_similarity(rec[0, 0].double().numpy() * 255, x[0, 0].double().numpy() * 255, data_range=255)
    return whole_psnr(rec, x), float(ssim)


def evaluate_set11(model, root: str | Path) -> dict:
    """Set11 as in ISTA-Net's test script; per-image PSNR, SSIM, seconds and the Qinit PSNR, and their means."""
    from ..data import load_set11

    model.eval()
    dev = _device(model)
    per, recs = {}, {}
    images = list(load_set11(root))
    with torch.no_grad():  # warm-up (first-call allocations, per-shape kernel choice), once per size, not timed
        for size, x in {tuple(x.shape[-2:]): x for _, x in images}.items():
            model(model.operator.resized(size)(x.to(dev)), image_size=size)
    for name, x in images:
        A = model.operator.resized(tuple(x.shape[-2:]))
        with torch.no_grad():
            y = A(x.to(dev))
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
            rec = model(y, image_size=x.shape[-2:]).clamp(0, 1)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            dt = time.perf_counter() - t0
            rec, x0 = rec.cpu(), A.init(y).clamp(0, 1).cpu()
        p, ssim = set11_scores(rec, x)
        per[name] = {"psnr": p, "ssim": ssim, "seconds": dt, "qinit_psnr": whole_psnr(x0, x)}
        recs[name] = (x, rec)
    mean = {k: sum(v[k] for v in per.values()) / len(per) for k in ("psnr", "ssim", "seconds", "qinit_psnr")}
    return {"mean": mean, "per_image": per, "threads": torch.get_num_threads(), "_recs": recs}


def _figure(recs: dict) -> bytes:
    from .figures import png_bytes, pyplot

    plt = pyplot()
    names = list(recs)[:4]
    fig, axes = plt.subplots(2, len(names), figsize=(2.6 * len(names), 5.4), squeeze=False)
    for j, n in enumerate(names):
        x, rec = recs[n]
        axes[0, j].imshow(x[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(n, fontsize=9)
        axes[1, j].imshow(rec[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[1, j].set_title(f"{whole_psnr(rec, x):.2f} dB", fontsize=9)
        for a in axes[:, j]:
            a.axis("off")
    fig.tight_layout()
    return png_bytes(fig)


class Set11Options(BaseModel):
    model_config = _OPTS
    root: str = ""
    paper_key: str = ""  # "istanet-plus" | "istanet": the rows of the paper's Table 1 to show beside ours


@register_protocol("set11", Set11Options)
def set11(opts: Set11Options, ctx: RunContext) -> Section:
    """Set11 with ISTA-Net's protocol, beside the paper's Table 1 and the authors' released weights."""
    import html

    root = opts.root or os.environ.get("PROXLAB_SET11", "")
    ratio = round(ctx.model.operator.ratio * 100)
    paper = {"paper_table1": PAPER_SET11.get(opts.paper_key, {}).get(ratio),
             "released_weights": RELEASED_SET11.get(opts.paper_key, {}).get(ratio)} if opts.paper_key else None
    if not root:
        return Section("Set11", metrics={"skipped": "no Set11 folder (options.root or PROXLAB_SET11)"},
                       html="<p>Skipped: no Set11 folder given (set <code>evaluation.protocols.N.options.root</code> "
                            "or PROXLAB_SET11).</p>", paper=paper)
    ctx.model.to(memory_format=torch.contiguous_format)
    res = evaluate_set11(ctx.model, root)
    recs = res.pop("_recs")
    m = res["mean"]
    ctx.log(f"Set11: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}" + (
        f" (paper {paper['paper_table1']}, released weights {paper['released_weights']})" if paper else ""))
    rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{v['psnr']:.2f}</td><td>{v['ssim']:.4f}</td>"
                   f"<td>{v['qinit_psnr']:.2f}</td><td>{v['seconds']:.3f}</td></tr>" for n, v in res["per_image"].items())
    body = (f"<p>Mean PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f} (Qinit {m['qinit_psnr']:.2f} dB) at "
            f"{ratio} %.</p><table><tr><th>image</th><th>PSNR</th><th>SSIM</th><th>Qinit PSNR</th><th>s</th></tr>"
            f"{rows}</table>")
    return Section("Set11 (ISTA-Net's protocol)", metrics=res, html=body, figures={"set11.png": _figure(recs)},
                   paper=paper)
