import subprocess
import sys

import numpy as np
import pytest
import torch

import proxlab.data as data
from proxlab.data import _common

PUBLIC = {
    "mnist5k", "MNIST5K_SPLITS", "skimage_image", "SKIMAGE_IMAGES", "lfw_faces", "shepp_logan",
    "random_ellipses", "rasterize_ellipses", "read_idx", "load_idx_images", "IDX_DTYPES", "load_image",
    "ImageFolder", "load_set11", "SET11_NAMES", "IMAGE_EXTENSIONS", "extract_patches", "extract_blocks",
    "assemble_blocks", "random_patches", "augment_dihedral", "MeasurementPairs",
}  # fmt: skip


def test_public_names():
    assert PUBLIC <= set(data.__all__)
    for name in data.__all__:
        assert hasattr(data, name), name


def test_import_is_light():
    code = (
        "import sys, proxlab.data; "
        "print(sorted(m for m in ('skimage', 'PIL', 'mlxtend', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class TestAsSize:
    def test_values(self):
        assert _common.as_size("size", 5) == (5, 5)
        assert _common.as_size("size", (3, 4)) == (3, 4)
        assert _common.as_size("size", np.int64(7)) == (7, 7)

    def test_errors(self):
        with pytest.raises(TypeError, match="size: expected an int or a pair"):
            _common.as_size("size", True)
        with pytest.raises(TypeError, match="size: expected an int or a pair"):
            _common.as_size("size", (3.0, 4))
        with pytest.raises(ValueError, match=r"size must be positive, got \(3, -1\)"):
            _common.as_size("size", (3, -1))


class TestResize:
    def test_identity_and_none(self):
        x = torch.rand(2, 1, 8, 8)
        assert _common.resize(x, None) is x and _common.resize(x, 8) is x

    def test_constant_preserved_and_range(self):
        x = torch.full((1, 3, 17, 23), 0.3)
        for size in (5, (40, 7)):
            y = _common.resize(x, size)
            assert torch.allclose(y, torch.full_like(y, 0.3), atol=1e-6)
        z = _common.resize((torch.rand(1, 1, 33, 33) > 0.5).float(), 100)
        assert 0.0 <= z.min() and z.max() <= 1.0

    def test_downsample_by_two_is_block_mean(self):
        # anti-aliased bilinear by an integer factor of 2 on a smooth ramp equals 2x2 means
        x = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 1, 16, 16).contiguous()
        y = _common.resize(x, 8)
        assert torch.allclose(y[..., 2:-2], torch.nn.functional.avg_pool2d(x, 2)[..., 2:-2], atol=1e-6)


class TestToUnitTensor:
    def test_dtypes(self):
        assert torch.equal(_common.to_unit_tensor(np.array([0, 255], np.uint8), "a"), torch.tensor([0.0, 1.0]))
        assert torch.equal(_common.to_unit_tensor(np.array([0, 65535], np.uint16), "a"), torch.tensor([0.0, 1.0]))
        assert torch.equal(_common.to_unit_tensor(np.array([True, False]), "a"), torch.tensor([1.0, 0.0]))
        out = _common.to_unit_tensor(np.array([0.25], np.float64), "a")
        assert out.dtype == torch.float32 and out.item() == 0.25

    def test_errors(self):
        with pytest.raises(ValueError, match=r"src: float values must lie in \[0, 1\]"):
            _common.to_unit_tensor(np.array([-0.1, 0.5]), "src")
        with pytest.raises(ValueError, match=r"src: float values must lie in \[0, 1\]"):
            _common.to_unit_tensor(np.array([np.nan]), "src")
        with pytest.raises(ValueError, match="src: unsupported pixel type int32"):
            _common.to_unit_tensor(np.array([1], np.int32), "src")


def test_luma_weights():
    rgb = torch.eye(3).view(3, 3, 1, 1)  # pure R, G, B as a batch of 3
    assert torch.allclose(_common.luma(rgb).flatten(), torch.tensor([0.299, 0.587, 0.114]))


def test_item_seed_stable_and_distinct():
    seeds = {_common.item_seed(0, i) for i in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
    assert _common.item_seed(1, 0) != _common.item_seed(0, 1)
    assert _common.item_seed(3, 4) == _common.item_seed(3, 4)


def test_check_int():
    assert _common.check_int("n", np.int32(3), low=1) == 3
    with pytest.raises(TypeError, match="n: expected an int, got True"):
        _common.check_int("n", True)
    with pytest.raises(ValueError, match="n must be >= 2, got 1"):
        _common.check_int("n", 1, low=2)
