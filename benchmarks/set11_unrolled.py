"""Set11 block CS table: the zoo's ISTA-Net+, ISTA-Net and ResNet-PGD beside Qinit, TV-FISTA, TVAL3, the paper
and the authors' released weights.

Protocol (ISTA-Net's test script): grey images, zero-padded to multiples of 33, the network's output
clipped to [0, 1], PSNR on the 0–255 scale without rounding, SSIM by scikit-image with data_range 255.
Every zoo model carries the Φ it was trained with (ISTA-Net's shared ``phi_0_R_1089.mat``); the
classic rows come from ``benchmarks/results/set11_block_cs.json`` (``set11_block_cs.py``, same Φ
files). Writes ``benchmarks/results/set11_unrolled.{json,md,png}``.

    python benchmarks/set11_unrolled.py [--data ../shared/data] [--threads 2] [--istanet-weights DIR]

``--istanet-weights`` (a copy of ISTA-Net-PyTorch's ``model/`` folder) also runs the authors' released weights
through :func:`proxlab.unrolled.istanet_from_pytorch`, beside the numbers quoted for them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import sys

import torch

sys.path.insert(0, str(Path(__file__).parent))

from proxlab.experiments.blockcs import PAPER_SET11, RELEASED_SET11, evaluate_set11, set11_scores
from proxlab.zoo import list_zoo, load_zoo_model

RATIOS = (10, 25, 40)
MODELS = ("istanet-plus", "istanet", "resnet-pgd")
RESULTS = Path(__file__).parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--istanet-weights", type=Path, default=None,
                   help="ISTA-Net-PyTorch's model/ folder: measure the released weights here (proxlab's "
                        "istanet_from_pytorch) instead of only quoting them")
    a = p.parse_args()
    if a.istanet_weights is not None and not a.istanet_weights.is_dir():
        p.error(f"--istanet-weights: {a.istanet_weights} is not a folder")
    torch.set_num_threads(a.threads)
    table: dict = {}
    recs = {}
    for model in MODELS:
        for r in RATIOS:
            name = f"{model}-cs{r}"
            if name not in list_zoo():
                continue
            net, info = load_zoo_model(name)
            res = evaluate_set11(net, Path(a.data) / "Set11")
            recs[name] = res.pop("_recs")
            table.setdefault(model, {})[r] = {"psnr": res["mean"]["psnr"], "ssim": res["mean"]["ssim"],
                                              "seconds_per_image": res["mean"]["seconds"],
                                              "qinit_psnr": res["mean"]["qinit_psnr"],
                                              "training_command": info["training_command"]}
            print(f"{name}: {res['mean']['psnr']:.2f} dB / {res['mean']['ssim']:.4f}", flush=True)
    released = {}
    if a.istanet_weights is not None:
        from proxlab.operators import BlockCompressedSensing
        from proxlab.unrolled import istanet_from_pytorch

        mats = Path(a.data) / "ISTA-Net_sampling_matrix"
        for model, folder in (("istanet-plus", "CS_ISTA_Net_plus"), ("istanet", "CS_ISTA_Net")):
            for r in RATIOS:
                f = a.istanet_weights / f"{folder}_layer_9_group_1_ratio_{r}_lr_0.0001" / "net_params_200.pkl"
                if not f.is_file():
                    continue
                A = BlockCompressedSensing.from_mat(mats / f"phi_0_{r}_1089.mat", mats / f"Initialization_Matrix_{r}.mat")
                res = evaluate_set11(istanet_from_pytorch(f, A), Path(a.data) / "Set11")
                released.setdefault(model, {})[r] = {"psnr": res["mean"]["psnr"], "ssim": res["mean"]["ssim"]}
                print(f"released {model} {r} %: {res['mean']['psnr']:.2f} dB / {res['mean']['ssim']:.4f}", flush=True)
    classic_file = RESULTS / "set11_block_cs.json"
    classic = json.loads(classic_file.read_text()) if classic_file.is_file() else {}
    print(f"\nSet11, PSNR (dB) / SSIM; {a.threads} thread(s)")
    print(f"{'method':34s}" + "".join(f"{str(r) + ' %':>18s}" for r in RATIOS))

    md = ["| method | " + " | ".join(f"{r} %" for r in RATIOS) + " |", "|---|" + "---|" * len(RATIOS)]

    def row(label, cells):
        print(f"{label:34s}" + "".join(f"{c:>18s}" for c in cells))
        md.append(f"| {label} | " + " | ".join(cells) + " |")

    for model in MODELS:
        if model in table:
            row(f"{model} (ours)", [f"{table[model][r]['psnr']:.2f} / {table[model][r]['ssim']:.4f}"
                                    if r in table[model] else "-" for r in RATIOS])
        if model in released:
            row(f"{model} (authors' weights, run by proxlab)", [f"{released[model][r]['psnr']:.2f} / "
                                                               f"{released[model][r]['ssim']:.4f}"
                                                               if r in released[model] else "-" for r in RATIOS])
        if model in RELEASED_SET11:
            row(f"{model} (authors' weights, these files)", [f"{RELEASED_SET11[model].get(r, float('nan')):.2f}" for r in RATIOS])
            row(f"{model} (paper Table 1)", [f"{PAPER_SET11[model].get(r, float('nan')):.2f}" for r in RATIOS])
    from set11_block_cs import TVAL3

    res = classic.get("results", {})
    for label, key in (("Qinit (shared Qinit file)", "qinit"), ("TV-FISTA", "tv")):
        row(label, [f"{res[str(r)]['mean']['psnr_' + key]:.2f} / {res[str(r)]['mean']['ssim_' + key]:.4f}"
                    if str(r) in res else "-" for r in RATIOS])
    row("TVAL3 (paper Table 1)", [f"{TVAL3[r]:.2f}" for r in RATIOS])
    out = {"table": table, "paper": PAPER_SET11, "released_weights": RELEASED_SET11,
           "released_weights_run_by_proxlab": released, "classic": classic}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "set11_unrolled.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "set11_unrolled.md").write_text("\n".join(md) + "\n")
    if recs:
        _figure(recs)
    print(f"\nwrote {RESULTS / 'set11_unrolled.json'}")


def _figure(recs: dict) -> None:
    from proxlab.experiments.figures import pyplot

    plt = pyplot()
    names = [n for n in recs if n.endswith("-cs25")] or list(recs)
    image = "Parrots" if "Parrots" in next(iter(recs.values())) else next(iter(next(iter(recs.values()))))
    x = recs[names[0]][image][0]
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3 * (len(names) + 1), 3.2))
    axes[0].imshow(x[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"{image} (ground truth)", fontsize=9)
    for ax, n in zip(axes[1:], names):
        rec = recs[n][image][1]
        ax.imshow(rec[0, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{n}: {set11_scores(rec, x)[0]:.2f} dB", fontsize=9)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / "set11_unrolled.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
