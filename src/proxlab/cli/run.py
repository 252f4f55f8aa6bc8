"""``proxlab run`` (train + evaluate + report), ``proxlab zoo`` (list / export) and ``proxlab prior`` (evaluate R)."""

from __future__ import annotations

import torch


def run_command(args) -> int:
    from ..experiments.runner import run_experiment, shipped_experiments

    if args.list:
        for name in shipped_experiments():
            print(name)
        return 0
    if args.threads < 1:
        raise ValueError(f"threads must be >= 1, got {args.threads}")
    if args.experiment is None and args.resume is None:
        raise ValueError("give an experiment name or file, or --resume DIR (see 'proxlab run --list')")
    if args.experiment is not None and args.resume is not None:
        raise ValueError("give either an experiment or --resume DIR, not both")
    torch.set_num_threads(args.threads)
    try:
        result = run_experiment(args.experiment, out=args.out, overrides=args.set, resume=args.resume,
                                progress=not args.no_progress)
    finally:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():  # under torchrun: wait for rank 0's evaluation, then leave
            dist.barrier()
            dist.destroy_process_group()
    return 130 if result.stop_reason == "interrupted" else 0


def zoo_command(args) -> int:
    from ..experiments.export import export_run
    from ..zoo import list_zoo, zoo_info

    if args.action == "export":
        if not args.run_dir or not args.name:
            raise ValueError("usage: proxlab zoo export RUN_DIR NAME")
        print(f"wrote {export_run(args.run_dir, args.name)}")
        return 0
    names = list_zoo()
    if not names:
        print("the zoo is empty")
        return 0
    print(f"{'name':28s} {'task':34s} {'test PSNR':>10s} {'best classic':>22s}  command")
    for n in names:
        info = zoo_info(n)
        from ..tasks import make_task

        task = make_task(info["task"]["name"], **info["task"]["options"]).describe()
        m = info["test_metrics"]
        if "model" in m:
            base = max(m.get("baselines", {}).items(), key=lambda kv: kv[1]["mean"]["psnr"], default=None)
            base_s = f"{base[0]} {base[1]['mean']['psnr']:.2f}" if base else ""
            score = f"{m['model']['mean']['psnr']:10.2f}"
        else:  # e.g. the 1-D Laplacian LPN: no images, see its metadata
            score, base_s = f"{'-':>10s}", ""
        print(f"{n:28s} {task:34s} {score} {base_s:>22s}  {info['training_command']}")
    return 0


def prior_command(args) -> int:
    """Print the learned prior R(x) and the inversion residual ‖f(y*) − x‖ for each image."""
    from ..experiments.figures import load_input
    from ..zoo import load_zoo_model

    if not args.model.startswith("zoo:"):
        raise ValueError(f"--model must be zoo:NAME, got {args.model!r}")
    if args.threads < 1:
        raise ValueError(f"threads must be >= 1, got {args.threads}")
    if not args.tol > 0:
        raise ValueError(f"tol must be > 0, got {args.tol}")
    torch.set_num_threads(args.threads)
    from ..priors import require

    model, info = load_zoo_model(args.model[4:])
    require(model, "regularizer", f"proxlab prior --model {args.model}",
            why=f"evaluating the learned prior R(x) of {info['model']['name']}")
    size = getattr(model, "image_size", None)
    images = [load_input(spec, size=size[0] if size else None) for spec in args.images]
    print(f"{'image':40s} {'R(x)':>12s} {'residual':>10s}")
    for spec, x in zip(args.images, images):
        R, res = model.regularizer(x, tol=args.tol, return_residual=True)
        print(f"{spec:40s} {float(R):12.4f} {float(res):10.2e}")
    return 0
