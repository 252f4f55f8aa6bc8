"""Speed of FISTA-Net for sparse-view CT: proxlab's batched operator against the authors' per-image skimage calls.

FISTA-Net (``proxlab.unrolled.FISTANet``, model ``"fistanet"``; 6 phases, 32 features, float32) on
``ParallelBeamCT(size, 60).float()`` (60 equispaced views over 180 degrees, ``circle=True``). Measured in ONE
process, all variants of a measurement interleaved repeat by repeat (one warm-up call each), median wall time:

1. Reconstruction (``torch.no_grad``, ``eval()``) of one slice at 128x128 and at 256x256 (``--quick``: 32, 48),
   by the exact-adjoint network (``gradient="adjoint"``) and by the authors' way (below), same weights.
2. One training step on a batch of ``--batch`` 128x128 slices (``--quick``: 32x32): forward with the aux terms,
   ``proxlab.losses.fistanet_loss`` (MSE + 0.01 symmetry + 0.001 sparsity), backward, one Adam step, for

   - ``proxlab adjoint``: ``FISTANet(A)``, autograd through A and Aᵀ, x0 = ``A.fbp(y)``;
   - ``proxlab fbp``: ``FISTANet(A, gradient="fbp")``, the detached direction ``A.fbp(A v - y)``;
   - ``skimage (authors)``: :class:`SkimageFISTANet`, a stand-in for the authors' CT code (github
     jinxixiang/FISTA-Net, commit ccf8104, ``M5FISTANet.py`` and ``solver.py``): the same block and scalars, but
     every phase's direction is ``iradon(radon(v_i) - y_i)`` computed per image in NumPy on
     ``.detach().cpu().numpy()`` (ramp filter, ``circle=True``, the operator's angles), and x0 = ``iradon(y_i)``
     per image inside the step, as their training loop does. Only the step sizes get a gradient from the data term.

   The ratio skimage step / proxlab step is reported against the issue's goal (>= 20x), with the share of the
   skimage step spent inside radon/iradon (timed around those calls), which bounds any such ratio: the network's
   convolutions cost the same in every variant.
3. One forward+adjoint (and forward+FBP) of ``ParallelBeamCT`` against ``radon`` + ``iradon`` for one image, per size.
4. Checks that the stand-in computes what the authors compute, as relative l2 differences (measured, not asserted):
   our sinogram vs ``radon(x).T``; ``A.fbp(y)`` vs ``iradon(y)`` (x0); the first phase's direction
   ``A.fbp(A x0 - y)`` vs the stand-in's ``iradon(radon(x0) - y)``, and the same at a point that is not zero
   outside the circle; and the network outputs of ``FISTANet(gradient="fbp")`` vs the stand-in with equal weights.

Prints a table and writes ``benchmarks/results/bench_fistanet_ct.json`` (command, threads, load average,
machine, rows, ratios, checks; ``--quick`` writes ``bench_fistanet_ct_quick.json`` unless ``--out`` is given).

    OMP_NUM_THREADS=1 python benchmarks/bench_fistanet_ct.py [--threads 1] [--repeats 3] [--batch 8] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from proxlab.losses import fistanet_loss
from proxlab.operators import ParallelBeamCT
from proxlab.unrolled import FISTANet

RESULTS = Path(__file__).resolve().parent / "results" / "bench_fistanet_ct.json"
QUICK_RESULTS = RESULTS.with_name("bench_fistanet_ct_quick.json")  # a smoke run never overwrites the full one
VIEWS, PHASES, FEATURES = 60, 6, 32
GOAL = 20.0  # the issue's goal: the proxlab training step >= 20x faster than the authors' way


class SkimageFISTANet(FISTANet):
    """FISTA-Net computed the authors' way: per-image ``skimage`` radon / iradon on detached NumPy arrays.

    The block, the six scalars and the phase recursion are proxlab's (``FISTANet(gradient="fbp")``, whose
    direction has no graph either); only the data direction and x0 are replaced. ``skimage_s`` adds up the
    seconds spent in those skimage calls (including the NumPy/torch copies around them).
    """

    def __init__(self, operator: ParallelBeamCT, phases: int = PHASES, features: int = FEATURES):
        super().__init__(operator, phases, features, gradient="fbp")
        self.theta = operator.angles.numpy().copy()  # degrees, as np.linspace(0, 180, n, endpoint=False)
        self.skimage_s = 0.0

    def init_skimage(self, y: torch.Tensor) -> torch.Tensor:
        """x0 = iradon(y_i) per image (the authors' training loop)."""
        from skimage.transform import iradon

        t0 = time.perf_counter()
        b, size = y.shape[0], self.operator.size
        x0 = torch.zeros(b, 1, size, size, dtype=y.dtype, device=y.device)
        for i in range(b):
            sino = y[i, 0].detach().cpu().numpy().T  # ours is (angles, detectors); skimage's (detectors, angles)
            x0[i, 0] = torch.from_numpy(iradon(sino, theta=self.theta, filter_name="ramp", circle=True))
        self.skimage_s += time.perf_counter() - t0
        return x0

    def _direction(self, v: torch.Tensor, b: torch.Tensor, inv_norm) -> torch.Tensor:
        from skimage.transform import iradon, radon

        t0 = time.perf_counter()
        d = torch.zeros_like(v)
        with warnings.catch_warnings():  # radon warns when v is not zero outside the circle (it is, after phase 1)
            warnings.simplefilter("ignore", UserWarning)
            for i in range(v.shape[0]):
                sino_pred = radon(v[i, 0].detach().cpu().numpy(), theta=self.theta, circle=True)
                sino = b[i, 0].detach().cpu().numpy().T
                d[i, 0] = torch.from_numpy(iradon(sino_pred - sino, theta=self.theta, filter_name="ramp",
                                                  circle=True))
        self.skimage_s += time.perf_counter() - t0
        return d

    def forward(self, y: torch.Tensor, return_aux: bool = False, x0: torch.Tensor | None = None):
        return super().forward(y, return_aux=return_aux, x0=self.init_skimage(y) if x0 is None else x0)


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each function, run one after the other repeat by repeat (after one warm-up each)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def phantoms(size: int, batch: int, seed: int = 0) -> torch.Tensor:
    """``batch`` Shepp-Logan phantoms at ``size``, randomly flipped and scaled, zero outside the circle."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)).float()[None, None]
    x = x.repeat(batch, 1, 1, 1) * (0.5 + 0.5 * torch.rand(batch, 1, 1, 1, generator=g))
    flip = torch.rand(batch, generator=g) < 0.5
    x[flip] = x[flip].flip(-1)
    yy, xx = torch.meshgrid(torch.arange(size) - size // 2, torch.arange(size) - size // 2, indexing="ij")
    return x.masked_fill((xx**2 + yy**2) > (size // 2) ** 2, 0.0)


def rel(a, b) -> float:
    a, b = torch.as_tensor(a).double(), torch.as_tensor(b).double()
    return float((a - b).norm() / b.norm())


def _networks(A: ParallelBeamCT) -> dict[str, FISTANet]:
    torch.manual_seed(0)
    nets = {"proxlab adjoint": FISTANet(A, PHASES, FEATURES), "proxlab fbp": FISTANet(A, PHASES, FEATURES, "fbp"),
            "skimage (authors)": SkimageFISTANet(A, PHASES, FEATURES)}
    state = nets["proxlab adjoint"].state_dict()
    for net in nets.values():
        net.load_state_dict(state)
    return nets


def train_steps(size: int, batch: int, repeats: int) -> tuple[list[dict], dict]:
    A = ParallelBeamCT(size, VIEWS).float()
    nets = _networks(A)
    x = phantoms(size, batch)
    y = A(x)
    opts = {k: torch.optim.Adam(net.parameters(), lr=1e-4) for k, net in nets.items()}

    stand_in = nets["skimage (authors)"]
    skimage_s: list[float] = []  # seconds inside radon/iradon, per call of the stand-in's step

    def step(key):
        net, opt = nets[key], opts[key]

        def run():
            before = stand_in.skimage_s
            out = net(y, return_aux=True)
            loss = fistanet_loss(out.x, x, out.aux)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if net is stand_in:
                skimage_s.append(stand_in.skimage_s - before)

        return run

    secs = interleaved({k: step(k) for k in nets}, repeats)
    share = statistics.median(skimage_s[1:]) / secs["skimage (authors)"]  # warm-up call left out
    rows = [{"measurement": "train step", "size": size, "batch": batch, "variant": k, "ms": 1e3 * s}
            for k, s in secs.items()]
    rows[-1]["skimage_share"] = share
    return rows, secs


def reconstructions(sizes, repeats: int) -> list[dict]:
    rows = []
    for size in sizes:
        A = ParallelBeamCT(size, VIEWS).float()
        nets = _networks(A)
        del nets["proxlab fbp"]
        for net in nets.values():
            net.eval()
        y = A(phantoms(size, 1))

        def rec(net):
            def run():
                with torch.no_grad():
                    net(y)
            return run

        secs = interleaved({k: rec(net) for k, net in nets.items()}, repeats)
        rows += [{"measurement": "reconstruction", "size": size, "batch": 1, "variant": k, "ms": 1e3 * s}
                 for k, s in secs.items()]
    return rows


def operator_times(sizes, repeats: int) -> list[dict]:
    from skimage.transform import iradon, radon

    rows = []
    for size in sizes:
        A = ParallelBeamCT(size, VIEWS).float()
        theta = A.angles.numpy()
        x = phantoms(size, 1)
        img = x[0, 0].numpy()

        def ours_adj():
            with torch.no_grad():
                A.adjoint(A(x))

        def ours_fbp():
            with torch.no_grad():
                A.fbp(A(x))

        def skimage_pair():
            iradon(radon(img, theta=theta, circle=True), theta=theta, filter_name="ramp", circle=True)

        secs = interleaved({"ParallelBeamCT forward+adjoint": ours_adj, "ParallelBeamCT forward+fbp": ours_fbp,
                            "skimage radon+iradon": skimage_pair}, max(5, 3 * repeats))
        rows += [{"measurement": "operator", "size": size, "batch": 1, "variant": k, "ms": 1e3 * s}
                 for k, s in secs.items()]
    return rows


def checks(size: int) -> dict:
    """Relative l2 differences between the stand-in's (skimage) computation and proxlab's FBP-based one."""
    from skimage.transform import iradon, radon

    A = ParallelBeamCT(size, VIEWS).float()
    theta = A.angles.numpy()
    x = phantoms(size, 2)
    nets = _networks(A)
    stand_in, fbp_net = nets["skimage (authors)"], nets["proxlab fbp"]
    out: dict = {"size": size, "angles_max_abs_diff_vs_linspace_deg":
                 float(np.abs(theta - np.linspace(0, 180, VIEWS, endpoint=False)).max())}
    with torch.no_grad():
        y = A(x)
        out["sinogram_vs_radon_T"] = rel(y[0, 0], radon(x[0, 0].numpy(), theta=theta, circle=True).T)
        x0_ours, x0_sk = A.fbp(y), stand_in.init_skimage(y)
        out["x0_fbp_vs_iradon"] = rel(x0_ours, x0_sk)
        out["phase1_direction_fbp_vs_iradon_radon"] = rel(A.fbp(A(x0_ours) - y), stand_in._direction(x0_ours, y, None))
        g = torch.Generator().manual_seed(1)
        v = x0_ours + 0.05 * torch.rand(x0_ours.shape, generator=g)  # nonzero outside the circle
        out["direction_off_circle_fbp_vs_iradon_radon"] = rel(A.fbp(A(v) - y), stand_in._direction(v, y, None))
        for net in nets.values():
            net.eval()
        out["network_output_fbp_vs_stand_in"] = rel(fbp_net(y), stand_in(y))
        # the authors' iradon on the sinogram of radon: how far skimage's own FBP is from the image
        out["iradon_radon_vs_image_skimage"] = rel(
            iradon(radon(x[0, 0].numpy(), theta=theta, circle=True), theta=theta, circle=True), x[0, 0])
        out["fbp_vs_image_proxlab"] = rel(A.fbp(A(x[:1]))[0, 0], x[0, 0])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (skimage runs single-threaded NumPy)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement (median)")
    p.add_argument("--batch", type=int, default=8, help="training batch")
    p.add_argument("--quick", action="store_true", help="smoke check: 1 repeat, batch <= 2, 32/48-pixel slices")
    p.add_argument("--out", type=Path, default=None,
                   help=f"where to write the JSON (default {RESULTS.name}; with --quick {QUICK_RESULTS.name})")
    a = p.parse_args(argv)
    if a.threads < 1 or a.repeats < 1 or a.batch < 1:
        p.error(f"--threads, --repeats and --batch must be >= 1, got {a.threads}, {a.repeats}, {a.batch}")
    repeats, batch = (1, min(a.batch, 2)) if a.quick else (a.repeats, a.batch)
    train_size, rec_sizes = (32, (32, 48)) if a.quick else (128, (128, 256))
    torch.set_num_threads(a.threads)
    load0, t_start = os.getloadavg(), time.perf_counter()

    check = checks(train_size)
    rows = operator_times(rec_sizes, repeats)
    rows += reconstructions(rec_sizes, repeats)
    step_rows, step_s = train_steps(train_size, batch, repeats)
    rows += step_rows

    def ms(measurement, size, variant):
        return next(r["ms"] for r in rows if r["measurement"] == measurement and r["size"] == size
                    and r["variant"] == variant)

    ratios = {
        "train_step_skimage_over_adjoint": step_s["skimage (authors)"] / step_s["proxlab adjoint"],
        "train_step_skimage_over_fbp": step_s["skimage (authors)"] / step_s["proxlab fbp"],
        "train_step_adjoint_over_fbp": step_s["proxlab adjoint"] / step_s["proxlab fbp"],
        # if the data term cost nothing, the skimage step could at best be this many times slower
        "train_step_skimage_over_its_network_part": 1.0 / (1.0 - step_rows[-1]["skimage_share"]),
    }
    for s in rec_sizes:
        ratios[f"reconstruction_{s}_skimage_over_adjoint"] = (ms("reconstruction", s, "skimage (authors)")
                                                              / ms("reconstruction", s, "proxlab adjoint"))
        ratios[f"operator_{s}_radon_iradon_over_forward_adjoint"] = (
            ms("operator", s, "skimage radon+iradon") / ms("operator", s, "ParallelBeamCT forward+adjoint"))
    goal = {"target_speedup": GOAL, "measured_speedup": ratios["train_step_skimage_over_adjoint"],
            "met": ratios["train_step_skimage_over_adjoint"] >= GOAL}

    print(f"FISTA-Net ({PHASES} phases, {FEATURES} features), ParallelBeamCT {VIEWS} views, float32, "
          f"{a.threads} thread(s), median of {repeats} interleaved repeats; torch {torch.__version__}")
    print(f"{'measurement':<15} {'size':>4} {'batch':>5} {'variant':<32} {'ms':>10}")
    for r in rows:
        extra = f"  (radon/iradon {r['skimage_share']:.0%} of it)" if "skimage_share" in r else ""
        print(f"{r['measurement']:<15} {r['size']:>4} {r['batch']:>5} {r['variant']:<32} {r['ms']:10.1f}{extra}")
    print("ratios:", json.dumps(ratios, indent=1))
    print(f"goal: training step >= {GOAL:.0f}x faster than the authors' way: measured "
          f"{goal['measured_speedup']:.2f}x ({'met' if goal['met'] else 'NOT met'})")
    print("checks (relative l2 differences, skimage vs proxlab):", json.dumps(check, indent=1))

    command = "python benchmarks/bench_fistanet_ct.py " + " ".join(sys.argv[1:] if argv is None else argv)
    import skimage

    out = {"command": command.strip(), "threads": a.threads, "repeats": repeats, "batch": batch, "quick": a.quick,
           "views": VIEWS, "phases": PHASES, "features": FEATURES, "rows": rows, "ratios": ratios, "goal": goal,
           "checks": check, "wall_s": time.perf_counter() - t_start,
           "load_average": {"start": load0, "end": os.getloadavg()},
           "machine": {"python": platform.python_version(), "torch": torch.__version__,
                       "skimage": skimage.__version__, "numpy": np.__version__,
                       "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                       "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}}
    path = a.out or (QUICK_RESULTS if a.quick else RESULTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
