r"""Image volumes (a stack of slices) from ``.npy`` / ``.npz`` files and DICOM series, and HU windows.

Conventions: a volume is a ``float32`` tensor ``(S, H, W)``: ``S`` slices of ``H × W`` pixels, slice
``s`` is ``volume[s]``, and values are kept as stored (no scaling): for a CT DICOM series that is
Hounsfield units, :math:`\mathrm{HU} = \text{stored} \cdot \text{RescaleSlope} + \text{RescaleIntercept}`.
:func:`scale_volume` maps a window ``[low, high]`` to ``[0, 1]``, the range of proxlab's images.
``.npy`` / ``.npz`` files are read with ``allow_pickle=False``; pydicom is an optional dependency
(``pip install "proxlab[dicom]"``), imported inside :func:`read_dicom_series`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["load_volume", "read_dicom_series", "scale_volume"]


def _as_volume(array: np.ndarray, what: str) -> torch.Tensor:
    if array.ndim != 3:
        raise ValueError(f"{what}: expected an array of 3 dimensions (S, H, W), got shape {tuple(array.shape)}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == np.bool_):
        raise ValueError(f"{what}: expected integer, float or bool values, got dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def load_volume(path: str | Path, key: str | None = None) -> torch.Tensor:
    """The 3-D array of a ``.npy`` or ``.npz`` file as a ``float32`` tensor ``(S, H, W)``, values unchanged.

    For ``.npz``, ``key`` names the array; without it the file must hold exactly one array.
    """
    path = Path(path)
    if path.suffix.lower() not in (".npy", ".npz"):
        raise ValueError(f"path: expected a .npy or .npz file, got {str(path)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"path: no such file {str(path)!r}")
    if path.suffix.lower() == ".npy":
        if key is not None:
            raise ValueError(f"key: a .npy file holds one array, so expected key=None, got {key!r}")
        return _as_volume(np.load(path, allow_pickle=False), str(path))
    with np.load(path, allow_pickle=False) as archive:
        keys = list(archive.files)
        if key is None:
            if len(keys) != 1:
                raise ValueError(f"key: {str(path)!r} holds {len(keys)} arrays, so name one of {keys}")
            key = keys[0]
        elif key not in keys:
            raise ValueError(f"key: expected one of {keys} (the arrays of {str(path)!r}), got {key!r}")
        return _as_volume(archive[key], f"{path}[{key!r}]")


def scale_volume(volume: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Clip ``volume`` to ``[low, high]`` and map it linearly to ``[0, 1]``: ``(clip(v) - low) / (high - low)``.

    E.g. a soft-tissue window ``low, high = -160, 240`` HU; ``low = 0, high = m`` divides by ``m``.
    """
    if not torch.is_tensor(volume):
        raise TypeError(f"volume: expected a torch.Tensor, got {type(volume).__name__}")
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"low, high: expected finite numbers with low < high, got low={low!r}, high={high!r}")
    v = volume.float().clamp(low, high)
    return ((v - low) / (high - low)).clamp_(0.0, 1.0)


def _import_pydicom():
    try:
        import pydicom
    except ImportError as e:
        raise ImportError('read_dicom_series needs pydicom, an optional dependency: '
                          'pip install "proxlab[dicom]"') from e
    return pydicom


def _slice_normal(ds) -> np.ndarray | None:
    iop = getattr(ds, "ImageOrientationPatient", None)
    if iop is None or len(iop) != 6:
        return None
    row, col = np.asarray(iop[:3], dtype=np.float64), np.asarray(iop[3:], dtype=np.float64)
    return np.cross(row, col)


def _sort_slices(slices: list[tuple[Path, Any]]) -> tuple[list[tuple[Path, Any]], list[float] | None, str]:
    """Slices in ascending position along the normal ``n = row × column`` direction of
    ImageOrientationPatient (``pos = ImagePositionPatient · n``), else by InstanceNumber."""
    normal = _slice_normal(slices[0][1])
    if normal is not None and all(getattr(ds, "ImagePositionPatient", None) is not None for _, ds in slices):
        pos = [float(np.dot(np.asarray(ds.ImagePositionPatient, dtype=np.float64), normal)) for _, ds in slices]
        order = np.argsort(pos, kind="stable")
        pos = [pos[i] for i in order]
        dup = [i for i in range(1, len(pos)) if np.isclose(pos[i], pos[i - 1], rtol=0, atol=1e-6)]
        if dup:
            f = [slices[order[i]][0].name for i in (dup[0] - 1, dup[0])]
            raise ValueError(f"folder: files {f[0]!r} and {f[1]!r} lie at the same slice position {pos[dup[0]]:g}")
        return [slices[i] for i in order], pos, "ImagePositionPatient"
    missing = [p.name for p, ds in slices if getattr(ds, "InstanceNumber", None) is None]
    if missing:
        raise ValueError(f"folder: cannot order the slices: {missing[0]!r} has neither ImagePositionPatient "
                         "(with ImageOrientationPatient) nor InstanceNumber")
    return sorted(slices, key=lambda s: int(s[1].InstanceNumber)), None, "InstanceNumber"


def read_dicom_series(folder: str | Path) -> tuple[torch.Tensor, dict[str, Any]]:
    """Read the DICOM slices of ``folder`` into a ``float32`` volume ``(S, H, W)`` and an info dict.

    Every file of ``folder`` (not its sub-folders) is tried; files that are not DICOM, or that hold no
    pixel data, are skipped. All slices must belong to one series and share Rows and Columns. Slices are
    ordered by ascending position ``ImagePositionPatient · n`` along the normal ``n = row × column``
    direction of ImageOrientationPatient, or by InstanceNumber where a slice lacks those; each slice's
    RescaleSlope / RescaleIntercept is applied (Hounsfield units for CT).

    ``info``: ``files`` (names in slice order), ``sorted_by``, ``slice_positions`` (mm along the normal,
    ascending; ``None`` when sorted by InstanceNumber), ``pixel_spacing`` (row, column spacing in mm, or
    ``None``), ``slice_thickness``, ``modality``, ``series_uid``, ``skipped`` (names of files not read).
    """
    pydicom = _import_pydicom()
    from pydicom.errors import InvalidDicomError

    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"folder: expected a folder of DICOM files, got {str(folder)!r}")
    slices, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
        except (InvalidDicomError, EOFError, OSError):
            skipped.append(path.name)
            continue
        if "PixelData" not in ds:
            skipped.append(path.name)
            continue
        slices.append((path, ds))
    if not slices:
        raise ValueError(f"folder: no DICOM image files in {str(folder)!r} ({len(skipped)} other files)")
    series = sorted({str(getattr(ds, "SeriesInstanceUID", "")) for _, ds in slices})
    if len(series) > 1:
        raise ValueError(f"folder: expected the slices of one series, got {len(series)} SeriesInstanceUIDs: {series}")
    first = slices[0]
    shape = (int(first[1].Rows), int(first[1].Columns))
    for path, ds in slices:
        if (int(ds.Rows), int(ds.Columns)) != shape:
            raise ValueError(f"folder: every slice must have the same Rows x Columns; {path.name!r} is "
                             f"{int(ds.Rows)}x{int(ds.Columns)}, {first[0].name!r} is {shape[0]}x{shape[1]}")
    slices, positions, sorted_by = _sort_slices(slices)
    volume = np.empty((len(slices), *shape), dtype=np.float32)
    for i, (_, ds) in enumerate(slices):
        slope = float(getattr(ds, "RescaleSlope", 1.0))
        intercept = float(getattr(ds, "RescaleIntercept", 0.0))
        volume[i] = ds.pixel_array.astype(np.float64) * slope + intercept
    ref = slices[0][1]
    spacing = getattr(ref, "PixelSpacing", None)
    thickness = getattr(ref, "SliceThickness", None)
    info = {
        "files": [p.name for p, _ in slices],
        "sorted_by": sorted_by,
        "slice_positions": positions,
        "pixel_spacing": None if spacing is None else (float(spacing[0]), float(spacing[1])),
        "slice_thickness": None if thickness in (None, "") else float(thickness),
        "modality": str(getattr(ref, "Modality", "")),
        "series_uid": series[0],
        "skipped": skipped,
    }
    return torch.from_numpy(volume), info
