r"""Parallel-beam computed tomography: a 2-D Radon transform with an exact adjoint, and FBP.

The discrete Radon transform here is the rotate-and-sum model of :func:`skimage.transform.radon`
(Kak & Slaney, 1988): each ray is sampled at unit steps and the image is read at every sample by
bilinear interpolation. All sample positions and weights are computed once and stored as sparse
CSR matrices together with their transposes, so that ``forward`` is a sparse matrix product and
``adjoint`` applies the transposes of the very same weights: the adjoint is exact to rounding. For
angle sets closed under the quarter turns and flips of the pixel grid, only the rays of the angles
in [0°, 45°] are stored and applied to four re-indexed copies of the image.

References
----------
A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*, IEEE Press, 1988,
chapter 3 (parallel-beam filtered back-projection, the band-limited ramp filter of eq. 61).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .._checks import check_choice, check_shape
from .base import LinearOperator

__all__ = ["ParallelBeamCT", "FBP_FILTERS"]

FBP_FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")

# Largest number of (ray, sample, corner) entries processed at once while building the matrix.
_BUILD_CHUNK = 1 << 20


def _as_angles(angles: int | Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Projection angles in degrees as a float64 CPU tensor (validated)."""
    if isinstance(angles, bool):
        raise TypeError(f"angles: expected an int or a 1-D array of degrees, got {angles!r}")
    if isinstance(angles, int):
        if angles < 1:
            raise ValueError(f"angles must be >= 1 when given as a count, got {angles}")
        return torch.arange(angles, dtype=torch.float64) * (180.0 / angles)
    try:
        theta = torch.as_tensor(angles, dtype=torch.float64, device="cpu")
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"angles: expected an int or a 1-D array of degrees, got {type(angles).__name__}") from None
    if theta.ndim != 1 or theta.numel() == 0:
        raise ValueError(f"angles must be a non-empty 1-D array of degrees, got shape {tuple(theta.shape)}")
    if not bool(torch.isfinite(theta).all()):
        raise ValueError("angles must be finite, got NaN or inf")
    return theta.clone()


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected a positive int, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value}")
    return value


def _radon_matrix(size: int, theta_deg: torch.Tensor, t: torch.Tensor, s: torch.Tensor):
    r"""COO triplets ``(row, col, weight)`` of the bilinear rotate-and-sum Radon matrix.

    Ray ``(i, d)`` (row ``i * len(t) + d``) of angle ``theta_deg[i]`` at detector offset ``t[d]`` is
    read at the offsets ``s`` along it; column ``row * size + col`` is a pixel of a ``size``-square
    grid with axis ``(size // 2, size // 2)``. Rows come out sorted, columns sorted within each row,
    duplicates summed and zero weights dropped.
    """
    theta = theta_deg.to(torch.float64) * (math.pi / 180.0)
    center = size // 2
    npix = size * size
    n_t, n_s = t.numel(), s.numel()
    t = t.to(torch.float64)[None, :, None]
    s = s.to(torch.float64)[None, None, :]
    step = max(1, _BUILD_CHUNK // (4 * n_t * n_s))
    rows, cols, vals = [], [], []
    for a0 in range(0, theta.numel(), step):
        th = theta[a0 : a0 + step]
        cos, sin = th.cos()[:, None, None], th.sin()[:, None, None]
        # Sample k of ray (angle, d): column x = c + t cos + s sin, row y = c - t sin + s cos.
        x = center + t * cos + s * sin
        y = center - t * sin + s * cos
        x0, y0 = x.floor(), y.floor()
        fx, fy = x - x0, y - y0
        x0, y0 = x0.long(), y0.long()
        corners = ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx))
        idx, wgt = [], []
        for dy, dx, w in corners:
            xi, yi = x0 + dx, y0 + dy
            ok = (xi >= 0) & (xi < size) & (yi >= 0) & (yi < size) & (w != 0)
            idx.append(torch.where(ok, yi * size + xi, npix))  # npix marks "no pixel"
            wgt.append(torch.where(ok, w, 0.0))
        n_rays = th.numel() * n_t
        idx = torch.stack(idx, 2).reshape(n_rays, 4 * n_s)
        wgt = torch.stack(wgt, 2).reshape(n_rays, 4 * n_s)
        # Merge the entries of a ray that hit the same pixel: sort per ray, sum equal keys.
        idx, perm = idx.sort(dim=1)
        wgt = wgt.gather(1, perm)
        key = (torch.arange(n_rays)[:, None] * (npix + 1) + idx).reshape(-1)
        ukey, inverse = torch.unique_consecutive(key, return_inverse=True)
        wsum = torch.zeros(ukey.numel(), dtype=torch.float64).index_add_(0, inverse, wgt.reshape(-1))
        col = ukey % (npix + 1)
        keep = (col < npix) & (wsum != 0)
        rows.append(ukey[keep] // (npix + 1) + a0 * n_t)
        cols.append(col[keep])
        vals.append(wsum[keep])
    return torch.cat(rows), torch.cat(cols), torch.cat(vals)


# The lattice symmetries of the pixel grid modulo the half turn, as [[a, b], [c, d]] acting on
# offsets (u, v) = (column - c, row - c): identity, quarter turn, row flip, row flip after quarter
# turn. They map the ray directions [0°, 45°] onto all of [0°, 180°).
_SYMMETRIES = ((1, 0, 0, 1), (0, -1, 1, 0), (1, 0, 0, -1), (0, -1, -1, 0))


def _symmetry_plan(theta_deg: torch.Tensor):
    r"""Write every angle as a base angle in [0°, 45°] seen through a lattice symmetry.

    For each symmetry :math:`g` and angle :math:`\theta` with ray direction :math:`e(\theta) =
    (\cos\theta, -\sin\theta)` along the detector, :math:`g e(b) = \sigma e(\theta)` for one
    :math:`b \in [0°, 180°)` and :math:`\sigma = \pm 1`; then
    :math:`R[x](\theta, t) = R[x \circ g](b, \sigma t)` when the samples along a ray are symmetric.
    Returns the distinct base angles, and per angle the symmetry, the base index and :math:`\sigma`.
    """
    th = theta_deg * (math.pi / 180.0)
    e0, e1 = th.cos(), -th.sin()
    bases, signs = [], []
    for a, b, c, d in _SYMMETRIES:
        w0, w1 = a * e0 + c * e1, b * e0 + d * e1  # g^T e = g^{-1} e
        beta = torch.rad2deg(torch.atan2(-w1, w0))
        base = torch.remainder(beta, 180.0)
        bases.append(base)
        signs.append(torch.where((beta >= 0) & (beta < 180.0), 1, -1))
    bases, signs = torch.stack(bases, 1), torch.stack(signs, 1)
    element = (bases <= 45.0 + 1e-9).long().argmax(dim=1)  # first symmetry landing in [0°, 45°]
    base = bases.gather(1, element[:, None])[:, 0]
    sign = signs.gather(1, element[:, None])[:, 0]
    keys, base_index = torch.unique(torch.round(base * 1e9).long(), return_inverse=True)
    base_deg = torch.zeros(keys.numel(), dtype=torch.float64).scatter_(0, base_index, base)
    return base_deg, element, base_index, sign


def _copy_indices(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Index maps between an image and its four copies :math:`x_g(u, v) = x(g(u, v))` on the padded grid.

    ``gather`` (length ``side² * 4``, ``side = 2 (size // 2) + 1``) fills row ``p * 4 + g`` of the
    copies from the image flattened with one zero appended (index ``size²``, read by padded points).
    ``scatter`` (length ``4 * size²``, copy-major) reads back, for copy ``g`` and pixel ``j``, the row
    of the one padded point ``p`` with ``g(p) = j``: summing those is the adjoint of ``gather``.
    """
    c = size // 2
    side, k = 2 * c + 1, len(_SYMMETRIES)
    u = torch.arange(-c, c + 1)
    vv, uu = torch.meshgrid(u, u, indexing="ij")
    gather, scatter = [], []
    for g, (a, b, cc, d) in enumerate(_SYMMETRIES):
        su, sv = a * uu + b * vv, cc * uu + d * vv
        inside = ((su <= size - 1 - c) & (sv <= size - 1 - c)).reshape(-1)
        source = ((sv + c) * size + (su + c)).reshape(-1)
        gather.append(torch.where(inside, source, size * size))
        inverse = torch.empty(size * size, dtype=torch.long)
        inverse[source[inside]] = torch.arange(side * side)[inside] * k + g
        scatter.append(inverse)
    return torch.stack(gather, 1).reshape(-1), torch.cat(scatter)


def _csr_arrays(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, index_dtype: torch.dtype):
    """CSR ``crow`` for row-sorted COO ``rows`` and ``cols`` cast to ``index_dtype``."""
    crow = torch.zeros(n_rows + 1, dtype=torch.int64)
    crow[1:] = torch.bincount(rows, minlength=n_rows).cumsum(0)
    return crow.to(index_dtype), cols.to(index_dtype)


def _spmm(mat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``mat @ x`` for a dense ``x`` of shape (n, C); ``mv`` when C = 1 (MKL's fastest path)."""
    if x.shape[1] == 1:
        return torch.mv(mat, x[:, 0]).unsqueeze(1)
    return mat @ x.contiguous()


class _SparseLinear(torch.autograd.Function):
    """``X -> M X`` for X of shape (n, C), whose backward is ``G -> Mᵀ G`` with the stored transpose.

    The backward calls this function again, so it is differentiable any number of times.
    """

    @staticmethod
    def forward(ctx, x, mat, mat_t):
        ctx.mats = (mat, mat_t)
        return _spmm(mat, x)

    @staticmethod
    def backward(ctx, grad):
        mat, mat_t = ctx.mats
        return _SparseLinear.apply(grad, mat_t, mat), None, None


class ParallelBeamCT(LinearOperator):
    r"""2-D parallel-beam Radon transform :math:`(B, 1, n, n) \to (B, 1, n_\theta, n_d)`.

    With :math:`c = \lfloor n/2 \rfloor` the rotation axis (pixel ``(c, c)``, row then column),
    detector offsets :math:`t_d = d - \lfloor n_d/2 \rfloor` and ray samples
    :math:`s_k = k - \lfloor L/2 \rfloor`, :math:`k = 0, \dots, L-1`,

    .. math::

        y[b, 0, i, d] = \sum_{k=0}^{L-1} \tilde x_b\big(c + t_d\cos\theta_i + s_k\sin\theta_i,\;
                                                       c - t_d\sin\theta_i + s_k\cos\theta_i\big),

    where :math:`\tilde x(\text{col}, \text{row})` is the bilinear interpolation of the image (zero
    outside it). So detector offset :math:`t = x\cos\theta - y\sin\theta` with :math:`x` the column
    and :math:`y` the row offset from the axis. This is exactly
    ``skimage.transform.radon(x, theta=angles, circle=circle)`` (rotate-and-sum, Kak & Slaney 1988),
    whose sinogram is laid out ``(detectors, angles)``: ours is its transpose,
    ``y[b, 0] == radon(x[b, 0]).T``.

    :math:`A` is stored as sparse CSR matrices together with their transposes, built from the same
    weights, so the dot-product test holds to rounding; ``forward`` and ``adjoint`` are batched
    sparse products (MKL on CPU, cuSPARSE on GPU), with no loop over angles.

    When the angle set is (nearly) closed under the symmetries of the pixel grid (quarter turns and
    flips; e.g. any even number of equispaced angles) and ``symmetry`` is not ``False``, only the rays
    of the base angles in [0°, 45°] are stored, over the grid padded to odd side :math:`2c+1`, and
    applied at once to the four re-indexed copies :math:`x \circ g` of the image (exact: bilinear
    interpolation commutes with those symmetries); the sample :math:`s = -L/2` that makes an even
    :math:`L` asymmetric is kept in a small matrix of its own. This stores about 4x fewer weights and
    cuts the time for one image 2-3x (128², 180 angles, one thread: forward+adjoint about 2.2 ms
    instead of 4.5-6.5 ms); for batches of several images and small matrices the plain path
    (``symmetry=False``) can be faster (1.4-1.7x at 60 angles, batch 8), as the flops are the
    same and the re-indexing costs a little (``python benchmarks/bench_ct.py`` prints both).
    Memory: about two weights per ray sample, :math:`\approx 2\,n_\theta n_d L` (128², 180 angles:
    5.8 M plain, 1.5 M symmetric), each stored twice with int32 indices, in float64, plus a copy
    made at the first call in another dtype (``op.float()`` keeps float32 only). The matrices are
    non-persistent buffers: ``.to(device)`` moves them, ``state_dict`` skips them.

    Parameters
    ----------
    size:
        Image side :math:`n` (square images).
    angles:
        An int :math:`m` for :math:`m` equispaced angles ``180 * arange(m) / m`` degrees
        (``np.linspace(0, 180, m, endpoint=False)``), or a 1-D array of angles in degrees.
    detectors:
        Number of detector bins :math:`n_d` (unit spacing, axis at bin :math:`\lfloor n_d/2 \rfloor`).
        Default: :math:`n` if ``circle`` else :math:`\lceil\sqrt2\,n\rceil`, as skimage.
    circle:
        Assume the image is zero outside the inscribed circle: rays are :math:`L = n` samples long
        and :meth:`fbp` zeroes the reconstruction outside the circle. Otherwise
        :math:`L = \lceil\sqrt2\,n\rceil`, which covers the whole square.
    symmetry:
        Use the grid symmetries (``True``), not (``False``), or exactly when the distinct base angles
        number at most half the angles (``None``, default). Both paths give the same operator up to
        rounding (``symmetric`` tells which one is used).
    """

    def __init__(
        self,
        size: int,
        angles: int | Sequence[float] | torch.Tensor,
        detectors: int | None = None,
        circle: bool = True,
        *,
        symmetry: bool | None = None,
    ):
        size = _positive_int("size", size)
        theta = _as_angles(angles)
        if not isinstance(circle, bool):
            raise TypeError(f"circle: expected a bool, got {circle!r} ({type(circle).__name__})")
        if symmetry is not None and not isinstance(symmetry, bool):
            raise TypeError(f"symmetry: expected a bool or None, got {symmetry!r} ({type(symmetry).__name__})")
        samples = size if circle else math.ceil(math.sqrt(2) * size)
        detectors = samples if detectors is None else _positive_int("detectors", detectors)
        n_angles = theta.numel()
        super().__init__((1, size, size), (1, n_angles, detectors))
        self.size, self.detectors, self.samples, self.circle = size, detectors, samples, circle
        self.angles = theta  # degrees, float64, CPU (geometry, not moved with the module)
        self._shapes: dict[str, tuple[int, int]] = {}

        f64 = torch.float64
        t_all = torch.arange(detectors, dtype=f64) - detectors // 2
        s_all = torch.arange(samples, dtype=f64) - samples // 2
        base_deg, element, base_index, sign = _symmetry_plan(theta)
        self.symmetric = bool(2 * base_deg.numel() <= n_angles) if symmetry is None else symmetry
        if not self.symmetric:
            self._add_matrix("main", _radon_matrix(size, theta, t_all, s_all), (n_angles * detectors, size * size))
        else:
            half, c = detectors // 2, size // 2  # detector offsets -half..half cover t_all and -t_all
            side, width = 2 * c + 1, 2 * half + 1
            s_half = samples - 1 - samples // 2
            s_sym = torch.arange(-s_half, s_half + 1, dtype=f64)
            n_base_rows = base_deg.numel() * width
            self._add_matrix("base", _radon_matrix(side, base_deg, torch.arange(-half, half + 1, dtype=f64), s_sym),
                             (n_base_rows, side * side))
            if samples % 2 == 0:  # s_all = s_sym plus one sample at -samples / 2
                end = _radon_matrix(size, theta, t_all, torch.tensor([-(samples // 2)], dtype=f64))
                self._add_matrix("end", end, (n_angles * detectors, size * size))
            gather, scatter = _copy_indices(size)
            self.register_buffer("_gather", gather, persistent=False)
            self.register_buffer("_scatter", scatter, persistent=False)
            k = len(_SYMMETRIES)
            # Output ray (angle i, bin d) is base row r = (base_index[i], sign[i] * t_d) of copy
            # element[i]: row r * 4 + element[i] of the (n_base_rows * 4, B) product.
            rows = base_index[:, None] * width + sign[:, None] * t_all.long()[None, :] + half
            select = (rows * k + element[:, None]).reshape(-1)
            self.register_buffer("_select", select, persistent=False)
            # Its adjoint as a gather when no two output rays are the same base ray (else index_add);
            # unused base rows read the appended zero row.
            self._select_injective = bool(torch.unique(select).numel() == select.numel())
            unselect = torch.full((n_base_rows * k,), select.numel(), dtype=torch.long)
            unselect[select] = torch.arange(select.numel())
            self.register_buffer("_unselect", unselect, persistent=False)
        yy, xx = torch.meshgrid(torch.arange(size) - size // 2, torch.arange(size) - size // 2, indexing="ij")
        self.register_buffer("_outside", (xx**2 + yy**2) > (size // 2) ** 2, persistent=False)
        self._csr_cache: dict = {}
        self._csr_tag: tuple = ()
        self._filter_cache: dict = {}

    def _add_matrix(self, name: str, coo: tuple[torch.Tensor, torch.Tensor, torch.Tensor], shape: tuple[int, int]):
        """Register a COO matrix (rows sorted) as CSR buffers of it and of its transpose."""
        rows, cols, vals = coo
        index_dtype = torch.int32 if max(rows.numel(), *shape) < 2**31 - 1 else torch.int64
        crow, col = _csr_arrays(rows, cols, shape[0], index_dtype)
        order = torch.sort(cols, stable=True).indices  # rows already sorted -> (col, row) order
        crow_t, col_t = _csr_arrays(cols[order], rows[order], shape[1], index_dtype)
        for suffix, value in (("crow", crow), ("col", col), ("val", vals), ("crow_t", crow_t), ("col_t", col_t),
                              ("val_t", vals[order])):
            self.register_buffer(f"_{name}_{suffix}", value, persistent=False)
        self._shapes[name] = shape

    def __getstate__(self):
        # The cached sparse tensors cannot be deep-copied or pickled; they are rebuilt on demand.
        state = dict(self.__dict__)
        state.update(_csr_cache={}, _csr_tag=(), _filter_cache={})
        return state

    @property
    def nnz(self) -> int:
        """Number of stored weights (of the matrices, not counting their transposes)."""
        return sum(int(getattr(self, f"_{name}_val").numel()) for name in self._shapes)

    def _check_dtype(self, t: torch.Tensor) -> None:
        if t.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{self.name}: expected a float32 or float64 tensor, got dtype {t.dtype}")

    def _matrices(self, like: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """CSR matrices and their transposes on ``like``'s device and dtype, cast once and cached."""
        self._check_dtype(like)
        key = (like.dtype, like.device)
        # buffers replaced (module .to() / .float()): drop every cached copy of the old ones
        buf = lambda name, part: getattr(self, f"_{name}_{part}")  # noqa: E731
        tag = tuple((buf(n, "val").data_ptr(), buf(n, "crow").data_ptr()) for n in self._shapes)
        if tag != self._csr_tag:
            self._csr_cache.clear()
            self._csr_tag = tag
        mats = self._csr_cache.get(key)
        if mats is None:
            mats = {}
            for name, (n_rows, n_cols) in self._shapes.items():
                crow, col, crow_t, col_t = (buf(name, k).to(like.device) for k in ("crow", "col", "crow_t", "col_t"))
                val, val_t = (buf(name, k).to(device=like.device, dtype=like.dtype) for k in ("val", "val_t"))
                with warnings.catch_warnings():  # torch's one-time "sparse CSR support is in beta" notice
                    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                    mats[name] = (
                        torch.sparse_csr_tensor(crow, col, val, (n_rows, n_cols), check_invariants=False),
                        torch.sparse_csr_tensor(crow_t, col_t, val_t, (n_cols, n_rows), check_invariants=False),
                    )
            self._csr_cache[key] = mats
        return mats

    # Internally data are (features, B) columns: the layout of MKL's / cuSPARSE's sparse @ dense.
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        cols = x.reshape(batch, -1).t()
        mats = self._matrices(x)
        if not self.symmetric:
            y = _SparseLinear.apply(cols, *mats["main"])
        else:
            copies = F.pad(cols, (0, 0, 0, 1)).index_select(0, self._gather).view(-1, len(_SYMMETRIES) * batch)
            y = _SparseLinear.apply(copies, *mats["base"]).view(-1, batch).index_select(0, self._select)
            if "end" in mats:
                y = y + _SparseLinear.apply(cols, *mats["end"])
        return y.t().reshape((batch,) + self.out_shape)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        batch = y.shape[0]
        cols = y.reshape(batch, -1).t()
        mats = self._matrices(y)
        if not self.symmetric:
            x = _SparseLinear.apply(cols, *reversed(mats["main"]))
        else:
            k = len(_SYMMETRIES)
            if self._select_injective:
                rows = F.pad(cols, (0, 0, 0, 1)).index_select(0, self._unselect)
            else:
                rows = cols.new_zeros(self._unselect.numel(), batch).index_add(0, self._select, cols)
            copies = _SparseLinear.apply(rows.view(-1, k * batch), *reversed(mats["base"])).view(-1, batch)
            x = copies.index_select(0, self._scatter).view(k, -1, batch).sum(0)
            if "end" in mats:
                x = x + _SparseLinear.apply(cols, *reversed(mats["end"]))
        return x.t().reshape((batch,) + self.in_shape)

    # ---- filtered back-projection ---------------------------------------------------------------
    def _fourier_filter(self, name: str, like: torch.Tensor) -> torch.Tensor:
        r"""Half-spectrum (``rfft`` layout) of skimage's FBP filter for this detector count."""
        key = (name, like.dtype, like.device)
        if key not in self._filter_cache:
            # skimage pads a circle sinogram to ceil(sqrt2 n_d) bins, then to a power of two >= 2x that.
            width = math.ceil(math.sqrt(2) * self.detectors) if self.circle else self.detectors
            n = max(64, 2 ** math.ceil(math.log2(2 * width)))
            # Band-limited ramp from its sampled spatial kernel (Kak & Slaney eq. 61).
            k = torch.cat((torch.arange(1, n // 2 + 1, 2), torch.arange(n // 2 - 1, 0, -2))).to(torch.float64)
            kernel = torch.zeros(n, dtype=torch.float64)
            kernel[0] = 0.25
            kernel[1::2] = -1.0 / (math.pi * k) ** 2
            filt = 2.0 * torch.fft.fft(kernel).real
            if name == "shepp-logan":
                omega = math.pi * torch.fft.fftfreq(n, dtype=torch.float64)[1:]
                filt[1:] *= torch.sin(omega) / omega
            elif name == "cosine":
                filt *= torch.fft.fftshift(torch.sin(torch.arange(n, dtype=torch.float64) * (math.pi / n)))
            elif name == "hamming":
                filt *= torch.fft.fftshift(torch.hamming_window(n, periodic=False, dtype=torch.float64))
            elif name == "hann":
                filt *= torch.fft.fftshift(torch.hann_window(n, periodic=False, dtype=torch.float64))
            # Re(ifft(fft(p) H)) of a real p only sees the even part of H: keep that, use rfft.
            filt = 0.5 * (filt + torch.roll(filt.flip(0), 1))
            self._filter_cache[key] = filt[: n // 2 + 1].to(device=like.device, dtype=like.dtype)
        return self._filter_cache[key]

    def filter_sinogram(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:  # noqa: A002
        r"""Convolve each projection with the FBP filter (zero-padded FFT along detectors, as skimage)."""
        check_shape("y", y, ("B",) + self.out_shape, where=f"{self.name}.filter_sinogram")
        check_choice("filter", filter, FBP_FILTERS)
        self._check_dtype(y)
        filt = self._fourier_filter(filter, y)
        n = 2 * (filt.numel() - 1)
        return torch.fft.irfft(torch.fft.rfft(y, n=n, dim=-1) * filt, n=n, dim=-1)[..., : self.detectors]

    def fbp(self, y: torch.Tensor, filter: str = "ramp") -> torch.Tensor:  # noqa: A002
        r"""Filtered back-projection :math:`\hat x = \frac{\pi}{2 n_\theta} A^\top (h * y)`.

        :math:`h` is the band-limited ramp filter of Kak & Slaney (1988, ch. 3, eq. 61), optionally
        windowed (``filter`` in ``"ramp"``, ``"shepp-logan"``, ``"cosine"``, ``"hamming"``,
        ``"hann"``), applied along detectors with the zero padding of ``skimage.transform.iradon``;
        the back-projection is the exact adjoint :math:`A^\top`, scaled by
        :math:`\pi / (2 n_\theta)` (the angular step :math:`\pi / n_\theta` of equispaced angles over
        180° times the 1/2 of skimage's filter normalisation, the same scale ``iradon`` uses). With
        ``circle=True`` pixels outside the inscribed circle are set to 0, as ``iradon`` does.
        """
        check_shape("y", y, ("B",) + self.out_shape, where=f"{self.name}.fbp")
        check_choice("filter", filter, FBP_FILTERS)
        x = self._adjoint(self.filter_sinogram(y, filter)) * (math.pi / (2 * self.out_shape[1]))
        if self.circle:
            x = x.masked_fill(self._outside.to(x.device), 0.0)
        return x

    def init(self, y: torch.Tensor) -> torch.Tensor:
        """First estimate: the ramp-filtered back-projection :meth:`fbp`."""
        return self.fbp(y)

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, angles={self.out_shape[1]}, detectors={self.detectors}, "
            f"circle={self.circle}, symmetric={self.symmetric}, nnz={self.nnz}"
        )
