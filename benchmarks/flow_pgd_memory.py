"""Memory and time of one flow-PGD training step for K = 1, 2, 4, 8 folds, with and without the memory-saving
recomputation (issue goals: with recomputation, peak memory at K = 8 <= 1.3x that at K = 2; time <= 1.6x plain
autograd).

Flows as in ``flow-pgd-fashion`` (GLOW 3 levels x 8 steps, 128 hidden channels, additive coupling, 663,940 parameters per fold,
untied: K folds evaluate K - 1 flows, the last fold being a gradient step; the tied rows share one flow), batch 16 of
32x32 images, denoising, MSE, one Adam step.

Three measurements, each said for what it is:

* ``peak_MB``: CPU peak RSS of a fresh process during one training step (forward, backward, Adam step) minus its
  RSS just before the step (model, optimiser and data already built; ``resource.getrusage`` ``ru_maxrss``).
  It includes the parameter gradients and Adam's two moments, which grow with K for untied flows whatever the
  backward pass does: they are reported apart as ``state_MB`` (4 bytes x 3 x trainable parameters).
* ``activation_peak_MB = peak_MB - state_MB``: what the backward pass itself needs; the goal is checked on it
  (and on ``peak_MB`` of the tied rows, where the state does not grow with K).
* ``saved_MB``: exact bytes of the tensors autograd saves for backward (``saved_tensors_hooks``, each storage
  once), the quantity that grows with depth without recomputation.
* ``seconds``: forward + backward + Adam step, median of ``--repeats``, plain and recomputed interleaved in one
  process (ratios of one run: this machine is shared).

Prints a table, writes ``benchmarks/results/flow_pgd_memory.json`` and the curve
``docs/figures/flow_pgd_memory.png``.

    python benchmarks/flow_pgd_memory.py [--threads 1] [--repeats 3] [--batch 16] [--folds 1 2 4 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from proxlab.operators.denoising import Denoising
from proxlab.priors.flow import Glow
from proxlab.unrolled import FlowPGD

RESULTS = Path(__file__).resolve().parent / "results"
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "flow_pgd_memory.png"  # shown by the README
FLOW = dict(in_channels=1, levels=3, steps=8, hidden=128, coupling="additive", image_size=32)  # as zoo:glow-fashion


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _setup(folds: int, saving: bool, tied: bool, batch: int):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 32, 32, generator=g)
    y = x + 0.2 * torch.randn(x.shape, generator=g)
    torch.manual_seed(0)
    net = FlowPGD(Denoising(), Glow(**FLOW), folds=folds, tied=tied, memory_saving=saving)
    opt = torch.optim.Adam(net.parameters(), lr=1e-5)
    return net, opt, x, y


def _step(net, opt, x, y) -> None:
    opt.zero_grad(set_to_none=True)
    ((net(y) - x) ** 2).mean().backward()
    opt.step()


def probe(folds: int, saving: bool, tied: bool, batch: int) -> dict:
    """Run in a fresh process: peak RSS increase of one training step, and the bytes saved for backward."""
    net, opt, x, y = _setup(folds, saving, tied, batch)
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    before = _rss_mb()
    _step(net, opt, x, y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        try:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = ((net(y) - x) ** 2).mean()
    del loss
    return {"peak_MB": peak - before, "state_MB": 3 * 4 * trainable / 2**20, "saved_MB": sum(seen.values()) / 2**20,
            "trainable_parameters": trainable}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--folds", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--probe", nargs=3, metavar=("K", "SAVING", "TIED"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.probe:
        k, saving, tied = int(a.probe[0]), a.probe[1] == "1", a.probe[2] == "1"
        print(json.dumps(probe(k, saving, tied, a.batch)))
        return 0
    if min(a.folds) < 1 or a.repeats < 1 or a.batch < 1:
        p.error(f"--folds, --repeats and --batch must be >= 1, got {a.folds}, {a.repeats}, {a.batch}")
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
    t_start = time.perf_counter()
    rows = []
    for tied in (False, True):
        for k in a.folds:
            for saving in (False, True):
                out = subprocess.run([sys.executable, __file__, "--threads", str(a.threads), "--batch", str(a.batch),
                                      "--probe", str(k), str(int(saving)), str(int(tied))],
                                     capture_output=True, text=True, env=env, check=True)
                row = {"folds": k, "tied": tied, "memory_saving": saving, **json.loads(out.stdout.splitlines()[-1])}
                row["activation_peak_MB"] = row["peak_MB"] - row["state_MB"]
                rows.append(row)
    for k in a.folds:  # time: untied, plain and recomputed interleaved in this process
        setups = {s: _setup(k, s, False, a.batch) for s in (False, True)}
        setups[True][0].load_state_dict(setups[False][0].state_dict())
        times: dict = {False: [], True: []}
        for s in (False, True):
            _step(*setups[s])  # warm-up
        for _ in range(a.repeats):
            for s in (False, True):
                t0 = time.perf_counter()
                _step(*setups[s])
                times[s].append(time.perf_counter() - t0)
        for r in rows:
            if r["folds"] == k and not r["tied"]:
                r["seconds"] = statistics.median(times[r["memory_saving"]])
        del setups

    def get(k, saving, tied, key):
        return next(r[key] for r in rows if r["folds"] == k and r["memory_saving"] == saving and r["tied"] == tied)

    print(f"{'K':>2} {'tied':>5} {'backprop':>11} {'peak MB':>8} {'state MB':>8} {'activ. MB':>9} {'saved MB':>8} "
          f"{'s/step':>7}")
    for r in rows:
        sec = f"{r['seconds']:7.2f}" if "seconds" in r else f"{'':>7}"
        print(f"{r['folds']:>2} {str(r['tied']):>5} {'recomputed' if r['memory_saving'] else 'plain':>11} "
              f"{r['peak_MB']:8.1f} {r['state_MB']:8.1f} {r['activation_peak_MB']:9.1f} {r['saved_MB']:8.1f} {sec}")
    goals = {}
    if {2, 8} <= set(a.folds):
        goals["activation_peak_ratio_K8_over_K2_untied"] = (get(8, True, False, "activation_peak_MB")
                                                            / get(2, True, False, "activation_peak_MB"))
        goals["peak_ratio_K8_over_K2_tied"] = get(8, True, True, "peak_MB") / get(2, True, True, "peak_MB")
        goals["peak_ratio_K8_over_K2_untied"] = get(8, True, False, "peak_MB") / get(2, True, False, "peak_MB")
    goals["time_ratio_recomputed_over_plain"] = {k: get(k, True, False, "seconds") / get(k, False, False, "seconds")
                                                 for k in a.folds}
    print("goals (<= 1.3 memory, <= 1.6 time):", json.dumps(goals, indent=1))
    out = {"command": "python benchmarks/flow_pgd_memory.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "threads": a.threads, "batch": a.batch, "flow": FLOW, "rows": rows, "goals": goals,
           "wall_s": time.perf_counter() - t_start, "load_average": os.getloadavg(),
           "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "flow_pgd_memory.json").write_text(json.dumps(out, indent=2) + "\n")
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    _figure(rows, a.folds, FIGURE)
    print(f"wrote {RESULTS / 'flow_pgd_memory.json'} and {FIGURE}")
    return 0


def _figure(rows, folds, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for saving, style in ((False, "o-"), (True, "s-")):
        name = "recomputed" if saving else "plain autograd"
        sel = [r for r in rows if r["memory_saving"] == saving and not r["tied"]]
        ax1.plot([r["folds"] for r in sel], [r["activation_peak_MB"] for r in sel], style, label=name)
        ax2.plot([r["folds"] for r in sel], [r["seconds"] for r in sel], style, label=name)
    ax1.set(xlabel="folds K", ylabel="peak RSS of a step − grads/Adam state (MB)", xticks=folds)
    ax2.set(xlabel="folds K", ylabel="seconds per training step", xticks=folds)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("flow-PGD, GLOW 3×8×128 per fold, batch 16 of 32×32, 1 CPU thread")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
