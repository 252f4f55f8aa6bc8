"""Exactness of proxlab's GLOW, measured: inverse errors, log-det errors against the brute-force Jacobian, the
density's integral, the latent prox's optimality residual. The tests (tests/priors/test_flow.py) assert
bounds on these; this script prints the values themselves (float64, every parameter randomised) and writes
``benchmarks/results/flow_exactness.json``.

    python benchmarks/flow_exactness.py
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from proxlab.priors.flow import ActNorm, AffineCoupling, Glow, InvConv1x1, SplitPrior, Squeeze

D = torch.float64
OUT = Path(__file__).resolve().parent / "results" / "flow_exactness.json"


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randomised(m: torch.nn.Module, seed: int, scale: float) -> torch.nn.Module:
    m, g = m.to(D), gen(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=D))
    return m.eval()


def rel(a, b) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


def brute_logdet(fn, x):
    out = []
    for i in range(x.shape[0]):
        xi = x[i: i + 1]
        jac = torch.autograd.functional.jacobian(lambda t: fn(t.view_as(xi)).reshape(-1), xi.reshape(-1))
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


def main() -> int:
    t0 = time.perf_counter()
    res: dict = {"inverse_rel_error": {}, "logdet_abs_error": {}}
    layers = {"actnorm": ActNorm(4), "invconv": InvConv1x1(4, gen(1)), "affine coupling": AffineCoupling(4, 8),
              "additive coupling": AffineCoupling(4, 8, additive=True), "squeeze": Squeeze()}
    x = torch.randn(3, 4, 4, 4, dtype=D, generator=gen(2))
    for name, layer in layers.items():
        layer = randomised(layer, 3, 0.2)
        y, ld = layer(x)
        res["inverse_rel_error"][name] = max(rel(layer.inverse(y), x), rel(layer(layer.inverse(x))[0], x))
        res["logdet_abs_error"][name] = float((ld - brute_logdet(lambda t: layer(t)[0], x)).abs().max())
    split = randomised(SplitPrior(4), 4, 0.2)
    h, eps, ld = split(x)
    res["inverse_rel_error"]["split prior"] = rel(split.inverse(h, eps), x)
    res["logdet_abs_error"]["split prior"] = float((ld - brute_logdet(lambda t: torch.cat(split(t)[:2], 1), x)).abs().max())
    for coupling in ("affine", "additive"):
        flow = randomised(Glow(1, levels=3, steps=3, hidden=16, coupling=coupling, image_size=16), 7, 0.1)
        xi = torch.rand(2, 1, 16, 16, dtype=D, generator=gen(8))
        res["inverse_rel_error"][f"whole flow, {coupling} (3 levels x 3 steps, 16x16)"] = rel(flow.inverse(flow(xi)[0], 16, 16), xi)
        small = randomised(Glow(1, levels=2, steps=2, hidden=8, coupling=coupling, image_size=4), 16, 0.1)
        x4 = torch.rand(3, 1, 4, 4, dtype=D, generator=gen(17))
        res["logdet_abs_error"][f"whole flow, {coupling} (2 levels x 2 steps, 4x4)"] = float(
            (small(x4)[1] - brute_logdet(lambda t: small(t)[0], x4)).abs().max())
    tiny = randomised(Glow(1, levels=1, steps=2, hidden=8, image_size=2), 19, 0.1)
    t = torch.linspace(-6.0, 7.0, 36, dtype=D)
    grid = torch.cartesian_prod(t, t, t, t)
    with torch.no_grad():
        logp = torch.cat([tiny.log_prob(c.view(-1, 1, 2, 2)) for c in grid.split(200_000)])
    res["density_integral_minus_1 (D = 4, trapezoid, 36^4 points on [-6, 7]^4)"] = \
        float(torch.exp(logp).sum()) * float(t[1] - t[0]) ** 4 - 1.0
    flow = randomised(Glow(1, levels=2, steps=2, hidden=8, image_size=4), 33, 0.1)
    v = torch.rand(3, 1, 4, 4, dtype=D, generator=gen(34))
    z, zv = flow.encode(flow.prox(v, 0.3)), flow.encode(v)
    res["latent_prox_optimality_residual (max |z - f(v) + tau z|, tau = 0.3)"] = float(((z - zv) + 0.3 * z).abs().max())
    res["seconds"] = time.perf_counter() - t0
    res["machine"] = {"python": platform.python_version(), "torch": torch.__version__}
    res["command"] = "python benchmarks/flow_exactness.py"
    for section in ("inverse_rel_error", "logdet_abs_error"):
        print(section)
        for k, v in res[section].items():
            print(f"  {k:55s} {v:.2e}")
    for k, v in res.items():
        if isinstance(v, float) and k != "seconds":
            print(f"{k}: {v:.2e}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
