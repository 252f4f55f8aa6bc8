"""Memory and time of flow-PGD's backward pass, with and without the memory-saving recomputation.

Memory is measured exactly as the bytes of the tensors autograd saves for the backward pass
(``torch.autograd.graph.saved_tensors_hooks``, each storage counted once), which is what grows with the
flows' depth; time is one forward + backward, median of ``--repeats``, the two variants interleaved. For
flows of 2, 4 and 8 steps per level (3 levels, 128 hidden channels), K = 4 folds, batch 16 of 32×32 images,
denoising. Prints a table and writes ``benchmarks/results/flow_pgd_memory.json``.

    python benchmarks/flow_pgd_memory.py [--threads 1] [--repeats 3] [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from proxlab.operators.denoising import Denoising
from proxlab.priors.flow import Glow
from proxlab.unrolled import FlowPGD

OUT = Path(__file__).resolve().parent / "results" / "flow_pgd_memory.json"


def saved_bytes(net: FlowPGD, y: torch.Tensor, x: torch.Tensor) -> tuple[int, float]:
    """Bytes saved for backward by one forward pass (distinct storages) and the loss' backward time."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        try:
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. tensors without storage
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = ((net(y) - x) ** 2).mean()
    t0 = time.perf_counter()
    loss.backward()
    return sum(seen.values()), time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=16)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch, 1, 32, 32, generator=g)
    y = x + 0.2 * torch.randn(x.shape, generator=g)
    rows = []
    t_start = time.perf_counter()
    for steps in (2, 4, 8):
        flow = Glow(1, levels=3, steps=steps, hidden=128)
        nets = {s: FlowPGD(Denoising(), flow, folds=4, memory_saving=s) for s in (False, True)}
        nets[True].load_state_dict(nets[False].state_dict())
        res: dict = {False: {"mem": 0, "t": []}, True: {"mem": 0, "t": []}}
        for _ in range(a.repeats):
            for s in (False, True):
                nets[s].zero_grad()
                t0 = time.perf_counter()
                mem, _ = saved_bytes(nets[s], y, x)
                res[s]["t"].append(time.perf_counter() - t0)
                res[s]["mem"] = mem
        row = {"steps_per_level": steps, "parameters_per_flow": sum(q.numel() for q in flow.parameters()),
               "saved_MB_plain": res[False]["mem"] / 2**20, "saved_MB_recomputed": res[True]["mem"] / 2**20,
               "seconds_plain": statistics.median(res[False]["t"]),
               "seconds_recomputed": statistics.median(res[True]["t"])}
        rows.append(row)
        print(f"steps/level {steps}: saved for backward {row['saved_MB_plain']:8.1f} MB plain, "
              f"{row['saved_MB_recomputed']:6.1f} MB recomputed; forward+backward {row['seconds_plain']:.2f} s / "
              f"{row['seconds_recomputed']:.2f} s ({row['seconds_recomputed'] / row['seconds_plain']:.2f}x)")
    out = {"command": "python benchmarks/flow_pgd_memory.py " + " ".join(sys.argv[1:] if argv is None else argv), "threads": a.threads,
           "batch": a.batch, "folds": 4, "rows": rows, "wall_s": time.perf_counter() - t_start,
           "load_average": os.getloadavg(), "machine": {"python": platform.python_version(), "torch": torch.__version__,
                                                       "cpus": os.cpu_count()}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
