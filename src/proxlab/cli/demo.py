"""``proxlab demo``: every classic method on every task on bundled images, and the zoo models.

Test images: scikit-image's ``camera`` and ``astronaut`` (grey) for the image tasks and the
Shepp–Logan phantom for CT, all resized to ``--size``. Each pretrained zoo model then gets a row
of its own on MNIST test digits (the data it was trained for), beside the classic methods on the
same digits and measurements. Writes ``results.json``, ``results.md``
(the printed table) and ``demo.png`` (ground truth / measurement / reconstructions, one row per
task) into ``--out``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

DEMO_IMAGES = ("camera", "astronaut")


def demo_images(task: str, size: int) -> tuple[list[str], torch.Tensor]:
    from ..data import shepp_logan, skimage_image

    if task == "ct":
        return ["shepp_logan"], shepp_logan(size)
    return list(DEMO_IMAGES), torch.cat([skimage_image(n, grey=True, size=size) for n in DEMO_IMAGES])


def _parse_subset(value: str | None, allowed, what: str) -> list[str]:
    from .._checks import check_choice

    if not value:
        return list(allowed)
    items = [v.strip() for v in value.split(",") if v.strip()]
    for v in items:
        check_choice(what, v, list(allowed))
    return items


def run_demo(args) -> int:
    from ..experiments.figures import measurement_image, tile_rows
    from ..methods import CLASSIC_METHODS
    from ..metrics import psnr, ssim
    from ..reconstruction import is_density_model, measure, reconstruct
    from ..tasks import TASKS, make_task

    if args.size < 33:
        raise ValueError(f"size must be >= 33, got {args.size}")
    if args.iters < 1:
        raise ValueError(f"iters must be >= 1, got {args.iters}")
    if args.threads < 1:
        raise ValueError(f"threads must be >= 1, got {args.threads}")
    if args.mnist_images < 1:
        raise ValueError(f"mnist-images must be >= 1, got {args.mnist_images}")
    tasks = _parse_subset(args.tasks, TASKS, "task")
    classic = [name for name, m in CLASSIC_METHODS.items() if m.prior != "learned"]
    methods = _parse_subset(args.methods, classic, "method")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    from ..registry import model_entry
    from ..zoo import list_zoo, zoo_info

    zoo = [] if args.no_zoo else list_zoo()
    # One job list: (row label, task, images, methods, what measures: a zoo model carrying its own operator or
    # None for the task's); zoo models get their own rows on MNIST test digits.
    jobs = []
    for task_name in tasks:
        names, x = demo_images(task_name, args.size)
        jobs.append((task_name, make_task(task_name), names, x, list(methods), None))
    if zoo:
        from ..data import mnist5k

        digits = mnist5k("test")[0][: args.mnist_images]
        mnist_rows: dict[str, tuple] = {}  # one row per MNIST setting, every zoo model trained for it side by side
        cs_rows: list[list] = []  # block-CS models measuring with the same Φ share a row: [task, y, names]
        for name in zoo:
            info = zoo_info(name)
            if is_density_model(info):  # a flow is a prior scored by likelihood, not a reconstruction method
                continue
            task = make_task(info["task"]["name"], **info["task"]["options"])
            if task.name in tasks and info["data"].get("source") == "mnist5k":
                mnist_rows.setdefault(task.describe(), (task, []))[1].append(name)
            elif (task.name in tasks and model_entry(info["model"]["name"]).carries_operator
                  and abs(task.options["ratio"] - make_task("cs").options["ratio"]) < 0.005):
                _, y_own = measure(f"zoo:{name}", demo_images("cs", args.size)[1], task)
                row = next((r for r in cs_rows if torch.equal(r[1], y_own)), None)
                if row is None:
                    cs_rows.append([task, y_own, [name]])
                else:
                    row[2].append(name)
        for task, names_ in mnist_rows.values():
            jobs.append((f"{task.name} (MNIST)", task, [f"mnist-test-{i}" for i in range(len(digits))], digits,
                         list(methods) + [f"zoo:{n}" for n in names_], None))
        for task, _, names_ in cs_rows:  # measured with the Φ they carry; the classic methods get the same y
            names, x = demo_images("cs", args.size)
            jobs.append((f"cs (the Φ of zoo:{names_[0]})", task, names, x, list(methods) + [f"zoo:{n}" for n in names_],
                         names_[0]))
    bar = tqdm(total=sum(len(j[4]) for j in jobs), desc="demo", unit="run", disable=args.no_progress)
    rows, panels = [], {}
    t_start = time.perf_counter()
    for label, task, names, x, job_methods, own in jobs:  # own: a zoo model that carries its operator
        A, y = measure(f"zoo:{own}", x, task) if own else task.measure(x)  # the classic methods get the same y
        panels[label] = {"truth": x[:1], "measurement": measurement_image(A, y[:1], tuple(x[:1].shape))}
        for method in job_methods:
            bar.set_postfix_str(f"{label}/{method}")
            t0 = time.perf_counter()
            options = {} if method.startswith("zoo:") else {"max_iter": args.iters}
            rec = reconstruct(method, y, A, task=task, **options).clamp(0, 1)
            elapsed = time.perf_counter() - t0
            p, s = psnr(rec, x), ssim(rec, x)
            rows.append({
                "task": label, "setting": task.describe() + (" (MNIST)" if "MNIST" in label else ""), "method": method,
                "images": names, "psnr": float(p.mean()), "ssim": float(s.mean()), "seconds": elapsed,
                "psnr_per_image": [float(v) for v in p], "ssim_per_image": [float(v) for v in s],
            })
            panels[label][method] = rec[:1]
            bar.update(1)
    bar.close()
    total = time.perf_counter() - t_start

    table = format_table(rows)
    print(table)
    print(f"total {total:.1f} s on {args.threads} thread(s), {args.size}×{args.size} images, {args.iters} iterations")
    meta = {"size": args.size, "iters": args.iters, "threads": args.threads, "total_seconds": total}
    (out / "results.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    (out / "results.md").write_text(table + "\n")
    tile_rows(figure_rows(rows, panels), out / "demo.png")
    print(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'demo.png'}")
    return 0


def figure_rows(rows: list[dict], panels: dict[str, dict[str, torch.Tensor]]) -> list:
    """The demo figure's rows: per task (and per zoo model's own setting) the truth, the measurement, the best
    classic method and each learned method there, every reconstruction captioned with its PSNR on the first image."""
    out = []
    for label, p in panels.items():
        here = [r for r in rows if r["task"] == label]
        classic = [r for r in here if not r["method"].startswith("zoo:")]
        tiles = [("truth", p["truth"]), ("measurement", p["measurement"])]
        if classic:
            best = max(classic, key=lambda r: r["psnr_per_image"][0])
            tiles.append((f"best classic: {best['method']} {best['psnr_per_image'][0]:.1f} dB", p[best["method"]]))
        tiles += [(f"{r['method']} {r['psnr_per_image'][0]:.1f} dB", p[r["method"]]) for r in here
                  if r["method"].startswith("zoo:")]
        out.append((label, tiles))
    return out


def format_table(rows: list[dict]) -> str:
    """Markdown table: one row per task, PSNR / SSIM of each classic method (mean over the demo images) and, in
    one column, the learned (zoo) methods of that row; a column empty in every row is left out."""
    classic = [m for m in dict.fromkeys(r["method"] for r in rows) if not m.startswith("zoo:")]
    tasks = list(dict.fromkeys(r["setting"] for r in rows))
    by = {(r["setting"], r["method"]): r for r in rows}
    learned = {t: [r for r in rows if r["setting"] == t and r["method"].startswith("zoo:")] for t in tasks}
    has_learned = any(learned.values())
    head = "| task | " + " | ".join(classic + (["learned"] if has_learned else [])) + " |"
    lines = [head, "|---|" + "---|" * (len(classic) + has_learned)]
    for t in tasks:
        cells = [f"{by[t, m]['psnr']:.2f} / {by[t, m]['ssim']:.3f}" if (t, m) in by else "" for m in classic]
        if has_learned:
            cells.append("<br>".join(f"{r['method']} {r['psnr']:.2f} / {r['ssim']:.3f}" for r in learned[t]))
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    best = max(rows, key=lambda r: r["seconds"])
    lines.append(f"\nPSNR dB / SSIM, mean over the test images; slowest run {best['seconds']:.1f} s ({best['task']}/{best['method']}).")
    return "\n".join(lines)
