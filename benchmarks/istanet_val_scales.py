"""Which validation blocks track Set11? The validation photos of one block-CS run, scored at several scales.

For every weight snapshot of a run (``RUN_DIR/snapshots/step_*.safetensors``, and the start when the run has an
``init``), this scores the run's validation photos (``data.options.images``/val) at each scale of ``--scales``
(anti-aliased downscaling, ``--blocks`` fixed random 33×33 blocks per scale) and sets the Set11 PSNR of the same
snapshots beside them, read from the learning-curve JSON of ``benchmarks/istanet_learning_curve.py`` (``--curve``).
Per scale it reports the Spearman rank correlation of validation against Set11 over the snapshots, and the
snapshot the validation would keep against the one Set11 ranks first. Set11 is only read here to judge the
selectors, for the report; no training run reads this. Writes ``benchmarks/results/istanet_valscales_NAME.{json,md}``.

    python benchmarks/istanet_val_scales.py RUN_DIR --curve benchmarks/results/istanet_curve_NAME.json \\
        [--scales 1 0.5 0.25] [--blocks 1024] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import istanet_learning_curve as curve  # noqa: E402  (the same snapshot loader)

from proxlab.data import random_patches  # noqa: E402
from proxlab.experiments.blockcs import at_scales, folder_split, whole_psnr  # noqa: E402
from proxlab.experiments.runner import _load_init  # noqa: E402
from proxlab.training import load_model_weights  # noqa: E402
from proxlab.training.checkpoint import atomic_write_text  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def _val_images(run_dir: Path) -> list[torch.Tensor]:
    from proxlab.experiments.config import load_config

    folder = load_config(run_dir / "config.toml").data.options.get("images", "")
    if not folder:
        raise SystemExit(f"{run_dir}: the run has no data.options.images folder (its validation image is bundled)")
    return folder_split(folder, "val")


def _spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--curve", required=True, help="the run's istanet_curve_NAME.json (Set11 per snapshot)")
    p.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 0.25])
    p.add_argument("--blocks", type=int, default=1024, help="validation blocks per scale (default 1024)")
    p.add_argument("--name", default=None, help="results file name part (default: the run folder's name)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS), help="results folder")
    a = p.parse_args(argv)
    run_dir = Path(a.run_dir)
    if a.blocks < 1:
        p.error(f"--blocks: expected an int >= 1, got {a.blocks}")
    snaps = sorted((run_dir / "snapshots").glob("step_*.safetensors"), key=lambda f: int(re.search(r"(\d+)", f.name).group(1)))
    if not snaps:
        p.error(f"no snapshots in {run_dir / 'snapshots'} (train with --set training.snapshot_every=N)")
    curve_rows = json.loads(Path(a.curve).read_text())["rows"]
    set11 = {int(r["step"]): float(r["set11_psnr"]) for r in curve_rows}
    # the curve must have scored these very snapshots: a newer run written to the same folder has the same steps
    curve_sha = {int(r["step"]): r.get("sha256") for r in curve_rows}
    stale = [f.name for f in snaps if (st := int(re.search(r"(\d+)", f.name).group(1))) in curve_sha
             and curve_sha[st] != curve._file_sha256(f)]
    if stale:
        p.error(f"--curve: {Path(a.curve).name} scored other files than {run_dir / 'snapshots'} holds now "
                f"({', '.join(stale[:3])}{' …' if len(stale) > 3 else ''}); rerun istanet_learning_curve.py on the run")
    torch.set_num_threads(a.threads)
    val = _val_images(run_dir)
    blocks = {s: random_patches(at_scales(val, [s]), a.blocks, 33, seed=1234) for s in a.scales}
    _, cfg = curve._model(snaps[0])
    todo = [(int(re.search(r"(\d+)", s.name).group(1)), s) for s in snaps]
    if cfg.get("init"):
        todo.insert(0, (0, None))
    rows = []
    for step, path in todo:
        model, _ = curve._model(path or snaps[0])
        if path is None:
            _load_init(cfg["init"], model, lambda m: None)  # the start, with this run's Φ/Qinit
        else:
            load_model_weights(path, model)
        model.eval()
        row = {"step": step, "set11_psnr": set11.get(step)}
        with torch.no_grad():
            for s, x in blocks.items():
                row[f"val_{s:g}"] = whole_psnr(model(model.operator(x)).clamp(0, 1), x)
        rows.append(row)
        print(f"step {step:>6}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "step" and v is not None),
              flush=True)
    scored = [r for r in rows if r["set11_psnr"] is not None]
    best11 = max(scored, key=lambda r: r["set11_psnr"])["step"] if scored else None
    per_scale = {}
    for s in a.scales:
        k = f"val_{s:g}"
        per_scale[f"{s:g}"] = {"spearman_vs_set11": _spearman([r[k] for r in scored], [r["set11_psnr"] for r in scored]),
                               # a run keeps one of its validation checks, never its start (step 0)
                               "keeps_step": max((r for r in rows if r["step"] > 0), key=lambda r: r[k])["step"],
                               "range_db": max(r[k] for r in rows) - min(r[k] for r in rows)}
    out = {"run_dir": str(run_dir), "model": cfg["model"], "ratio": cfg["ratio"], "blocks_per_scale": a.blocks,
           "set11_best_step": best11, "rows": rows, "per_scale": per_scale,
           "note": "Set11 judges the selectors here, for the report; no run selects weights by it"}
    res = Path(a.out)
    res.mkdir(parents=True, exist_ok=True)
    name = a.name or run_dir.name
    atomic_write_text(res / f"istanet_valscales_{name}.json", json.dumps(out, indent=2))
    md = [f"# Validation at several scales: {cfg['model']} {cfg['ratio']} % ({run_dir.name})", "",
          f"{a.blocks} fixed blocks of the run's validation photos per scale; Set11 from {Path(a.curve).name}.", "",
          "| step | Set11 | " + " | ".join(f"val ×{s:g}" for s in a.scales) + " |",
          "|---:|---:|" + "---:|" * len(a.scales)]
    md += [f"| {r['step']} | {'' if r['set11_psnr'] is None else format(r['set11_psnr'], '.2f')} | "
           + " | ".join(f"{r[f'val_{s:g}']:.3f}" for s in a.scales) + " |" for r in rows]
    md += ["", f"Set11 ranks step {best11} first.", "", "| scale | Spearman vs Set11 | keeps step | range dB |",
           "|---:|---:|---:|---:|"]
    md += [f"| {s} | {'' if v['spearman_vs_set11'] is None else format(v['spearman_vs_set11'], '.2f')} | "
           f"{v['keeps_step']} | {v['range_db']:.3f} |" for s, v in per_scale.items()]
    atomic_write_text(res / f"istanet_valscales_{name}.md", "\n".join(md) + "\n")
    print(f"wrote {res / f'istanet_valscales_{name}.json'} and .md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
