r"""Looking inside a learned prior: :math:`R(x)` of test images under growing perturbations.

As in the LPN paper (Fang et al., ICLR 2024, Figures 3 and 7): Gaussian noise of standard deviation
0, 0.05, 0.1, 0.2, 0.3; Gaussian blur of σ = 0, 0.5, 1, 2, 4 pixels; convex combinations
:math:`(1-\lambda)x_i + \lambda x_j` of two test images for λ = 0, 0.25, 0.5, 0.75, 1. A prior
that has learned the data should give the clean images the lowest R, growing with the noise and
the blur, and peaking half-way between two images.
"""

from __future__ import annotations

import base64

import torch

from ..operators import GaussianBlur

__all__ = ["PERTURBATIONS", "perturbed", "prior_under_perturbation", "violin_figure", "medians_table_html"]

PERTURBATIONS = {
    "gaussian noise σ": [0.0, 0.05, 0.1, 0.2, 0.3],
    "blur σ": [0.0, 0.5, 1.0, 2.0, 4.0],
    "convex combination λ": [0.0, 0.25, 0.5, 0.75, 1.0],
}


def perturbed(x: torch.Tensor, mode: str, level: float, seed: int = 0) -> torch.Tensor:
    """``x`` perturbed by ``mode`` at ``level`` (deterministic from ``seed``)."""
    if level == 0:
        return x.clone()
    if mode.startswith("gaussian"):
        g = torch.Generator().manual_seed(seed)
        return x + level * torch.randn(x.shape, generator=g)
    if mode.startswith("blur"):
        return GaussianBlur(level, kernel_size=min(2 * int(3 * level) + 1, 2 * (min(x.shape[-2:]) // 2) - 1))(x)
    partner = torch.roll(x, shifts=1, dims=0)  # image i mixes with image i-1
    return (1 - level) * x + level * partner


def prior_under_perturbation(model, images: torch.Tensor, seed: int = 0, tol: float = 1e-5,
                             max_iter: int = 500) -> dict[str, dict[float, list[float]]]:
    """R of every image for every perturbation and level: ``{mode: {level: [R_i]}}`` (and residuals checked)."""
    out: dict[str, dict[float, list[float]]] = {}
    for mode, levels in PERTURBATIONS.items():
        out[mode] = {}
        for level in levels:
            x = perturbed(images, mode, level, seed)
            R, res = model.regularizer(x, tol=tol, max_iter=max_iter, return_residual=True)
            out[mode][level] = [float(v) for v in R.detach()]
    return out


def _median(values: list[float]) -> float:
    return float(torch.tensor(values).median())


def medians(values: dict[str, dict[float, list[float]]]) -> dict[str, dict[str, float]]:
    return {mode: {str(level): _median(v) for level, v in per.items()} for mode, per in values.items()}


def violin_figure(values: dict[str, dict[float, list[float]]], ylabel: str = "learned prior R(x)") -> bytes:
    from .figures import png_bytes, pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, len(values), figsize=(4 * len(values), 3.2))
    for ax, (mode, per) in zip(axes, values.items()):
        levels = list(per)
        ax.violinplot([per[lv] for lv in levels], showmedians=True)
        ax.set_xticks(range(1, len(levels) + 1), [f"{lv:g}" for lv in levels])
        ax.set_xlabel(mode)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig, dpi=100)


def medians_table_html(meds: dict[str, dict[str, float]]) -> str:
    rows = []
    for mode, per in meds.items():
        cells = "".join(f"<td>{lv}: {v:.3f}</td>" for lv, v in per.items())
        rows.append(f"<tr><td>{mode}</td>{cells}</tr>")
    return "<table><tr><th>perturbation</th><th colspan=5>median R by level</th></tr>" + "".join(rows) + "</table>"


def analysis_section(model, images: torch.Tensor, seed: int = 0) -> tuple[dict, str]:
    """Medians (for metrics.json) and an HTML section (violin plot + table) for a run report."""
    values = prior_under_perturbation(model, images, seed)
    meds = medians(values)
    png = violin_figure(values)
    grows = {
        "gaussian noise σ": _increasing(list(meds["gaussian noise σ"].values())),
        "blur σ": _increasing(list(meds["blur σ"].values())),
        "convex combination λ (0 → 0.5)": _increasing(list(meds["convex combination λ"].values())[:3]),
    }
    html = (f"<p>R of {len(images)} test images under growing perturbations (median per level). Grows with the "
            f"perturbation: {', '.join(f'{k}: {v}' for k, v in grows.items())}.</p>"
            + medians_table_html(meds)
            + f"<img alt='prior under perturbation' src='data:image/png;base64,{base64.b64encode(png).decode()}'>")
    return {"medians": meds, "grows": grows, "images": len(images)}, html


def _increasing(v: list[float]) -> bool:
    return all(b > a for a, b in zip(v, v[1:]))
