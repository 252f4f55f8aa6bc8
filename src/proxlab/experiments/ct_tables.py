"""Sweep protocol ``ct_table_v``: FISTA-Net's Table V (Xiang, Dong & Yang, IEEE TMI 2021) in the paper's shape,
from a sweep whose runs are labelled ``METHOD-VIEWS`` (``configs/fistanet-ct.toml``).

Rows and where each comes from:

- ``fbp``, ``fista-tv``, ``pnp-admm-lpn``: the ``validated_methods`` section of run ``pnp-lpn-VIEWS`` (weights
  chosen on the validation slab; on ellipse phantoms, of run ``pnp-lpn-ellipses-VIEWS``);
- ``istanet``, ``istanet-plus``, ``fistanet``, ``fistanet-fbp``, ``lpn-fista``: the trained run of that label, its
  ``test_split`` (the CT test slab) and its ``ood_images`` (ellipse phantoms, the same images as the
  ``pnp-lpn-ellipses`` runs score);
- ``fistanet-ellipses`` (trained on ellipse phantoms alone): its ``ood_images`` is the CT slab and its test split
  its own ellipse phantoms; ``fistanet-ellpre`` starts from it (``init = "run:fistanet-ellipses-60"``) and trains on
  the CT slab.

Two tables, one per test set, with PSNR / SSIM at each number of views, the number of learned parameters, and
the paper's numbers (Mayo CT 512², not our data: for shape, not equality). The paper's "ISTA-Net" has 262,094
parameters, which is ISTA-Net+ with 7 phases (37,442 each): our ``istanet-plus`` row is its counterpart.
The paper's ordering is checked on the CT slab: FISTA-Net > ISTA-Net+ > FISTA-TV > FBP, and FISTA-Net ≥ 1 dB
above FISTA-TV; the margins are reported, whatever they are.
"""

from __future__ import annotations

import html
from contextlib import nullcontext

import torch

from .parts import RunContext, Section, register_protocol

__all__ = ["PAPER_TABLE_V", "CT_METHODS"]

#: Table V of the paper (Mayo CT, test patient L096): views -> (PSNR, SSIM); "params" learned parameters.
PAPER_TABLE_V: dict[str, dict] = {
    "fbp": {"60": (27.533, 0.704), "120": (29.152, 0.815)},
    "fista-tv": {"60": (33.251, 0.866), "120": (35.217, 0.949)},
    "fbpconvnet": {"60": (33.976, 0.942), "120": (36.091, 0.950), "params": 482449},
    "istanet-plus": {"60": (33.734, 0.920), "120": (35.452, 0.948), "params": 262094},
    "fistanet": {"60": (37.319, 0.951), "120": (40.189, 0.968), "params": 74599},
}

CT_METHODS = {  # row -> its name in the table
    "fbp": "FBP", "fista-tv": "FISTA-TV", "pnp-admm-lpn": "PnP-ADMM + LPN (zoo:lpn-ellipses)",
    "istanet": "ISTA-Net", "istanet-plus": "ISTA-Net+ (the paper's ISTA-Net)", "fistanet": "FISTA-Net (exact adjoint)",
    "fistanet-fbp": "FISTA-Net (FBP in the gradient, the authors' code)", "lpn-fista": "unrolled FISTA with the LPN prox",
    "fistanet-theta": "FISTA-Net (exact adjoint), θ₀ = 0.03",
    "fistanet-ellipses": "FISTA-Net trained on ellipse phantoms only*",
    "fistanet-ellpre": "FISTA-Net, ellipse pre-training then the CT slab",
}
#: Rows trained on ellipse phantoms: their CT cell is their ``ood_images`` (the CT slab), their ellipse cell their own
#: test split (ellipse phantoms of the training distribution, other draws than the other rows' ellipse test images).
_ELLIPSE_TRAINED = {"fistanet-ellipses"}
_SHORT = {"istanet-plus": "ISTA-Net+", "istanet": "ISTA-Net", "fistanet": "FISTA-Net", "fistanet-fbp": "FISTA-Net (fbp)",
          "lpn-fista": "LPN-FISTA", "fistanet-ellipses": "FISTA-Net (ellipses)", "fistanet-ellpre": "FISTA-Net (ell. pre)",
          "fistanet-theta": "FISTA-Net θ₀ 0.03"}
_CLASSIC = {"fbp": "init", "fista-tv": "fista-tv", "pnp-admm-lpn": "pnp-admm"}  # row -> validated_methods key


def _views(ctx: RunContext) -> list[str]:
    out = []
    for label in ctx.children:
        if "-256px-" in label:
            continue
        tail = label.rsplit("-", 1)[-1]
        if tail.isdigit() and tail not in out:
            out.append(tail)
    return sorted(out, key=int)


def _cell(metrics: dict | None) -> tuple[float, float] | None:
    if not metrics or "psnr" not in metrics:
        return None
    return float(metrics["psnr"]), float(metrics.get("ssim", float("nan")))


def _table(ctx: RunContext, views: list[str], test_set: str) -> tuple[dict, dict]:
    """``{row: {views: (psnr, ssim)}}`` and ``{row: parameters}`` for ``test_set`` "ct" or "ellipses"."""
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    params: dict[str, int] = {}
    pnp_label = "pnp-lpn" if test_set == "ct" else "pnp-lpn-ellipses"
    for row in CT_METHODS:
        for v in views:
            if row in _CLASSIC:
                child = ctx.children.get(f"{pnp_label}-{v}")
                got = _cell(((child or {}).get("metrics", {}).get("validated_methods") or {}).get(_CLASSIC[row]))
            else:
                child = ctx.children.get(f"{row}-{v}")
                m = (child or {}).get("metrics", {})
                own = (test_set == "ct") != (row in _ELLIPSE_TRAINED)  # this test set is the run's test split
                section = m.get("model") if own else (m.get("ood_images") or {}).get("model")
                got = _cell((section or {}).get("mean"))
                if child is not None and child.get("model") is not None:
                    params[row] = sum(p.numel() for p in child["model"].parameters() if p.requires_grad)
            if got is not None:
                rows.setdefault(row, {})[v] = got
    return rows, params


def _train_seconds(ctx: RunContext, views: list[str]) -> dict[str, dict[str, float]]:
    """``{row: {views: seconds}}``: the wall time each learned model of the table spent in training."""
    out: dict[str, dict[str, float]] = {}
    for row in CT_METHODS:
        for v in views:
            t = (((ctx.children.get(f"{row}-{v}") or {}).get("metrics") or {}).get("training") or {}).get("train_seconds")
            if row not in _CLASSIC and t:
                out.setdefault(row, {})[v] = float(t)
    return out


def _slice_figure(ctx: RunContext, views: list[str], index: int = 15) -> bytes | None:
    """One test slice (``index`` of the test slab) reconstructed by every row of the table, one row of tiles per
    number of views; each caption has the tile's PSNR. The measurement is drawn once per number of views (seeded) and
    given to every method; the classic methods run at the weights that ``validated_methods`` chose. Grey levels run
    from 0 to the brightest truth pixel (CT slices are dim)."""
    from ..data import MeasurementPairs
    from ..metrics import psnr
    from .figures import tile_rows
    from .parts import SOURCES
    from .pnp_parts import run_method

    rows, window = [], 0.0
    for v in views:
        pnp = ctx.children.get(f"pnp-lpn-{v}")
        learned = [(r, ctx.children[f"{r}-{v}"]) for r in CT_METHODS
                   if r not in _CLASSIC and ctx.children.get(f"{r}-{v}", {}).get("model") is not None]
        first = pnp or (learned[0][1] if learned else None)
        if first is None:
            continue
        cfg = first["cfg"]
        task = cfg.build_task()
        test = SOURCES.get(cfg.data.source).build(cfg.data, cfg.seed, task=task).test
        x = test[min(index, len(test) - 1)][None]
        A = task.operator(tuple(x.shape[-2:]), x.shape[1])
        y = MeasurementPairs(x, A, noise=task.options["noise"], seed=cfg.seed + 2)[0][0][None]
        tiles = [("truth", x)]

        def add(name: str, rec: torch.Tensor) -> None:
            rec = rec.detach().cpu().clamp(0, 1)
            tiles.append((f"{name} {float(psnr(rec, x)):.2f} dB", rec))

        chosen = ((pnp or {}).get("metrics") or {}).get("validated_methods") or {}
        prior = pnp.get("model") if pnp else None
        for row, method in _CLASSIC.items():
            if method in chosen and (method != "pnp-admm" or prior is not None):
                with torch.no_grad() if method != "pnp-admm" else nullcontext():
                    add(CT_METHODS[row].split(" (")[0], run_method(method, A, y, task, chosen[method].get("weight"),
                                                                    prior, 20, x.shape[1:]))
        for row, child in learned:
            model = child["model"].cpu().eval()
            with torch.no_grad():
                add(_SHORT.get(row, row), model(y))
        rows.append((f"{v} views", tiles))
        window = max(window, float(x.max()))
    return tile_rows(rows, vmax=window or 1.0) if rows else None  # grey levels up to the brightest truth


def _ordering(rows: dict, views: list[str]) -> dict:
    """The paper's ordering on the CT slab, per number of views, with the margins in dB."""
    out = {}
    chain = ("fistanet", "istanet-plus", "fista-tv", "fbp")
    for v in views:
        vals = {r: rows[r][v][0] for r in chain if v in rows.get(r, {})}
        if len(vals) < len(chain):
            continue
        margins = {f"{a} - {b}": vals[a] - vals[b] for a, b in zip(chain, chain[1:])}
        out[v] = {"holds": all(d > 0 for d in margins.values()), "margins_dB": margins,
                  "fistanet_minus_fista_tv_dB": vals["fistanet"] - vals["fista-tv"],
                  "fistanet_1dB_above_fista_tv": vals["fistanet"] - vals["fista-tv"] >= 1.0}
    return out


def _html(title: str, rows: dict, params: dict, views: list[str], with_paper: bool) -> str:
    head = ("<tr><th>method</th>" + "".join(f"<th>{v} views</th>" for v in views)
            + "<th>learned parameters</th></tr>")
    body = ""
    for row, cells in rows.items():
        paper = PAPER_TABLE_V.get(row, {}) if with_paper else {}
        tds = ""
        for v in views:
            ours = f"{cells[v][0]:.2f} / {cells[v][1]:.3f}" if v in cells else ""
            ref = f" <small>(paper {paper[v][0]:.2f} / {paper[v][1]:.3f})</small>" if v in paper else ""
            tds += f"<td>{ours}{ref}</td>"
        n = f"{params[row]:,}" if row in params else ""
        n += f" <small>(paper {paper['params']:,})</small>" if "params" in paper else ""
        body += f"<tr><td>{html.escape(CT_METHODS[row])}</td>{tds}<td>{n}</td></tr>"
    return f"<h3>{html.escape(title)}</h3><table>{head}{body}</table>"


@register_protocol("ct_table_v")
def ct_table_v(opts, ctx: RunContext) -> Section:
    """FISTA-Net's Table V from the runs of a sweep labelled ``METHOD-VIEWS``, on the CT slab and on ellipses."""
    views = _views(ctx)
    if not views and not any("-256px-" in label for label in ctx.children):
        raise ValueError("ct_table_v: no run of the sweep is labelled METHOD-VIEWS (e.g. fistanet-60) or "
                         "METHOD-256px-VIEWS")
    ct_rows, params = _table(ctx, views, "ct")
    el_rows, _ = _table(ctx, views, "ellipses")
    order = _ordering(ct_rows, views)
    metrics = {"ct": {r: {v: {"psnr": c[0], "ssim": c[1]} for v, c in cells.items()} for r, cells in ct_rows.items()},
               "ellipses": {r: {v: {"psnr": c[0], "ssim": c[1]} for v, c in cells.items()}
                            for r, cells in el_rows.items()},
               "parameters": params, "ordering": order}
    lines = []
    for v, o in order.items():
        m = ", ".join(f"{k} {d:+.2f} dB" for k, d in o["margins_dB"].items())
        lines.append(f"<li>{v} views: the paper's ordering {'holds' if o['holds'] else 'does not hold'} ({m}); "
                     f"FISTA-Net − FISTA-TV {o['fistanet_minus_fista_tv_dB']:+.2f} dB (goal ≥ 1 dB).</li>")
    parts = ["<p>PSNR dB / SSIM, mean over the test images; the paper's numbers are on Mayo CT 512² (its FBPConvNet "
             "row is not run here).</p>",
             _html("Table V — the CT test slab", ct_rows, params, views, True),
             f"<ul>{''.join(lines)}</ul>" if lines else "",
             _html("Table V — ellipse phantoms (the models trained on the CT slab)", el_rows, params, views, False),
             "<p>* trained on 300 random ellipse phantoms, not on CT: its CT-slab cell is out of distribution, its "
             "ellipse cell is its own test split (other draws of the same phantom distribution).</p>"
             if any(r in _ELLIPSE_TRAINED for r in {**ct_rows, **el_rows}) else ""]
    big = {label: c["metrics"] for label, c in ctx.children.items() if "-256px-" in label and "model" in c["metrics"]}
    if big:  # the same models at 256×256 (slices resized), their test split with its default-weight baselines
        metrics["256px"] = {label: {"model": m["model"]["mean"], **{b: v["mean"] for b, v in m.get("baselines", {}).items()}}
                            for label, m in big.items()}
        rows = "".join(f"<tr><td>{html.escape(label)}</td>" + "".join(
            f"<td>{html.escape(k)} {v['psnr']:.2f} / {v.get('ssim', float('nan')):.3f}</td>" for k, v in r.items()) + "</tr>"
            for label, r in metrics["256px"].items())
        parts.append(f"<h3>At 256×256 (slices resized; baselines at their default weights)</h3><table>{rows}</table>")
    times = _train_seconds(ctx, views)
    if times:
        metrics["train_seconds"] = times
        body = "".join(f"<tr><td>{html.escape(CT_METHODS[r])}</td>"
                       + "".join(f"<td>{t[v] / 60:.1f}</td>" if v in t else "<td></td>" for v in views) + "</tr>"
                       for r, t in times.items())
        parts.append("<h3>Training time (minutes of wall time)</h3><table><tr><th>model</th>"
                     + "".join(f"<th>{v} views</th>" for v in views) + f"</tr>{body}</table>")
    figure = _slice_figure(ctx, views)
    return Section("FISTA-Net's Table V: sparse-view CT", metrics=metrics, html="".join(parts),
                   figures={"ct_table_v.png": figure} if figure else {},
                   paper={k: {kk: list(vv) if isinstance(vv, tuple) else vv for kk, vv in d.items()}
                          for k, d in PAPER_TABLE_V.items()})
