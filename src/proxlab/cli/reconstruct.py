"""``proxlab reconstruct``: simulate ``y = A x + n`` from a clean image, reconstruct, save, score."""

from __future__ import annotations

import time

import torch


#: Working copies of the image a reconstruction holds at once (iterates, gradients, the prior's internals), a
#: generous round figure for the memory estimate of ``--size``.
COPIES = 16


def available_memory() -> float:
    """Bytes of memory available now (``MemAvailable`` of ``/proc/meminfo``; infinity where it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def check_size(size: int | None) -> None:
    """Refuse a ``--size`` whose reconstruction cannot fit in memory, before anything is read or computed."""
    if size is None:
        return
    if size < 1:
        raise ValueError(f"--size: expected an int >= 1, got {size}")
    need, have = COPIES * 4.0 * size * size, available_memory()
    if need > have:
        raise ValueError(f"--size {size}: a {size}×{size} reconstruction needs about {need / 1e9:.1f} GB "
                         f"({COPIES} float32 copies of the image), this machine has {have / 1e9:.1f} GB available; "
                         f"use a smaller --size")


def run_reconstruct(args) -> int:
    from ..experiments.figures import check_png_path, load_input, save_png
    from ..metrics import psnr, ssim
    from ..reconstruction import check_method, measure, reconstruct

    if args.threads < 1:
        raise ValueError(f"threads must be >= 1, got {args.threads}")
    if args.iters is not None and args.iters < 1:
        raise ValueError(f"iters must be >= 1, got {args.iters}")
    check_size(args.size)
    check_png_path(args.output)  # before the reconstruction, not after it
    torch.set_num_threads(args.threads)
    zoo = args.method.startswith("zoo:")
    if not zoo:
        from ..methods import get_method

        learned_prior = get_method(args.method).prior == "learned"
        if learned_prior and not args.prior:
            raise ValueError(f"method {args.method!r} needs --prior zoo:NAME (see 'proxlab zoo')")
        if not learned_prior and args.prior:
            raise ValueError(f"--prior is only used by pnp-admm and pnp-pgd, not {args.method!r}")
        if args.prior and not args.prior.startswith("zoo:"):
            raise ValueError(f"--prior must be zoo:NAME, got {args.prior!r}")
    task = _task_from_args(args)
    check_method(args.method, task, prior=args.prior)  # fail early on a typo, before reading anything
    x = load_input(args.input, size=args.size)
    if args.prior:  # a learned prox far from its training images (the model's own check is in measure)
        from ..reconstruction import domain_warning
        from ..zoo import zoo_info

        domain_warning(args.prior, zoo_info(args.prior[4:]), tuple(x.shape[-2:]))
    A, y = measure(args.method, x, task)  # a zoo model that carries its own Φ measures with it
    t0 = time.perf_counter()
    if zoo:
        rec = reconstruct(args.method, y, A, task=task)
    else:
        rec = reconstruct(args.method, y, A, task=task, lam=args.lam, rho=args.rho, max_iter=args.iters,
                          prior=args.prior)
    rec = rec.clamp(0, 1)
    elapsed = time.perf_counter() - t0
    out = save_png(args.output, rec)
    print(f"{task.describe()} | {args.method}: PSNR {float(psnr(rec, x)):.2f} dB  SSIM {float(ssim(rec, x)):.4f}  "
          f"({elapsed:.2f} s) -> {out}")
    return 0


def _task_from_args(args):
    """Pass only the options the task knows; an option given for another task is an error."""
    from .._checks import check_choice
    from ..tasks import TASKS, make_task, task_options

    check_choice("task", args.task, TASKS)
    allowed = task_options(args.task)
    given = {k: getattr(args, k) for k in ("noise", "blur_sigma", "ratio", "mask", "box_size", "mask_file", "phi",
                                           "qinit", "angles")}
    for k, v in given.items():
        if v is not None and k not in allowed:
            raise ValueError(f"--{k.replace('_', '-')} does not apply to task {args.task!r} "
                             f"(its options: {', '.join('--' + o.replace('_', '-') for o in allowed)})")
    return make_task(args.task, seed=args.seed, **{k: given[k] for k in allowed})
