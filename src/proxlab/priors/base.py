r"""The ``Prior`` protocol: a proximal map, and what else a prior can do (its *capabilities*).

Every prior is a prox: ``prior(v, tau)`` returns

.. math:: \operatorname{prox}_{\tau g}(v) = \operatorname{argmin}_x \tfrac12\|x - v\|_2^2 + \tau g(x),

per sample of a batch ``(B, ...)``. Some priors can do more:

============================  ==================================================================
capability                    meaning
============================  ==================================================================
``prox``                      ``prior(v, tau)`` (also ``prior.prox(v, tau)`` on a :class:`Prior`)
``regularizer``               ``prior.regularizer(x)``: :math:`g(x)` per sample, ``(B,)``
``log_prob``                  ``prior.log_prob(x)``: :math:`\log p(x)` per sample, ``(B,)``
``grad_log_prob``             ``prior.grad_log_prob(x)``: :math:`\nabla_x \log p(x)`, shape of ``x``
``after_optimizer_step``      ``prior.after_optimizer_step()``: restore a constraint on the weights
                              after each optimiser step (LPN's non-negative z-path weights)
============================  ==================================================================

How a prior declares them. A :class:`Prior` (an ``nn.Module``) implements ``forward(v, tau)`` — the prox —
and *overrides* the optional methods it supports; :func:`capabilities` reads which of them the class
overrides. The declaration is the implementation, so the two cannot drift apart (a hand-kept list of
names could claim a method that is not there, or forget one that is), and nothing is guessed from
attribute names: ``hasattr`` on an ``nn.Module`` also finds submodules, parameters and buffers, so a
denoiser with a submodule called ``regularizer`` would pass for a prior with :math:`g`. A ``Protocol`` per
capability with ``runtime_checkable`` would be that same name test in a different coat. To opt out of an
inherited capability a subclass sets the method to ``None``.

Anything else that is callable — a function, a lambda, any ``nn.Module`` with ``forward(v, tau)``
(a plug-and-play denoiser) — is a prior with the ``prox`` capability only.

Whoever needs a capability asks for it once, when it is built or called, with :func:`require`, which
raises a ``TypeError`` naming who needs what, and what the prior has::

    require(prior, "regularizer", "fista", why="the objective history")
    # TypeError: fista: the objective history needs prior.regularizer(x); <lambda> does not have it
    # (a plain callable is a prox only; its capabilities: prox). Priors with it: Box, L1, TV, ...
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_choice, checked_to

__all__ = ["Prior", "CAPABILITIES", "capabilities", "require"]

CAPABILITIES: tuple[str, ...] = ("prox", "regularizer", "log_prob", "grad_log_prob", "after_optimizer_step")
_OPTIONAL = CAPABILITIES[1:]
_CALL = {
    "prox": "prior(v, tau) (a prox)",
    "regularizer": "prior.regularizer(x)",
    "log_prob": "prior.log_prob(x)",
    "grad_log_prob": "prior.grad_log_prob(x)",
    "after_optimizer_step": "prior.after_optimizer_step()",
}


class Prior(nn.Module):
    r"""Base class of proxlab's priors; see the module docstring for the protocol.

    Subclasses implement ``forward(v, tau)``, returning :math:`\operatorname{prox}_{\tau g}(v)` (``tau``:
    a number or a per-sample tensor; a learned prox trained for one noise level may ignore it), and
    override those of :meth:`regularizer`, :meth:`log_prob`, :meth:`grad_log_prob` and
    :meth:`after_optimizer_step` that they support. The base versions raise a ``TypeError``.
    """

    def to(self, *args, **kwargs):
        """``nn.Module.to``, with a clear error for a device name torch does not know (e.g. ``'gpu'``)."""
        return checked_to(super(), self, *args, **kwargs)

    def forward(self, v: torch.Tensor, tau: float | torch.Tensor = 1.0) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(v, tau), its prox")

    def prox(self, v: torch.Tensor, tau: float | torch.Tensor = 1.0) -> torch.Tensor:
        r""":math:`\operatorname{prox}_{\tau g}(v)`: the same as calling the module, ``self(v, tau)``."""
        return self(v, tau)

    def regularizer(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`g(x)` per sample, ``(B,)`` (where the prior declares it)."""
        require(self, "regularizer", f"{type(self).__name__}.regularizer")

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\log p(x)` per sample, ``(B,)`` (where the prior declares it)."""
        require(self, "log_prob", f"{type(self).__name__}.log_prob")

    def grad_log_prob(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\nabla_x \log p(x)`, the shape of ``x`` (where the prior declares it)."""
        require(self, "grad_log_prob", f"{type(self).__name__}.grad_log_prob")

    def after_optimizer_step(self) -> None:
        """Restore a constraint on the weights after an optimiser step (where the prior declares it)."""
        require(self, "after_optimizer_step", f"{type(self).__name__}.after_optimizer_step")


def _class_capabilities(cls: type) -> frozenset[str]:
    found = set()
    forward = getattr(cls, "forward", None)
    if callable(forward) and forward is not Prior.forward:
        found.add("prox")
    for name in _OPTIONAL:
        method = getattr(cls, name, None)
        if callable(method) and method is not getattr(Prior, name):
            found.add(name)
    return frozenset(found)


def capabilities(prior: object) -> frozenset[str]:
    """What ``prior`` can do: a subset of :data:`CAPABILITIES`.

    A :class:`Prior` has ``prox`` (when it implements ``forward``) and each optional method its class
    overrides; any other callable has ``{"prox"}``; anything else has nothing. Wrappers that do not
    subclass :class:`Prior` (``DistributedDataParallel``, ``torch.compile``'s module) count as plain
    callables: ask the module inside.
    """
    if isinstance(prior, Prior):
        return _class_capabilities(type(prior))
    return frozenset({"prox"}) if callable(prior) else frozenset()


def _name(prior: object) -> str:
    if isinstance(prior, nn.Module) or not callable(prior):
        return type(prior).__name__
    name = getattr(prior, "__qualname__", None) or getattr(prior, "__name__", None)
    if isinstance(name, str):
        return name.rsplit(".", 1)[-1] if not name.endswith("<lambda>") else "<lambda>"
    return type(prior).__name__


def _library_priors_with(capability: str) -> list[str]:
    """Public classes of proxlab (imported so far) that have ``capability``, for the hint of an error."""
    found, todo = set(), list(Prior.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("proxlab.") and not cls.__name__.startswith("_"):
            if capability in _class_capabilities(cls):
                found.add(cls.__name__)
    return sorted(found)


def require(prior: object, capability: str, who: str, why: str | None = None) -> object:
    """Check that ``prior`` has ``capability``; return ``prior`` unchanged, or raise ``TypeError``.

    Parameters
    ----------
    prior:
        Anything passed as a prior.
    capability:
        One of :data:`CAPABILITIES` (an unknown name is a ``ValueError`` with a close match).
    who:
        Who needs it, as the user knows it: ``"fista"``, ``"Unrolled"``, ``"proxlab prior zoo:NAME"``.
    why:
        What it is needed for (``"the objective history"``); optional.

    The message names who needs which method, the prior, and what the prior has, e.g.
    ``fista: the objective history needs prior.regularizer(x); <lambda> does not have it (a plain
    callable is a prox only; its capabilities: prox). Priors with it: Box, L1, TV, WaveletL1``.
    """
    check_choice("capability", capability, CAPABILITIES)
    if not isinstance(who, str) or not who:
        raise TypeError(f"who: expected a non-empty str naming who needs the capability, got {who!r}")
    has = capabilities(prior)
    if capability in has:
        return prior
    if not callable(prior):
        text = repr(prior)
        text = text if len(text) <= 40 else text[:37] + "..."
        raise TypeError(f"{who}: {why + ': ' if why else ''}the prior must be callable as prior(v, tau) (a prox), "
                        f"got {type(prior).__name__} {text}")
    needs = f"{who}: {why + ' needs' if why else 'needs'} {_CALL[capability]}"
    name = _name(prior)
    if isinstance(prior, Prior):
        what = f"its capabilities: {', '.join(c for c in CAPABILITIES if c in has) or 'none'}"
    else:
        what = "a plain callable is a prox only; its capabilities: prox"
        if callable(getattr(type(prior), capability, None)):
            what += f"; it defines {capability} but does not subclass proxlab.priors.Prior, which declares it"
    others = _library_priors_with(capability)
    hint = f" Priors with it: {', '.join(others)}." if others else ""
    raise TypeError(f"{needs}; {name} does not have it ({what}).{hint}")

