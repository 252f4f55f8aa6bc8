"""Is a trained GLOW's inverse usable off the data? The latent-shrinkage prox g(f(v)/(1 + λ)) on noisy digits.

For weights of a 3-level GLOW trained on MNIST padded to 32×32 (``glow-mnist``), on 8 test digits with Gaussian
noise σ (default 0.2): the smallest affine-coupling scale seen on clean and on noisy digits, and for λ = 0.01, 0.1,
0.5 whether g(f(y)/(1 + λ)) stays finite and how far it moves from y. With ``--min-scale`` values the couplings'
scales are bounded from below *after* training (a probe of the mechanism, not a model one would ship: the
likelihood column shows what the bound costs). Prints a table; writes ``benchmarks/results/flow_inverse_stability.json``.

    python benchmarks/flow_inverse_stability.py WEIGHTS.safetensors [--coupling affine|additive] [--sigma 0.2]
        [--min-scale 0 0.01 0.1 0.3] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from proxlab.data.sources import mnist5k
from proxlab.priors.flow import AffineCoupling, Glow
from proxlab.weights import load_model_weights

OUT = Path(__file__).resolve().parent / "results" / "flow_inverse_stability.json"


def smallest_scale(flow: Glow, x: torch.Tensor) -> float:
    found: list[float] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: found.append(float(mod._shift_scale(inp[0][:, :mod.split])[1].min())))
             for m in flow.modules() if isinstance(m, AffineCoupling)]
    with torch.no_grad():
        flow(x)
    for h in hooks:
        h.remove()
    return min(found)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("weights")
    p.add_argument("--sigma", type=float, default=0.2)
    p.add_argument("--min-scale", type=float, nargs="+", default=[0.0, 0.01, 0.1, 0.3])
    p.add_argument("--coupling", default="affine", choices=["affine", "additive"], help="the flow's coupling")
    p.add_argument("--out", default=str(OUT))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    x = torch.nn.functional.pad(mnist5k("test")[0][:8], (2, 2, 2, 2))
    y = x + a.sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    rows = []
    for ms in a.min_scale:
        flow = Glow(1, 3, 8, 128, coupling=a.coupling)
        load_model_weights(a.weights, flow)
        flow.eval()
        for m in flow.modules():
            if isinstance(m, AffineCoupling):
                m.min_scale = ms
        additive = a.coupling == "additive"  # no scales: the bound does not apply
        row = {"min_scale": ms, "smallest_scale_clean": 1.0 if additive else smallest_scale(flow, x),
               "smallest_scale_noisy": 1.0 if additive else smallest_scale(flow, y)}
        with torch.no_grad():
            row["clean_bits_per_dim"] = float(flow.bits_per_dim(x, generator=torch.Generator().manual_seed(1)).mean())
            z = flow.encode(y)
            for lam in (0.01, 0.1, 0.5):
                try:
                    row[f"max_change_lam_{lam}"] = float((flow.inverse(z / (1 + lam), 32, 32) - y).abs().max())
                except FloatingPointError:
                    row[f"max_change_lam_{lam}"] = None  # NaN or Inf inside the inverse
        rows.append(row)
        cells = "  ".join(f"λ={lam}: " + ("diverged" if row[f"max_change_lam_{lam}"] is None else f"{row[f'max_change_lam_{lam}']:.3g}")
                          for lam in (0.01, 0.1, 0.5))
        print(f"min_scale {ms:<5g} scales ≥ {row['smallest_scale_clean']:.1e} clean / {row['smallest_scale_noisy']:.1e} noisy; "
              f"clean {row['clean_bits_per_dim']:.3f} bits/dim; max |g(f(y)/(1+λ)) − y|: {cells}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": "python benchmarks/flow_inverse_stability.py " + " ".join(sys.argv[1:] if argv is None else argv),
                               "weights": str(a.weights), "coupling": a.coupling, "sigma": a.sigma, "rows": rows},
                              indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
