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

__all__ = ["run_bench", "conv_rate", "time_call", "flops_of"]


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
        return dinv.physics.Inpainting(tensor_size=(1, size, size), mask=op.mask.float())
    if name.startswith("GaussianBlur"):
        return dinv.physics.BlurFFT(img_size=(1, size, size), filter=dinv.physics.blur.gaussian_blur(sigma=1.5))
    return None


def run_bench(args) -> int:
    from ..operators import GaussianBlur
    from ..priors.classic import TV
    from ..solvers import admm, fista
    from ..zoo import list_zoo, load_zoo_model, zoo_info

    if args.kind != "speed":
        raise ValueError(f"bench: expected 'speed', got {args.kind!r}")
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
        add("operator", f"{name}: Aᵀ", lambda: op.adjoint(y), batch,
            (lambda: phys.A_adjoint(y)) if phys is not None else None)
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
            op = getattr(model, "operator", None)
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
