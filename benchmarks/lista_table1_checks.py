"""Two checks on the LISTA Table 1 gap (README, "LISTA"): how much does the training length matter, and does
normalising each patch instead of the whole set bring the LISTA error down towards the paper's? Layers are counted
as shrinkages, so the paper's LISTA with T = 1 / 3 / 7 iterations is our 2 / 4 / 8 layers
(``proxlab.unrolled.lista``). Both normalisations train 2 / 4 / 8 layers for ``--steps`` (the protocol's 40,000);
the whole-set patches also train the compared row (2 layers) for ``--short-steps`` and ``--long-steps``.

Same protocol as ``proxlab run lista --set protocol=table1`` (m = 100, alpha = 0.5, 40,000 training patches,
Z* from 500 FISTA iterations). Prints a table and writes ``benchmarks/results/lista_table1_checks.json``.

    python benchmarks/lista_table1_checks.py [--steps 40000] [--short-steps 4000] [--long-steps 120000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from proxlab.experiments.lista import _train_lista, iteration_errors, learn_dictionary, sparse_codes, table1_patches
from proxlab.solvers import fista
from proxlab.unrolled.lista import LISTA

ALPHA, N_TRAIN, N_TEST, ATOMS = 0.5, 40_000, 2_000, 100


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40_000)
    p.add_argument("--short-steps", type=int, default=4_000)
    p.add_argument("--long-steps", type=int, default=120_000)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "lista_table1_checks.json"))
    a = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for per_patch in (False, True):
        (xtr, xva, xte), _ = table1_patches(N_TRAIN, N_TEST, 0, per_patch=per_patch)
        D = learn_dictionary(xtr, ATOMS, ALPHA, 200, seed=0)
        ztr, zva, zte = (sparse_codes(D, v, ALPHA, 500, tol=1e-7) for v in (xtr, xva, xte))
        fe = iteration_errors(D, xte, zte, ALPHA, 50, fista)
        runs = [(k, a.steps) for k in (2, 4, 8)] + ([(2, a.short_steps), (2, a.long_steps)] if not per_patch else [])
        for layers, steps in runs:
            torch.manual_seed(0)
            net = LISTA(D, ALPHA, layers, tied=True)
            t0 = time.perf_counter()
            _train_lista(net, (xtr, ztr), (xva, zva), steps, 256, 1e-3, 0, False)
            with torch.no_grad():
                err = float((net(xte) - zte).pow(2).sum(1).mean())
            hit = next((k + 1 for k, e in enumerate(fe) if e <= err), None)
            rows.append({"normalisation": "per patch" if per_patch else "whole set", "layers": layers,
                         "paper_iterations": layers - 1, "steps": steps,
                         "error": err, "fista_1": fe[0], "fista_to_match": hit, "seconds": time.perf_counter() - t0})
            r = rows[-1]
            print(f"{r['normalisation']:10s} layers {layers} (paper T = {layers - 1}) steps {steps:6d}: error {err:.3f} "
                  f"(FISTA 1 it. {fe[0]:.2f}; FISTA iterations to match {hit}) {r['seconds']:.0f} s", flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"atoms": ATOMS, "alpha": ALPHA, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
