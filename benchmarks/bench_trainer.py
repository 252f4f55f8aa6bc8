"""Training-loop overhead: steps/s of the Trainer vs a bare hand-written loop, same model, data, batch.

Model: the zoo's DnCNN (depth 10, 32 features) on MNIST digits, denoising at σ = 0.1, batch 32,
Adam. The bare loop does only what any loop must: draw a batch, add noise, forward, backward, step.
The Trainer runs with its progress bar, JSONL log every 10 steps and a checkpoint every 100 steps.
Runs alternate (bare, trainer, bare, trainer, ...) so that machine noise hits both alike; the
overhead is from the medians. Prints a table and writes ``benchmarks/results/bench_trainer.json``.

    python benchmarks/bench_trainer.py [--steps 200] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from proxlab.data import mnist5k
from proxlab.losses import mse, simulated
from proxlab.operators import Denoising
from proxlab.priors.networks import DnCNN
from proxlab.training import Trainer


def bare_loop(x: torch.Tensor, steps: int, batch: int, sigma: float) -> float:
    torch.manual_seed(0)
    model = DnCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=g)
    t0 = time.perf_counter()
    pos = 0
    for _ in range(steps):
        if pos + batch > len(x):
            perm, pos = torch.randperm(len(x), generator=g), 0
        xb = x[perm[pos: pos + batch]]
        pos += batch
        y = xb + sigma * torch.randn(xb.shape, generator=g)
        loss = mse(model(y), xb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps / (time.perf_counter() - t0)


def trainer_loop(x: torch.Tensor, steps: int, batch: int, sigma: float) -> float:
    torch.manual_seed(0)
    model = DnCNN()
    with tempfile.TemporaryDirectory() as d:
        t = Trainer(model, simulated(Denoising(), sigma), x, steps=steps, batch_size=batch, lr=1e-3, log_every=10,
                    val_every=10**9, checkpoint_every=100, out_dir=d, progress=True)
        t0 = time.perf_counter()
        t.fit()
        return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x, _ = mnist5k("train")
    bare, trainer = [], []
    for _ in range(a.repeats):
        bare.append(bare_loop(x, a.steps, a.batch, 0.1))
        trainer.append(trainer_loop(x, a.steps, a.batch, 0.1))
    mb, mt = statistics.median(bare), statistics.median(trainer)
    overhead = (mb / mt - 1) * 100
    print("| loop | steps/s (median) | runs |")
    print("|---|---|---|")
    print(f"| bare | {mb:.2f} | {', '.join(f'{v:.2f}' for v in bare)} |")
    print(f"| Trainer | {mt:.2f} | {', '.join(f'{v:.2f}' for v in trainer)} |")
    print(f"Trainer overhead: {overhead:+.1f} % (target <= 5 %), {a.steps} steps, batch {a.batch}, {a.threads} threads")
    out = Path(__file__).parent / "results" / "bench_trainer.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"bare_steps_per_s": bare, "trainer_steps_per_s": trainer, "overhead_percent": overhead,
                               "steps": a.steps, "batch": a.batch, "threads": a.threads}, indent=2))


if __name__ == "__main__":
    main()
