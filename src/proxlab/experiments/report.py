"""A self-contained HTML report for a run: the metrics table, reconstructions, training curves.

Figures are PNGs embedded as base64, so ``report.html`` is one file that opens anywhere. The PNGs
are also written beside it (``figure_reconstructions.png``, ``figure_training.png``).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import torch

from .config import ExperimentConfig, dump_toml
from .figures import comparison_grid, training_curves

__all__ = ["write_run", "metrics_table_html", "metrics_table", "panel_figure"]

_STYLE = """
body{font-family:system-ui,-apple-system,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}tr.model td{font-weight:600}
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:12px}img{max-width:100%}
"""


def metrics_table_html(metrics: dict[str, Any], model_name: str, extra_rows: dict[str, dict[str, float]] | None = None) -> str:
    """One row per method (the model first), one column per metric (means over the test images)."""
    rows = [(model_name, metrics["model"]["mean"], True)]
    rows += [(m, v["mean"], False) for m, v in metrics.get("baselines", {}).items()]
    rows += [(m, v, False) for m, v in (extra_rows or {}).items()]
    keys = list(metrics["model"]["mean"])
    head = "<tr><th>method</th>" + "".join(f"<th>{html.escape(k)}</th>" for k in keys) + "</tr>"
    body = []
    for name, vals, is_model in rows:
        cells = "".join(f"<td>{vals[k]:.4f}</td>" if k in vals else "<td></td>" for k in keys)
        body.append(f"<tr class=\"{'model' if is_model else ''}\"><td>{html.escape(name)}</td>{cells}</tr>")
    return "<table>" + head + "".join(body) + "</table>"


def metrics_table(cfg: ExperimentConfig, results: dict[str, Any]) -> str:
    """:func:`metrics_table_html` for the config's model."""
    return metrics_table_html(results, cfg.model.name)


def panel_figure(panels: dict[str, torch.Tensor], path: Path | None = None) -> bytes:
    """Rows: the first test images; columns: truth, measurement, the model and each baseline."""
    cols = list(panels)
    n = min(len(v) for v in panels.values())
    grid = {f"test image {i}": {c: panels[c][i: i + 1] for c in cols} for i in range(n)}
    return comparison_grid(grid, list(grid), cols, path)


def write_run(folder: Path, cfg: ExperimentConfig, sections: list[tuple[str, Any]], history: list[dict],
              training: dict[str, Any]) -> dict[str, Any]:
    """The one writer of a run's results: ``metrics.json``, each section's figures and ``report.html``.

    ``sections`` are ``(protocol name, Section)`` pairs in the spec's order. In ``metrics.json`` the
    ``test_split`` metrics sit at the top level (``model``, ``baselines``, ``test_images``, ``variants``),
    every other protocol's under its name, and ``training`` beside them. Returns that dict.
    """
    import json

    folder = Path(folder)
    metrics: dict[str, Any] = {}
    for name, sec in sections:
        if name == "test_split":
            metrics.update(sec.metrics)
        else:
            metrics[name] = sec.metrics
        if sec.paper is not None:
            metrics.setdefault("paper", {})[name] = sec.paper
    metrics["training"] = training
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2))
    curves = training_curves(history)
    (folder / "figure_training.png").write_bytes(curves)
    body = []
    for name, sec in sections:
        body += [f"<h2>{html.escape(sec.title)}</h2>", sec.html]
        if sec.paper is not None:
            body.append(f"<p>The paper: <code>{html.escape(json.dumps(sec.paper))}</code></p>")
        for fname, png in sec.figures.items():
            (folder / f"figure_{fname}" if not fname.startswith("figure_") else folder / fname).write_bytes(png)
            body.append(_img(png, fname))
    t = training
    stages = t.get("stages", [])
    head = (f"<p>Task: <b>{html.escape(cfg.build_task().describe())}</b>; model <b>{html.escape(cfg.model.name)}</b> "
            f"({t.get('parameters', 0):,} parameters); {t.get('steps', '?')} training steps in {len(stages)} "
            f"stage(s) (stopped: {html.escape(str(t.get('stop_reason', '?')))}; best validation at step "
            f"{t.get('best_step')}).</p>")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(cfg.name)}</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(cfg.name)}</h1><p>{html.escape(cfg.description)}</p>", head, *body,
             "<h2>Training</h2>", _img(curves, "training curves"),
             "<h2>Resolved config</h2>", f"<pre>{html.escape(dump_toml(cfg))}</pre>", "</body></html>"]
    (folder / "report.html").write_text("\n".join(parts))
    return metrics


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'
