"""proxlab objects inside DeepInverse's own algorithms (run from an environment where DeepInverse is importable;
it is never a proxlab dependency): ``as_physics`` under DeepInverse's L2 data fidelity and its PGD builder with
``as_denoiser`` as the PnP denoiser. Prints a table and writes ``benchmarks/results/interop_deepinv.json``.

    python -m venv dinv && dinv/bin/pip install torchvision deepinv && dinv/bin/pip install -e .
    dinv/bin/python benchmarks/interop_deepinv.py
"""

import json
from pathlib import Path

import torch

import deepinv as dinv
from proxlab.data import skimage_image
from proxlab.interop import as_denoiser, as_physics
from proxlab.metrics import psnr
from proxlab.operators import GaussianBlur
from proxlab.priors.classic import TV
from proxlab.solvers import pgd

torch.manual_seed(0)
x = skimage_image("camera", grey=True, size=128)
A = GaussianBlur(1.5)
y = A(x) + 0.01 * torch.randn_like(A(x))
physics = as_physics(A, noise=0.01)

# 1. DeepInverse's L2 data fidelity on our physics: its gradient must be A^T (A x - y)
fid = dinv.optim.data_fidelity.L2()
z = torch.rand_like(x)
grad_dinv = fid.grad(z, y, physics)
grad_ours = A.adjoint(A(z) - y)
grad_err = float((grad_dinv - grad_ours).norm() / grad_ours.norm())

# 2. DeepInverse's PGD with our TV prox as its PnP denoiser, against proxlab's own PGD with the same prox and steps
lam, iters = 0.002, 100
prior = dinv.optim.prior.PnP(denoiser=as_denoiser(TV(1.0)))
model = dinv.optim.optim_builder(iteration="PGD", prior=prior, data_fidelity=fid, max_iter=iters, early_stop=False,
                                 params_algo={"stepsize": 1.0, "g_param": lam ** 0.5})
with torch.no_grad():
    x_dinv = model(y, physics)
x_ours = pgd(A, y, TV(lam), step_size=1.0, max_iter=iters, tol=0.0).x
rows = {"L2 gradient, relative difference from A^T(Ax - y)": grad_err,
        "measurement PSNR": float(psnr(y.clamp(0, 1), x)),
        "DeepInverse PGD + proxlab TV denoiser PSNR": float(psnr(x_dinv.clamp(0, 1), x)),
        "proxlab PGD + TV PSNR": float(psnr(x_ours.clamp(0, 1), x)),
        "relative difference of the two reconstructions": float((x_dinv - x_ours).norm() / x_ours.norm()),
        "deepinv": dinv.__version__, "torch": torch.__version__}
for k, v in rows.items():
    print(f"| {k} | {v if isinstance(v, str) else f'{v:.3g}'} |")
out = Path(__file__).parent / "results" / "interop_deepinv.json"
out.write_text(json.dumps(rows, indent=2))
print(f"wrote {out}")
