"""``proxlab reconstruct``: simulate ``y = A x + n`` from a clean image, reconstruct, save, score."""

from __future__ import annotations

import time

import torch


def run_reconstruct(args) -> int:
    from ..experiments.methods import get_method, reconstruct
    from ..registry import model_entry
    from ..metrics import psnr, ssim
    from ..experiments.figures import load_input, save_png

    if args.threads < 1:
        raise ValueError(f"threads must be >= 1, got {args.threads}")
    if args.iters is not None and args.iters < 1:
        raise ValueError(f"iters must be >= 1, got {args.iters}")
    torch.set_num_threads(args.threads)
    zoo = args.method.startswith("zoo:")
    if zoo:
        from ..zoo import zoo_info

        info = zoo_info(args.method[4:])  # fail early on a typo, before reading anything
        if info["task"]["name"] != args.task:
            raise ValueError(f"zoo model {args.method[4:]!r} was trained for task {info['task']['name']!r}, "
                             f"not {args.task!r}")
    else:
        method = get_method(args.method)
        if method.prior == "learned" and not args.prior:
            raise ValueError(f"method {args.method!r} needs --prior zoo:NAME (see 'proxlab zoo')")
        if method.prior != "learned" and args.prior:
            raise ValueError(f"--prior is only used by pnp-admm and pnp-pgd, not {args.method!r}")
    prior = _load_prior(args.prior) if args.prior else None
    task = _task_from_args(args)
    x = load_input(args.input, size=args.size)
    model = None
    if zoo and model_entry(info["model"]["name"]).carries_operator:
        model, A, y = measure_with_own_operator(args.method[4:], task, x)
    else:
        A, y = task.measure(x)
    t0 = time.perf_counter()
    if zoo:
        rec = zoo_reconstruct(args.method[4:], A, y, model=model).clamp(0, 1)
    else:
        from ..experiments.methods import PNP_DEFAULTS

        default = PNP_DEFAULTS["max_iter"] if args.method.startswith("pnp-") else 100
        iters = args.iters if args.iters is not None else default
        rec = reconstruct(args.method, A, y, task, lam=args.lam, rho=args.rho, max_iter=iters, prior=prior).clamp(0, 1)
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


def measure_with_own_operator(name: str, task, x: torch.Tensor):
    """Measure ``x`` with the zoo model's own Φ (the task's ratio must match it); returns ``(model, A, y)``."""
    from ..operators import Measurement
    from ..zoo import load_zoo_model

    model, _ = load_zoo_model(name)
    if task.options.get("phi") is not None:
        raise ValueError(f"--phi does not apply to zoo:{name}: the model carries the Φ it was trained with")
    if abs(task.options["ratio"] - model.ratio) > 0.005:
        raise ValueError(f"zoo model {name!r} was trained at ratio {model.ratio:.4f} (m = {model.operator.m}); "
                         f"pass --ratio {round(model.ratio, 2)}, got {task.options['ratio']}")
    A = model.operator.resized(tuple(x.shape[-2:]))
    with torch.no_grad():
        y = Measurement(A, task.options["noise"])(x, seed=task.seed)
    return model, A, y


def zoo_reconstruct(name: str, A, y: torch.Tensor, model: torch.nn.Module | None = None) -> torch.Tensor:
    """Apply zoo model ``name`` (or its already loaded ``model``): unrolled models use the operator ``A``,
    denoisers act on ``A.init(y)``; models that carry their operator need ``y`` from
    :func:`measure_with_own_operator`."""
    from ..unrolled import BlockUnrolled
    from ..zoo import load_zoo_model

    if model is None:
        model, _ = load_zoo_model(name, operator=A)
    with torch.no_grad():
        if isinstance(model, BlockUnrolled):  # carries its operator; reconstructs the block grid, then crops
            return model(y, image_size=A.image_size)
        return model(y) if hasattr(model, "operator") else model(A.init(y))


def _load_prior(spec: str) -> torch.nn.Module:
    """``zoo:NAME`` -> the zoo model as a prox module."""
    if not spec.startswith("zoo:"):
        raise ValueError(f"--prior must be zoo:NAME, got {spec!r}")
    from ..zoo import load_zoo_model

    model, _ = load_zoo_model(spec[4:])
    return model
