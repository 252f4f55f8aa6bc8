"""Table V of a finished ``fistanet-ct`` sweep as Markdown, and its numbers as JSON for the repository.

    python benchmarks/ct_table_v_summary.py RUN_DIR [--out benchmarks/results/runs/fistanet-ct.json] [--note TEXT]

RUN_DIR is the sweep's folder (``proxlab run fistanet-ct --out RUN_DIR``); its ``metrics.json`` holds the
``ct_table_v`` section. Prints the CT-slab table (with the paper's numbers), the ellipse table, the orderings, the
training minutes and the 256×256 setting; writes them with the runs' training records.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from proxlab.experiments.ct_tables import CT_METHODS, PAPER_TABLE_V


def cell(d: dict | None) -> str:
    return f"{d['psnr']:.2f} / {d['ssim']:.3f}" if d else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "runs" / "fistanet-ct.json")
    ap.add_argument("--note", default="", help="how the runs were made (budget, folders), stored with the numbers")
    args = ap.parse_args()
    m = json.loads((args.run_dir / "metrics.json").read_text())
    t = m["ct_table_v"]
    views = sorted({v for rows in t["ct"].values() for v in rows}, key=int)
    lines = ["| method | " + " | ".join(f"{v} views (paper)" for v in views) + " | ellipses " + " / ".join(views)
             + " | parameters | training min " + " / ".join(views) + " |",
             "|---|" + "---|" * (len(views) + 3)]
    for row, name in CT_METHODS.items():
        if row not in t["ct"]:
            continue
        paper = PAPER_TABLE_V.get(row, {})
        cells = [cell(t["ct"][row].get(v)) + (f" ({paper[v][0]:.2f} / {paper[v][1]:.3f})" if v in paper else "")
                 for v in views]
        ell = " · ".join(cell(t["ellipses"].get(row, {}).get(v)) for v in views)
        mins = " / ".join(f"{t.get('train_seconds', {}).get(row, {}).get(v, float('nan')) / 60:.0f}" for v in views)
        n = t.get("parameters", {}).get(row, "")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {ell} | {n:,} | {mins} |" if n else
                     f"| {name} | " + " | ".join(cells) + f" | {ell} | | |")
    print("\n".join(lines))
    for v, o in t.get("ordering", {}).items():
        print(f"\n{v} views: ordering {'holds' if o['holds'] else 'does not hold'}: "
              + ", ".join(f"{k} {d:+.2f} dB" for k, d in o["margins_dB"].items()))
    for label, r in t.get("256px", {}).items():
        print(f"\n{label}: " + ", ".join(f"{k} {cell(d)}" for k, d in r.items()))
    out = {"command": f"proxlab run fistanet-ct --out {args.run_dir.name}; python benchmarks/ct_table_v_summary.py "
                      f"{args.run_dir.name}", "note": args.note, "table_v": t,
           "training": m.get("training", {}).get("runs", {})}
    args.out.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
