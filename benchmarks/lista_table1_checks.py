"""Two checks on the LISTA Table 1 gap (README, "LISTA"): how much does the training length matter, and does
normalising each patch instead of the whole set bring the LISTA error down towards the paper's? Stages are counted
as shrinkages, so the paper's LISTA with T = 1 / 3 / 7 iterations is our 2 / 4 / 8 stages
(``proxlab.unrolled.lista``). Both normalisations train 2 / 4 / 8 stages for ``--steps`` (the protocol's 40,000);
the whole-set patches also train the compared row (2 stages) for ``--short-steps`` and ``--long-steps``.

Each normalisation is ``proxlab run lista-table1`` with m = 100 only (``data.options.atoms=100``; per patch:
``data.options.per_patch=true``) and these networks as its sweep runs (alpha = 0.5, 40,000 training patches,
Z* from 500 FISTA iterations); the run folders go to ``--runs``. Prints a table and writes
``benchmarks/results/lista_table1_checks.json``.

    python benchmarks/lista_table1_checks.py [--steps 40000] [--short-steps 4000] [--long-steps 120000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from proxlab.experiments.runner import run_experiment

ALPHA, ATOMS = 0.5, 100


def _run(steps: int, stages: int) -> str:
    keys = [f"model.options.stages={stages}", f"training.steps={steps}", f"training.val_every={max(steps // 20, 1)}",
            f"training.log_every={max(steps // 20, 1)}", f"training.checkpoint_every={max(steps // 20, 1)}"]
    return f'{{label = "k{stages}-s{steps}", set = [{", ".join(json.dumps(k) for k in keys)}]}}'


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40_000)
    p.add_argument("--short-steps", type=int, default=4_000)
    p.add_argument("--long-steps", type=int, default=120_000)
    p.add_argument("--runs", default="runs/lista_table1_checks", help="folder for the run folders")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "lista_table1_checks.json"))
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for per_patch in (False, True):
        runs = [(k, a.steps) for k in (2, 4, 8)] + ([(2, a.short_steps), (2, a.long_steps)] if not per_patch else [])
        norm = "per patch" if per_patch else "whole set"
        res = run_experiment("lista-table1", out=Path(a.runs) / norm.replace(" ", "-"), progress=False, echo=False,
                             overrides=[f"data.options.atoms={ATOMS}", f"data.options.alpha={ALPHA}",
                                        f"model.options.alpha={ALPHA}", f"data.options.per_patch={str(per_patch).lower()}",
                                        "sweep.protocols=[]", f"sweep.runs=[{', '.join(_run(s, k) for k, s in runs)}]"])
        for label, run in res.metrics["training"]["runs"].items():
            codes = json.loads((res.folder / "runs" / label / "metrics.json").read_text())["lista_codes"]
            rows.append({"normalisation": norm, "layers": codes["stages"], "paper_iterations": codes["stages"] - 1,
                         "steps": run["steps"], "error": codes["error"], "fista_1": codes["fista"][0],
                         "fista_to_match": codes["fista_to_match"], "seconds": run["train_seconds"]})
            r = rows[-1]
            print(f"{norm:10s} stages {r['layers']} (paper T = {r['paper_iterations']}) steps {r['steps']:6d}: error "
                  f"{r['error']:.3f} (FISTA 1 it. {r['fista_1']:.2f}; FISTA iterations to match {r['fista_to_match']}) "
                  f"{r['seconds']:.0f} s", flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"atoms": ATOMS, "alpha": ALPHA, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
