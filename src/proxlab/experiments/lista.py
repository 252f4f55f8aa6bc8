r"""LISTA against ISTA/FISTA: the experiments of Gregor & LeCun (ICML 2010) and of the LISTA-CPSS code.

**Table 1 protocol** (``protocol=table1``). 10×10 patches of scikit-image's bundled natural
photographs (:data:`NATURAL_IMAGES`, grey; colour ones as BT.601 luma). Each patch's mean is removed
and all patches are divided by one constant, the pixel standard deviation of the training patches
(unit pixel variance; the paper says the patches were mean-removed and normalised, not how).
Dictionaries of m = 100 and 400 unit-norm atoms are learned on the training patches
(:func:`learn_dictionary`); the optimal codes :math:`Z^*` of :math:`\min_Z \tfrac12\|X - W_dZ\|^2 +
\alpha\|Z\|_1`, :math:`\alpha = 0.5`, come from 500 FISTA iterations (:func:`sparse_codes`). Tied LISTA
networks with 2, 4, 8 layers are trained with Adam (lr 1e-3, cosine, batch 256, 40,000 steps: the 2-layer
error was 4.99 / 4.01 / 4.05 after 4,000 / 40,000 / 120,000 steps, ``benchmarks/lista_table1_checks.py``) on the
loss :math:`\|Z - Z^*\|^2`, keeping the weights best on a validation split. Reported on held-out test
patches: the prediction error :math:`\|Z - Z^*\|^2` (mean over patches) of LISTA and of FISTA / ISTA
after 1…50 iterations from 0, and the number of FISTA iterations needed to reach the error of LISTA with
one iteration (paper: 18 and 35). The paper counts LISTA's *iterations* T after an initial shrinkage
(its fprop: :math:`Z_0 = h_\theta(W_eX)`, then T updates :math:`Z_t = h_\theta(W_eX + SZ_{t-1})`), so its
"T iterations" is our network with :math:`K = T + 1` layers (shrinkages); its Table 1 rows T = 1, 3, 7 are
compared with our K = 2, 4, 8.

**Synthetic protocol** (``protocol=synthetic``; LISTA-CPSS code, Chen et al., NeurIPS 2018).
:math:`A \in \mathbb R^{250\times 500}`, :math:`\mathcal N(0, 1/250)` entries, unit-norm columns; codes
Bernoulli(0.1) × N(0, 1); noiseless :math:`y = Ax`. An untied 16-layer LISTA (θ₀ = 0.4/L,
L = 1.001‖A‖²) is trained on fresh samples every step. LISTA-CPSS trains layer by layer with up to
10⁵ steps per stage; within our budget one joint training with the loss :math:`\sum_k \log
\mathrm{NMSE}_k` (every layer supervised, equal weight in dB) reached a lower NMSE at every layer
than stage-wise training in the same time. Reported: NMSE = Σ‖x̂ − x‖²/Σ‖x‖² over 1000 test samples
(dB) per layer, beside ISTA and FISTA (α = ``synthetic_alpha``, step 1/L) per iteration.

Settings (``--set key=value``): ``protocol`` (both | table1 | synthetic), ``scale`` (multiplies
every size and step count; 1 = the full run), ``seed``, ``atoms`` (``100,400``), ``layers``
(``2,4,8``: shrinkage layers, = the paper's iterations + 1), ``alpha`` (0.5), ``fista_iters`` (50), ``synthetic_layers`` (16), ``synthetic_alpha`` (0.1).
Writes ``results.json``, ``figure_table1.png``, ``figure_synthetic.png`` and ``report.html``.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import torch

from ..data import random_patches, skimage_image
from ..operators import CompressedSensing
from ..priors.classic import L1
from ..solvers import fista, ista
from ..training import Trainer
from ..unrolled.lista import LISTA

__all__ = ["run", "PRESETS", "NATURAL_IMAGES", "PAPER_TABLE1", "natural_patches", "learn_dictionary", "sparse_codes",
           "iteration_errors", "synthetic_problem", "table1_patches"]

#: The bundled scikit-image photographs of natural scenes used for the patches.
NATURAL_IMAGES = ("astronaut", "brick", "camera", "chelsea", "coffee", "grass", "gravel", "moon", "rocket")
#: Gregor & LeCun (2010), Table 1: prediction error for m = 100 / 400 atoms.
PAPER_TABLE1 = {100: {"lista": {1: 1.50, 3: 0.98, 7: 0.52}, "fista_1": 21.0, "fista_to_match_lista1": 18},
                400: {"lista": {1: 2.45, 3: 2.12, 7: 1.62}, "fista_1": 22.0, "fista_to_match_lista1": 35}}
DEFAULTS = {"protocol": "both", "scale": "1", "seed": "0", "atoms": "100,400", "layers": "2,4,8", "alpha": "0.5",
            "fista_iters": "50", "synthetic_layers": "16", "synthetic_alpha": "0.1"}
#: ``proxlab run lista-table1`` / ``lista-synthetic``: one protocol (``proxlab run lista`` runs both).
PRESETS = {"lista-table1": {"protocol": "table1"}, "lista-synthetic": {"protocol": "synthetic"}}
# full-run sizes (scale = 1)
N_TRAIN, N_TEST, DL_ITERS, LISTA_STEPS, ZSTAR_ITERS = 40_000, 2_000, 200, 40_000, 500
SYN_STEPS, SYN_BATCH, SYN_TEST, SYN_LR = 6_000, 64, 1_000, 2e-4


def natural_patches(n: int, seed: int, size: int = 10) -> torch.Tensor:
    """``n`` random ``size``×``size`` patches of :data:`NATURAL_IMAGES` (grey, in [0, 1]), flattened ``(n, size²)``."""
    images = [skimage_image(name, grey=True) for name in NATURAL_IMAGES]
    return random_patches(images, n, size, seed=seed).reshape(n, -1)


def sparse_codes(dictionary: torch.Tensor, x: torch.Tensor, alpha: float, iterations: int, tol: float = 0.0,
                 chunk: int = 1024) -> torch.Tensor:
    r""":math:`\operatorname{argmin}_Z \tfrac12\|X - W_dZ\|^2 + \alpha\|Z\|_1` for every row of ``x`` ``(B, n)`` by
    FISTA (:func:`proxlab.solvers.fista`, step 1/‖W_d‖², from 0) on ``chunk`` rows at a time (cache-sized
    blocks run faster); each block stops after ``iterations`` or at relative change ``tol``. Returns ``(B, m)``."""
    A = CompressedSensing(matrix=dictionary)
    step = 1.0 / A.norm()
    return torch.cat([fista(A, xb, L1(alpha), step_size=step, x0=xb.new_zeros(xb.shape[0], dictionary.shape[1]),
                            max_iter=iterations, tol=tol, history=False).x for xb in x.split(chunk)])


def iteration_errors(dictionary: torch.Tensor, x: torch.Tensor, z_star: torch.Tensor, alpha: float, iterations: int,
                     solver=fista, step_size: float | None = None) -> list[float]:
    r"""Mean over rows of :math:`\|Z_k - Z^*\|^2` after :math:`k = 1 \dots` ``iterations`` of ``solver``
    (:func:`~proxlab.solvers.fista` or :func:`~proxlab.solvers.ista`) from :math:`Z_0 = 0`."""
    errors: list[float] = []

    def record(k, state):
        z = state if isinstance(state, torch.Tensor) else state.x
        errors.append(float((z - z_star).pow(2).sum(1).mean()))

    A = CompressedSensing(matrix=dictionary)
    solver(A, x, L1(alpha), step_size=step_size, x0=x.new_zeros(x.shape[0], dictionary.shape[1]),
           max_iter=iterations, tol=0, history=False, callback=record)
    return errors


def learn_dictionary(patches: torch.Tensor, atoms: int, alpha: float, iterations: int, batch_size: int = 1024,
                     code_iters: int = 30, seed: int = 0) -> torch.Tensor:
    r"""A dictionary :math:`W_d` ``(n, atoms)`` with unit-norm columns for ``patches`` ``(N, n)``.

    Online alternating minimisation of :math:`\tfrac12\|X - W_dZ\|^2 + \alpha\|Z\|_1` (after Mairal et al.,
    JMLR 2010): each iteration codes a random batch by ``code_iters`` FISTA iterations, updates running
    statistics :math:`A = \overline{ZZ^\top}`, :math:`B = \overline{XZ^\top}` (plain average over the first 20
    batches, then an exponential window of about 20 batches), and takes 10 projected gradient steps on
    :math:`\tfrac12\operatorname{tr}(W_d^\top W_d A) - \operatorname{tr}(W_d^\top B)` (step 1/‖A‖, each atom
    renormalised to unit norm). Atoms that no code uses are replaced by random patches.
    """
    g = torch.Generator().manual_seed(seed)
    N, n = patches.shape
    batch_size = min(batch_size, N)
    norms = patches.norm(dim=1)
    pool = patches[norms > 1e-3 * norms.max()]  # non-flat patches to start atoms from
    D = pool[torch.randint(len(pool), (atoms,), generator=g)].T.clone()
    D = D + 0.01 * torch.randn(D.shape, generator=g)
    D = D / D.norm(dim=0, keepdim=True)
    A_bar, B_bar = torch.zeros(atoms, atoms), torch.zeros(n, atoms)
    for t in range(iterations):
        X = patches[torch.randint(N, (batch_size,), generator=g)]
        Z = sparse_codes(D, X, alpha, code_iters)
        w = max(1.0 / (t + 1), 0.05)
        A_bar = (1 - w) * A_bar + w * (Z.T @ Z) / batch_size
        B_bar = (1 - w) * B_bar + w * (X.T @ Z) / batch_size
        step = 1.0 / max(float(torch.linalg.matrix_norm(A_bar, ord=2)), 1e-12)
        for _ in range(10):
            D = D - step * (D @ A_bar - B_bar)
            D = D / D.norm(dim=0, keepdim=True).clamp_min(1e-12)
        dead = (A_bar.diagonal() < 1e-10).nonzero().squeeze(1)
        if dead.numel():
            fresh = pool[torch.randint(len(pool), (dead.numel(),), generator=g)].T
            D[:, dead] = fresh / fresh.norm(dim=0, keepdim=True)
    return D


def _train_lista(model: LISTA, train: tuple, val: tuple, steps: int, batch: int, lr: float, seed: int,
                 progress: bool) -> float:
    """Adam on ‖Z − Z*‖² (cosine schedule); validated 20 times, the best weights on ``val`` are kept."""
    best = {"loss": float("inf"), "state": None}

    def loss_fn(m, b, ctx):
        xb, zb = b
        return (m(xb) - zb).pow(2).sum(1).mean()

    def validate(m):
        with torch.no_grad():
            loss = float((m(val[0]) - val[1]).pow(2).sum(1).mean())
        if loss < best["loss"]:
            best.update(loss=loss, state={k: v.clone() for k, v in m.state_dict().items()})
        return {"loss": loss}

    t0 = time.perf_counter()
    Trainer(model, loss_fn, train, validate=validate, metric="loss", steps=steps, batch_size=min(batch, len(train[0])),
            lr=lr, schedule="cosine", val_every=max(steps // 20, 1), checkpoint_every=10**9,
            log_every=max(steps // 20, 1), seed=seed, progress=progress).fit()
    model.load_state_dict(best["state"])
    return time.perf_counter() - t0


def table1_patches(n_train: int, n_test: int, seed: int, per_patch: bool = False):
    """Train / validation / test patches (``n_train``, ``n_test``, ``n_test`` rows) for the Table 1 protocol, each
    patch's mean removed. Divided by one constant, the training pixel std (the protocol), or with ``per_patch``
    each patch to unit pixel variance (flat patches, std < 0.1 × median, dropped). Returns ``(splits, std)``
    (``std`` is ``None`` per patch)."""
    n = n_train + 2 * n_test
    raw = natural_patches(3 * n if per_patch else n, seed)
    raw = raw - raw.mean(dim=1, keepdim=True)
    if per_patch:
        sd = raw.std(1)
        raw = raw[sd > 0.1 * sd.median()][:n]
        if raw.shape[0] < n:
            raise RuntimeError(f"only {raw.shape[0]} non-flat patches of the {n} asked for")
        return raw.div(raw.std(1, keepdim=True)).split([n_train, n_test, n_test]), None
    std = float(raw[:n_train].std())
    return (raw / std).split([n_train, n_test, n_test]), std


def table1(cfg: dict, log, progress: bool) -> dict:
    """The Table 1 protocol for every dictionary size in ``cfg['atoms']``."""
    s, seed, alpha = cfg["scale"], cfg["seed"], cfg["alpha"]
    n_train, n_test = max(round(N_TRAIN * s), 64), max(round(N_TEST * s), 32)
    (x_train, x_val, x_test), std = table1_patches(n_train, n_test, seed)
    log(f"table1: {n_train} train / {n_test} validation / {n_test} test patches 10x10 from {', '.join(NATURAL_IMAGES)}; "
        f"patch means removed, divided by pixel std {std:.4f}")
    out = {"n_train": n_train, "n_val": n_test, "n_test": n_test, "pixel_std": std, "images": list(NATURAL_IMAGES),
           "by_atoms": {}}
    for m in cfg["atoms"]:
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        D = learn_dictionary(x_train, m, alpha, max(round(DL_ITERS * s), 3), seed=seed)
        t_dl = time.perf_counter() - t0
        zs_iters = max(round(ZSTAR_ITERS * s), 300)
        z_train, z_val, z_test = (sparse_codes(D, v, alpha, zs_iters, tol=1e-7) for v in (x_train, x_val, x_test))
        fista_err = iteration_errors(D, x_test, z_test, alpha, cfg["fista_iters"], fista)
        ista_err = iteration_errors(D, x_test, z_test, alpha, cfg["fista_iters"], ista)
        res = {"seconds_dictionary_learning": t_dl, "seconds_codes_and_baselines": time.perf_counter() - t0 - t_dl,
               "code_norm2": float(z_test.pow(2).sum(1).mean()), "code_nonzeros": float((z_test != 0).sum(1).float().mean()),
               "fista": fista_err, "ista": ista_err, "lista": {}, "lista_seconds": {}}
        steps = max(round(LISTA_STEPS * s), 10)
        for K in cfg["layers"]:
            torch.manual_seed(seed)
            net = LISTA(D, alpha, K, tied=True)
            res["lista_seconds"][K] = _train_lista(net, (x_train, z_train), (x_val, z_val), steps, 256, 1e-3, seed,
                                                     progress)
            with torch.no_grad():
                res["lista"][K] = float((net(x_test) - z_test).pow(2).sum(1).mean())
            log(f"table1 m={m}: LISTA {K} layer(s) error {res['lista'][K]:.4f} (FISTA {K} it.: "
                f"{fista_err[min(K, len(fista_err)) - 1]:.4f}); trained {steps} steps in {res['lista_seconds'][K]:.0f} s")
        if 2 in res["lista"]:  # LISTA with one iteration (the paper's T = 1) = two shrinkage layers
            hit = [k + 1 for k, e in enumerate(fista_err) if e <= res["lista"][2]]
            res["fista_to_match_lista1"] = hit[0] if hit else None
        res["lista_steps"], res["zstar_iterations"] = steps, zs_iters
        log(f"table1 m={m}: FISTA 1 it. {fista_err[0]:.3f}, {len(fista_err)} it. {fista_err[-1]:.4f}; "
            f"FISTA iterations to match LISTA with 1 iteration (2 layers): {res.get('fista_to_match_lista1')}")
        out["by_atoms"][m] = res
    return out


def synthetic_problem(seed: int, m: int = 250, n: int = 500) -> torch.Tensor:
    """The LISTA-CPSS matrix: N(0, 1/m) entries, then columns scaled to unit norm, ``(m, n)``."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(m, n, generator=g, dtype=torch.float64) / m**0.5
    return (A / A.norm(dim=0, keepdim=True)).float()


def _sparse_samples(A: torch.Tensor, batch: int, g: torch.Generator, p: float = 0.1):
    x = (torch.rand(batch, A.shape[1], generator=g) < p).float() * torch.randn(batch, A.shape[1], generator=g)
    return x @ A.T, x


def _nmse_db(est: torch.Tensor, x: torch.Tensor) -> float:
    return float(10 * torch.log10((est - x).pow(2).sum() / x.pow(2).sum()))


def synthetic(cfg: dict, log, progress: bool) -> dict:
    """The synthetic protocol: NMSE per layer of an untied LISTA (all layers supervised) vs ISTA/FISTA."""
    s, seed, K = cfg["scale"], cfg["seed"], cfg["synthetic_layers"]
    A = synthetic_problem(seed)
    L = 1.001 * float(torch.linalg.matrix_norm(A.double(), ord=2) ** 2)
    y_test, x_test = _sparse_samples(A, max(round(SYN_TEST * s), 100), torch.Generator().manual_seed(seed + 12345))
    torch.manual_seed(seed)
    net = LISTA(A, 0.4, K, tied=False, lipschitz=L)
    with torch.no_grad():
        untrained = [_nmse_db(z, x_test) for z in net(y_test, return_all=True)]
    steps = max(round(SYN_STEPS * s), 5)

    def loss_fn(model, _batch, ctx):
        y, x = _sparse_samples(A, SYN_BATCH, ctx.generator)  # fresh samples every step
        denom = x.pow(2).sum()
        logs = [torch.log((z - x).pow(2).sum() / denom) for z in model(y, return_all=True)]
        return sum(logs), {"nmse_db_last": float(logs[-1].detach()) * 4.342944819032518}

    t0 = time.perf_counter()
    Trainer(net, loss_fn, torch.zeros(SYN_BATCH), steps=steps, batch_size=SYN_BATCH, lr=SYN_LR, schedule="cosine",
            val_every=10**9, checkpoint_every=10**9, log_every=max(steps // 20, 1), seed=seed, progress=progress).fit()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        lista_db = [_nmse_db(z, x_test) for z in net(y_test, return_all=True)]
    iters = max(cfg["fista_iters"], K)
    curves = {}
    for name, solver in (("ista", ista), ("fista", fista)):
        recs: list[float] = []
        solver(CompressedSensing(matrix=A), y_test, L1(cfg["synthetic_alpha"]), step_size=1.0 / L,
               x0=torch.zeros_like(x_test), max_iter=iters, tol=0, history=False,
               callback=lambda k, st, recs=recs: recs.append(_nmse_db(st if isinstance(st, torch.Tensor) else st.x, x_test)))
        curves[name] = recs
    log(f"synthetic: LISTA layer {K} NMSE {lista_db[-1]:.2f} dB; ISTA {K} it. {curves['ista'][K - 1]:.2f} dB, "
        f"FISTA {K} it. {curves['fista'][K - 1]:.2f} dB; trained {steps} steps in {seconds:.0f} s")
    return {"shape": list(A.shape), "sparsity": 0.1, "alpha": cfg["synthetic_alpha"], "lipschitz": L, "theta0": 0.4 / L,
            "steps": steps, "lr": SYN_LR, "batch": SYN_BATCH, "n_test": x_test.shape[0], "seconds": seconds, "lista_nmse_db": lista_db,
            "lista_untrained_nmse_db": untrained, "ista_nmse_db": curves["ista"], "fista_nmse_db": curves["fista"]}


def _ints(key: str, value: str) -> list[int]:
    try:
        out = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"lista: {key} must be comma-separated ints, got {value!r}") from None
    if not out or min(out) < 1:
        raise ValueError(f"lista: {key} must be ints >= 1, got {value!r}")
    return out


def _settings(overrides: dict[str, str]) -> dict:
    unknown = sorted(set(overrides) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"lista: unknown setting(s) {unknown}; known: {', '.join(DEFAULTS)}")
    raw = {**DEFAULTS, **overrides}
    from .._checks import check_choice, check_positive

    cfg = {"protocol": check_choice("protocol", raw["protocol"], ("both", "table1", "synthetic")),
           "scale": check_positive("scale", raw["scale"]), "alpha": check_positive("alpha", raw["alpha"]),
           "synthetic_alpha": check_positive("synthetic_alpha", raw["synthetic_alpha"]),
           "atoms": _ints("atoms", raw["atoms"]), "layers": _ints("layers", raw["layers"])}
    for key in ("seed", "fista_iters", "synthetic_layers"):
        try:
            cfg[key] = int(raw[key])
        except ValueError:
            raise ValueError(f"lista: {key} must be one int, got {raw[key]!r}") from None
        if cfg[key] < (0 if key == "seed" else 1):
            raise ValueError(f"lista: {key} must be >= {0 if key == 'seed' else 1}, got {cfg[key]}")
    return cfg


def run(out: Path, overrides: dict[str, str] | None = None, progress: bool = True, log=print) -> dict:
    """Run the protocols chosen by ``protocol``; returns the summary also written to ``results.json``."""
    cfg = _settings(dict(overrides or {}))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"settings": cfg, "paper_table1": PAPER_TABLE1, "seconds": {}}
    pngs = {}
    if cfg["protocol"] in ("both", "table1"):
        t0 = time.perf_counter()
        summary["table1"] = table1(cfg, log, progress)
        summary["seconds"]["table1"] = time.perf_counter() - t0
        pngs["table1"] = figure_table1(summary["table1"], out / "figure_table1.png")
    if cfg["protocol"] in ("both", "synthetic"):
        t0 = time.perf_counter()
        summary["synthetic"] = synthetic(cfg, log, progress)
        summary["seconds"]["synthetic"] = time.perf_counter() - t0
        pngs["synthetic"] = figure_synthetic(summary["synthetic"], out / "figure_synthetic.png")
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    (out / "report.html").write_text(report_html(summary, {k: base64.b64encode(v).decode() for k, v in pngs.items()}))
    return summary


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_table1(res: dict, path: Path) -> bytes:
    """Prediction error vs iterations (log scale): FISTA, ISTA, and LISTA's layers as markers, per dictionary."""
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
        if 2 in r["lista"]:
            ax.axhline(r["lista"][2], color="C3", lw=0.8, ls=":")
        paper = PAPER_TABLE1.get(m)
        if paper:  # the paper's T iterations = T + 1 shrinkage layers
            pk = sorted(paper["lista"])
            ax.semilogy([t + 1 for t in pk], [paper["lista"][t] for t in pk], "x", color="k", label="LISTA (paper)")
        ax.set(title=f"m = {m} atoms", xlabel="FISTA/ISTA iterations; LISTA shrinkage layers", ylabel="‖Z − Z*‖² (test mean)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.read_bytes()


def figure_synthetic(res: dict, path: Path) -> bytes:
    """NMSE (dB) per layer of LISTA vs ISTA/FISTA iterations."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    n = len(res["fista_nmse_db"])
    ax.plot(range(1, n + 1), res["ista_nmse_db"], "--", label=f"ISTA (α = {res['alpha']:g})")
    ax.plot(range(1, n + 1), res["fista_nmse_db"], "-", label=f"FISTA (α = {res['alpha']:g})")
    k = len(res["lista_nmse_db"])
    ax.plot(range(1, k + 1), res["lista_untrained_nmse_db"], ":", color="C3", label="LISTA at ISTA init (α = 0.4)")
    ax.plot(range(1, k + 1), res["lista_nmse_db"], "o-", color="C3", label="LISTA (trained)")
    ax.set(xlabel="iterations / layers", ylabel="NMSE (dB)", title="A 250×500, Bernoulli(0.1)×N(0,1) codes")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.read_bytes()


def _fmt(v) -> str:
    return "—" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))


def report_html(summary: dict, pngs_b64: dict[str, str]) -> str:
    """The report: Table 1 ours beside the paper's, the synthetic NMSE table, figures inline."""
    parts = ["<!doctype html><meta charset='utf-8'><title>lista</title>",
             "<h1>LISTA (Gregor &amp; LeCun, ICML 2010) vs ISTA / FISTA</h1>",
             f"<p>Settings: <code>{json.dumps(summary['settings'])}</code>. Layers count shrinkages: K layers of "
             "LISTA at its ISTA initialisation are K ISTA iterations from 0 (the paper's fprop with T iterations "
             "applies T + 1).</p>"]
    if "table1" in summary:
        t = summary["table1"]
        atoms = list(t["by_atoms"])
        head = "".join(f"<th>m = {m}: ours</th><th>m = {m}: paper</th>" for m in atoms)
        rows = []
        layers = sorted({k for m in atoms for k in t["by_atoms"][m]["lista"]})
        for name, ours, paper in (
                [("FISTA, 1 iteration", lambda r: r["fista"][0], lambda p: p["fista_1"])]
                + [(f"LISTA, {k} layer(s) = {k - 1} iteration(s)", lambda r, k=k: r["lista"].get(k),
                    lambda p, k=k: p["lista"].get(k - 1)) for k in layers]
                + [("FISTA iterations to match LISTA with 1 iteration", lambda r: r.get("fista_to_match_lista1"),
                    lambda p: p["fista_to_match_lista1"])]):
            cells = "".join(f"<td>{_fmt(ours(t['by_atoms'][m]))}</td>"
                            f"<td>{_fmt(paper(PAPER_TABLE1[m]) if m in PAPER_TABLE1 else None)}</td>" for m in atoms)
            rows.append(f"<tr><td>{name}</td>{cells}</tr>")
        parts.append(
            "<h2>Table 1 protocol: prediction error ‖Z − Z*‖² on held-out patches</h2>"
            f"<p>{t['n_train']} training / {t['n_val']} validation / {t['n_test']} test 10×10 patches of "
            f"scikit-image's {', '.join(t['images'])} (grey); each patch's mean removed, all divided by the training "
            f"pixel std ({t['pixel_std']:.4f}). Dictionaries learned on the training patches; α = "
            f"{summary['settings']['alpha']}; Z* by {t['by_atoms'][atoms[0]]['zstar_iterations']} FISTA iterations; "
            f"tied LISTA trained with Adam ({t['by_atoms'][atoms[0]]['lista_steps']} steps, lr 1e-3, cosine, batch 256), "
            "weights best on validation kept. The paper's "
            "patches and normalisation differ, so compare the shape (orders of magnitude, iterations to match) "
            "rather than the digits.</p>"
            f"<table border=1 cellpadding=4><tr><th></th>{head}</tr>{''.join(rows)}</table>")
        if "table1" in pngs_b64:
            parts.append(f"<img src='data:image/png;base64,{pngs_b64['table1']}'>")
    if "synthetic" in summary:
        r = summary["synthetic"]
        K = len(r["lista_nmse_db"])
        rows = "".join(f"<tr><td>{k + 1}</td><td>{r['lista_nmse_db'][k]:.2f}</td><td>{r['lista_untrained_nmse_db'][k]:.2f}"
                       f"</td><td>{r['ista_nmse_db'][k]:.2f}</td><td>{r['fista_nmse_db'][k]:.2f}</td></tr>" for k in range(K))
        parts.append(
            "<h2>Synthetic protocol: NMSE (dB) per layer / iteration</h2>"
            f"<p>A {r['shape'][0]}×{r['shape'][1]}, N(0, 1/M) entries, unit columns; codes Bernoulli(0.1)×N(0, 1); "
            f"noiseless. Untied LISTA, θ₀ = 0.4/L, L = 1.001‖A‖² = {r['lipschitz']:.3f}, trained on fresh batches of "
            f"{r['batch']} ({r['steps']} Adam steps, lr {r['lr']:g}, cosine) with loss Σ_k log NMSE_k (every layer "
            f"supervised, equal weight in dB); {r['n_test']} test samples. ISTA/FISTA "
            f"with α = {summary['settings']['synthetic_alpha']}, step 1/L.</p>"
            "<table border=1 cellpadding=4><tr><th>k</th><th>LISTA (trained)</th><th>LISTA at init (ISTA, α = 0.4)</th>"
            f"<th>ISTA</th><th>FISTA</th></tr>{rows}</table>"
            f"<p>ISTA / FISTA after {len(r['fista_nmse_db'])} iterations: {r['ista_nmse_db'][-1]:.2f} / "
            f"{r['fista_nmse_db'][-1]:.2f} dB.</p>")
        if "synthetic" in pngs_b64:
            parts.append(f"<img src='data:image/png;base64,{pngs_b64['synthetic']}'>")
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in summary["seconds"].items())
    parts.append(f"<p>Time: {secs}.</p>")
    return "".join(parts)
