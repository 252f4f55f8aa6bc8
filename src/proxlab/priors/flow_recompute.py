"""Memory-saving backpropagation through a :class:`~proxlab.priors.flow.Glow` (Putzky & Welling, 2019): keep only
the flow's output, and in the backward pass rebuild each layer's input from its output with the layer's inverse, one
layer at a time. Memory does not grow with the flow's depth; compute grows by about one pass through every layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .flow import ActNorm, AffineCoupling, Glow, _finite

__all__ = ["encode_recomputed", "decode_recomputed"]


class _Op:
    """One bijection of the flow on the state ``(h, done)``: ``h`` the tensor still being transformed,
    ``done`` the flat latents split off so far ``(B, n)``. ``params`` are the module's parameters.
    ``coupling``: the :class:`AffineCoupling` this op applies, whose backward rebuild is fused (below)."""

    def __init__(self, fwd, inv, params, coupling: AffineCoupling | None = None):
        self.fwd, self.inv, self.params, self.coupling = fwd, inv, list(params), coupling


def _rebuild_coupling(m: AffineCoupling, out: torch.Tensor, reverse: bool):
    """The input of coupling ``m`` from its output ``out`` and the output again as a graph of that input, with
    one evaluation of the coupling's network instead of two (an inverse pass, then a forward pass): the
    untouched half is the same on both sides, so its shift and scale serve both directions.

    Returns ``(input, output_graph, leaves)``; ``leaves`` are the two halves of the input, requiring grad."""
    a = out[:, : m.split].detach().requires_grad_(True)
    shift, scale = m._shift_scale(a)
    b_out = out[:, m.split:]
    if not reverse:  # out = forward(input): input_b = out_b / s - t
        b_in = b_out - shift if scale is None else b_out / scale - shift
        b_in = b_in.detach().requires_grad_(True)
        b_graph = b_in + shift if scale is None else (b_in + shift) * scale
    else:  # out = inverse(input): input_b = (out_b + t) s
        b_in = b_out + shift if scale is None else (b_out + shift) * scale
        b_in = b_in.detach().requires_grad_(True)
        b_graph = b_in - shift if scale is None else b_in / scale - shift
    return torch.cat([a.detach(), b_in.detach()], 1), torch.cat([a, b_graph], 1), (a, b_in)


def _layer_ops(flow: Glow, height: int, width: int) -> list[_Op]:
    """The encoding direction of ``flow`` (x → z) as a list of :class:`_Op` for images of ``height × width``."""
    ops = [_Op(lambda h, d: (h - 0.5, d), lambda h, d: (h + 0.5, d), [])]
    shapes = flow.latent_shapes(height, width)
    for level, block in enumerate(flow.blocks):
        ops.append(_Op(lambda h, d: (F.pixel_unshuffle(h, 2), d), lambda h, d: (F.pixel_shuffle(h, 2), d), []))
        for step in block:
            for _, layer in step.layers():
                ops.append(_Op(lambda h, d, m=layer: (m(h)[0], d), lambda h, d, m=layer: (m.inverse(h), d),
                               layer.parameters(), layer if isinstance(layer, AffineCoupling) else None))
        if level < flow.levels - 1:
            split, (c, hh, ww) = flow.splits[level], shapes[level]

            def fwd(h, d, m=split):
                h2, eps, _ = m(h)
                return h2, torch.cat([d, eps.flatten(1)], 1)

            def inv(h, d, m=split, c=c, hh=hh, ww=ww):
                n = c * hh * ww
                return m.inverse(h, d[:, d.shape[1] - n:].reshape(-1, c, hh, ww)), d[:, : d.shape[1] - n]

            ops.append(_Op(fwd, inv, split.parameters()))
    return ops


class _Recomputed(torch.autograd.Function):
    """Apply ``ops`` (each ``fwd`` or, with ``reverse``, each ``inv`` in reverse order) to the state
    ``(h, done)`` without keeping activations; the backward pass rebuilds them from the output."""

    @staticmethod
    def forward(ctx, ops, reverse, h, done, *params):
        seq = [(op.inv, op.fwd, op) for op in reversed(ops)] if reverse else [(op.fwd, op.inv, op) for op in ops]
        with torch.no_grad():
            for apply, _, _ in seq:
                h, done = apply(h, done)
        ctx.seq, ctx.n_params, ctx.reverse = seq, len(params), reverse
        ctx.param_index = {id(p): i for i, p in enumerate(params)}
        ctx.save_for_backward(h, done)
        return h, done

    @staticmethod
    def backward(ctx, grad_h, grad_done):
        h, done = ctx.saved_tensors
        grads: list = [None] * ctx.n_params
        grad_h = torch.zeros_like(h) if grad_h is None else grad_h
        grad_done = torch.zeros_like(done) if grad_done is None else grad_done
        for apply, undo, op in reversed(ctx.seq):
            params = [p for p in op.params if p.requires_grad]
            if op.coupling is not None:  # fused: one network evaluation rebuilds the input and the graph
                with torch.enable_grad():
                    h_in, h_out, (a, b) = _rebuild_coupling(op.coupling, h, ctx.reverse)
                    g = torch.autograd.grad(h_out, [a, b, *params], grad_h, allow_unused=True)
                grad_h = torch.cat([torch.zeros_like(a) if g[0] is None else g[0],
                                    torch.zeros_like(b) if g[1] is None else g[1]], 1)
                d_in = done
            else:
                with torch.no_grad():
                    h_in, d_in = undo(h, done)  # this layer's input, from its output
                with torch.enable_grad():
                    h_req, d_req = h_in.detach().requires_grad_(True), d_in.detach().requires_grad_(True)
                    h_out, d_out = apply(h_req, d_req)
                    g = torch.autograd.grad((h_out, d_out), [h_req, d_req, *params], (grad_h, grad_done),
                                            allow_unused=True)
                grad_h = g[0] if g[0] is not None else torch.zeros_like(h_in)
                grad_done = g[1] if g[1] is not None else torch.zeros_like(d_in)
            for p, gp in zip(params, g[2:]):
                if gp is not None:
                    i = ctx.param_index[id(p)]
                    grads[i] = gp if grads[i] is None else grads[i] + gp
            h, done = h_in, d_in
        return (None, None, grad_h, grad_done, *grads)


def _check_ready(flow: Glow, where: str) -> None:
    """The rebuild applies each layer again: an ActNorm that would still initialise itself from data (training
    mode, never run) would do so inside the backward pass, with other data than the forward pass saw."""
    if flow.training and any(isinstance(m, ActNorm) and not bool(m.initialized) for m in flow.modules()):
        raise ValueError(f"{where}: the flow's ActNorm layers are not initialised yet and it is in training mode, so "
                         "they would initialise from data in the middle of the recomputed pass; run the flow once on "
                         "a batch in training mode first (Glow's data-dependent init), load trained weights, or call "
                         "flow.eval()")


def _checked(flow: Glow, t: torch.Tensor, where: str) -> torch.Tensor:
    if flow.check_finite:  # the plain pass names the layer; here the layers run inside one autograd Function
        _finite(t, where)
    return t


def encode_recomputed(flow: Glow, x: torch.Tensor) -> torch.Tensor:
    r""":math:`f(x)` as :meth:`Glow.encode`, but its backward pass recomputes the activations from the output
    (memory independent of the flow's depth; compute grows by about one forward pass: a coupling's network is
    evaluated once to rebuild both its input and its graph). The log-det is not
    computed (the flow-unrolled method does not need it)."""
    flow._check_input(x)
    _check_ready(flow, "encode_recomputed")
    ops = _layer_ops(flow, x.shape[2], x.shape[3])
    params = [p for p in flow.parameters()]
    h, done = _Recomputed.apply(ops, False, x, x.new_zeros(x.shape[0], 0), *params)
    return _checked(flow, torch.cat([done, h.flatten(1)], 1), "encode_recomputed")


def decode_recomputed(flow: Glow, z: torch.Tensor, height: int | None = None, width: int | None = None) -> torch.Tensor:
    r""":math:`g(z)` as :meth:`Glow.inverse`, with the memory-saving backward pass of :func:`encode_recomputed`."""
    height = flow.image_size if height is None else height
    width = height if width is None else width
    c, hh, ww = flow.latent_shapes(height, width)[-1]
    d = sum(a * b * e for a, b, e in flow.latent_shapes(height, width))
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[1] != d:
        got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise ValueError(f"z: expected a flat latent (B, {d}) for {height}×{width} images, got {got}")
    _check_ready(flow, "decode_recomputed")
    ops = _layer_ops(flow, height, width)
    params = [p for p in flow.parameters()]
    last = z[:, d - c * hh * ww:].reshape(-1, c, hh, ww)
    x, done = _Recomputed.apply(ops, True, last, z[:, : d - c * hh * ww], *params)
    return _checked(flow, x, "decode_recomputed")
