"""Learning curve of one block-CS training run: Set11 PSNR / SSIM of every weight snapshot it saved.

A run started with ``--set snapshot_every=N`` writes ``RUN_DIR/snapshots/step_NNNNNN.safetensors``. Each
snapshot is rebuilt from the settings stored in its header (model, Φ and Qinit come with the weights) and
scored with the experiment's own Set11 protocol (``evaluate_set11``: ISTA-Net's test script). With
``init=...`` the starting weights are scored as step 0. The validation PSNR the run logged at the same
step (blocks of its own validation images) is shown beside it. The Set11 numbers are for the report
only: nothing here picks weights. Scores already in the JSON are reused when the file's SHA-256 matches
(for the start: the init weights' and this run's Qinit's), so rerunning while the training goes on only
scores the new snapshots, and a new run written to the same folder is scored afresh. The JSON is
rewritten atomically after every scored row. Writes ``benchmarks/results/istanet_curve_NAME.{json,md,png}``
(``NAME``: ``--name``, default the run folder's name).

    python benchmarks/istanet_learning_curve.py RUN_DIR [--set11 ../shared/data/Set11] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from proxlab.experiments.blockcs import RELEASED_SET11, evaluate_set11
from proxlab.experiments.runner import _load_init
from proxlab.operators import BlockCompressedSensing
from proxlab.registry import build_model
from proxlab.training import load_model_weights
from proxlab.training.checkpoint import _file_sha256, atomic_write_text

RESULTS = Path(__file__).parent / "results"


def _model(path: Path) -> tuple[torch.nn.Module, dict]:
    """The network of one snapshot, built from the settings in its header, with its Φ/Qinit."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("proxlab", "{}"))
        phi, qinit = f.get_tensor("operator.phi"), f.get_tensor("operator.qinit")
    op = BlockCompressedSensing(None, phi=phi, qinit=qinit)
    spec = path.parent.parent / "config.toml"
    if spec.is_file():  # a run of the experiment spec (proxlab run istanet-plus-cs25 ...)
        from proxlab.experiments.config import load_config

        c = load_config(spec)
        first = c.resolved_stages[0]
        paper_key = next((p.options.get("paper_key", "") for p in c.evaluation.protocols if p.name == "set11"), "")
        data_opts = dict(c.data.options)
        cfg = {"model": paper_key or c.model.name, "ratio": round(c.operator.options["ratio"] * 100),
               "images": data_opts.get("images", ""), "init": "" if first.init in ("fresh", "previous") else first.init}
        return build_model(c.model.name, operator=op, **c.model.options), cfg
    if "settings" not in meta:
        raise ValueError(f"{path}: no settings in its header and no config.toml beside its run (not a block-CS snapshot)")
    cfg = json.loads(meta["settings"])  # a snapshot of the program that preceded the spec (same networks)
    if cfg["model"] == "resnet-pgd":
        model = build_model("resnet-pgd", operator=op, stages=cfg["stages"], channels=cfg["channels"],
                            blocks=cfg["blocks"])
    else:
        plus = cfg["model"] == "istanet-plus"
        model = build_model("istanet", operator=op, plus=plus, zero_residual=bool(cfg["zero_g"] if plus else cfg["identity"]))
    return model, cfg


def _val_psnr(run_dir: Path) -> dict[int, float]:
    log = run_dir / "checkpoints" / "log.jsonl"
    out: dict[int, float] = {}
    if log.is_file():
        for line in log.read_text().splitlines():
            try:  # the trainer may be writing its last line right now
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "val_psnr" in rec:
                out[int(rec["step"])] = float(rec["val_psnr"])
    return out


def _init_key(spec: str, first_snapshot: Path) -> str:
    """What the start's score depends on: the init weights and this run's Φ and Qinit (fitted on its own blocks)."""
    import hashlib

    from safetensors import safe_open

    from proxlab.weights import resolve_weights

    h = hashlib.sha256()
    with safe_open(str(first_snapshot), framework="pt") as f:
        for k in ("operator.phi", "operator.qinit"):
            h.update(f.get_tensor(k).contiguous().numpy().tobytes())
    return f"{_file_sha256(Path(resolve_weights(spec)))}+operator:{h.hexdigest()}"


def _plot(rows: list[dict], path: Path, title: str) -> None:
    from proxlab.experiments.figures import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4))
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["set11_psnr"] for r in rows], "o-", label="Set11 (report only)")
    val = [(r["step"], r["val_psnr"]) for r in rows if r.get("val_psnr") is not None]
    if val:
        ax.plot(*zip(*val), "s--", label="validation blocks (selection)")
    ref = rows[0].get("released")
    if ref:
        ax.axhline(ref, color="grey", ls=":", label=f"authors' released weights {ref:.2f} dB")
    ax.set_xlabel("training step")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--set11", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "Set11"))
    p.add_argument("--name", default=None, help="results file name part (default: the run folder's name)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(RESULTS), help="results folder")
    a = p.parse_args(argv)
    run_dir = Path(a.run_dir)
    snaps = sorted((run_dir / "snapshots").glob("step_*.safetensors"), key=lambda f: int(re.search(r"step_(\d+)", f.name).group(1)))
    if not snaps:
        staged = sorted(f.name for f in (run_dir / "snapshots").glob("stage*_step_*.safetensors"))
        p.error(f"no snapshots in {run_dir / 'snapshots'} (train with --set snapshot_every=N)"
                + (f"; it holds a multi-stage run's {staged[:2]}..., which this script does not score" if staged else ""))
    torch.set_num_threads(a.threads)
    name = a.name or run_dir.name
    out_dir = Path(a.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"istanet_curve_{name}.json"
    _, cfg = _model(snaps[0])
    released = RELEASED_SET11.get(cfg["model"], {}).get(cfg["ratio"])
    summary = {"run_dir": str(run_dir), "model": cfg["model"], "ratio": cfg["ratio"], "images": cfg.get("images", ""),
               "init": cfg.get("init", ""), "released_set11": released,
               "note": "Set11 scores are for the report only; the run keeps the weights best on its validation blocks",
               "rows": []}
    done = {}
    if json_path.is_file():
        try:
            old = json.loads(json_path.read_text())
        except ValueError:
            old = {}
        done = {r["sha256"]: r for r in old.get("rows", []) if isinstance(r, dict) and "sha256" in r}
    val = _val_psnr(run_dir)
    rows: list[dict] = summary["rows"]
    todo: list[tuple[int, Path | None]] = [(int(re.search(r"step_(\d+)", s.name).group(1)), s) for s in snaps]
    if cfg.get("init"):
        todo.insert(0, (0, None))
    for step, path in todo:
        file = path.name if path else f"init:{cfg['init']}"
        sha = _file_sha256(path) if path else _init_key(cfg["init"], snaps[0])
        if sha in done:
            rows.append({**done[sha], "step": step, "file": file, "val_psnr": val.get(step)})
            continue
        model, _ = _model(path or snaps[0])
        if path is None:
            _load_init(cfg["init"], model, lambda m: None)  # the start, with this run's Φ/Qinit
        else:
            load_model_weights(path, model)
        res = evaluate_set11(model, a.set11)
        m = res["mean"]
        rows.append({"step": step, "file": file, "sha256": sha, "set11_psnr": m["psnr"], "set11_ssim": m["ssim"],
                     "val_psnr": val.get(step), "released": released})
        print(f"step {step:>7}: Set11 {m['psnr']:.2f} dB / {m['ssim']:.4f}"
              + (f", validation {val[step]:.2f} dB" if step in val else ""), flush=True)
        # the rows so far, and the earlier rows not yet reached, so an interruption loses no score
        kept = {r["sha256"] for r in rows}
        atomic_write_text(json_path, json.dumps({**summary, "rows": rows + [r for k, r in done.items() if k not in kept]},
                                                indent=2))
    for r in rows:
        r["released"] = released
    atomic_write_text(json_path, json.dumps(summary, indent=2))
    md = [f"# Learning curve: {cfg['model']} at {cfg['ratio']} % ({run_dir.name})", "",
          f"Set11 (ISTA-Net's protocol) of every snapshot; released weights: {released} dB. Report only, never selection.",
          "", "| step | Set11 PSNR | Set11 SSIM | validation PSNR |", "|---:|---:|---:|---:|"]
    md += [f"| {r['step']} | {r['set11_psnr']:.2f} | {r['set11_ssim']:.4f} | "
           f"{'' if r['val_psnr'] is None else format(r['val_psnr'], '.2f')} |" for r in rows]
    atomic_write_text(out_dir / f"istanet_curve_{name}.md", "\n".join(md) + "\n")
    _plot(rows, out_dir / f"istanet_curve_{name}.png", f"{cfg['model']} {cfg['ratio']} % — {run_dir.name}")
    print(f"wrote {json_path}, .md, .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
