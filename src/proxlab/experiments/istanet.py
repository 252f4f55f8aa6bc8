r"""ISTA-Net / ISTA-Net+ and an unrolled ResNet-prox PGD for block compressed sensing (Zhang & Ghanem, CVPR 2018).

Training data: random 33×33 blocks, drawn fresh every step, from the grey natural images that the
installed packages bundle — scikit-image's photographs (:data:`TRAIN_IMAGES`; ``camera`` is left
out because it is Set11's *cameraman*) and PyWavelets' ``aero`` and ``ascent`` — each at full and
half resolution, with a random flip/rotation (dihedral group) per block. ``chelsea`` is held out for
validation (512 fixed blocks; the weights best on it are kept). Set11 and BSD68 are never used
for training or tuning. ``images=FOLDER`` trains on the grey images of ``FOLDER/train`` instead (also at
scales 1 and 1/2) and validates on 512 blocks of ``FOLDER/val``: the photo set that
``python -m proxlab.data.photos`` writes (:func:`~proxlab.data.photos.fetch_photos`).

Φ is read from ``phi=FILE.mat`` (ISTA-Net's ``phi_0_25_1089.mat`` …) or drawn from ``seed``
(orthonormal Gaussian rows); ``Qinit`` is fitted by least squares on ``qinit_blocks`` (50,000) training blocks.
Loss: MSE + ``gamma`` × the symmetry term (ISTA-Net/ISTA-Net+). Adam with a cosine schedule; lr 1e-3
(the authors: 1e-4 for 278k steps; we have a few thousand). ``zero_g=1`` (default) starts ISTA-Net+'s last
convolution at zero and ``identity=1`` (default) starts plain ISTA-Net's stages as soft-thresholding through
a split-identity transform (see :class:`~proxlab.unrolled.ISTANet`); 0 gives the authors' Xavier start for either.
``init=zoo:NAME`` or ``init=FILE.safetensors`` starts from another ratio's weights (all but Φ/Qinit).

Settings (``--set key=value``): ``model`` (istanet-plus | istanet | resnet-pgd), ``ratio`` (percent),
``phi``, ``steps``, ``batch``, ``lr``, ``gamma``, ``precision`` (bf16 | fp32: autocast for training only;
evaluation is fp32), ``threads`` (torch threads, default 1, so that two trainings share a 2-core machine; this
program sets them itself, the command line's ``--threads`` does not apply), ``seed``, ``init``, ``set11`` (a Set11 folder: evaluated at the end
exactly as the paper does), ``val_every``, ``stages``/``channels``/``blocks`` (resnet-pgd), ``warmup`` (linear
learning-rate warm-up steps before the cosine decay: a fresh Adam state on trained weights otherwise moves
every parameter by ~lr in its first steps, which wrecks a warm start), ``channels_last`` and ``compile``
(0/1: train in channels-last memory format / with a ``torch.compile``'d forward; the weights are the same
module either way, evaluation runs uncompiled), ``device`` (auto | cpu | cuda | cuda:N; auto takes a GPU where one
exists). Under ``torchrun`` each process draws its share of every global batch and rank 0 writes the folder.
A folder with checkpoints resumes where it stopped. Writes ``model.safetensors``, ``results.json``,
``report.html`` and, with ``set11``, ``set11.png``. ``snapshot_every=N`` also saves the weights every N steps
to ``snapshots/step_NNNNNN.safetensors`` (for a learning curve: ``benchmarks/istanet_learning_curve.py``).
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

import torch

from ..data import augment_dihedral, random_patches, skimage_image
from ..data._common import resize
from ..metrics import psnr
from ..operators import BlockCompressedSensing, fit_qinit
from ..losses import istanet_loss
from ..unrolled.istanet import BlockUnrolled, ISTANet, conv_macs_per_pixel, resnet_unrolled

__all__ = ["run", "PRESETS", "TRAIN_IMAGES", "VAL_IMAGE", "PAPER_SET11", "RELEASED_SET11", "training_images",
           "build", "evaluate_set11", "set11_scores", "load_init", "export_to_zoo", "folder_images"]

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
MODELS = ("istanet-plus", "istanet", "resnet-pgd")
DEFAULTS = {"model": "istanet-plus", "ratio": "25", "phi": "", "steps": "3000", "batch": "64", "lr": "1e-3",
            "gamma": "0.01", "precision": "bf16", "threads": "1", "seed": "0", "init": "", "set11": "",
            "val_every": "200", "zero_g": "1", "qinit_blocks": "50000", "stages": "5", "channels": "128", "blocks": "1",
            "warmup": "0", "channels_last": "0", "compile": "0", "identity": "1", "device": "auto",
            "images": "", "snapshot_every": "0"}
PRESETS = {f"{m}-cs{r}": {"model": m, "ratio": str(r)} for m in MODELS for r in (10, 25, 40)}
INT_SETTINGS = ("ratio", "steps", "batch", "threads", "seed", "val_every", "stages", "channels", "blocks", "zero_g",
                "qinit_blocks", "warmup", "channels_last", "compile", "identity", "snapshot_every")
#: settings that do not change the trained weights (left out of a zoo entry's training command)
NOT_RECIPE = ("model", "ratio", "threads", "set11", "device", "snapshot_every")


def _settings(over: dict[str, str]) -> dict:
    unknown = sorted(set(over) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(DEFAULTS)}")
    s = {**DEFAULTS, **over}
    out: dict = {}
    for k, kind in [(k, int) for k in INT_SETTINGS] + [("lr", float), ("gamma", float)]:
        try:
            out[k] = kind(s[k])
        except ValueError:
            raise ValueError(f"setting {k} must be {'an int' if kind is int else 'a number'}, got {s[k]!r}") from None
    if s["model"] not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {s['model']!r}")
    if s["precision"] not in ("bf16", "fp32"):
        raise ValueError(f"precision must be bf16 or fp32, got {s['precision']!r}")
    for k in ("warmup", "snapshot_every"):
        if out[k] < 0:
            raise ValueError(f"{k} must be >= 0 steps, got {out[k]}")
    if s["images"]:
        lacking = [d for d in ("train", "val") if not (Path(s["images"]) / d).is_dir()]
        if lacking:
            raise ValueError(f"setting images: expected a folder with train/ and val/ image folders (python -m "
                             f"proxlab.data.photos writes one), {s['images']!r} has no {' or '.join(lacking)}/")
    for k in ("channels_last", "compile", "identity", "zero_g"):
        if out[k] not in (0, 1):
            raise ValueError(f"{k} must be 0 or 1, got {out[k]}")
    if not 1 <= out["ratio"] <= 50:
        raise ValueError(f"ratio is a percentage in 1..50, got {out['ratio']}")
    for k in ("steps", "batch", "threads", "val_every", "stages", "channels", "blocks", "qinit_blocks"):
        if out[k] < 1:
            raise ValueError(f"{k} must be >= 1, got {out[k]}")
    from ..training.distributed import resolve_device

    try:
        resolve_device(s["device"])
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"setting device: {err}") from None
    return {**out, "model": s["model"], "precision": s["precision"], "phi": s["phi"], "init": s["init"],
            "set11": s["set11"], "device": s["device"], "images": s["images"]}


def training_images() -> list[torch.Tensor]:
    """The training pool: :data:`TRAIN_IMAGES` and PyWavelets' images, grey in [0, 1], at scales 1 and 1/2."""
    import numpy as np
    import pywt.data

    imgs = [skimage_image(n, grey=True) for n in TRAIN_IMAGES]
    imgs += [torch.from_numpy(np.asarray(getattr(pywt.data, n)(), dtype=np.float32) / 255.0)[None, None]
             for n in PYWT_IMAGES]
    halves = [resize(im, (im.shape[-2] // 2, im.shape[-1] // 2)) for im in imgs]
    return imgs + [h for h in halves if min(h.shape[-2:]) >= 33]


def folder_images(folder: str | Path) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(pool, val)`` from an image folder: every image of ``folder/train`` grey at scales 1 and 1/2 (as
    :func:`training_images`), and the images of ``folder/val`` at scale 1."""
    from ..data import ImageFolder

    def load(split: str) -> list[torch.Tensor]:
        ds = ImageFolder(Path(folder) / split, grey=True)
        imgs = [ds[i][None] for i in range(len(ds))]
        small = [n for n, im in zip(ds.names, imgs) if min(im.shape[-2:]) < 33]
        if small:
            raise ValueError(f"setting images: {Path(folder) / split} has images smaller than one 33x33 block: {small}")
        return imgs

    imgs, val = load("train"), load("val")
    halves = [resize(im, (im.shape[-2] // 2, im.shape[-1] // 2)) for im in imgs]
    return imgs + [h for h in halves if min(h.shape[-2:]) >= 33], val


def _operator(cfg: dict, pool: list[torch.Tensor]) -> BlockCompressedSensing:
    if cfg["phi"]:
        from ..operators.compressed_sensing import load_mat_array

        phi = load_mat_array(cfg["phi"], ["phi", "Phi"]).float()
        op = BlockCompressedSensing(None, phi=phi)
        if abs(op.ratio * 100 - cfg["ratio"]) > 1:
            raise ValueError(f"phi {cfg['phi']} has ratio {op.ratio:.3f}, the setting ratio is {cfg['ratio']} %")
    else:
        op = BlockCompressedSensing(cfg["ratio"] / 100, seed=cfg["seed"])
    n = cfg["qinit_blocks"]
    blocks = random_patches(pool, n, 33, seed=7).reshape(n, -1)
    return BlockCompressedSensing(None, phi=op.phi, qinit=fit_qinit(op.phi, blocks))


def build(cfg: dict, op: BlockCompressedSensing) -> BlockUnrolled:
    if cfg["model"] == "resnet-pgd":
        return resnet_unrolled(op, stages=cfg["stages"], channels=cfg["channels"], blocks=cfg["blocks"])
    plus = cfg["model"] == "istanet-plus"
    return ISTANet(op, stages=9, plus=plus, zero_residual=bool(cfg["zero_g"] if plus else cfg["identity"]))


def load_init(model: BlockUnrolled, spec: str) -> None:
    """Load every weight of ``spec`` (``zoo:NAME`` or a ``.safetensors`` file) except the operator's Φ/Qinit."""
    from safetensors.torch import load_file

    from ..zoo import resolve_weights

    state = {k: v for k, v in load_file(str(resolve_weights(spec))).items() if not k.startswith("operator.")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shape mismatches
        detail = next((ln.strip() for ln in str(err).splitlines() if "size mismatch" in ln), str(err).splitlines()[0])
        raise ValueError(f"init {spec}: weights do not fit this model ({detail})") from None
    missing = [k for k in missing if not k.startswith("operator.")]
    if missing or unexpected:
        raise ValueError(f"init {spec}: weights do not fit this model (missing {missing[:5]}, unexpected {unexpected[:5]})")


def _psnr(rec: torch.Tensor, x: torch.Tensor) -> float:
    """PSNR of the whole tensor (float64); the same value as on the 0–255 scale with peak 255."""
    return float(psnr(rec.double().reshape(1, 1, 1, -1), x.double().reshape(1, 1, 1, -1)))


def set11_scores(rec: torch.Tensor, x: torch.Tensor) -> tuple[float, float]:
    """ISTA-Net's test-script scores of one grey image ``(1, 1, H, W)`` in [0, 1]: PSNR on the 0–255 scale (no
    rounding) and scikit-image SSIM of the 0–255 images with ``data_range=255``."""
    from skimage.metrics import structural_similarity

    ssim = structural_similarity(rec[0, 0].double().numpy() * 255, x[0, 0].double().numpy() * 255, data_range=255)
    return _psnr(rec, x), float(ssim)


def evaluate_set11(model: BlockUnrolled, root: str | Path) -> dict:
    """Set11 as in ISTA-Net's test script: grey, zero-padded to multiples of 33, output clipped to [0, 1],
    PSNR on the 0–255 scale (no rounding), SSIM by scikit-image with ``data_range=255``; timing per image."""
    from ..data import load_set11

    model.eval()
    dev = model.raw_step_size.device
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
        per[name] = {"psnr": p, "ssim": ssim, "seconds": dt, "qinit_psnr": _psnr(x0, x)}
        recs[name] = (x, rec)
    mean = {k: sum(v[k] for v in per.values()) / len(per) for k in ("psnr", "ssim", "seconds", "qinit_psnr")}
    return {"mean": mean, "per_image": per, "threads": torch.get_num_threads(), "_recs": recs}


def recipe(cfg: dict) -> dict:
    """Every setting of ``cfg`` that shapes the trained weights (all but :data:`NOT_RECIPE` and the unset
    ``phi``/``init``), in the order of :data:`DEFAULTS`: the recorded command keeps its meaning if a default
    changes later."""
    return {k: cfg[k] for k in DEFAULTS if k not in NOT_RECIPE and k in cfg and cfg[k] != ""}


def export_to_zoo(run_dir: str | Path, name: str | None = None, zoo_dir: str | Path | None = None) -> Path:
    """Put a finished run (``model.safetensors`` + ``results.json`` with a Set11 evaluation) into the zoo."""
    from .export import add_entry

    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "results.json").read_text())
    cfg = summary["settings"]
    if "set11" not in summary:
        raise ValueError(f"{run_dir}: no Set11 evaluation in results.json; rerun with set11=FOLDER")
    name = name or f"{cfg['model']}-cs{cfg['ratio']}"
    ratio = summary["m"] / 1089
    if cfg["model"] == "resnet-pgd":
        model = {"name": "resnet-pgd", "options": {"ratio": ratio, "stages": cfg["stages"], "channels": cfg["channels"],
                                                    "blocks": cfg["blocks"]}}
    else:
        model = {"name": "istanet", "options": {"ratio": ratio, "plus": cfg["model"] == "istanet-plus"}}
    m = summary["set11"]["mean"]
    sets = " ".join(f"--set {k}={v}" for k, v in recipe(cfg).items())
    preset = f"{cfg['model']}-cs{cfg['ratio']}"
    command = f"proxlab run {preset} {sets}" if preset in PRESETS else \
        f"proxlab run {cfg['model']}-cs25 --set ratio={cfg['ratio']} {sets}"
    info = {
        "description": f"{cfg['model']} for 33x33 block CS at {cfg['ratio']} % (m = {summary['m']}); carries its "
                       f"Phi and Qinit. Trained {summary['steps']} steps on blocks of "
                       f"{'the images of ' + cfg['images'] if cfg.get('images') else 'scikit-image / PyWavelets images'}.",
        "model": model,
        "task": {"name": "cs", "options": {"ratio": round(ratio, 4), "noise": 0.0}},
        "data": {"source": f"{cfg['images'] if cfg.get('images') else 'skimage+pywt'} 33x33 blocks", "image_size": [33, 33], "test_set": "Set11"},
        "training_command": command.strip(),
        "test_metrics": {"dataset": "Set11 (PSNR 0-255, skimage SSIM data_range 255)",
                         "model": {"mean": {"psnr": m["psnr"], "ssim": m["ssim"]}},
                         "baselines": {"qinit": {"mean": {"psnr": m["qinit_psnr"]}}},
                         "paper_psnr": summary["paper_set11"], "released_weights_psnr": summary["released_set11"]},
        "seconds_per_image": m["seconds"],
        "seconds_per_image_threads": summary["set11"].get("threads"),
        "training_seconds": summary.get("train_seconds") or summary["train_seconds_this_process"],
        **({} if summary.get("train_seconds") else
           {"training_seconds_note": "resumed from a checkpoint without a time record: this process's time only"}),
    }
    return add_entry(name, run_dir / "model.safetensors", info, zoo_dir=zoo_dir)


def run(out: Path, overrides: dict[str, str] | None = None, progress: bool = True, log=print) -> dict:
    from ..training import Trainer, save_model
    from ..training.checkpoint import POINTER

    cfg = _settings(dict(overrides or {}))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    pool, val_images = folder_images(cfg["images"]) if cfg["images"] else (training_images(), None)
    op = _operator(cfg, pool)
    model = build(cfg, op)
    if cfg["init"]:
        load_init(model, cfg["init"])
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{cfg['model']} at {cfg['ratio']} % (m = {op.m}): {n_params:,} parameters, {len(pool)} training images")
    if cfg["channels_last"]:
        model.to(memory_format=torch.channels_last)
    compiled: dict[int, torch.nn.Module] = {}
    val_x = random_patches(val_images or skimage_image(VAL_IMAGE, grey=True), 512, 33, seed=1234)

    def device() -> torch.device:  # the Trainer moves the model (and its operator) to its device
        return model.raw_step_size.device

    def loss_fn(net, batch, ctx):
        # ``net`` is the model, or its DistributedDataParallel wrapper under torchrun: the forward must go through
        # it (that is what all-reduces the gradients); each process draws its share of the global batch
        seed = int(torch.randint(2**31 - 1, (1,), generator=ctx.generator))
        x = random_patches(pool, len(batch), 33, seed=seed)
        x = augment_dihedral(x, torch.randint(8, (x.shape[0],), generator=ctx.generator)).to(device())
        if cfg["channels_last"]:
            x = x.contiguous(memory_format=torch.channels_last)
        if cfg["compile"] and id(net) not in compiled:
            compiled[id(net)] = torch.compile(net)
        out = compiled.get(id(net), net)(model.operator(x), return_aux=True)  # the symmetry terms come back with x
        return istanet_loss(out.x, x, out.aux, gamma=cfg["gamma"])

    def validate(net):
        net.eval()  # no symmetry residuals (the Trainer sets train mode again before the next step)
        x = val_x.to(device())
        with torch.no_grad():
            rec = net(model.operator(x)).clamp(0, 1)
        return {"psnr": _psnr(rec, x), "loss": float(((rec - x) ** 2).mean())}

    def snapshot(net):  # after each optimizer step, before the Trainer counts it: step trainer.step + 1 is done
        step = trainer.step + 1
        if step % cfg["snapshot_every"] == 0 and trainer.dist.is_main:
            save_model(out / "snapshots" / f"step_{step:06d}.safetensors", net,
                       {"experiment": "istanet", "step": step, "settings": json.dumps(cfg)})

    trainer = Trainer(model, loss_fn, torch.zeros(cfg["batch"]), validate=validate,
                      post_step=snapshot if cfg["snapshot_every"] else None, steps=cfg["steps"],
                      batch_size=cfg["batch"], lr=cfg["lr"], schedule="cosine", warmup_steps=cfg["warmup"], val_every=cfg["val_every"],
                      checkpoint_every=min(100, cfg["val_every"]), log_every=max(1, min(50, cfg["steps"] // 20)),
                      metric="psnr", out_dir=out / "checkpoints", seed=cfg["seed"], progress=progress,
                      precision=cfg["precision"], device=cfg["device"], config=cfg)
    if (out / "checkpoints" / POINTER).is_file():
        trainer.resume()
        log(f"resumed at step {trainer.step}")
    t0 = time.perf_counter()
    result = trainer.fit()
    seconds = time.perf_counter() - t0
    if not trainer.dist.is_main:  # under torchrun: rank 0 writes the folder and evaluates
        return {"settings": cfg, "steps": result.step, "rank": trainer.dist.rank}
    best = out / "checkpoints" / "best.safetensors"
    if best.is_file():
        from ..training import load_model_weights

        load_model_weights(best, model)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    save_model(out / "model.safetensors", model, {"experiment": "istanet", "settings": json.dumps(cfg)})
    summary: dict = {"settings": cfg, "m": op.m, "parameters": n_params, "steps": result.step,
                     "best_step": result.best_step, "val_psnr": result.best_metric,
                     "train_seconds_this_process": seconds, "train_seconds": result.train_seconds, "conv_macs_per_pixel": conv_macs_per_pixel(model),
                     "paper_set11": PAPER_SET11.get(cfg["model"], {}).get(cfg["ratio"]),
                     "released_set11": RELEASED_SET11.get(cfg["model"], {}).get(cfg["ratio"])}
    pngs = {}
    if cfg["set11"]:
        res = evaluate_set11(model, cfg["set11"])
        recs = res.pop("_recs")
        summary["set11"] = res
        log(f"Set11: PSNR {res['mean']['psnr']:.2f} dB, SSIM {res['mean']['ssim']:.4f} "
            f"(paper {summary['paper_set11']}, released weights {summary['released_set11']})")
        pngs["set11"] = _figure(recs, out / "set11.png")
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "report.html").write_text(_report(summary, pngs, out))
    return summary


def _figure(recs: dict, path: Path) -> bytes:
    from .figures import pyplot

    plt = pyplot()
    names = list(recs)[:4]
    fig, axes = plt.subplots(2, len(names), figsize=(2.6 * len(names), 5.4), squeeze=False)
    for j, n in enumerate(names):
        x, rec = recs[n]
        axes[0, j].imshow(x[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(n, fontsize=9)
        axes[1, j].imshow(rec[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        axes[1, j].set_title(f"{_psnr(rec, x):.2f} dB", fontsize=9)
        for a in axes[:, j]:
            a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.read_bytes()


def _report(summary: dict, pngs: dict, out: Path) -> str:
    cfg = summary["settings"]
    rows = [("model", cfg["model"]), ("CS ratio", f"{cfg['ratio']} % (m = {summary['m']})"),
            ("parameters", f"{summary['parameters']:,}"), ("steps", summary["steps"]),
            (f"validation PSNR ({'val/' if cfg.get('images') else 'chelsea'} blocks)", f"{summary['val_psnr']:.2f} dB" if summary["val_psnr"] else "-")]
    if "set11" in summary:
        m = summary["set11"]["mean"]
        rows += [("Set11 PSNR / SSIM", f"{m['psnr']:.2f} dB / {m['ssim']:.4f}"),
                 ("paper (Table 1)", summary["paper_set11"] or "-"),
                 ("authors' released weights on these files", summary["released_set11"] or "-")]
    table = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    per = ""
    if "set11" in summary:
        per = "<h2>Set11 per image</h2><table><tr><th>image</th><th>PSNR</th><th>SSIM</th><th>s</th></tr>" + "".join(
            f"<tr><td>{n}</td><td>{v['psnr']:.2f}</td><td>{v['ssim']:.4f}</td><td>{v['seconds']:.3f}</td></tr>"
            for n, v in summary["set11"]["per_image"].items()) + "</table>"
    imgs = "".join(f'<img src="data:image/png;base64,{base64.b64encode(b).decode()}">' for b in pngs.values())
    return (f"<!doctype html><meta charset=utf-8><title>{cfg['model']} cs{cfg['ratio']}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:left}</style>"
            f"<h1>{cfg['model']} — block CS {cfg['ratio']} %</h1><table>{table}</table>{per}{imgs}"
            f"<p>Settings: <code>{html.escape(json.dumps(cfg))}</code></p>")
