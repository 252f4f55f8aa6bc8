"""``proxlab run`` (train + evaluate + report), ``proxlab zoo`` (list / export) and ``proxlab prior`` (evaluate R)."""

from __future__ import annotations

import math

import torch


def run_command(args) -> int:
    from ..experiments.runner import run_experiment, shipped_experiments

    if args.list:
        from ..experiments.runner import experiment_summary

        names = shipped_experiments()
        width = max(map(len, names))
        for name in names:
            print(f"{name:{width}s}  {experiment_summary(name)}")
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
        path = export_run(args.run_dir, args.name, force=args.force, description=getattr(args, "description", None))
        print(f"wrote {path}")
        return 0
    names = list_zoo()
    if not names:
        print("the zoo is empty")
        return 0
    print(f"{'name':28s} {'task':34s} {'test PSNR':>10s} {'best classic':>22s}  command")
    uses_data = False
    for n in names:
        info = zoo_info(n)
        from ..tasks import make_task

        task = make_task(info["task"]["name"], **info["task"]["options"]).describe()
        m = info["test_metrics"]
        if "model" in m:
            base = max(m.get("baselines", {}).items(), key=lambda kv: kv[1]["mean"]["psnr"], default=None)
            base_s = f"{base[0]} {base[1]['mean']['psnr']:.2f}" if base else ""
            score = f"{m['model']['mean']['psnr']:10.2f}"
        elif "bits_per_dim" in m:  # a normalizing flow: its test bits/dim instead of a PSNR
            score, base_s = f"{m['bits_per_dim']:6.3f} bpd", ""
        else:  # e.g. the 1-D Laplacian LPN: no images, see its metadata
            score, base_s = f"{'-':>10s}", ""
        command, named = portable_command(info["training_command"])
        uses_data |= named
        print(f"{n:28s} {task:34s} {score} {base_s:>22s}  {command}")
    if uses_data:
        print("\n$DATA: the folder where you keep the authors' released files that a recipe names (sampling matrices, "
              "masks, weights); see the README's data table for where each comes from")
    return 0


def portable_command(command: str) -> tuple[str, bool]:
    """A zoo recipe as a user can run it: paths into this project's reference-data folder (``…/shared/data/``)
    become ``$DATA/``; returns the command and whether it names such a file."""
    import re

    out, n = re.subn(r"(?:[^\s=]*/)?shared/data/", "$DATA/", command)
    return out, n > 0


def _flow_prior_command(args, flow, info) -> int:
    """A flow's −log p(x) per image in bits/dim (dequantised with a fixed seed, as in its test report)."""
    from ..experiments.figures import load_input
    from ..priors.flow import dequantize

    pad = int(info.get("config", {}).get("data", {}).get("pad", 0))
    side = flow.image_size - 2 * pad
    gen = torch.Generator().manual_seed(0)
    per_pixel = f"bits/original pixel ({side}×{side})" if pad else ""
    print(f"{'image':40s} {'bits/dim':>10s} {'-log p (nats)':>14s} {per_pixel}")
    for spec in args.images:
        x = load_input(spec, size=side)
        if x.shape[1] != flow.in_channels:
            x = x.mean(1, keepdim=True) if flow.in_channels == 1 else x.expand(-1, flow.in_channels, -1, -1)
        x = torch.nn.functional.pad(x, (pad,) * 4) if pad else x
        with torch.no_grad():
            xd = dequantize(x, gen)
            nll = -float(flow.log_prob(xd)[0])
        dims = x[0].numel()
        bpd = nll / (dims * math.log(2)) + 8.0
        extra = f"{bpd * dims / (flow.in_channels * side * side):.4f}" if pad else ""
        print(f"{spec:40s} {bpd:10.4f} {nll:14.2f} {extra}")
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
    from ..priors.flow import Glow

    if isinstance(model, Glow):
        return _flow_prior_command(args, model, info)
    require(model, "regularizer", f"proxlab prior --model {args.model}",
            why=f"evaluating the learned prior R(x) of {info['model']['name']}")
    size = getattr(model, "image_size", None)
    images = [load_input(spec, size=size[0] if size else None) for spec in args.images]
    print(f"{'image':40s} {'R(x)':>12s} {'residual':>10s}")
    for spec, x in zip(args.images, images):
        R, res = model.regularizer(x, tol=args.tol, return_residual=True)
        print(f"{spec:40s} {float(R):12.4f} {float(res):10.2e}")
    return 0
