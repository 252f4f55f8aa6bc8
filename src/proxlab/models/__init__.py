"""Registers proxlab's own models by name (see :mod:`proxlab.registry`); layer 3, beside ``unrolled``.

``dncnn``: :class:`proxlab.priors.networks.DnCNN`. ``lpn-conv``, ``lpn-fc``, ``lpn-fully-conv``:
the learned proximal networks of :mod:`proxlab.priors.lpn`. ``glow``: the normalizing flow
:class:`proxlab.priors.flow.Glow`. ``istanet``, ``resnet-pgd``: block-CS
unrolled networks that carry their own Φ and Qinit (:mod:`proxlab.unrolled.istanet`). ``unrolled``: :class:`proxlab.unrolled.Unrolled`
with a prox built from the registry (``prox="dncnn", prox_options={...}``); the runner passes the
task's operator as ``operator=``.

Each registration records whether the model needs the task's operator (``unrolled``) or carries its own
(``istanet``, ``resnet-pgd``): :func:`proxlab.registry.model_entry`. Imports only layers <= 3 and
:mod:`proxlab.weights` (for ``prox_init``), never the training engine or the zoo.
"""

from __future__ import annotations

from ..priors.flow import Glow
from ..priors.lpn import LPNConv, LPNFullyConnected, LPNFullyConvolutional
from ..priors.networks import DnCNN, ResNetProxBN, UNetProx
from ..registry import build_model, register_model
from ..unrolled import FlowPGD, ISTANet, Unrolled, resnet_unrolled
from ..unrolled.istanet import ISTANetProx
from ..weights import load_model_weights, resolve_weights

register_model("dncnn")(DnCNN)
register_model("lpn-conv")(LPNConv)
register_model("lpn-fc")(LPNFullyConnected)
register_model("lpn-fully-conv")(LPNFullyConvolutional)
register_model("glow")(Glow)
register_model("resnet-prox")(ResNetProxBN)
register_model("unet-prox")(UNetProx)
register_model("istanet-prox")(ISTANetProx)  # ISTA-Net(+) over any operator: unrolled(prox="istanet-prox", tied=False)


@register_model("unrolled", needs_operator=True)
def unrolled(operator, prox: str = "dncnn", prox_options: dict | None = None, step: str = "pgd", stages: int = 5,
             tied: bool = True, step_size: float = 1.0, rho: float = 1.0, prox_init: str | None = None) -> Unrolled:
    """An :class:`~proxlab.unrolled.Unrolled` network whose prox is the registered model ``prox``.

    ``prox_init`` (``zoo:NAME`` or a ``.safetensors`` path) starts every stage's prox from
    pretrained weights, e.g. a denoiser of the same architecture.
    """

    def make():
        net = build_model(prox, **(prox_options or {}))
        if prox_init:
            load_model_weights(resolve_weights(prox_init), net)
        return net

    return Unrolled(operator, make, step=step, stages=stages, tied=tied, step_size=step_size, rho=rho)


@register_model("flow-pgd", needs_operator=True)
def flow_pgd(operator, flow_options: dict | None = None, flow_init: str | None = None, folds: int = 4, tied: bool = False,
             step_size: float = 1.0, shrinkage: float = 0.1, memory_saving: bool = True,
             train_flows: bool = True) -> FlowPGD:
    """A :class:`~proxlab.unrolled.FlowPGD` whose folds start from the GLOW ``flow_init`` (``zoo:NAME`` or a
    ``.safetensors`` path; ``flow_options`` its architecture, those of the registered ``glow``; without them a zoo
    entry's own architecture is used)."""
    if flow_options is None and flow_init and str(flow_init).startswith("zoo:"):
        import json

        entry = json.loads(resolve_weights(flow_init).with_suffix(".json").read_text())
        if entry.get("model", {}).get("name") != "glow":
            raise ValueError(f"flow_init: {flow_init} is a {entry.get('model', {}).get('name')!r} model, not a 'glow'")
        flow_options = dict(entry["model"].get("options", {}))
    flow = build_model("glow", **(flow_options or {}))
    if flow_init:
        load_model_weights(resolve_weights(flow_init), flow)
    return FlowPGD(operator, flow, folds=folds, tied=tied, step_size=step_size, shrinkage=shrinkage,
                   memory_saving=memory_saving, train_flows=train_flows)


def _block_operator(operator, ratio: float):
    """The given block-CS operator, or a placeholder (seeded Φ, zero Qinit) whose buffers stored weights replace."""
    import torch

    from ..operators import BlockCompressedSensing

    if operator is not None:
        return operator
    op = BlockCompressedSensing(ratio)
    op.qinit = torch.zeros(op.phi.shape[1], op.m)  # the registered (None) buffer, so loading can fill it
    return op


@register_model("istanet", carries_operator=True)
def istanet(operator=None, ratio: float = 0.25, plus: bool = True, stages: int = 9, channels: int = 32,
            zero_residual: bool = False, phases: int | None = None) -> ISTANet:
    """ISTA-Net (``plus=False``) / ISTA-Net+ for block CS. Without ``operator`` a placeholder of the given
    ``ratio`` is built; loading trained weights brings the Φ and Qinit they were trained with.
    ``zero_residual``: every stage starts as a plain ISTA step (see :class:`~proxlab.unrolled.ISTANet`).
    ``phases``: deprecated alias of ``stages``."""
    return ISTANet(_block_operator(operator, ratio), stages=None if phases is not None else stages, plus=plus,
                   channels=channels, zero_residual=zero_residual, phases=phases)


@register_model("resnet-pgd", carries_operator=True)
def resnet_pgd(operator=None, ratio: float = 0.25, stages: int = 5, channels: int = 128, blocks: int = 1):
    """Unrolled PGD with a shared ResNet prox for block CS (see :func:`proxlab.unrolled.resnet_unrolled`)."""
    return resnet_unrolled(_block_operator(operator, ratio), stages=stages, channels=channels, blocks=blocks)


__all__ = ["DnCNN", "LPNConv", "LPNFullyConnected", "LPNFullyConvolutional", "unrolled", "istanet", "resnet_pgd"]


@register_model("lista", needs_operator=True)
def lista(operator, alpha: float = 0.5, stages: int = 2, tied: bool = True, lipschitz_scale: float = 1.0):
    """:class:`~proxlab.unrolled.LISTA` on the matrix of ``operator`` (``operator.matrix`` ``(n, m)``: the
    dictionary of a sparse-coding source or a sensing matrix), initialised at ISTA with weight ``alpha`` and
    L = ``lipschitz_scale`` × ‖matrix‖² (LISTA-CPSS: 1.001)."""
    import torch

    from ..unrolled import LISTA

    W = getattr(operator, "matrix", None)
    if not isinstance(W, torch.Tensor) or W.ndim != 2:
        raise TypeError(f"model 'lista': operator must carry a 2-D .matrix (e.g. CompressedSensing), "
                        f"got {type(operator).__name__}")
    L = lipschitz_scale * float(torch.linalg.matrix_norm(W.detach().double(), ord=2) ** 2)
    return LISTA(W, alpha, stages, tied=tied, lipschitz=L)


__all__ += ["lista"]


@register_model("fistanet", needs_operator=True)
def fistanet(operator, phases: int = 6, features: int = 32, gradient: str = "adjoint", theta_start: float | None = None):
    """:class:`~proxlab.unrolled.FISTANet` on the task's operator (sparse-view CT: x₀ = FBP): ``phases`` phases of
    one shared block; ``gradient`` ``"adjoint"`` (μ in units of 1/‖A‖²) or ``"fbp"`` (the authors' detached FBP);
    ``theta_start`` the first threshold at the start (unset: the authors' 0.127)."""
    from ..unrolled import FISTANet

    return FISTANet(operator, phases=phases, features=features, gradient=gradient, theta_start=theta_start)


__all__ += ["fistanet"]


@register_model("admm-net", needs_operator=True)
def admm_net(operator, stages: int = 9, filters: int = 8, filter_size: int = 3, rho: float = 0.2, eta: float = 1.6,
             threshold: float = 0.05):
    """:class:`~proxlab.unrolled.ADMMNet` (Deep ADMM-Net) on the mask of the task's :class:`~proxlab.operators.MRI`,
    taking its orthonormal k-space (``norm="ortho"``); InitNet.m's start (ρ, η, soft-threshold PLF). ``stages``:
    full stages before the last reconstruction layer (9 as in the released ``net-stage7.mat``)."""
    from ..operators import MRI
    from ..unrolled import ADMMNet

    if not isinstance(operator, MRI):
        raise TypeError(f"model 'admm-net': operator must be an MRI operator (its mask), got {type(operator).__name__}")
    return ADMMNet(operator.mask.detach().cpu(), stages, filters, filter_size, norm="ortho", rho=rho, eta=eta,
                   threshold=threshold)


__all__ += ["admm_net"]


@register_model("admm-csnet", needs_operator=True)
def admm_csnet(operator, stages: int = 10, filters: int = 128, kernel: int = 5, tied: bool = False,
               final_dc: bool = True, rho: float = 0.1, eta: float = 1.0, plf_points: int = 101, conv_init: str = "he"):
    """:class:`~proxlab.unrolled.ADMMCSNet` (ADMM-CSNet) on the mask of the task's :class:`~proxlab.operators.MRI`,
    taking its orthonormal k-space; ``tied=True`` shares one set of stage weights (the authors' PyTorch port),
    ``conv_init="port"`` starts the convolutions as the port does (N(0, 0.025²)) instead of the paper's He."""
    from ..operators import MRI
    from ..unrolled import ADMMCSNet

    if not isinstance(operator, MRI):
        raise TypeError(f"model 'admm-csnet': operator must be an MRI operator (its mask), got "
                        f"{type(operator).__name__}")
    return ADMMCSNet(operator, stages, filters, kernel, tied=tied, final_dc=final_dc, rho=rho, eta=eta,
                     plf_points=plf_points, conv_init=conv_init)


__all__ += ["admm_csnet"]
