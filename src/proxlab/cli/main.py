"""``proxlab`` command line: ``demo``, ``reconstruct``, ``run``, ``zoo`` and ``prior``.

Bad input (unknown task or method, a wrong option value, an unreadable image) prints one line,
``proxlab: error: ...``, and exits with code 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


class UsageError(Exception):
    """Raised for bad user input; reported as one line with exit code 2."""


#: The classic method names of ``--method`` (proxlab.methods.CLASSIC_METHODS; kept here so that ``--help`` does
#: not import torch; a test keeps the two equal).
METHOD_NAMES = ("init", "tikhonov", "fista-tv", "admm-tv", "hqs-tv", "fista-wavelet", "admm-wavelet", "pnp-admm",
                "pnp-pgd")


def _add_task_options(p: argparse.ArgumentParser) -> None:
    from ..tasks import TASKS

    g = p.add_argument_group("task")
    g.add_argument("--task", required=True, help=f"one of: {', '.join(TASKS)}")
    g.add_argument("--noise", type=float, help="noise standard deviation (task default if omitted)")
    g.add_argument("--blur-sigma", type=float, help="deblur: Gaussian blur sigma in pixels (default 1.5)")
    g.add_argument("--ratio", type=float, help="inpaint: kept pixel fraction; cs/mri: sampling ratio")
    g.add_argument("--mask", help="inpaint: random|box; mri: radial|cartesian")
    g.add_argument("--box-size", type=int, help="inpaint box side in pixels (default: a quarter of the image)")
    g.add_argument("--mask-file", help="mri: an ISTA-Net or ADMM-Net .mat mask")
    g.add_argument("--phi", help="cs: an ISTA-Net phi_*.mat sampling matrix")
    g.add_argument("--qinit", help="cs: an ISTA-Net Initialization_Matrix_*.mat")
    g.add_argument("--angles", type=int, help="ct: number of projection angles (default 60)")
    g.add_argument("--seed", type=int, default=0, help="seed for noise and random masks (default 0)")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    p = _Parser(prog="proxlab", description="Imaging inverse problems with learned priors.")
    p.add_argument("--version", action="version", version=f"proxlab {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True

    d = sub.add_parser("demo", help="every classic method on every task on bundled images: table, JSON, figure")
    d.add_argument("--out", default="proxlab-demo", help="output folder (default ./proxlab-demo)")
    d.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    d.add_argument("--iters", type=int, default=100, help="iterations per iterative method (default 100)")
    d.add_argument("--tasks", help="comma-separated subset of tasks")
    d.add_argument("--methods", help="comma-separated subset of methods")
    d.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: the demo's many small operations run fastest on one)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.add_argument("--no-zoo", action="store_true", help="leave out the pretrained zoo models")
    d.add_argument("--mnist-images", type=int, default=32, help="MNIST test digits for the zoo rows (default 32)")

    run = sub.add_parser("run", help="train and evaluate an experiment (a shipped name or a TOML file); writes a report")
    run.add_argument("experiment", nargs="?", help="experiment name (see 'proxlab run --list') or path to a .toml file")
    run.add_argument("--out", help="run folder (default runs/NAME)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set training.steps=100 (repeatable)")
    run.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR")
    run.add_argument("--list", action="store_true", help="list the shipped experiments")
    run.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")

    z = sub.add_parser("zoo", help="list the pretrained models, or export a finished run into the zoo")
    z.add_argument("action", nargs="?", default="list", choices=["list", "export"])
    z.add_argument("run_dir", nargs="?", help="export: the finished run folder")
    z.add_argument("name", nargs="?", help="export: the zoo name")
    z.add_argument("--force", action="store_true", help="export: replace an existing entry of that name")
    z.add_argument("--description", help="export: the entry's description (default: the experiment's, marked when "
                                         "the run had --set overrides)")

    b = sub.add_parser("bench", help="every method on every task (quality), or operators, solvers and networks "
                                     "timed on this machine (speed)")
    b.add_argument("kind", choices=["quality", "speed"], help="what to measure")
    b.add_argument("--quick", action="store_true", help="quality: fewer, smaller images; speed: 3 repeats, not 10")
    b.add_argument("--out", default="proxlab-bench", help="folder for the results (default proxlab-bench)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    b.add_argument("--size", type=int, default=128, help="image side for the operators and solvers (default 128)")

    pr = sub.add_parser("prior", help="evaluate a learned prior at images: R(x) of an LPN, -log p(x) of a flow")
    pr.add_argument("--model", required=True, help="zoo:NAME of a learned proximal network or a GLOW flow (see 'proxlab zoo')")
    pr.add_argument("--tol", type=float, default=1e-5, help="inversion tolerance (RMS of f(y) - x, default 1e-5)")
    pr.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    pr.add_argument("images", nargs="+", help="image files, or skimage:NAME; resized to the model's input size")

    r = sub.add_parser("reconstruct", help="simulate a measurement from a clean image, reconstruct it, save a PNG")
    _add_task_options(r)
    r.add_argument("--method", required=True,
                   help="a classic method (" + ", ".join(METHOD_NAMES) + ") or zoo:NAME for a pretrained model "
                        "(see 'proxlab zoo'); pnp-admm / pnp-pgd take a learned prox with --prior zoo:NAME")
    r.add_argument("--prior", help="learned prox for pnp-admm / pnp-pgd: zoo:NAME")
    r.add_argument("--lam", type=float, help="prior weight (task default if omitted)")
    r.add_argument("--rho", type=float, help="ADMM/HQS penalty or Tikhonov weight")
    r.add_argument("--iters", type=int, help="iterations (default 100; 20 for pnp-*)")
    r.add_argument("--size", type=int, help="resize the input to SIZE×SIZE first")
    r.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    r.add_argument("input", help="clean image file (PNG/TIFF/JPEG), or skimage:NAME for a bundled image")
    r.add_argument("output", help="where to write the reconstruction (PNG)")
    return p


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"proxlab: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    import warnings

    before, warnings.formatwarning = warnings.formatwarning, _one_line_warning  # one line, like the errors
    try:
        return _dispatch(args)
    finally:
        warnings.formatwarning = before


def _dispatch(args) -> int:
    from ..training import TrainingDiverged

    try:
        if args.command == "demo":
            from .demo import run_demo

            return run_demo(args)
        if args.command == "run":
            from .run import run_command

            return run_command(args)
        if args.command == "prior":
            from .run import prior_command

            return prior_command(args)
        if args.command == "bench":
            from .bench import run_bench

            return run_bench(args)
        if args.command == "zoo":
            from .run import zoo_command

            return zoo_command(args)
        from .reconstruct import run_reconstruct

        return run_reconstruct(args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError, UsageError) as err:
        print(f"proxlab: error: {err}", file=sys.stderr)
        return 2
    except TrainingDiverged as err:
        print(f"proxlab: training diverged: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("proxlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
