"""The learning curve of a chain of block-CS training rounds, each started from the weights the previous one kept.

Each round is a run scored by ``benchmarks/istanet_learning_curve.py`` (its ``istanet_curve_NAME.json``). A round
that a later one chained from is given as ``CURVE.json@STEP``, STEP being the snapshot it kept (the weights the next
round started from); the steps after it were discarded. The last round may name its kept step too, to mark it. The
rounds are laid end to end on one axis, "steps on the photos", each starting where the previous one's kept step
lies, so the axis counts the steps behind every point. Set11 is for the report only, as in the curves it reads
(nothing here picks weights). Writes ``benchmarks/results/istanet_lineage.{json,md}`` and
``docs/figures/istanet_lineage.png``::

    python benchmarks/istanet_lineage.py \\
        --chain "ISTA-Net+ 25 %" 32.2 results/istanet_curve_A.json@750 results/istanet_curve_B.json@750 \\
            results/istanet_curve_C.json@2500 \\
        --chain "ISTA-Net 25 %" 31.6 ...
"""

from __future__ import annotations

import argparse
import io
import json
import math
from pathlib import Path

from proxlab.training.checkpoint import atomic_write_bytes, atomic_write_text

ROOT = Path(__file__).parent
RESULTS = ROOT / "results"
FIGURE = ROOT.parent / "docs" / "figures" / "istanet_lineage.png"


def _round(spec: str, last: bool) -> tuple[Path, int | None]:
    """``CURVE.json@STEP`` (a round a later one chained from) or ``CURVE.json`` (the last round)."""
    path, sep, step = spec.rpartition("@") if "@" in spec else (spec, "", "")
    if not sep:
        if not last:
            raise SystemExit(f"{spec}: expected CURVE.json@STEP (the step this round kept) for every round but the last")
        return Path(spec), None
    if not step.isdigit():
        raise SystemExit(f"{spec}: expected CURVE.json@STEP with STEP a whole number, got {step!r}")
    return Path(path), int(step)


def chain(name: str, goal: float, specs: list[str]) -> dict:
    """The rounds of one model laid end to end: each row gets ``x`` = steps on the photos behind it."""
    rounds, offset = [], 0
    for i, spec in enumerate(specs):
        path, kept = _round(spec, last=i == len(specs) - 1)
        curve = json.loads(path.read_text())
        rows = sorted(curve["rows"], key=lambda r: r["step"])
        steps = [r["step"] for r in rows]
        if kept is not None and kept not in steps:
            raise SystemExit(f"{spec}: step {kept} is not a scored snapshot of that curve (it has {steps})")
        rounds.append({
            "curve": path.name, "init": curve.get("init", ""), "offset": offset, "kept": kept,
            "released": curve.get("released_set11"),
            "points": [{"x": offset + r["step"], "step": r["step"], "set11_psnr": r["set11_psnr"],
                        "set11_ssim": r.get("set11_ssim")} for r in rows],
        })
        if kept is not None:
            offset += kept
    released = next((r["released"] for r in rounds if r["released"] is not None), None)
    return {"name": name, "goal": goal, "released": released, "rounds": rounds}


def _table(chains: list[dict]) -> str:
    lines = ["| model | round (curve) | starts at step | last snapshot | kept | Set11 at start | at kept | last | goal | released |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for c in chains:
        for k, r in enumerate(c["rounds"], 1):
            p = r["points"]
            at = {q["step"]: q["set11_psnr"] for q in p}
            kept, at_kept = ("(last round)", "") if r["kept"] is None else (str(r["kept"]), f"{at[r['kept']]:.2f}")
            lines.append(f"| {c['name']} | {k} ({r['curve']}) | {r['offset']} | {p[-1]['step']} | {kept} | "
                         f"{p[0]['set11_psnr']:.2f} | {at_kept} | {p[-1]['set11_psnr']:.2f} | {c['goal']} | "
                         f"{c['released']} |")
    return "\n".join(lines) + "\n"


def _plot(chains: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(chains), figsize=(5.2 * len(chains), 3.6), squeeze=False)
    for ax, c in zip(axes[0], chains):
        for k, r in enumerate(c["rounds"], 1):
            xs = [q["x"] for q in r["points"]]
            ys = [q["set11_psnr"] for q in r["points"]]
            (line,) = ax.plot(xs, ys, "o-", ms=3, label=f"round {k}")
            if r["kept"] is not None:
                q = next(q for q in r["points"] if q["step"] == r["kept"])
                ax.plot([q["x"]], [q["set11_psnr"]], "*", ms=11, color=line.get_color())
        ax.axhline(c["goal"], ls="--", color="k", lw=1, label=f"goal {c['goal']}")
        if c["released"] is not None:
            ax.axhline(c["released"], ls=":", color="grey", lw=1, label=f"released {c['released']}")
        ax.set_title(c["name"])
        ax.set_xlabel("steps on the photos (kept lineage; ★ = kept, the next round's start)")
        ax.set_ylabel("Set11 PSNR (dB, report only)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()  # written whole or not at all, as the JSON and Markdown beside it
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chain", nargs="+", action="append", required=True, metavar="ARG",
                    help="NAME GOAL CURVE.json@KEPT ... CURVE.json (one --chain per model)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder of the JSON and Markdown (default benchmarks/results)")
    ap.add_argument("--figure", type=Path, default=FIGURE)
    args = ap.parse_args(argv)
    chains = []
    for c in args.chain:
        if len(c) < 3:
            raise SystemExit(f"--chain: expected NAME GOAL CURVE.json ..., got {c}")
        try:
            goal = float(c[1])
        except ValueError:
            raise SystemExit(f"--chain {c[0]!r}: expected the goal in dB as its second value, got {c[1]!r}") from None
        if not math.isfinite(goal):
            raise SystemExit(f"--chain {c[0]!r}: the goal must be finite, got {c[1]!r}")
        chains.append(chain(c[0], goal, c[2:]))
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "istanet_lineage.json", json.dumps({"chains": chains}, indent=2) + "\n")
    table = _table(chains)
    atomic_write_text(args.out / "istanet_lineage.md", table)
    _plot(chains, args.figure)
    print(table)
    print(f"wrote {args.out / 'istanet_lineage.json'}, .md and {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
