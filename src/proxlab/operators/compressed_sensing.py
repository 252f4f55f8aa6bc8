r"""Compressed sensing: a dense Gaussian matrix on whole signals, and block CS on 33×33 tiles.

Block compressed sensing follows ISTA-Net (Zhang & Ghanem, CVPR 2018): the image is zero-padded on
the right and bottom to multiples of the block size, cut into non-overlapping ``B×B`` blocks (each
flattened row-major), and every block is measured by the same :math:`\Phi \in \mathbb R^{m\times B^2}`
with orthonormal rows. :math:`x_0 = Q_\text{init}\, y` per block is the least-squares initialisation
:math:`Q_\text{init} = X Y^\top (Y Y^\top)^{-1}` fitted on training blocks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from .._checks import check_range, check_tensor
from .base import LinearOperator, match, rho_tensor, rho_tensor

__all__ = ["CompressedSensing", "BlockCompressedSensing", "ISTANET_MEASUREMENTS", "fit_qinit", "load_mat_array"]

# ISTA-Net's measurement counts for 33×33 blocks (n = 1089), by CS ratio in percent.
ISTANET_MEASUREMENTS = {1: 10, 4: 43, 10: 109, 25: 272, 30: 327, 40: 436, 50: 545}


def load_mat_array(path: str | os.PathLike, keys: Sequence[str]) -> torch.Tensor:
    """Read the first of ``keys`` found in a MATLAB ``.mat`` file (v5 via scipy, v7.3/HDF5 via h5py)
    as a float64 tensor. v7.3 arrays come out transposed by h5py; they are transposed back."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such .mat file: {path}")
    import numpy as np

    try:
        import scipy.io as sio

        data = sio.loadmat(path)
        for k in keys:
            if k in data:
                return torch.from_numpy(np.asarray(data[k], dtype=np.float64))
        found = [k for k in data if not k.startswith("__")]
    except NotImplementedError:  # MATLAB v7.3 = HDF5
        import h5py

        with h5py.File(path, "r") as f:
            for k in keys:
                if k in f:
                    return torch.from_numpy(np.asarray(f[k], dtype=np.float64).T.copy())
            found = list(f.keys())
    except ValueError as err:
        raise ValueError(f"cannot read {path} as a MATLAB .mat file: {err}") from None
    raise ValueError(f"{path}: expected a variable named {' or '.join(map(repr, keys))}, found {found}")


def _woodbury_factors(phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Eigen-decomposition :math:`\Phi\Phi^\top = U \operatorname{diag}(\lambda) U^\top` (float64)."""
    lam, U = torch.linalg.eigh(phi.double() @ phi.double().T)
    return lam.clamp_min(0), U


class _GramFactors:
    r"""The eigen-decomposition of :math:`\Phi\Phi^\top` behind ``solve_normal`` and ``norm``, computed on first use
    and kept in the non-persistent buffers ``_lam``/``_U`` (they follow ``.to(device)``); forgotten when weights
    are loaded, since Φ may have changed."""

    def _sensing_matrix(self) -> torch.Tensor:
        """Φ (the mixin's one hook; CompressedSensing and BlockCompressedSensing return theirs)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _sensing_matrix(), its Φ")

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._lam is None:
            self._lam, self._U = _woodbury_factors(self._sensing_matrix())
        return self._lam, self._U

    def _buffers_loaded(self) -> None:
        self._lam = self._U = None

    def norm(self, shape=None, **kwargs) -> float:
        r""":math:`\|A\|_2^2 = \lambda_{\max}(\Phi\Phi^\top)`, exact."""
        return float(self._factors()[0].max())


def _woodbury_solve(phi, lam, U, b, rho):
    r""":math:`(\Phi^\top\Phi + \rho I)^{-1} b = \rho^{-1}\,(b - \Phi^\top (\Phi\Phi^\top + \rho I)^{-1} \Phi b)`
    for ``b`` of shape ``(..., n)``, exact for any :math:`\rho > 0`."""
    phi, U, lam = match(phi, b), match(U, b), match(lam, b)
    c = (b @ phi.T) @ U  # (..., m) in the eigenbasis
    c = c / (lam + rho)
    return (b - (c @ U.T) @ phi) / rho


class CompressedSensing(_GramFactors, LinearOperator):
    r"""Dense compressed sensing :math:`y = A x` on flattened signals, :math:`A \in \mathbb R^{m\times n}`.

    By default :math:`A_{ij} \sim \mathcal N(0, 1/m)` from ``seed``; pass ``matrix`` to use your own.
    ``signal_shape`` is the per-sample shape of ``x`` (default ``(n,)``; e.g. ``(1, 16, 16)`` for
    images), flattened row-major. ``solve_normal`` is exact through the Woodbury identity with a
    cached eigen-decomposition of the smaller Gram matrix.
    """

    def __init__(self, m: int | None = None, n: int | None = None, seed: int = 0, matrix: torch.Tensor | None = None,
                 signal_shape: Sequence[int] | None = None):
        if matrix is None:
            if not (isinstance(m, int) and isinstance(n, int) and m > 0 and n > 0):
                raise ValueError(f"m and n must be positive ints when no matrix is given, got m={m!r}, n={n!r}")
            g = torch.Generator().manual_seed(seed)
            matrix = torch.randn(m, n, generator=g, dtype=torch.float64) / m**0.5
        matrix = check_tensor("matrix", matrix)
        if matrix.ndim != 2:
            raise ValueError(f"matrix must have shape (m, n), got shape {tuple(matrix.shape)}")
        m, n = matrix.shape
        signal_shape = (n,) if signal_shape is None else tuple(signal_shape)
        numel = 1
        for s in signal_shape:
            numel *= s
        if numel != n:
            raise ValueError(f"signal_shape {signal_shape} has {numel} entries, but the matrix has n={n} columns")
        super().__init__(signal_shape, (m,))
        self.register_buffer("matrix", matrix.float())
        self.register_buffer("_lam", None, persistent=False)
        self.register_buffer("_U", None, persistent=False)

    def _sensing_matrix(self) -> torch.Tensor:
        return self.matrix

    @property
    def m(self) -> int:
        return self.matrix.shape[0]

    @property
    def n(self) -> int:
        return self.matrix.shape[1]

    def _forward(self, x):
        return x.flatten(1) @ match(self.matrix, x).T

    def _adjoint(self, y):
        return (y @ match(self.matrix, y)).reshape((y.shape[0],) + self.in_shape)

    def solve_normal(self, b, rho, tol=None, max_iter=None, x0=None):
        b = self.check_input(b, "b")
        flat = b.flatten(1)
        rho_t = rho_tensor(rho, flat)
        if bool((rho_t <= 0).any()):
            raise ValueError(f"rho must be > 0, got {rho!r}")
        return _woodbury_solve(self.matrix, *self._factors(), flat, rho_t).reshape(b.shape)


def _ratio_to_m(ratio: float, n: int) -> int:
    pct = round(ratio * 100)
    if n == 1089 and abs(ratio * 100 - pct) < 1e-9 and pct in ISTANET_MEASUREMENTS:
        return ISTANET_MEASUREMENTS[pct]
    return max(1, round(ratio * n))


class BlockCompressedSensing(_GramFactors, LinearOperator):
    r"""Block compressed sensing (ISTA-Net setting): every ``block × block`` tile measured by one :math:`\Phi`.

    Parameters
    ----------
    ratio:
        CS ratio :math:`m / B^2` in [0.01, 0.5]; the ISTA-Net measurement counts are used for 1, 4,
        10, 25, 30, 40, 50 % with 33×33 blocks. Ignored when ``phi`` is given.
    image_size:
        ``(H, W)`` of the images. With it, images whose sides are not multiples of ``block`` are
        zero-padded on the right/bottom and the adjoint crops back. Without it, any size that is a
        multiple of ``block`` is accepted.
    phi:
        ``(m, B²)`` sampling matrix; by default a Gaussian matrix with orthonormal rows from ``seed``.
    qinit:
        ``(B², m)`` least-squares initialisation; ``init(y)`` uses it when given, else :math:`\Phi^\top y`.

    Shapes: ``x`` is ``(B, C, H, W)``; ``y`` is ``(B, C, Hb, Wb, m)``, one measurement vector per tile.
    The whole operator is one reshape and one matmul (no loop over blocks).
    """

    def __init__(self, ratio: float | None = 0.25, image_size: Sequence[int] | int | None = None, block: int = 33,
                 phi: torch.Tensor | None = None, qinit: torch.Tensor | None = None, seed: int = 0):
        if not isinstance(block, int) or block < 1:
            raise ValueError(f"block must be a positive int, got {block!r}")
        n = block * block
        if phi is None:
            if ratio is None:
                raise ValueError("ratio must be given when phi is not")
            check_range("ratio", ratio, 0.01, 0.5)
            m = _ratio_to_m(float(ratio), n)
            g = torch.Generator().manual_seed(seed)
            q, _ = torch.linalg.qr(torch.randn(n, m, generator=g, dtype=torch.float64))
            phi = q.T.contiguous()
        phi = check_tensor("phi", phi)
        if phi.ndim != 2 or phi.shape[1] != n:
            raise ValueError(f"phi must have shape (m, {n}) for block={block}, got shape {tuple(phi.shape)}")
        m = phi.shape[0]
        if qinit is not None:
            qinit = check_tensor("qinit", qinit)
            if tuple(qinit.shape) != (n, m):
                raise ValueError(f"qinit must have shape ({n}, {m}) to match phi, got shape {tuple(qinit.shape)}")
        if isinstance(image_size, int):
            image_size = (image_size, image_size)
        if image_size is not None:
            image_size = tuple(int(s) for s in image_size)
            if len(image_size) != 2 or min(image_size) < 1:
                raise ValueError(f"image_size must be (H, W) with positive sides, got {image_size!r}")
            H, W = image_size
            hb, wb = -(-H // block), -(-W // block)
            super().__init__((None, H, W), (None, hb, wb, m))
        else:
            super().__init__((None, None, None), (None, None, None, m))
        self.block = block
        self.image_size = image_size
        self.register_buffer("phi", phi.float())
        self.register_buffer("qinit", None if qinit is None else qinit.float())
        self.register_buffer("_lam", None, persistent=False)
        self.register_buffer("_U", None, persistent=False)

    def _sensing_matrix(self) -> torch.Tensor:
        return self.phi

    @classmethod
    def from_mat(cls, phi_path, qinit_path=None, image_size=None, block: int = 33) -> "BlockCompressedSensing":
        """Load Φ (variable ``phi``) and optionally Qinit (variable ``Qinit``) from ISTA-Net ``.mat`` files."""
        phi = load_mat_array(phi_path, ["phi", "Phi"])
        qinit = None if qinit_path is None else load_mat_array(qinit_path, ["Qinit", "qinit"])
        return cls(None, image_size=image_size, block=block, phi=phi, qinit=qinit)

    def resized(self, image_size: Sequence[int] | int | None, copy: bool = False) -> "BlockCompressedSensing":
        """The same Φ and Qinit (device, dtype and any computed ΦΦᵀ factors included) for another image size; the
        buffers are shared, or with ``copy=True`` copied (so that loading weights into one leaves the other)."""
        op = BlockCompressedSensing(None, image_size=image_size, block=self.block, phi=self.phi, qinit=self.qinit)
        for name, buf in self.named_buffers(recurse=False):
            setattr(op, name, None if buf is None else (buf.clone() if copy else buf))
        return op

    @property
    def m(self) -> int:
        return self.phi.shape[0]

    @property
    def ratio(self) -> float:
        return self.m / self.block**2

    # ---- tiling ------------------------------------------------------------------------------
    def _check_divisible(self, H: int, W: int) -> None:
        if self.image_size is None and (H % self.block or W % self.block):
            raise ValueError(
                f"{self.name}: image sides must be multiples of block={self.block} when image_size is not given, "
                f"got {(H, W)}; pass image_size=({H}, {W}) to pad and crop automatically"
            )

    def to_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, Hb, Wb, block²)``, zero-padding right/bottom; row-major tiles."""
        B, C, H, W = x.shape
        self._check_divisible(H, W)
        b = self.block
        ph, pw = (-H) % b, (-W) % b
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph))
        hb, wb = (H + ph) // b, (W + pw) // b
        return x.reshape(B, C, hb, b, wb, b).permute(0, 1, 2, 4, 3, 5).reshape(B, C, hb, wb, b * b)

    def from_blocks(self, blocks: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_blocks` (crops to ``image_size`` when set)."""
        B, C, hb, wb, _ = blocks.shape
        b = self.block
        x = blocks.reshape(B, C, hb, wb, b, b).permute(0, 1, 2, 4, 3, 5).reshape(B, C, hb * b, wb * b)
        if self.image_size is not None:
            x = x[..., : self.image_size[0], : self.image_size[1]]
        return x

    def _forward(self, x):
        return self.to_blocks(x) @ match(self.phi, x).T

    def _adjoint(self, y):
        return self.from_blocks(y @ match(self.phi, y))

    def init(self, y):
        y = self.check_output(y)
        if self.qinit is None:
            return self._adjoint(y)
        return self.from_blocks(y @ match(self.qinit, y).T)

    def solve_normal(self, b, rho, tol=1e-6, max_iter=100, x0=None):
        r"""Exact per-tile Woodbury solve when no cropping is involved; CG otherwise (cropping couples tiles)."""
        b = self.check_input(b, "b")
        H, W = b.shape[-2:]
        if H % self.block or W % self.block:
            return super().solve_normal(b, rho, tol=tol, max_iter=max_iter, x0=x0)
        rho_t = rho_tensor(rho, b, ndim=5)
        if bool((rho_t <= 0).any()):
            raise ValueError(f"rho must be > 0, got {rho!r}")
        return self.from_blocks(_woodbury_solve(self.phi, *self._factors(), self.to_blocks(b), rho_t))

    def extra_repr(self) -> str:
        return f"m={self.m}, block={self.block}, ratio={self.ratio:.4f}, image_size={self.image_size}"


def fit_qinit(phi: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    r"""Least-squares initialisation :math:`Q = X Y^\top (Y Y^\top)^{-1}` from training blocks.

    ``blocks`` is ``(N, B²)`` (rows are flattened tiles), :math:`Y = \Phi X`. Returns ``(B², m)``. The
    ``m × m`` system :math:`Y Y^\top` is singular, or nearly so, unless there are well over ``m`` blocks, and a
    solver would then return a Qinit of noise without a word; fewer than ``2 m`` blocks are refused.
    """
    m = phi.shape[0]
    if blocks.ndim != 2 or blocks.shape[1] != phi.shape[1]:
        raise ValueError(f"blocks: expected (N, {phi.shape[1]}) flattened blocks for a Φ of shape "
                         f"{tuple(phi.shape)}, got {tuple(blocks.shape)}")
    if blocks.shape[0] < 2 * m:
        raise ValueError(f"blocks: expected at least 2·m = {2 * m} blocks to fit Qinit (m = {m} measurements per "
                         f"block), got {blocks.shape[0]}")
    X = blocks.double().T
    Y = phi.double() @ X
    return torch.linalg.solve(Y @ Y.T, Y @ X.T).T.to(phi.dtype)
