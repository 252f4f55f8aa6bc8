"""Reading the authors' MATLAB Deep ADMM-Net files (``net.layers``, a cell of structs with ``type`` and ``weights``).

The layer sequence of InitNet.m is ``X_org Convo Non_linorg Multi_org``, then ``X_mid Convo Non_linmid Multi_mid``
any number of times, then ``X_mid Convo Non_linmid Multi_final``, the last reconstruction layer ``X_mid`` and an
optional ``loss``. Weights in MATLAB's orientation: ``X_*`` ``{gamma (s²-1, L), rho (L)}``, ``Convo`` ``{gamma}``,
``Non_lin*`` ``{values (P, L)}``, ``Multi_*`` ``{eta (L)}``. v7.3 files are HDF5 (h5py reads arrays transposed;
they are transposed back here); v5 files are read by scipy.
"""

from __future__ import annotations

import os

import numpy as np
import torch

__all__ = ["read_matlab_net"]


def _not_a_net(path: str, found) -> ValueError:
    return ValueError(f"path: {path} is not a Deep ADMM-Net file: expected a struct 'net' with a cell 'layers' "
                      f"(X_org, Convo, Non_linorg, Multi_org, ...), found {found}")


def _layers_hdf5(path: str) -> list[tuple[str, list[np.ndarray]]]:
    import h5py

    with h5py.File(path, "r") as f:
        if "net" not in f or not isinstance(f["net"], h5py.Group) or "layers" not in f["net"]:
            raise _not_a_net(path, f"variables {sorted(k for k in f.keys() if not k.startswith('#'))}")
        out = []
        for ref in np.asarray(f["net"]["layers"]).ravel(order="F"):
            layer = f[ref]
            if not isinstance(layer, h5py.Group) or "type" not in layer:
                raise _not_a_net(path, "a layer without a 'type'")
            kind = "".join(map(chr, np.asarray(layer["type"]).ravel()))
            weights = []
            if "weights" in layer:
                w = layer["weights"]
                refs = np.asarray(w).ravel(order="F") if w.dtype == h5py.ref_dtype else []
                weights = [np.asarray(f[r], dtype=np.float64).T for r in refs]
            out.append((kind, weights))
        return out


def _layers_v5(path: str) -> list[tuple[str, list[np.ndarray]]]:
    import scipy.io as sio

    try:
        data = sio.loadmat(path, simplify_cells=True)
    except ValueError as err:
        raise ValueError(f"path: cannot read {path} as a MATLAB .mat file: {err}") from None
    net = data.get("net")
    if not isinstance(net, dict) or "layers" not in net:
        raise _not_a_net(path, f"variables {sorted(k for k in data if not k.startswith('__'))}")
    layers = net["layers"]
    layers = [layers] if isinstance(layers, dict) else list(layers)
    out = []
    for layer in layers:
        if not isinstance(layer, dict) or "type" not in layer:
            raise _not_a_net(path, "a layer without a 'type'")
        w = layer.get("weights", [])
        w = [w] if isinstance(w, np.ndarray) and w.dtype != object else list(w)
        out.append((str(layer["type"]), [np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in w]))
    return out


def _read_layers(path: str) -> list[tuple[str, list[np.ndarray]]]:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head[:8] == b"\x89HDF\r\n\x1a\n" or head[512 - 8:] == b"\x89HDF\r\n\x1a\n" or b"MATLAB 7.3" in head[:128]:
        try:
            return _layers_hdf5(path)
        except OSError as err:
            raise ValueError(f"path: cannot read {path} as a MATLAB v7.3 (HDF5) file: {err}") from None
    if not head.startswith(b"MATLAB"):
        raise ValueError(f"path: {path} is not a MATLAB .mat file (it does not start with a MATLAB header)")
    return _layers_v5(path)


def _expect(path: str, index: int, kind: str, allowed: tuple[str, ...]) -> None:
    if kind not in allowed:
        raise ValueError(f"path: {path}: layer {index + 1} is {kind!r}, expected {' or '.join(map(repr, allowed))} "
                         "(the Deep ADMM-Net layer order X, Convo, Non_lin, Multi, ..., X)")


def _weights(path: str, index: int, kind: str, weights: list[np.ndarray], shapes: list[tuple]) -> list[np.ndarray]:
    """Check the layer's arrays against ``shapes`` (vectors given as ``(n,)`` accept ``(n, 1)`` / ``(1, n)``)."""
    if len(weights) != len(shapes):
        raise ValueError(f"path: {path}: layer {index + 1} ({kind}) has {len(weights)} weight arrays, "
                         f"expected {len(shapes)}")
    out = []
    for w, shape in zip(weights, shapes):
        a = w.ravel() if len(shape) == 1 and w.ndim == 2 and 1 in w.shape else w
        if a.shape != shape:
            raise ValueError(f"path: {path}: layer {index + 1} ({kind}) has a weight of shape {w.shape}, "
                             f"expected {shape}")
        out.append(a)
    return out


def read_matlab_net(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The parameters of a MATLAB Deep ADMM-Net file, stacked per stage in :class:`~proxlab.unrolled.ADMMNet`'s
    layout (float64): ``rec_gamma (K+1, L, s²-1)``, ``rec_rho (K+1, L)``, ``conv_gamma (K, L, s²-1)``,
    ``plf_values (K, L, P)``, ``eta (K, L)``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no such file: {path}")
    layers = _read_layers(path)
    if layers and layers[-1][0] == "loss":
        layers = layers[:-1]
    if len(layers) < 5 or len(layers) % 4 != 1:
        raise _not_a_net(path, f"{len(layers)} layers of types {[k for k, _ in layers[:8]]}"
                               f"{' ...' if len(layers) > 8 else ''}")
    K = len(layers) // 4
    first = layers[0][1]
    if not first or first[0].ndim != 2:
        raise ValueError(f"path: {path}: layer 1 ({layers[0][0]}) must hold gamma (s²-1, L) and rho (L)")
    n_bases, L = first[0].shape
    size = int(round((n_bases + 1) ** 0.5))
    if size * size != n_bases + 1 or size % 2 == 0:
        raise ValueError(f"path: {path}: gamma has {n_bases} rows; expected s²-1 for an odd filter size s")
    P = None
    rec_gamma, rec_rho, conv_gamma, plf, eta = [], [], [], [], []
    for n in range(K + 1):
        i = 4 * n
        kind, w = layers[i]
        _expect(path, i, kind, ("X_org",) if n == 0 else ("X_mid",))
        g, r = _weights(path, i, kind, w, [(n_bases, L), (L,)])
        rec_gamma.append(g.T)
        rec_rho.append(r)
        if n == K:
            break
        last = n == K - 1
        kind, w = layers[i + 1]
        _expect(path, i + 1, kind, ("Convo",))
        conv_gamma.append(_weights(path, i + 1, kind, w, [(n_bases, L)])[0].T)
        kind, w = layers[i + 2]
        _expect(path, i + 2, kind, ("Non_linorg",) if n == 0 else ("Non_linmid",))
        if P is None:
            if len(w) != 1 or w[0].ndim != 2:
                raise ValueError(f"path: {path}: layer {i + 3} ({kind}) must hold the PLF values (P, L)")
            P = w[0].shape[0]
        plf.append(_weights(path, i + 2, kind, w, [(P, L)])[0].T)
        kind, w = layers[i + 3]
        _expect(path, i + 3, kind, ("Multi_org",) if n == 0 else ("Multi_final",) if last else ("Multi_mid",))
        eta.append(_weights(path, i + 3, kind, w, [(L,)])[0])
    stack = lambda arrays: torch.from_numpy(np.ascontiguousarray(np.stack(arrays)))  # noqa: E731
    return {"rec_gamma": stack(rec_gamma), "rec_rho": stack(rec_rho), "conv_gamma": stack(conv_gamma),
            "plf_values": stack(plf), "eta": stack(eta)}
