"""Speed of proxlab's GLOW: one NLL training step against normflows' GLOW of the same configuration, and
proxlab's log-density / sampling throughput.

In one run on one machine, alternating the implementations repetition by repetition (medians reported):

* one training step — dequantise a batch of 8-bit images, forward, mean bits/dim, backward, Adam step —
  on ``--batch`` (64) grey 32×32 images, for proxlab's ``Glow(1, levels=3, steps=8, hidden=128)`` (as
  shipped, ``check_finite=True``, and with ``check_finite=False``) and for normflows' multi-scale GLOW
  built as normflows' own Glow example builds it (``MultiscaleFlow`` of ``GlowBlock``\\ s — affine coupling
  with the sigmoid scale, LU 1×1 convolution, ActNorm — ``Squeeze`` per level, ``Merge`` between levels,
  one ``GlowBase`` per latent), same levels, steps and hidden channels. Each step is also split into
  forward / backward / optimiser time. Parameter counts of both are given;
* proxlab's ``log_prob`` throughput (no grad, batch ``--eval-batch`` = 256), ``sample`` throughput
  (n = 256) and the forward / inverse time of one image.

``--profile`` adds a torch.profiler table (operators by self CPU time) of one training step of each.
Without normflows installed (``pip install proxlab[oracle]``) the proxlab part still runs. Prints a table
and writes ``benchmarks/results/glow_speed.json`` with the command, the machine, the thread count and the
load on the machine during the run.

    python benchmarks/glow_speed.py [--threads 1] [--repeats 5] [--warmup 2] [--profile]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from proxlab.priors.flow import Glow, bits_per_dim, dequantize

RESULTS = Path(__file__).resolve().parent / "results" / "glow_speed.json"
SIZE = 32


# ---------------------------------------------------------------- machine
def _busy_cpu_s() -> float | None:
    """CPU seconds all processes have spent busy so far (Linux /proc/stat), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------- models
def proxlab_glow(levels: int, steps: int, hidden: int, check_finite: bool = True) -> Glow:
    return Glow(1, levels=levels, steps=steps, hidden=hidden, image_size=SIZE, check_finite=check_finite).train()


def normflows_glow(levels: int, steps: int, hidden: int):
    """normflows' multi-scale GLOW for 1×32×32 images, as its Glow example builds it (unconditional base)."""
    import normflows as nf

    q0, merges, flows = [], [], []
    for i in range(levels):
        flows.append([nf.flows.GlowBlock(2 ** (levels + 1 - i), hidden, scale=True, scale_map="sigmoid",
                                         split_mode="channel", use_lu=True) for _ in range(steps)]
                     + [nf.flows.Squeeze()])
        if i > 0:
            merges.append(nf.flows.Merge())
            shape = (2 ** (levels - i), SIZE // 2 ** (levels - i), SIZE // 2 ** (levels - i))
        else:
            shape = (2 ** (levels + 1), SIZE // 2 ** levels, SIZE // 2 ** levels)
        q0.append(nf.distributions.GlowBase(shape))
    return nf.MultiscaleFlow(q0, flows, merges, class_cond=False).train()


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _proxlab_loss(model, x, gen):
    return bits_per_dim(*model(dequantize(x, gen))).mean()


def _normflows_loss(model, x, gen):
    xd = dequantize(x, gen)
    d = xd[0].numel()
    return (-model.log_prob(xd - 0.5, None) / (d * math.log(2.0)) + 8.0).mean()


class TrainStep:
    """One training step of ``model``; each call returns (total, forward, backward, optimiser) seconds."""

    def __init__(self, name: str, model, loss_fn, x: torch.Tensor):
        self.name, self.model, self.loss_fn, self.x = name, model, loss_fn, x
        self.opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        self.gen = torch.Generator().manual_seed(0)
        self.times: list[tuple[float, float, float, float]] = []
        self.losses: list[float] = []

    def __call__(self) -> tuple[float, float, float, float]:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model, self.x, self.gen)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        self.opt.step()
        t3 = time.perf_counter()
        self.losses.append(float(loss.detach()))
        return t3 - t0, t1 - t0, t2 - t1, t3 - t2


def interleaved(steps: list[TrainStep], warmup: int, repeats: int) -> None:
    """Warm-ups, then ``repeats`` rounds; each round runs every step once, the order rotating per round."""
    for _ in range(warmup):
        for s in steps:
            s()
    for r in range(repeats):
        k = r % len(steps)
        for s in steps[k:] + steps[:k]:
            s.times.append(s())


def _summary(s: TrainStep) -> dict:
    cols = list(zip(*s.times))
    return {
        "implementation": s.name,
        "step_s": statistics.median(cols[0]),
        "forward_s": statistics.median(cols[1]),
        "backward_s": statistics.median(cols[2]),
        "optimizer_s": statistics.median(cols[3]),
        "step_s_all": list(cols[0]),
        "params": n_params(s.model),
        "first_loss_bpd": s.losses[0],
        "last_loss_bpd": s.losses[-1],
    }


def profile_step(step: TrainStep, rows: int) -> tuple[str, list[dict]]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    avg = prof.key_averages()
    table = avg.table(sort_by="self_cpu_time_total", row_limit=rows)
    total = sum(e.self_cpu_time_total for e in avg)
    top = sorted(avg, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return table, [{"op": e.key, "calls": e.count, "self_cpu_ms": e.self_cpu_time_total / 1e3,
                    "share": e.self_cpu_time_total / total} for e in top]


# ---------------------------------------------------------------- proxlab alone
def median_s(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


@torch.no_grad()
def proxlab_inference(glow: Glow, eval_batch: int, repeats: int) -> dict:
    glow.eval()
    gen = torch.Generator().manual_seed(1)
    x = dequantize(torch.rand(eval_batch, 1, SIZE, SIZE, generator=gen), gen)
    x1 = x[:1]
    z1 = glow.encode(x1)
    lp = median_s(lambda: glow.log_prob(x), repeats)
    sm = median_s(lambda: glow.sample(eval_batch, generator=gen), repeats)
    fw = median_s(lambda: glow(x1), 5 * repeats, warmup=2)
    inv = median_s(lambda: glow.inverse(z1), 5 * repeats, warmup=2)
    return {
        "eval_batch": eval_batch,
        "log_prob_s": lp,
        "log_prob_images_per_s": eval_batch / lp,
        "sample_s": sm,
        "sample_images_per_s": eval_batch / sm,
        "forward_one_image_ms": 1e3 * fw,
        "inverse_one_image_ms": 1e3 * inv,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed training steps per implementation (median)")
    p.add_argument("--warmup", type=int, default=2, help="untimed training steps per implementation first")
    p.add_argument("--batch", type=int, default=64, help="training batch")
    p.add_argument("--eval-batch", type=int, default=256, help="batch of log_prob and sample throughput")
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--profile", action="store_true", help="profile one training step of each implementation")
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args()
    for name in ("threads", "repeats", "batch", "eval_batch", "levels", "steps", "hidden"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected an int >= 1, got {getattr(a, name)}")
    if a.warmup < 0:
        p.error(f"--warmup: expected an int >= 0, got {a.warmup}")

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    try:
        import normflows as nf
        nf_version = getattr(nf, "__version__", "unknown")
    except ImportError:
        nf = None
        nf_version = None

    busy0, own0, wall0, load0 = _busy_cpu_s(), sum(os.times()[:2]), time.perf_counter(), os.getloadavg()
    x = torch.round(torch.rand(a.batch, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 255) / 255
    cfg = (a.levels, a.steps, a.hidden)
    steps = [TrainStep("proxlab", proxlab_glow(*cfg), _proxlab_loss, x),
             TrainStep("proxlab (check_finite=False)", proxlab_glow(*cfg, check_finite=False), _proxlab_loss, x)]
    if nf is not None:
        steps.append(TrainStep(f"normflows {nf_version}", normflows_glow(*cfg), _normflows_loss, x))
    interleaved(steps, a.warmup, a.repeats)
    train = [_summary(s) for s in steps]

    profiles = {}
    if a.profile:
        for s in steps[:1] + steps[2:]:
            table, top = profile_step(s, 15)
            profiles[s.name] = top
            print(f"\nprofile of one training step, {s.name} (operators by self CPU time)\n{table}")

    inference = proxlab_inference(steps[0].model, a.eval_batch, max(2, a.repeats // 2))
    busy1, own1, wall1 = _busy_cpu_s(), sum(os.times()[:2]), time.perf_counter()
    other = None
    if busy0 is not None and busy1 is not None:
        other = max(0.0, (busy1 - busy0) - (own1 - own0)) / (wall1 - wall0)

    ratio = None
    if nf is not None:
        ratio = train[0]["step_s"] / train[2]["step_s"]
        paired = [tp / tn for tp, tn in zip(train[0]["step_s_all"], train[2]["step_s_all"])]

    print(f"\nGLOW training step: Glow(1, levels={a.levels}, steps={a.steps}, hidden={a.hidden}), batch {a.batch} of "
          f"1x{SIZE}x{SIZE}, Adam, torch {torch.__version__}, {a.threads} thread(s), median of {a.repeats} "
          f"interleaved steps after {a.warmup} warm-up(s), seconds")
    head = f"{'implementation':<30} {'params':>9} | {'step':>6} {'fwd':>6} {'bwd':>6} {'adam':>6} | {'bpd first->last':>15}"
    print(head)
    print("-" * len(head))
    for r in train:
        print(f"{r['implementation']:<30} {r['params']:>9,} | {r['step_s']:6.3f} {r['forward_s']:6.3f} "
              f"{r['backward_s']:6.3f} {r['optimizer_s']:6.3f} | {r['first_loss_bpd']:6.3f} -> {r['last_loss_bpd']:6.3f}")
    if nf is None:
        print("normflows is not installed (pip install proxlab[oracle]): no comparison, proxlab's numbers only")
    else:
        print(f"proxlab / normflows step time: {ratio:.3f} (median of per-round ratios {statistics.median(paired):.3f}); "
              f"goal <= 0.8: {'met' if ratio <= 0.8 else 'NOT met'}")
    print(f"\nproxlab Glow, no grad, float32: log_prob {inference['log_prob_images_per_s']:.1f} images/s "
          f"(batch {a.eval_batch}), sample {inference['sample_images_per_s']:.1f} images/s (n={a.eval_batch}), "
          f"one image: forward {inference['forward_one_image_ms']:.1f} ms, inverse {inference['inverse_one_image_ms']:.1f} ms")
    if other is not None:
        print(f"other processes used {other:.2f} CPU cores' worth during the run; load average "
              f"{load0[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end ({os.cpu_count()} cores)")

    meta = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "torch": torch.__version__,
        "normflows": nf_version,
        "python": platform.python_version(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_average_start": load0,
        "load_average_end": os.getloadavg(),
        "other_processes_cpu_cores": other,
        "wall_s": wall1 - wall0,
        "repeats": a.repeats,
        "warmup": a.warmup,
        "batch": a.batch,
        "config": {"in_channels": 1, "levels": a.levels, "steps": a.steps, "hidden": a.hidden, "image_size": SIZE},
    }
    result = {"meta": meta, "train_step": train, "ratio_proxlab_over_normflows": ratio,
              "goal_ratio": 0.8, "proxlab_inference": inference}
    if nf is not None:
        result["ratio_median_of_rounds"] = statistics.median(paired)
    if profiles:
        result["profiles"] = profiles
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
