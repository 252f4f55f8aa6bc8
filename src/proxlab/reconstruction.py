"""One call to reconstruct with a classic method, a zoo model or a learned module (layer 5, beside the zoo).

    import proxlab
    from proxlab.tasks import make_task

    task = make_task("deblur")
    A, y = task.measure(x)
    x_tv = proxlab.reconstruct("fista-tv", y, A)                          # classic, the task's weights
    x_pgd = proxlab.reconstruct("zoo:pgd-dncnn-mnist-deblur", y, A)       # an unrolled net built around A

    cs = make_task("cs", ratio=0.25)
    A, y = proxlab.measure("zoo:istanet-plus-cs25", x, cs)                 # measured with the model's own Φ
    x_ista = proxlab.reconstruct("zoo:istanet-plus-cs25", y, A)

How a learned model is applied follows its registry entry (:func:`proxlab.registry.model_entry`): a model
that *needs* the operator is built around ``operator`` and maps ``y`` to ``x``; a model that *carries* its
own operator (block CS: Φ and Qinit in its weights) maps ``y`` measured with *its* Φ to ``x``, so
:func:`measure` measures with that Φ and :func:`reconstruct` refuses a ``y`` measured with another; any other
model is a denoiser applied to ``operator.init(y)``. The command line (``proxlab reconstruct``, ``proxlab
demo``) calls these two functions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .methods import CLASSIC_METHODS, PNP_DEFAULTS, get_method, task_of_operator
from .methods import reconstruct as run_method
from .operators import BlockCompressedSensing, LinearOperator, Measurement
from .tasks import Task, make_task

__all__ = ["reconstruct", "measure", "check_method"]

# Classic-method options that a learned model does not take.
_CLASSIC_ONLY = ("prior", "lam", "rho", "max_iter", "tol", "callback")


def _as_task(task: Task | str | None) -> Task | None:
    if task is None or isinstance(task, Task):
        return task
    if isinstance(task, str):
        return make_task(task)
    raise TypeError(f"task: expected a Task, a task name or None, got {type(task).__name__}")


class _Learned:
    """A learned model with its registry relation to the operator (``"needs"``, ``"carries"`` or ``None``)."""

    def __init__(self, label: str, model: nn.Module | None, relation: str | None, info: dict | None = None):
        self.label, self.model, self.relation, self.info = label, model, relation, info


def _relation(model_name: str) -> str | None:
    from .registry import model_entry

    entry = model_entry(model_name)
    return "needs" if entry.needs_operator else "carries" if entry.carries_operator else None


def _zoo_name(method: str) -> str | None:
    return method[4:] if method.startswith("zoo:") else None


def is_density_model(info: dict) -> bool:
    """Whether zoo entry ``info`` is a density model (a normalizing flow, scored in bits/dim) rather than a
    reconstruction method."""
    return "bits_per_dim" in (info.get("test_metrics") or {})


def _resolve(method_or_model, task: Task | None, model_name: str | None):
    """``method_or_model`` as a classic method name (returned as is) or a :class:`_Learned` (a zoo entry is
    checked, not loaded yet: see :func:`_load`)."""
    if isinstance(method_or_model, nn.Module):
        from .unrolled import Unrolled

        if model_name is None and isinstance(method_or_model, Unrolled):
            raise ValueError(f"model: a {type(method_or_model).__name__} needs or carries an operator; pass "
                             "model_name= (the registered name it was built from, e.g. 'unrolled' or 'istanet')")
        relation = None if model_name is None else _relation(model_name)
        return _Learned(model_name or type(method_or_model).__name__, method_or_model, relation)
    if not isinstance(method_or_model, str):
        raise TypeError(f"method_or_model: expected a method name, 'zoo:NAME' or an nn.Module, "
                        f"got {type(method_or_model).__name__}")
    if model_name is not None:
        raise ValueError(f"model_name applies to a model passed as a module, not to {method_or_model!r}")
    name = _zoo_name(method_or_model)
    if name is None:
        get_method(method_or_model)  # ValueError with a close match for a typo
        return method_or_model
    from .zoo import zoo_info

    info = zoo_info(name)  # ValueError with a close match for a typo
    if is_density_model(info):
        raise ValueError(f"zoo model {name!r} is a normalizing flow, a prior scored by its likelihood "
                         f"({info['test_metrics']['bits_per_dim']:.3f} test bits/dim), not a reconstruction method; "
                         f"score images with: proxlab prior --model zoo:{name} IMAGE...")
    if task is not None and info["task"]["name"] != task.name:
        raise ValueError(f"zoo model {name!r} was trained for task {info['task']['name']!r}, not {task.name!r}")
    return _Learned(method_or_model, None, _relation(info["model"]["name"]), info)


def _load(learned: _Learned, operator=None) -> nn.Module:
    """The module of ``learned``, loading a zoo entry (around ``operator`` if it needs one)."""
    if learned.model is None:
        from .zoo import load_zoo_model

        learned.model, learned.info = load_zoo_model(learned.label[4:],
                                                     operator=operator if learned.relation == "needs" else None)
    return learned.model


def check_method(method_or_model, task: Task | str | None = None, prior=None) -> None:
    """Check a method before any work: a known classic name or zoo entry, a zoo entry trained for ``task``,
    and ``prior`` given exactly to the plug-and-play methods. Raises ``ValueError`` naming what is wrong."""
    resolved = _resolve(method_or_model, _as_task(task), None) if isinstance(method_or_model, str) else None
    if isinstance(resolved, str):
        learned_prior = get_method(resolved).prior == "learned"
        if learned_prior and prior is None:
            raise ValueError(f"method {resolved!r} needs a learned prior: prior='zoo:NAME' or a prox module")
        if not learned_prior and prior is not None:
            raise ValueError(f"prior is only used by the plug-and-play methods "
                             f"({', '.join(n for n, m in CLASSIC_METHODS.items() if m.prior == 'learned')}), "
                             f"not {resolved!r}")
    if isinstance(prior, str):
        if _zoo_name(prior) is None:
            raise ValueError(f"prior must be 'zoo:NAME' or a prox module, got {prior!r}")
        from .zoo import zoo_info

        zoo_info(prior[4:])  # ValueError with a close match for a typo


#: Task options that define the geometry a zoo model for that task was trained on (the noise level may differ).
_GEOMETRY = {"ct": ("angles",), "mri": ("mask", "ratio", "mask_file")}


def _check_geometry(learned: _Learned, task: Task, size: tuple[int, int]) -> None:
    """A zoo model for CT or MRI runs only on the geometry it was trained on: the same image size (its operator
    is built for the image) and the same angles / sampling mask. Raises ``ValueError`` saying what to change."""
    keys = _GEOMETRY.get(task.name)
    if not keys:
        return
    info, name = learned.info, learned.label
    trained = (info.get("data") or {}).get("image_size")
    if trained is not None and tuple(trained) != tuple(size):
        raise ValueError(f"{name} was trained on {trained[0]}×{trained[1]} images, got {size[0]}×{size[1]}; "
                         f"resize the input (--size {trained[0]} on the command line, or resize it yourself)")
    digest = (info.get("data") or {}).get("mask_sha256")
    if task.name == "mri" and digest is not None:  # the mask itself, wherever its file lives
        from .operators.mri import mask_sha256

        mask = task.operator(tuple(size)).mask
        if mask_sha256(mask) != digest:
            ratio = info["data"].get("mask_ratio", float("nan"))
            raise ValueError(f"{name} was trained for one sampling mask (ratio {ratio:.4f}, sha256 {digest[:12]}…), "
                             f"got another (ratio {float((mask != 0).float().mean()):.4f}, sha256 "
                             f"{mask_sha256(mask)[:12]}…); measure with the mask it was trained with (--mask-file)")
        return
    opts = (info.get("task") or {}).get("options", {})
    for k in keys:
        if k in opts and task.options.get(k) != opts[k]:
            flag = "--" + k.replace("_", "-")
            raise ValueError(f"{name} was trained for {task.name} with {k} = {opts[k]!r}, got {task.options.get(k)!r} "
                             f"({flag} {opts[k]})")


#: How far (as a factor on either side) an input's size may be from a zoo model's training images before
#: :func:`domain_warning` warns.
DOMAIN_SIZE_FACTOR = 2.0


def domain_warning(label: str, info: dict, size: tuple[int, int]) -> bool:
    """Warn (``UserWarning``) when an image of ``size`` is far from the training images of zoo entry ``info``:
    more than :data:`DOMAIN_SIZE_FACTOR` times larger or smaller on a side (a model trained on 28×28 digits does
    not know 512×512 photographs). Returns whether it warned."""
    import warnings

    trained = (info.get("data") or {}).get("image_size")
    if not trained:
        return False
    ratios = [s / t for s, t in zip(size, trained)]
    if all(1 / DOMAIN_SIZE_FACTOR <= r <= DOMAIN_SIZE_FACTOR for r in ratios):
        return False
    source = (info.get("data") or {}).get("source", "its training")
    warnings.warn(f"{label} was trained on {trained[0]}×{trained[1]} images ({source}); this input is {size[0]}×"
                  f"{size[1]}, outside its training domain: expect a poor reconstruction (compare with a classic "
                  "method, or resize with --size)", UserWarning, stacklevel=3)
    return True


def measure(method_or_model, x: torch.Tensor, task: Task | str, seed: int | None = None,
            model_name: str | None = None) -> tuple[LinearOperator, torch.Tensor]:
    """Simulate ``y = A x + n`` for ``task`` as ``method_or_model`` will see it; returns ``(A, y)``.

    For a model that carries its own operator (block-CS networks) ``A`` is *its* Φ, resized to ``x``;
    the task must be ``cs`` at the model's ratio (within 0.005) and without a ``phi`` file. Otherwise
    ``A`` is the task's operator (:meth:`proxlab.tasks.Task.measure`). ``seed`` defaults to the task's.
    """
    task = _as_task(task)
    if task is None:
        raise TypeError("task: expected a Task or a task name, got None")
    resolved = _resolve(method_or_model, task, model_name)
    if isinstance(resolved, _Learned) and resolved.relation == "needs" and resolved.info is not None:
        _check_geometry(resolved, task, tuple(x.shape[-2:]))
    if isinstance(resolved, _Learned) and resolved.info is not None and resolved.relation != "carries":
        domain_warning(resolved.label, resolved.info, tuple(x.shape[-2:]))
    if not (isinstance(resolved, _Learned) and resolved.relation == "carries"):
        return task.measure(x, seed=seed)
    own = _load(resolved).operator
    label = resolved.label
    if task.name != "cs":
        raise ValueError(f"{label} carries a block-CS operator; the task must be 'cs', got {task.name!r}")
    if task.options.get("phi") is not None:
        raise ValueError(f"phi does not apply to {label}: the model carries the Φ it was trained with")
    if abs(task.options["ratio"] - own.ratio) > 0.005:
        raise ValueError(f"{label} was trained at ratio {own.ratio:.4f} (m = {own.m}); use a cs task with "
                         f"ratio {round(own.ratio, 2)}, got {task.options['ratio']}")
    A = own.resized(tuple(x.shape[-2:])).to(x.device)
    with torch.no_grad():
        y = Measurement(A, task.options["noise"])(x, seed=task.seed if seed is None else seed)
    return A, y


def reconstruct(method_or_model, y: torch.Tensor, operator: LinearOperator | None, *, task: Task | str | None = None,
                model_name: str | None = None, prior: nn.Module | str | None = None, lam: float | None = None,
                rho: float | None = None, max_iter: int | None = None, tol: float | None = None,
                callback: Callable | None = None) -> torch.Tensor:
    """Reconstruct ``x`` from ``y = operator(x) + n`` with a classic method, a zoo model or a module.

    Parameters
    ----------
    method_or_model:
        A classic method name (:data:`proxlab.methods.CLASSIC_METHODS`), ``"zoo:NAME"``, or an ``nn.Module``
        (with ``model_name``, its registered name, when it needs or carries an operator; without, it is a
        denoiser applied to ``operator.init(y)``).
    operator:
        The forward operator ``y`` was measured with. A model that carries its own operator accepts only
        that one (see :func:`measure`) or ``None`` (the whole block grid, uncropped).
    task:
        A :class:`~proxlab.tasks.Task` or task name: the classic methods take its default weights (default:
        the task of the operator's type), and a zoo model must have been trained for it.
    prior, lam, rho, max_iter, tol, callback:
        Classic methods only (see :func:`proxlab.methods.reconstruct`); ``prior`` (``"zoo:NAME"`` or a prox
        module) is what ``pnp-admm`` / ``pnp-pgd`` plug in. ``max_iter`` defaults to 100 (20 for PnP),
        ``tol`` (the relative-change stop) to 1e-5.

    Returns the reconstruction (not clamped), shaped like the image.
    """
    task = _as_task(task)
    if operator is not None and not isinstance(operator, LinearOperator):
        raise TypeError(f"operator: expected a proxlab LinearOperator or None, got {type(operator).__name__}")
    if model_name is not None and not isinstance(method_or_model, nn.Module):
        raise ValueError(f"model_name applies to a model passed as a module, not to {method_or_model!r}")
    if isinstance(method_or_model, str) and _zoo_name(method_or_model) is None:
        return _classic(method_or_model, y, operator, task, prior, lam, rho, max_iter, tol, callback)
    given = {k: v for k, v in zip(_CLASSIC_ONLY, (prior, lam, rho, max_iter, tol, callback)) if v is not None}
    if given:
        raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to classic methods only, "
                         f"not to {method_or_model if isinstance(method_or_model, str) else 'a model'}")
    learned = _resolve(method_or_model, task, model_name)
    if operator is None and learned.relation != "carries":
        raise TypeError(f"operator: {learned.label} needs the operator y was measured with, got None")
    model = _load(learned, operator)
    if learned.relation == "carries":
        image_size = None if operator is None else _check_own_operator(learned.label, model.operator, operator)
        with torch.no_grad():
            return model(y, image_size=image_size)
    with torch.no_grad():
        return model(y) if learned.relation == "needs" else model(operator.init(y))


def _check_own_operator(label: str, own: BlockCompressedSensing, operator: LinearOperator):
    """The image size to crop to, after checking that ``operator`` measures with the model's own Φ."""
    hint = f"measure with the model's own Φ: A, y = proxlab.measure({label!r}, x, task)"
    if not isinstance(operator, BlockCompressedSensing):
        raise ValueError(f"{label} carries its own block-CS Φ; operator is a {type(operator).__name__}: {hint}")
    same = operator.m == own.m and operator.block == own.block and torch.allclose(
        operator.phi.to(own.phi), own.phi, rtol=1e-5, atol=1e-6)
    if not same:
        raise ValueError(f"{label} carries the Φ it was trained with (m = {own.m}); operator has another "
                         f"(m = {operator.m}): {hint}")
    return operator.image_size


def _classic(method, y, operator, task, prior, lam, rho, max_iter, tol, callback) -> torch.Tensor:
    m = get_method(method)
    if operator is None:
        raise TypeError(f"operator: method {method!r} needs the operator y was measured with, got None")
    if task is None:
        task = make_task(task_of_operator(operator))
    check_method(method, task, prior)
    if isinstance(prior, str):
        prior = _load_prior(prior)
    if max_iter is None:
        max_iter = PNP_DEFAULTS["max_iter"] if m.prior == "learned" else 100
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got {max_iter!r}")
    return run_method(method, operator, y, task, lam=lam, rho=rho, max_iter=max_iter,
                      tol=1e-5 if tol is None else tol, callback=callback, prior=prior)


def _load_prior(spec: str) -> nn.Module:
    """``zoo:NAME`` -> that zoo model as a prox module."""
    if _zoo_name(spec) is None:
        raise ValueError(f"prior must be 'zoo:NAME' or a prox module, got {spec!r}")
    from .zoo import load_zoo_model

    return load_zoo_model(spec[4:])[0]
