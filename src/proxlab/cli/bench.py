"""``proxlab bench speed``: operators, solvers and networks timed in one run on this machine.

Every row is the median wall time of ``repeats`` calls (after one warm-up call) on one batch, with its throughput
(images per second) and, where the work is convolutions and matrix products that torch's FLOP counter sees, the
achieved FLOP rate of a zoo network as a fraction of this machine's measured convolution rate (the best of three
3×3 convolution shapes, :data:`CONV_SHAPES`, timed at the start and the end of the same run; their mean). Operators and
solvers are FFT-, index-, sparse- or elementwise-bound and show ``-`` there. A shared machine's load drifts: read
the fractions to about ±30 %. When DeepInverse is importable (it needs torchvision: use it from another environment,
never as a proxlab dependency), the same operators are timed through DeepInverse's physics and the ratio
``DeepInverse time / proxlab time`` is printed beside them; without it that column says so.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import torch

__all__ = ["run_bench", "run_quality", "conv_rate", "time_call", "flops_of", "quality_table"]


def time_call(fn, repeats: int, grad: bool = False) -> float:
    """Median seconds of ``repeats`` calls of ``fn()`` after one warm-up call (under ``torch.no_grad`` unless
    ``grad``: a learned proximal network's prox is a gradient)."""
    with torch.set_grad_enabled(grad):
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def flops_of(fn, grad: bool = False) -> int:
    """FLOPs of one ``fn()`` as torch's FLOP counter sees them (convolutions and matrix products; 0 otherwise)."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        with torch.set_grad_enabled(grad), FlopCounterMode(display=False) as counter:
            fn()
    except RuntimeError:  # the counter cannot follow a double backward (a learned proximal network's prox)
        return 0
    return int(counter.get_total_flops())


#: The convolutions (batch, channels, side) whose best FLOP rate is the machine's convolution rate: 3×3, C→C.
CONV_SHAPES = ((64, 32, 32), (8, 32, 128), (16, 64, 64))


def conv_rate(repeats: int) -> float:
    """This machine's convolution rate in FLOP/s: the best of 3×3 float32 convolutions of :data:`CONV_SHAPES`."""
    best = 0.0
    for b, c, side in CONV_SHAPES:
        conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        x = torch.randn(b, c, side, side)
        best = max(best, flops_of(lambda: conv(x)) / time_call(lambda: conv(x), repeats))
    return best


def _operators(size: int):
    from ..operators import MRI, BlockCompressedSensing, Denoising, GaussianBlur, Inpainting
    from ..operators.ct import ParallelBeamCT

    return [("Denoising", Denoising()), ("Inpainting 50 %", Inpainting.random((size, size), 0.5, seed=0)),
            ("GaussianBlur σ=1.5", GaussianBlur(1.5)), ("block CS 25 % (33×33)", BlockCompressedSensing(0.25, (size, size))),
            ("MRI radial 20 %", MRI.radial((size, size), 0.2)), ("CT 60 views", ParallelBeamCT(size, 60))]


def _deepinv_physics(name: str, op, size: int):
    """The same operator as DeepInverse physics, or None where there is no direct counterpart."""
    import deepinv as dinv  # noqa: F401  (only when importable)

    if name.startswith("Denoising"):
        return dinv.physics.Denoising()
    if name.startswith("Inpainting"):
        return dinv.physics.Inpainting(img_size=(1, size, size), mask=op.mask.float())
    if name.startswith("GaussianBlur"):
        return dinv.physics.BlurFFT(img_size=(1, size, size), filter=dinv.physics.blur.gaussian_blur(sigma=1.5))
    if name.startswith("CT"):  # parallel beam, angles evenly over 180°; its adjoint by autograd (its default)
        return dinv.physics.Tomography(angles=op.angles.numel(), img_width=size)
    return None


def run_bench(args) -> int:
    from ..operators import GaussianBlur
    from ..priors.classic import TV
    from ..solvers import admm, fista
    from ..zoo import list_zoo, load_zoo_model, zoo_info

    if args.kind == "quality":
        return run_quality(args)
    if args.kind != "speed":
        raise ValueError(f"bench: expected 'speed' or 'quality', got {args.kind!r}")
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 10
    size, batch = args.size, 8
    if size < 33:
        raise ValueError(f"--size: expected an int >= 33 (one CS block), got {size}")
    try:
        import deepinv  # noqa: F401

        have_dinv = True
    except ImportError:
        have_dinv = False
    rates = [conv_rate(repeats)]  # measured again at the end: the median of the two, as the machine's load drifts
    rows = []
    peak = rates[0]

    def add(group, name, fn, images, dinv_fn=None):
        grad = False
        try:
            t = time_call(fn, repeats)
        except RuntimeError:  # a prox computed as a gradient (LPN) needs autograd on
            grad = True
            t = time_call(fn, repeats, grad=True)
        f = flops_of(fn, grad) if group == "network" else 0  # operators: FFT-, index- or sparse-bound
        row = {"group": group, "name": name, "seconds": t, "images_per_s": images / t,
               "conv_fraction": (f / t) / peak if f else None}
        if dinv_fn is not None:
            row["deepinv_ratio"] = time_call(dinv_fn, repeats) / t
        rows.append(row)

    x = torch.rand(batch, 1, size, size)
    for name, op in _operators(size):
        y = op(x)
        phys = _deepinv_physics(name, op, size) if have_dinv else None
        add("operator", f"{name}: A", lambda: op(x), batch, (lambda: phys.A(x)) if phys is not None else None)
        yd = phys.A(x) if phys is not None else None  # its own measurement layout (CT: its detector count)
        add("operator", f"{name}: Aᵀ", lambda: op.adjoint(y), batch,
            (lambda: phys.A_adjoint(yd)) if phys is not None else None)
    A = GaussianBlur(1.5)
    y = A(x)
    iters = 20
    add("solver", f"FISTA-TV deblur, {iters} iterations", lambda: fista(A, y, TV(0.001), max_iter=iters, tol=0.0), batch)
    add("solver", f"ADMM-TV deblur, {iters} iterations", lambda: admm(A, y, TV(0.001), rho=0.1, max_iter=iters, tol=0.0),
        batch)
    for name in list_zoo():
        info = zoo_info(name)
        shape = tuple(info["data"].get("image_size", (28, 28)))
        if len(shape) != 2:
            continue
        try:
            model, _ = load_zoo_model(name)
        except Exception as err:  # noqa: BLE001 - a model that needs files a user lacks is reported, not fatal
            rows.append({"group": "network", "name": f"zoo:{name}", "skipped": str(err)[:120]})
            continue
        try:
            if "bits_per_dim" in info["test_metrics"]:  # a flow: its likelihood is what it computes
                side = model.image_size
                xb = torch.rand(batch, model.in_channels, side, side)
                add("network", f"zoo:{name} log_prob ({side}×{side})", lambda: model.log_prob(xb), batch)
                continue
            if info["model"]["name"] == "lpn-fc":  # a prox on vectors of its dimension
                vb = torch.randn(batch, info["model"]["options"]["dim"])
                add("network", f"zoo:{name} (vectors of {vb.shape[1]})", lambda: model(vb), batch)
                continue
            op = getattr(model, "operator", None)
            if op is None and isinstance(getattr(model, "mask", None), torch.Tensor):  # MRI: k-space through its mask
                from ..operators import MRI

                op = MRI(model.mask)
            if shape == (33, 33):  # block CS: three blocks a side, measured with the model's own Φ
                shape = (99, 99)
                op = op.resized(shape)
            xb = torch.rand(batch, 1, *shape)
            inp = op(xb) if op is not None else xb
            add("network", f"zoo:{name} ({shape[0]}×{shape[1]})", lambda: model(inp), batch)
        except (RuntimeError, ValueError, TypeError, AttributeError) as err:  # e.g. the 1-D Laplacian LPN
            rows.append({"group": "network", "name": f"zoo:{name}", "skipped": str(err).splitlines()[0][:100]})
    rates.append(conv_rate(repeats))
    peak = statistics.median(rates)
    for r in rows:
        if r.get("conv_fraction") is not None:
            r["conv_fraction"] *= rates[0] / peak
    table = format_table(rows, peak, have_dinv)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"threads": args.threads, "repeats": repeats, "batch": batch, "size": size, "conv_flops_per_s": peak,
            "conv_flops_per_s_start_end": rates,
            "deepinv": have_dinv, "python": platform.python_version(), "torch": torch.__version__}
    (out / "speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (out / "speed.md").write_text(table + "\n")
    print(f"wrote {out / 'speed.json'}, {out / 'speed.md'}")
    return 0


def format_table(rows: list[dict], peak: float, have_dinv: bool) -> str:
    ratio_head = "DeepInverse / proxlab time" if have_dinv else "DeepInverse (not importable here)"
    lines = [f"this machine's 3×3 convolution rate (best of {len(CONV_SHAPES)} shapes): {peak / 1e9:.1f} GFLOP/s", "",
             f"| group | what | ms per call | images/s | of the conv rate | {ratio_head} |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['group']} | {r['name']} | skipped: {r['skipped']} | | | |")
            continue
        frac = f"{100 * r['conv_fraction']:.0f} %" if r["conv_fraction"] else "-"
        ratio = f"{r['deepinv_ratio']:.2f}" if "deepinv_ratio" in r else "-"
        lines.append(f"| {r['group']} | {r['name']} | {1e3 * r['seconds']:.2f} | {r['images_per_s']:.0f} | {frac} | "
                     f"{ratio} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- quality
#: What ``bench quality`` scores, per image set: (set name, the tasks, images per set in --quick / full). ``cs-own``
#: is block CS measured with the Φ that the zoo's block-CS networks carry (the task's own Φ is another draw).
#: The image set on which the flows run (their size: a multiple of 2^levels).
FLOW_SET = "MNIST digits padded to 32×32"
QUALITY_SETS = (("photos", ("denoise", "inpaint", "deblur", "cs", "cs-own", "mri", "ct"), (2, 4)),
                ("MNIST digits", ("denoise", "inpaint", "deblur", "mri", "ct"), (8, 64)),
                (FLOW_SET, ("denoise", "inpaint", "deblur", "mri", "ct"), (8, 64)))


def _quality_images(set_name: str, task: str, count: int, size: int) -> torch.Tensor:
    from ..data import mnist5k, shepp_logan, skimage_image

    if set_name == "MNIST digits":
        return mnist5k("test")[0][:count]
    if set_name == FLOW_SET:  # the flows' input size (3 levels: a multiple of 8)
        return torch.nn.functional.pad(mnist5k("test")[0][:count], (2, 2, 2, 2))
    if task == "ct":
        return shepp_logan(size)
    names = ("camera", "astronaut", "coins", "moon")[:count]
    return torch.cat([skimage_image(n, grey=True, size=size) for n in names])


def _learned_methods(set_name: str, task_name: str) -> list[tuple[str, dict, str | None]]:
    """(method, reconstruct options, mark) for the zoo on one setting: every prox-capable zoo prior inside PnP-ADMM
    and PnP-PGD (its training setting named), and each zoo reconstruction network trained for this task and data."""
    from ..reconstruction import is_density_model
    from ..registry import model_entry
    from ..tasks import make_task
    from ..zoo import list_zoo, zoo_info

    out = []
    for name in list_zoo():
        info = zoo_info(name)
        source = (info.get("data") or {}).get("source", "")
        size = tuple((info.get("data") or {}).get("image_size", ()))
        trained = make_task(info["task"]["name"], **info["task"]["options"]).describe()
        entry = model_entry(info["model"]["name"])
        if set_name == FLOW_SET:  # the flows only, beside the classic methods on the same padded digits
            if is_density_model(info):
                data = "MNIST" if source == "mnist5k" else "Fashion-MNIST"
                out += [(pnp, {"prior": f"zoo:{name}"}, f"{pnp} + zoo:{name} (flow trained on {data})")
                        for pnp in ("pnp-admm", "pnp-pgd")]
            continue
        if set_name == "photos" and task_name == "cs-own":  # networks that carry their Φ, on y measured with it
            if entry.carries_operator and abs(info["task"]["options"]["ratio"] - make_task("cs").options["ratio"]) < 0.005:
                out.append((f"zoo:{name}", {}, f"zoo:{name} (trained for {trained})"))
            continue
        small = len(size) != 2 or min(size) < 64 or entry.carries_operator
        on_set = (source == "mnist5k") if set_name == "MNIST digits" else not small
        if not on_set or is_density_model(info):
            continue
        if info["task"]["name"] == "denoise" and not entry.needs_operator and not entry.carries_operator:
            what = f"prior trained for {trained}"
            for pnp in ("pnp-admm", "pnp-pgd"):
                out.append((pnp, {"prior": f"zoo:{name}"}, f"{pnp} + zoo:{name} ({what})"))
        elif info["task"]["name"] == task_name and not entry.carries_operator:
            here = make_task(task_name).describe()
            out.append((f"zoo:{name}", {"_other_setting": trained} if trained != here else {},
                        f"zoo:{name} (trained for {trained})"))
    return out


def run_quality(args) -> int:
    from tqdm.auto import tqdm

    from ..methods import CLASSIC_METHODS
    from ..metrics import psnr, ssim
    from ..reconstruction import measure, reconstruct
    from ..tasks import make_task

    torch.set_num_threads(args.threads)
    quick = args.quick
    size = 64 if quick else 128
    iters = 50 if quick else 200
    classic = [m for m, spec in CLASSIC_METHODS.items() if spec.prior != "learned"]
    jobs = []
    for set_name, tasks, counts in QUALITY_SETS:
        for task_name in tasks:
            x = _quality_images(set_name, "cs" if task_name == "cs-own" else task_name, counts[0] if quick else counts[1],
                                size)
            learned = _learned_methods(set_name, task_name)
            if task_name == "cs-own" and not learned:
                continue
            methods = [(m, {"max_iter": iters}, m) for m in classic] + learned
            # cs-own: every method gets y measured with the Φ the first block-CS network carries (the zoo's share one)
            own = learned[0][0] if task_name == "cs-own" else None
            jobs.append((set_name, make_task("cs" if task_name == "cs-own" else task_name), x, methods, own))
    t_start = time.perf_counter()
    rows, examples = [], {}
    bar = tqdm(total=sum(len(j[3]) for j in jobs), desc="bench quality", unit="run", disable=args.no_progress)
    for set_name, task, x, methods, own in jobs:
        A, y = measure(own, x, task) if own else (task.operator(tuple(x.shape[-2:])), task.measure(x)[1])
        key = f"{set_name} / {task.describe()}" + (" (the networks' Φ)" if own else "")
        examples[key] = {"truth": x[:1]}
        for method, options, label in methods:
            bar.set_postfix_str(f"{key}: {label}"[:60])
            t0 = time.perf_counter()
            if "_other_setting" in options:  # marked, not silently scored on a setting it was not trained for
                rows.append({"set": set_name, "task": key.split(" / ", 1)[1], "method": label, "other_setting": True,
                             "skipped": f"trained for {options['_other_setting']}"})
                bar.update(1)
                continue
            try:
                rec = reconstruct(method, y, A, task=task, **options).clamp(0, 1)
            except (ValueError, TypeError, RuntimeError) as err:  # a model that cannot run here says why
                rows.append({"set": set_name, "task": key.split(" / ", 1)[1], "method": label, "skipped": str(err)[:160]})
                bar.update(1)
                continue
            rows.append({"set": set_name, "task": key.split(" / ", 1)[1], "method": label, "images": len(x),
                         "psnr": float(psnr(rec, x).mean()), "ssim": float(ssim(rec, x).mean()),
                         "seconds": time.perf_counter() - t0})
            examples[key][label] = rec[:1]
            bar.update(1)
    bar.close()
    total = time.perf_counter() - t_start
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    md = quality_table(rows)
    meta = {"quick": quick, "size": size, "iterations": iters, "threads": args.threads, "total_seconds": total,
            "python": platform.python_version(), "torch": torch.__version__}
    (out / "quality.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    (out / "quality.md").write_text(md + f"\n\n{'--quick, ' if quick else ''}{total:.0f} s on {args.threads} thread(s)\n")
    (out / "quality.html").write_text(quality_html(rows, examples, meta))
    print(md)
    print(f"total {total:.0f} s on {args.threads} thread(s); wrote {out / 'quality.md'}, {out / 'quality.json'}, "
          f"{out / 'quality.html'}")
    return 0


def quality_grid(rows: list[dict], set_name: str) -> tuple[list[str], list[list[str]], list[str], dict]:
    """One image set's table: the task names, one row of cells per method (first cell the method; blank where it
    was not run), the methods that could run nowhere (with why), and which cell is best per task."""
    here = [r for r in rows if r["set"] == set_name]
    tasks = list(dict.fromkeys(r["task"] for r in here))
    by = {(r["method"], r["task"]): r for r in here}
    best = {t: max((r["psnr"] for r in here if r["task"] == t and "psnr" in r), default=None) for t in tasks}
    never = [m for m in dict.fromkeys(r["method"] for r in here)
             if all("skipped" in r and not r.get("other_setting") for r in here if r["method"] == m)]
    grid, bold = [], {}
    for method in dict.fromkeys(r["method"] for r in here):
        if method in never:
            continue
        cells = [method]
        for t in tasks:
            r = by.get((method, t))
            if r is None:
                cells.append("")
            elif r.get("other_setting"):
                cells.append("other setting")
            elif "skipped" in r:
                cells.append("could not run")
            else:
                cells.append(f"{r['psnr']:.2f} / {r['ssim']:.3f}")
                bold[len(grid), len(cells) - 1] = r["psnr"] == best[t]
        grid.append(cells)
    notes = [f"Not run on {set_name}: {m} ({next(r['skipped'] for r in here if r['method'] == m).splitlines()[0]})"
             for m in never]
    return tasks, grid, notes, bold


_NO_PAPER = ("None of these settings is a paper's protocol, so no published number stands beside them; the "
             "per-method README sections compare with the papers.")


def quality_table(rows: list[dict]) -> str:
    """One markdown table per image set: a row per method, a column per task, PSNR / SSIM (blank: not run there)."""
    parts = []
    for set_name in dict.fromkeys(r["set"] for r in rows):
        tasks, grid, notes, bold = quality_grid(rows, set_name)
        lines = [f"**{set_name}** (PSNR dB / SSIM; best per task in bold)", "",
                 "| method | " + " | ".join(tasks) + " |", "|---|" + "---|" * len(tasks)]
        for i, cells in enumerate(grid):
            shown = [f"**{c}**" if bold.get((i, j)) else c for j, c in enumerate(cells)]
            lines.append("| " + " | ".join(shown) + " |")
        lines += [""] + notes if notes else []
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n\n" + _NO_PAPER


def quality_html(rows: list[dict], examples: dict, meta: dict) -> str:
    """The quality page: the tables, a bar chart of PSNR per task, and the first test image's reconstructions."""
    import base64
    import html

    from ..experiments.figures import png_bytes, pyplot, tile_rows

    def img(data: bytes) -> str:
        return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(data).decode()}">'

    plt = pyplot()
    body = [f"<h1>proxlab bench quality</h1><p>{'quick mode, ' if meta['quick'] else ''}{meta['size']}×{meta['size']} "
            f"photos, {meta['iterations']} iterations for the classic solvers, {meta['total_seconds']:.0f} s on "
            f"{meta['threads']} thread(s).</p>"]
    for set_name in dict.fromkeys(r["set"] for r in rows):
        here = [r for r in rows if r["set"] == set_name and "psnr" in r]
        tasks = list(dict.fromkeys(r["task"] for r in here))
        body.append(f"<h2>{html.escape(set_name)}</h2>")
        tasks_, grid, notes, bold = quality_grid(rows, set_name)
        head = "".join(f"<th>{html.escape(t)}</th>" for t in ["method", *tasks_])
        trs = "".join("<tr>" + "".join(f"<td><b>{html.escape(c)}</b></td>" if bold.get((i, j)) else
                                       f"<td>{html.escape(c)}</td>" for j, c in enumerate(cells)) + "</tr>"
                      for i, cells in enumerate(grid))
        body.append(f"<p>PSNR dB / SSIM, best per task in bold.</p><table><tr>{head}</tr>{trs}</table>"
                    + "".join(f"<p>{html.escape(n)}</p>" for n in notes))
        fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.6), squeeze=False)
        for ax, t in zip(axes[0], tasks):
            rs = sorted((r for r in here if r["task"] == t), key=lambda r: r["psnr"])
            ax.barh(range(len(rs)), [r["psnr"] for r in rs], color="0.45")
            ax.set_yticks(range(len(rs)), [r["method"][:34] for r in rs], fontsize=5)
            ax.set_title(t, fontsize=7)
            ax.set_xlabel("PSNR (dB)", fontsize=7)
            lo = min(r["psnr"] for r in rs)
            ax.set_xlim(max(0.0, lo - 2), None)
        fig.tight_layout()
        body.append(img(png_bytes(fig, dpi=100)))
        tiles = []
        for key, ex in examples.items():
            if key.startswith(set_name + " / ") and len(ex) > 1:
                scored = {r["method"]: r["psnr"] for r in here if f"{r['set']} / {r['task']}" == key}
                best = sorted(scored, key=scored.get, reverse=True)[:5]
                tiles.append((key.split(" / ", 1)[1], [("truth", ex["truth"])] +
                              [(f"{m} {scored[m]:.1f} dB", ex[m]) for m in best]))
        if tiles:
            body.append("<h3>The first test image: truth and the five best reconstructions per task</h3>")
            body.append(img(tile_rows(tiles)))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>proxlab bench quality</title><style>"
            "body{font-family:sans-serif;margin:2em}img{max-width:100%}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}</style>"
            "</head><body>" + "".join(body) + f"<p>{html.escape(_NO_PAPER)}</p></body></html>")
