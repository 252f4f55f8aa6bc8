r"""LISTA against ISTA/FISTA as registered parts (Gregor & LeCun, ICML 2010; the LISTA-CPSS code, Chen et al.,
NeurIPS 2018). The experiments are ``configs/lista-table1.toml``, ``lista-synthetic.toml`` and ``lista.toml``
(both); the model is the registry's ``lista`` (:class:`~proxlab.unrolled.LISTA` on the source's matrix).

**Table 1.** Source ``lista-patches``: 10×10 patches of scikit-image's natural photographs
(:data:`~proxlab.data.sparse_signals.NATURAL_IMAGES`, grey), each patch's mean removed, all divided by one
constant, the training pixel std (:func:`~proxlab.data.sparse_signals.table1_patches`); a dictionary of
``atoms`` unit-norm atoms learned on the training patches (:func:`~proxlab.solvers.sparse_coding.learn_dictionary`);
the optimal codes :math:`Z^*` of
:math:`\min_Z \tfrac12\|X - W_dZ\|^2 + \alpha\|Z\|_1` by FISTA
(:func:`~proxlab.solvers.sparse_coding.sparse_codes`). It hands the runner training pairs ``(X, Z*)``, the
dictionary as the operator and a validation of :math:`\|Z - Z^*\|^2`. Loss ``code_error``:
:math:`\|Z - Z^*\|^2` per patch, batch mean. Protocol ``lista_codes``: the test error of one network and of
FISTA / ISTA after 1…``iterations`` iterations from 0; sweep protocol ``lista_table1``: the table over the
sweep's networks (stages × atoms) beside the paper's, with the FISTA iterations needed to reach LISTA with
two stages. The paper counts LISTA's *iterations* T after an initial shrinkage, so its T = 1, 3, 7 are our
2, 4, 8 stages.

**Synthetic.** Source ``sparse-synthetic``: :math:`A \in \mathbb R^{250\times 500}` with N(0, 1/250)
entries and unit-norm columns (:func:`~proxlab.data.sparse_signals.synthetic_problem`), codes
Bernoulli(0.1) × N(0, 1) drawn fresh every step by its sampler, noiseless :math:`y = Ax`. Loss
``log_nmse_every_stage``: :math:`\sum_k \log \mathrm{NMSE}_k` (every stage supervised, equal weight in dB;
the final weights are kept). Protocol ``lista_synthetic``: NMSE = Σ‖x̂ − x‖²/Σ‖x‖² (dB) per stage on the
test codes, beside LISTA at its ISTA initialisation and ISTA / FISTA (weight ``alpha``, step 1/L,
L = ``lipschitz_scale``·‖A‖²) per iteration.
"""

from __future__ import annotations

import copy
import io
import json
import time
from collections import OrderedDict
from typing import Annotated

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..data.sparse_signals import NATURAL_IMAGES, sparse_samples, synthetic_problem, table1_patches
from ..operators import CompressedSensing
from ..priors.classic import L1
from ..solvers import fista, ista
from ..solvers.sparse_coding import iteration_errors, learn_dictionary, sparse_codes
from .datasets import Splits
from .parts import LossContext, RunContext, Section, register_loss, register_protocol, register_source

__all__ = ["PAPER_TABLE1"]

#: Gregor & LeCun (2010), Table 1: prediction error for m = 100 / 400 atoms, LISTA by its iterations T.
PAPER_TABLE1 = {100: {"lista": {1: 1.50, 3: 0.98, 7: 0.52}, "fista_1": 21.0, "fista_to_match_lista1": 18},
                400: {"lista": {1: 2.45, 3: 2.12, 7: 1.62}, "fista_1": 22.0, "fista_to_match_lista1": 35}}
_OPTS = ConfigDict(extra="forbid", strict=True, frozen=True)
PosInt = Annotated[int, Field(ge=1)]
PosFloat = Annotated[float, Field(gt=0)]


# ---------------------------------------------------------------- sources
class PatchCodesOptions(BaseModel):
    """Options of the ``lista-patches`` source (the defaults are the full Table 1 protocol)."""

    model_config = _OPTS
    atoms: PosInt = 100
    alpha: PosFloat = 0.5
    train_patches: PosInt = 40_000
    test_patches: PosInt = 2_000  # also the validation count
    dictionary_iterations: Annotated[int, Field(ge=0)] = 200
    code_iterations: PosInt = 500
    code_tol: Annotated[float, Field(ge=0)] = 1e-7
    per_patch: bool = False


_CACHE: OrderedDict = OrderedDict()  # (options, seed) -> Splits: a sweep's runs share one dictionary per size


def _cached(key, build):
    if key not in _CACHE:
        _CACHE[key] = build()
        while len(_CACHE) > 2:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return _CACHE[key]


def _on(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x.to(next(model.parameters()).device)


@register_source("lista-patches", PatchCodesOptions)
def patch_codes(cfg, seed: int, task=None) -> Splits:
    """Natural-image patches with a learned dictionary and their optimal sparse codes (Table 1)."""
    o = PatchCodesOptions.model_validate(dict(cfg.options))
    return _cached(("lista-patches", json.dumps(o.model_dump(), sort_keys=True), seed), lambda: _patch_codes(o, seed))


def _patch_codes(o: PatchCodesOptions, seed: int) -> Splits:
    (x_train, x_val, x_test), std = table1_patches(o.train_patches, o.test_patches, seed, per_patch=o.per_patch)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    D = learn_dictionary(x_train, o.atoms, o.alpha, o.dictionary_iterations, seed=seed)
    t_dl = time.perf_counter() - t0
    z_train, z_val, z_test = (sparse_codes(D, v, o.alpha, o.code_iterations, tol=o.code_tol)
                              for v in (x_train, x_val, x_test))

    def validate(model) -> dict[str, float]:
        with torch.no_grad():
            err = float((model(_on(model, x_val)) - _on(model, z_val)).pow(2).sum(1).mean())
        return {"mse": err / o.atoms, "code_error": err}  # mse: per code entry (what training.metric = "loss" reads)

    extra = {"codes": {"train": z_train, "val": z_val, "test": z_test}, "pixel_std": std, "alpha": o.alpha,
             "atoms": o.atoms, "zstar_iterations": o.code_iterations, "images": list(NATURAL_IMAGES),
             "seconds_dictionary_learning": t_dl, "seconds_codes": time.perf_counter() - t0 - t_dl}
    return Splits((x_train, z_train), x_val, x_test, operator=CompressedSensing(matrix=D), validate=validate,
                  extra=extra)


class SparseSyntheticOptions(BaseModel):
    """Options of the ``sparse-synthetic`` source (the LISTA-CPSS problem)."""

    model_config = _OPTS
    rows: PosInt = 250
    cols: PosInt = 500
    sparsity: Annotated[float, Field(gt=0, le=1)] = 0.1
    test_samples: PosInt = 1_000
    val_samples: PosInt = 1_000


@register_source("sparse-synthetic", SparseSyntheticOptions)
def sparse_synthetic(cfg, seed: int, task=None) -> Splits:
    """Codes Bernoulli(p) × N(0, 1) measured by a random unit-column matrix; fresh training codes every step."""
    o = SparseSyntheticOptions.model_validate(dict(cfg.options))
    A = CompressedSensing(matrix=synthetic_problem(seed, o.rows, o.cols))
    x_test = sparse_samples(o.test_samples, o.cols, torch.Generator().manual_seed(seed + 12345), o.sparsity)
    x_val = sparse_samples(o.val_samples, o.cols, torch.Generator().manual_seed(seed + 23456), o.sparsity)
    y_val = A(x_val)

    def validate(model) -> dict[str, float]:
        with torch.no_grad():
            return {"nmse_db": _nmse_db(model(_on(model, y_val)).cpu(), x_val)}

    return Splits(x_val[:1].new_zeros(0, o.cols), x_val, x_test, operator=A, validate=validate,
                  sampler=lambda n, g: sparse_samples(n, o.cols, g, o.sparsity), extra={"sparsity": o.sparsity})


def _nmse_db(est: torch.Tensor, x: torch.Tensor) -> float:
    return float(10 * torch.log10((est - x).pow(2).sum() / x.pow(2).sum()))


# ---------------------------------------------------------------- losses
@register_loss("code_error")
def code_error(opts, ctx: LossContext):
    """‖Z − Z*‖² per signal, batch mean, on the source's training pairs (X, Z*)."""
    if not isinstance(ctx.splits.train, tuple) or len(ctx.splits.train) != 2:
        raise ValueError("training.loss: 'code_error' needs a source with (signal, code) training pairs, such as "
                         f"'lista-patches'; source {ctx.cfg.data.source!r} gave {type(ctx.splits.train).__name__}")

    def loss_fn(model, batch, step):
        x, z = batch
        return (model(x) - z).pow(2).sum(1).mean()

    return loss_fn


@register_loss("log_nmse_every_stage", evaluate="final")
def log_nmse_every_stage(opts, ctx: LossContext):
    """Σ_k log NMSE_k over every stage's output, on fresh codes of the source's sampler measured by its operator."""
    sampler = ctx.splits.sampler
    if sampler is None:
        raise ValueError("training.loss: 'log_nmse_every_stage' draws fresh codes from the source's sampler; "
                         f"source {ctx.cfg.data.source!r} has none (use 'sparse-synthetic')")
    A = ctx.operator

    def loss_fn(model, batch, step):
        x = sampler(len(batch), step.generator).to(batch.device)
        y = A.to(x.device)(x)
        denom = x.pow(2).sum()
        logs = [torch.log((z - x).pow(2).sum() / denom) for z in model(y, return_all=True)]
        return sum(logs), {"nmse_db_last": float(logs[-1].detach()) * 4.342944819032518}

    return loss_fn


# ---------------------------------------------------------------- protocols
class CodesOptions(BaseModel):
    model_config = _OPTS
    iterations: PosInt = 50  # FISTA / ISTA iterations of the baseline curves


@register_protocol("lista_codes", CodesOptions)
def lista_codes(opts: CodesOptions, ctx: RunContext) -> Section:
    """‖Z − Z*‖² of the network on the test patches, and of FISTA / ISTA after 1…iterations iterations."""
    s, model = ctx.splits, ctx.model
    if "codes" not in s.extra:
        raise ValueError(f"protocol lista_codes needs the optimal test codes of source 'lista-patches', "
                         f"got source {ctx.cfg.data.source!r}")
    D, x_test, z_test, alpha = ctx.operator.matrix, s.test, s.extra["codes"]["test"], s.extra["alpha"]
    with torch.no_grad():
        error = float((model(_on(model, x_test)).cpu() - z_test).pow(2).sum(1).mean())
    fista_err = iteration_errors(D, x_test, z_test, alpha, opts.iterations, fista)
    ista_err = iteration_errors(D, x_test, z_test, alpha, opts.iterations, ista)
    hit = next((k + 1 for k, e in enumerate(fista_err) if e <= error), None)
    K = model.stages
    res = {"atoms": s.extra["atoms"], "stages": K, "tied": model.tied, "error": error, "fista": fista_err,
           "ista": ista_err, "fista_to_match": hit, "alpha": alpha, "lista_alpha": model.alpha,
           "code_norm2": float(z_test.pow(2).sum(1).mean()),
           "code_nonzeros": float((z_test != 0).sum(1).float().mean()),
           "n_train": len(s.train[0]), "n_val": len(s.val), "n_test": len(x_test), "pixel_std": s.extra["pixel_std"],
           "images": s.extra["images"], "zstar_iterations": s.extra["zstar_iterations"],
           **{k: s.extra[k] for k in ("seconds_dictionary_learning", "seconds_codes")}}
    ctx.log(f"m={res['atoms']}: LISTA {K} stage(s) error {error:.4f} (FISTA {K} it.: "
            f"{fista_err[min(K, len(fista_err)) - 1]:.4f}); FISTA iterations to match: {hit}")
    html = (f"<p>LISTA, {K} stage(s), m = {res['atoms']}: ‖Z − Z*‖² = {error:.4g} on {len(x_test)} test patches; "
            f"FISTA after 1 / {opts.iterations} iterations: {fista_err[0]:.4g} / {fista_err[-1]:.4g}; "
            f"FISTA iterations to match: {_fmt(hit)}.</p>")
    return Section("Sparse codes of held-out patches", metrics=res, html=html)


class Table1Options(BaseModel):
    model_config = _OPTS
    compare_stages: PosInt = 2  # the LISTA row FISTA must reach: 2 stages = the paper's 1 iteration


@register_protocol("lista_table1", Table1Options)
def lista_table1(opts: Table1Options, ctx: RunContext) -> Section:
    """Table 1 over a sweep's networks (stages × atoms): ours beside the paper's, FISTA iterations to match."""
    runs = {k: c["metrics"] for k, c in ctx.children.items()} if ctx.children else {ctx.cfg.name: {
        "lista_codes": ctx.results.get("lista_codes"), "training": {}}}
    runs = {k: m for k, m in runs.items() if m.get("lista_codes")}
    if not runs:
        raise ValueError("protocol lista_table1 tabulates runs that ran the lista_codes protocol; none did")
    by_atoms: dict[int, dict] = {}
    for label, m in runs.items():
        r = m["lista_codes"]
        t = by_atoms.setdefault(r["atoms"], {"fista": r["fista"], "ista": r["ista"], "lista": {}, "lista_seconds": {},
                                             "code_norm2": r["code_norm2"], "code_nonzeros": r["code_nonzeros"],
                                             "seconds_dictionary_learning": r["seconds_dictionary_learning"]})
        if r["stages"] in t["lista"]:
            raise ValueError(f"protocol lista_table1: two runs with m = {r['atoms']} and {r['stages']} stages "
                             f"(the second is {label!r})")
        t["lista"][r["stages"]] = r["error"]
        t["lista_seconds"][r["stages"]] = m.get("training", {}).get("train_seconds")
    for t in by_atoms.values():
        e = t["lista"].get(opts.compare_stages)
        t["fista_to_match_lista1"] = None if e is None else next((k + 1 for k, f in enumerate(t["fista"]) if f <= e),
                                                                 None)
    first = next(iter(runs.values()))["lista_codes"]
    stage = ctx.cfg.resolved_stages[-1]
    info = {k: first[k] for k in ("n_train", "n_val", "n_test", "pixel_std", "images", "alpha", "zstar_iterations")}
    info.update(lista_steps=stage.steps, lr=stage.lr, batch=stage.batch_size)
    for m, t in sorted(by_atoms.items()):
        ctx.log(f"table1 m={m}: FISTA 1 it. {t['fista'][0]:.3f}; LISTA " + " / ".join(
            f"{k} stages {v:.3f}" for k, v in sorted(t["lista"].items()))
            + f"; FISTA iterations to match LISTA with {opts.compare_stages} stages: {t['fista_to_match_lista1']}")
    metrics = {**info, "by_atoms": dict(sorted(by_atoms.items()))}
    return Section("Table 1 protocol: prediction error ‖Z − Z*‖² on held-out patches", metrics=metrics,
                   html=_table1_html(metrics, opts.compare_stages), figures={"table1.png": _figure_table1(metrics)},
                   paper=PAPER_TABLE1)


class SyntheticOptions(BaseModel):
    model_config = _OPTS
    alpha: PosFloat = 0.1  # ISTA / FISTA weight
    iterations: PosInt = 50
    lipschitz_scale: PosFloat = 1.001  # their step 1/L, L = lipschitz_scale × ‖A‖²


@register_protocol("lista_synthetic", SyntheticOptions)
def lista_synthetic(opts: SyntheticOptions, ctx: RunContext) -> Section:
    """NMSE (dB) per stage on the test codes, beside LISTA at its ISTA start and ISTA / FISTA per iteration.
    In a sweep it reports the run that ran it."""
    if ctx.model is None:
        found = [c["metrics"]["lista_synthetic"] for c in ctx.children.values() if "lista_synthetic" in c["metrics"]]
        if not found:
            raise ValueError("protocol lista_synthetic (in a sweep) reports a run that ran it; none did")
        res = found[0]
    else:
        res = _synthetic(opts, ctx)
    return Section("Synthetic protocol: NMSE (dB) per stage / iteration", metrics=res, html=_synthetic_html(res),
                   figures={"synthetic.png": _figure_synthetic(res)})


def _synthetic(opts: SyntheticOptions, ctx: RunContext) -> dict:
    A, x_test, model = ctx.operator.cpu(), ctx.splits.test, ctx.model
    y_test = A(x_test)
    L = opts.lipschitz_scale * float(torch.linalg.matrix_norm(A.matrix.double(), ord=2) ** 2)
    start = copy.deepcopy(model).reset_to_ista()
    with torch.no_grad():
        lista_db = [_nmse_db(z.cpu(), x_test) for z in model(_on(model, y_test), return_all=True)]
        untrained = [_nmse_db(z.cpu(), x_test) for z in start(_on(start, y_test), return_all=True)]
    K, iters = model.stages, max(opts.iterations, model.stages)
    curves = {}
    for name, solver in (("ista", ista), ("fista", fista)):
        recs: list[float] = []
        solver(A, y_test, L1(opts.alpha), step_size=1.0 / L, x0=torch.zeros_like(x_test), max_iter=iters, tol=0,
               history=False,
               callback=lambda k, st, recs=recs: recs.append(
                   _nmse_db(st if isinstance(st, torch.Tensor) else st.x, x_test)))
        curves[name] = recs
    stage = ctx.cfg.resolved_stages[-1]
    ctx.log(f"synthetic: LISTA stage {K} NMSE {lista_db[-1]:.2f} dB; ISTA {K} it. {curves['ista'][K - 1]:.2f} dB, "
            f"FISTA {K} it. {curves['fista'][K - 1]:.2f} dB")
    return {"shape": list(A.matrix.shape), "sparsity": ctx.splits.extra["sparsity"], "alpha": opts.alpha,
            "lipschitz": L, "lista_alpha": model.alpha, "theta0": model.alpha / model.lipschitz, "steps": stage.steps,
            "lr": stage.lr, "batch": stage.batch_size, "n_test": x_test.shape[0], "lista_nmse_db": lista_db,
            "lista_untrained_nmse_db": untrained, "ista_nmse_db": curves["ista"], "fista_nmse_db": curves["fista"]}


# ---------------------------------------------------------------- report pieces
def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))


def _table1_html(t: dict, compare: int) -> str:
    atoms = list(t["by_atoms"])
    head = "".join(f"<th>m = {m}: ours</th><th>m = {m}: paper</th>" for m in atoms)
    layers = sorted({k for m in atoms for k in t["by_atoms"][m]["lista"]})
    rows = []
    for name, ours, paper in (
            [("FISTA, 1 iteration", lambda r: r["fista"][0], lambda p: p["fista_1"])]
            + [(f"LISTA, {k} stage(s) = {k - 1} iteration(s)", lambda r, k=k: r["lista"].get(k),
                lambda p, k=k: p["lista"].get(k - 1)) for k in layers]
            + [(f"FISTA iterations to match LISTA with {compare - 1} iteration(s)",
                lambda r: r.get("fista_to_match_lista1"), lambda p: p["fista_to_match_lista1"] if compare == 2 else None)]):
        cells = "".join(f"<td>{_fmt(ours(t['by_atoms'][m]))}</td>"
                        f"<td>{_fmt(paper(PAPER_TABLE1[m]) if m in PAPER_TABLE1 else None)}</td>" for m in atoms)
        rows.append(f"<tr><td>{name}</td>{cells}</tr>")
    return (f"<p>{t['n_train']} training / {t['n_val']} validation / {t['n_test']} test 10×10 patches of "
            f"scikit-image's {', '.join(t['images'])} (grey); each patch's mean removed, all divided by the training "
            f"pixel std ({_fmt(t['pixel_std'])}). Dictionaries learned on the training patches; α = {t['alpha']}; Z* by "
            f"{t['zstar_iterations']} FISTA iterations; tied LISTA trained with Adam ({t['lista_steps']} steps, lr "
            f"{t['lr']:g}, batch {t['batch']}), weights best on validation kept. The paper's patches and normalisation "
            "differ, so compare the shape (orders of magnitude, iterations to match) rather than the digits. Stages "
            "count shrinkages: the paper's T iterations apply T + 1.</p>"
            f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>")


def _synthetic_html(r: dict) -> str:
    rows = "".join(f"<tr><td>{k + 1}</td><td>{r['lista_nmse_db'][k]:.2f}</td><td>{r['lista_untrained_nmse_db'][k]:.2f}"
                   f"</td><td>{r['ista_nmse_db'][k]:.2f}</td><td>{r['fista_nmse_db'][k]:.2f}</td></tr>"
                   for k in range(len(r["lista_nmse_db"])))
    return (f"<p>A {r['shape'][0]}×{r['shape'][1]}, N(0, 1/M) entries, unit columns; codes Bernoulli({r['sparsity']:g})"
            f"×N(0, 1); noiseless. Untied LISTA, θ₀ = {r['lista_alpha']:g}/L; L = {r['lipschitz']:.3f}; trained on "
            f"fresh batches of {r['batch']} ({r['steps']} Adam steps, lr {r['lr']:g}) with loss Σ_k log NMSE_k (every "
            f"stage supervised, equal weight in dB); {r['n_test']} test samples. ISTA/FISTA with α = {r['alpha']:g}, "
            "step 1/L.</p><table><tr><th>k</th><th>LISTA (trained)</th><th>LISTA at init (ISTA)</th>"
            f"<th>ISTA</th><th>FISTA</th></tr>{rows}</table><p>ISTA / FISTA after {len(r['fista_nmse_db'])} "
            f"iterations: {r['ista_nmse_db'][-1]:.2f} / {r['fista_nmse_db'][-1]:.2f} dB.</p>")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    _pyplot().close(fig)
    return buf.getvalue()


def _figure_table1(res: dict) -> bytes:
    plt = _pyplot()
    atoms = list(res["by_atoms"])
    fig, axes = plt.subplots(1, len(atoms), figsize=(4.6 * len(atoms), 3.6), squeeze=False)
    for ax, m in zip(axes[0], atoms):
        r = res["by_atoms"][m]
        its = range(1, len(r["fista"]) + 1)
        ax.semilogy(its, r["fista"], "-", label="FISTA")
        ax.semilogy(its, r["ista"], "--", label="ISTA")
        ks = sorted(r["lista"])
        ax.semilogy(ks, [r["lista"][k] for k in ks], "o-", color="C3", label="LISTA (trained)")
        if m in PAPER_TABLE1:  # the paper's T iterations = T + 1 stages
            pk = sorted(PAPER_TABLE1[m]["lista"])
            ax.semilogy([t + 1 for t in pk], [PAPER_TABLE1[m]["lista"][t] for t in pk], "x", color="k",
                        label="LISTA (paper)")
        ax.set(title=f"m = {m} atoms", xlabel="FISTA/ISTA iterations; LISTA stages", ylabel="‖Z − Z*‖² (test mean)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return _png(fig)


def _figure_synthetic(res: dict) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    n, k = len(res["fista_nmse_db"]), len(res["lista_nmse_db"])
    ax.plot(range(1, n + 1), res["ista_nmse_db"], "--", label=f"ISTA (α = {res['alpha']:g})")
    ax.plot(range(1, n + 1), res["fista_nmse_db"], "-", label=f"FISTA (α = {res['alpha']:g})")
    ax.plot(range(1, k + 1), res["lista_untrained_nmse_db"], ":", color="C3", label="LISTA at its ISTA start")
    ax.plot(range(1, k + 1), res["lista_nmse_db"], "o-", color="C3", label="LISTA (trained)")
    ax.set(xlabel="iterations / stages", ylabel="NMSE (dB)", title="sparse codes measured by a random matrix")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)
