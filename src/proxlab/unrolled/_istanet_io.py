"""Reading the ISTA-Net / ISTA-Net+ weights that Zhang & Ghanem released with ISTA-Net-PyTorch.

Their files (``model/*/net_params_*.pkl``) are ``state_dict``\\ s of a module with one ``BasicBlock`` per phase,
``fcs.{k}.{lambda_step, soft_thr, conv_D, conv1_forward, conv2_forward, conv1_backward, conv2_backward, conv_G}``
(``conv_D`` / ``conv_G`` only for ISTA-Net+), every entry a plain tensor (the convolutions are bare weight
tensors, no biases), prefixed ``module.`` when saved from ``nn.DataParallel``. A phase computes, with
:math:`\\lambda_k` = ``lambda_step`` and :math:`\\theta_k` = ``soft_thr``,

.. math::
    r = x - \\lambda_k A^\\top A x + \\lambda_k A^\\top y, \\qquad
    x \\leftarrow r + G(\\tilde H(\\operatorname{soft}(H(D(r)), \\theta_k)))\\ \\text{(ISTA-Net+)}

from :math:`x_0 = A^\\top y` (CS-MRI: ``real(ifft2(mask * fft2(x)))``) or :math:`x_0 = Q_\\text{init} y` (block CS),
which is proxlab's PGD stage with :class:`~proxlab.unrolled.ISTANetProx` exactly, once :math:`\\lambda_k` and
:math:`\\theta_k` are written in proxlab's softplus parametrisation (step :math:`\\mathrm{softplus}(s_k)/\\|A\\|^2`).
"""

from __future__ import annotations

import os
import re

import torch

from ..operators.compressed_sensing import BlockCompressedSensing
from ..operators.mri import MRI
from ..solvers.steps import _inv_softplus
from .base import Unrolled
from .istanet import ISTANet, ISTANetProx

__all__ = ["istanet_from_pytorch"]

_CONVS = ("conv1_forward", "conv2_forward", "conv1_backward", "conv2_backward")
_PLUS = ("conv_D", "conv_G")


def _read_state(path) -> dict[str, torch.Tensor]:
    if isinstance(path, dict):
        state = path
    else:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a file path or a state_dict, got {type(path).__name__}")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"path: no file {os.fspath(path)!r} (expected an ISTA-Net-PyTorch "
                                    "net_params_*.pkl)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"path: {os.fspath(path)!r} holds a {type(state).__name__}, expected a state_dict")
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"state_dict entry {key!r}: expected a tensor, got {type(value).__name__}")
        out[key.removeprefix("module.")] = value
    return out


def istanet_from_pytorch(path, operator, dtype: torch.dtype = torch.float32) -> Unrolled:
    """An ISTA-Net(+) network over ``operator`` holding the released weights at ``path``.

    ``path`` is a ``net_params_*.pkl`` of ISTA-Net-PyTorch (read with ``weights_only=True``) or its ``state_dict``.
    ISTA-Net+ is recognised by its ``conv_D`` weights, the number of phases and channels by the entries. A
    :class:`~proxlab.operators.BlockCompressedSensing` gives an :class:`~proxlab.unrolled.ISTANet` (blocks, Qinit
    start; pass the Φ / Qinit the weights were trained with); an :class:`~proxlab.operators.MRI` gives an
    :class:`~proxlab.unrolled.Unrolled` PGD network from :math:`A^\\top y` (the authors' CS-MRI networks: pass
    ``MRI.from_mat`` of their ``mask_*.mat``). Thresholds and steps stay softplus-parametrised unless a released
    one is ≤ 0: then every stage's is unconstrained, as the authors learn them (``threshold_param="free"``: the
    30 % CS-MRI net's last threshold is −0.00023; step ``"pgd-free"``: the 25 % block-CS ISTA-Net+ has a step of
    −0.12 at phase 5). Raises ``ValueError`` for missing, misshapen or non-finite entries.
    """
    if not isinstance(operator, (MRI, BlockCompressedSensing)):
        raise TypeError(f"operator must be an MRI or a BlockCompressedSensing (the operators of the released "
                        f"weights), got {type(operator).__name__}")
    state = _read_state(path)
    phases = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(r"fcs\.(\d+)\.lambda_step", k))})
    if not phases or phases != list(range(len(phases))):
        raise ValueError(f"path: expected entries fcs.0.lambda_step … fcs.K-1.lambda_step (ISTA-Net-PyTorch's "
                         f"layout), found phases {phases} among keys {sorted(state)[:6]}…")
    plus = "fcs.0.conv_D" in state
    names = ("lambda_step", "soft_thr") + _CONVS + (_PLUS if plus else ())
    missing = [f"fcs.{k}.{n}" for k in phases for n in names if f"fcs.{k}.{n}" not in state]
    if missing:
        raise ValueError(f"path: missing {', '.join(missing[:4])}{'…' if len(missing) > 4 else ''}")
    channels = state["fcs.0.conv1_forward"].shape[0]
    for k in phases:
        for n in ("lambda_step", "soft_thr"):
            v = state[f"fcs.{k}.{n}"]
            if v.numel() != 1 or not torch.isfinite(v).all():
                raise ValueError(f"path: fcs.{k}.{n} must be one finite number, got {v.flatten()[:3].tolist()}")
    # the authors learn both unconstrained; keep proxlab's positive parametrisations unless a released value is <= 0
    free = any(not float(state[f"fcs.{k}.soft_thr"]) > 0 for k in phases)
    param = "free" if free else "softplus"
    step = "pgd-free" if any(not float(state[f"fcs.{k}.lambda_step"]) > 0 for k in phases) else "pgd"
    stages = len(phases)
    if isinstance(operator, BlockCompressedSensing):
        net = ISTANet(operator, stages=stages, plus=plus, channels=channels, step=step, threshold_param=param)
    else:
        net = Unrolled(operator, lambda: ISTANetProx(channels, plus=plus, threshold_param=param), step=step,
                       stages=stages, tied=False, step_size=0.5)
    net = net.to(dtype)
    with torch.no_grad():
        for k in phases:
            prox = net.proxes[k]
            for n in _CONVS + (_PLUS if plus else ()):
                w, conv = state[f"fcs.{k}.{n}"], getattr(prox, n)
                if tuple(w.shape) != tuple(conv.weight.shape):
                    raise ValueError(f"path: fcs.{k}.{n} has shape {tuple(w.shape)}, expected "
                                     f"{tuple(conv.weight.shape)} (ISTA-Net{'+' if plus else ''}, {channels} channels)")
                conv.weight.copy_(w)
            theta = float(state[f"fcs.{k}.soft_thr"])
            prox.raw_threshold.fill_(theta if free else _inv_softplus(theta))
    # the authors' step lambda_k multiplies A^T A directly; proxlab's is softplus(s_k) / ||A||^2, with ||A||^2 taken
    # on the shape forward() sees: one block (block CS) or the mask's image (MRI)
    if isinstance(operator, BlockCompressedSensing):
        shape = (1, operator.block, operator.block)
    else:
        shape = (1, *operator.mask.shape[-2:])
    L = net._norm(shape)
    scalar = net.entry.scalars["step_size"]
    with torch.no_grad():
        for k in phases:
            net.raw_step_size[k] = scalar.raw(float(state[f"fcs.{k}.lambda_step"]) * L)
    return net
