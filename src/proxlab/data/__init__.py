"""Real data with no download, image files, phantoms, patches and measurement pairs (layer 4).

Conventions: functions return ``float32`` batches ``(N, C, H, W)`` in ``[0, 1]`` (``N = 1`` for one
image); Datasets (:class:`ImageFolder`, :class:`MeasurementPairs`) return single samples
``(C, H, W)``, which a ``DataLoader`` stacks into ``(B, C, H, W)``. scikit-image, PIL, mlxtend and pydicom
are imported inside the functions that use them. Volumes (:mod:`.volumes`) are ``(S, H, W)`` stacks of slices.
"""

from .files import IMAGE_EXTENSIONS, SET11_NAMES, ImageFolder, load_image, load_set11
from .idx import IDX_DTYPES, load_idx_images, read_idx
from .pairs import MeasurementPairs
from .patches import assemble_blocks, augment_dihedral, extract_blocks, extract_patches, random_patches
from .phantoms import random_ellipses, rasterize_ellipses, shepp_logan
from .sources import MNIST5K_SPLITS, SKIMAGE_IMAGES, lfw_faces, mnist5k, skimage_image
from .volumes import load_volume, read_dicom_series, scale_volume

__all__ = [
    "mnist5k",
    "MNIST5K_SPLITS",
    "skimage_image",
    "SKIMAGE_IMAGES",
    "lfw_faces",
    "shepp_logan",
    "random_ellipses",
    "rasterize_ellipses",
    "read_idx",
    "load_idx_images",
    "IDX_DTYPES",
    "load_image",
    "ImageFolder",
    "load_set11",
    "SET11_NAMES",
    "IMAGE_EXTENSIONS",
    "extract_patches",
    "extract_blocks",
    "assemble_blocks",
    "random_patches",
    "augment_dihedral",
    "MeasurementPairs",
    "load_volume",
    "read_dicom_series",
    "scale_volume",
    "fetch_photos",
    "PHOTOS",
]


def __getattr__(name: str):
    # loaded on first use, so that ``python -m proxlab.data.photos`` does not find its module already imported
    if name in ("fetch_photos", "PHOTOS"):
        from . import photos

        return getattr(photos, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
