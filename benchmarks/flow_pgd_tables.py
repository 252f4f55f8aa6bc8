"""Tables I–IV of the ``flow-pgd-fashion`` sweep gathered from runs trained in separate folders.

The sweep's own ``flow_unrolling_tables`` section covers the runs of one folder. Runs at the full budget were
trained a few at a time (``--set "sweep.only=[...]"``), so this script merges them. A SOURCE is either a sweep
folder (its ``metrics.json`` has the tables and each run's training time) or a one-run summary
``flow-pgd-fashion-1.0-LABEL.json`` from ``benchmarks/results/runs``. A cell given by two sources is refused.
``--tenth`` puts the tenth-budget sweep's numbers beside each cell, and the paper's stand beside them too.
Writes ``benchmarks/results/flow_pgd_tables_NAME.{json,md}``::

    python benchmarks/flow_pgd_tables.py runs/fpgd-full-unet benchmarks/results/runs/flow-pgd-fashion-1.0-glow-denoise.json \\
        --tenth benchmarks/results/runs/flow-pgd-fashion-0.1.json --name full
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from proxlab.experiments.flow_solvers import PAPER_FLOW_UNROLLING
from proxlab.training.checkpoint import atomic_write_text

RESULTS = Path(__file__).parent / "results"
TASKS = ("denoise", "inpaint", "deblur")
ROWS = {"I": ("resnet", "resnet-pre", "unet", "unet-pre", "glow", "admm-tv"), "II": ("pnp-glow", "glow"),
        "III": ("resnet", "resnet-pre", "unet", "unet-pre", "glow"), "IV": ("resnet", "resnet-pre", "unet", "unet-pre", "glow")}
TITLES = {"I": "Table I — in distribution", "II": "Table II — PnP-GLOW against flow-PGD",
          "III": "Table III — out-of-distribution measurements (σ = 0.25, box 8 px, blur 4 px)",
          "IV": "Table IV — out-of-distribution images (MNIST digits)"}
SUMMARY = re.compile(r"flow-pgd-fashion-1\.0-(?P<method>[a-z-]+)-(?P<task>denoise|inpaint|deblur)\.json$")


def _cell(d: dict) -> dict:
    return {"psnr": float(d["psnr"]), "ssim": float(d["ssim"])}


def from_sweep(folder: Path) -> tuple[dict, dict]:
    """``(tables, train_seconds)`` of a sweep folder: its tables section and each run's training time."""
    path = folder / "metrics.json"
    if not path.is_file():
        raise SystemExit(f"{folder}: expected a sweep folder with metrics.json (a finished flow-pgd-fashion run)")
    m = json.loads(path.read_text())
    if "flow_unrolling_tables" not in m:
        raise SystemExit(f"{path}: expected a flow_unrolling_tables section, got sections {sorted(m)}")
    tables = {k: {meth: {t: _cell(c) for t, c in cells.items()} for meth, cells in rows.items()}
              for k, rows in m["flow_unrolling_tables"].items()}
    seconds = {label: r["train_seconds"] for label, r in m.get("training", {}).get("runs", {}).items()}
    return tables, seconds


def from_summary(path: Path) -> tuple[dict, dict]:
    """``(tables, train_seconds)`` of one run's summary ``flow-pgd-fashion-1.0-LABEL.json``."""
    got = SUMMARY.search(path.name)
    if got is None:
        raise SystemExit(f"{path}: expected a sweep folder or a file named flow-pgd-fashion-1.0-METHOD-TASK.json")
    method, task = got["method"], got["task"]
    s = json.loads(path.read_text())
    first = "II" if method == "pnp-glow" else "I"
    tables: dict = {first: {method: {task: _cell(s["test"])}}}
    if "admm_tv" in s and first == "I":
        tables["I"]["admm-tv"] = {task: _cell(s["admm_tv"])}
    if method != "pnp-glow":
        ood = [k for k in s if k.startswith("ood_") and not k.startswith("ood_images")]
        img = [k for k in s if k.startswith("ood_images")]
        if ood:
            tables["III"] = {method: {task: _cell(s[ood[0]])}}
        if img:
            tables["IV"] = {method: {task: _cell(s[img[0]])}}
    return tables, {f"{method}-{task}": s["train_seconds"]}


def merge(sources: list[Path]) -> tuple[dict, dict, dict]:
    """Every source's cells in one set of tables; ``where`` names the source of each cell."""
    tables: dict = {k: {} for k in ROWS}
    where: dict = {}
    seconds: dict = {}
    for src in sources:
        got, secs = from_sweep(src) if src.is_dir() else from_summary(src)
        for key, rows in got.items():
            for meth, cells in rows.items():
                for task, cell in cells.items():
                    here = (key, meth, task)
                    if here in where and not (meth == "admm-tv" and tables[key][meth][task] == cell):
                        raise SystemExit(f"Table {key}, {meth}, {task}: given by both {where[here]} and {src}")
                    tables[key].setdefault(meth, {})[task] = cell
                    where.setdefault(here, str(src))
        seconds.update(secs)
    # flow-PGD's own row of Table II is its Table I row, as in the sweep's section
    tables["II"]["glow"] = dict(tables["I"].get("glow", {}))
    return tables, where, seconds


def _tenth(path: Path | None) -> dict:
    if path is None:
        return {}
    return json.loads(path.read_text())["tables"]


def markdown(tables: dict, tenth: dict, seconds: dict, name: str) -> str:
    lines = [f"# flow-pgd-fashion Tables I–IV, {name}", "",
             "PSNR dB / SSIM over the 256 test images; in brackets the tenth-budget run's PSNR and the paper's "
             "(CelebA 64×64, Table IV on Anime faces: read orderings, not heights). A blank cell is not run at "
             "this budget.", ""]
    for key in ROWS:
        paper = PAPER_FLOW_UNROLLING.get(key, {})
        lines += [f"## {TITLES[key]}", "", "| method | " + " | ".join(TASKS) + " |", "|---|---|---|---|"]
        for meth in ROWS[key]:
            cells = []
            for i, task in enumerate(TASKS):
                c = tables[key].get(meth, {}).get(task)
                t = tenth.get(key, {}).get(meth, {}).get(task)
                p = paper.get(meth)
                extra = [f"tenth {t['psnr']:.2f}" if t else "", f"paper {p[i]:.2f}" if p else ""]
                extra = "; ".join(e for e in extra if e)
                cells.append((f"{c['psnr']:.2f} / {c['ssim']:.3f}" if c else "") + (f" ({extra})" if extra else ""))
            lines.append(f"| {meth} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Order in distribution (Table I, the cells measured at this budget)", ""]
    for task in TASKS:
        got = sorted(((m, r[task]["psnr"]) for m, r in tables["I"].items() if task in r), key=lambda x: -x[1])
        if got:
            lines.append(f"- {task}: " + " > ".join(f"{m} {p:.2f}" for m, p in got))
    lines += ["", "## Training time of each run (s)", "", "| run | seconds |", "|---|---|"]
    lines += [f"| {label} | {s:.0f} |" for label, s in sorted(seconds.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sources", nargs="+", type=Path, help="sweep folders or flow-pgd-fashion-1.0-LABEL.json summaries")
    ap.add_argument("--tenth", type=Path, default=None, help="the tenth-budget summary (flow-pgd-fashion-0.1.json)")
    ap.add_argument("--name", default="full", help="the name of the output files (flow_pgd_tables_NAME.{json,md})")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", args.name):
        raise SystemExit(f"--name: expected letters, digits, '.', '_' or '-', got {args.name!r}")
    tables, where, seconds = merge(args.sources)
    tenth = _tenth(args.tenth)
    args.out.mkdir(parents=True, exist_ok=True)
    md = markdown(tables, tenth, seconds, args.name)
    data = {"name": args.name, "tables": tables, "train_seconds": seconds,
            "sources": {"/".join(k): v for k, v in where.items()}, "paper": PAPER_FLOW_UNROLLING}
    atomic_write_text(args.out / f"flow_pgd_tables_{args.name}.json", json.dumps(data, indent=1) + "\n")
    atomic_write_text(args.out / f"flow_pgd_tables_{args.name}.md", md)
    print(md)
    print(f"wrote {args.out / f'flow_pgd_tables_{args.name}.md'} and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
