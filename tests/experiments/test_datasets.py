"""An experiment's train / validation / test images from its ``[data]`` section: splits, sizes, patches,
determinism by seed, and the errors of ``build_splits``."""

import struct

import numpy as np
import pytest
import torch

from proxlab.experiments.config import DataConfig
from proxlab.experiments.datasets import build_splits


def rows(t):
    """The images of a batch as a set of byte strings (to test that splits are disjoint)."""
    return {bytes(im.numpy().tobytes()) for im in t}


def check_unit(*tensors):
    for t in tensors:
        assert t.dtype == torch.float32 and float(t.min()) >= 0 and float(t.max()) <= 1


def write_idx(path, array):
    """A uint8 IDX file (magic 0x0803 for 3 dims) holding ``array``."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    path.write_bytes(struct.pack(">HBB", 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes())


@pytest.fixture(scope="module")
def distinct_pool():
    """20 distinct 8×8 grey images (the value of pixel (0, 0) is the image's index)."""
    g = torch.Generator().manual_seed(0)
    arr = (torch.rand(20, 8, 8, generator=g) * 200).to(torch.uint8).numpy()
    arr[:, 0, 0] = np.arange(20)
    return arr


# ---------------------------------------------------------------- mnist5k

def test_mnist5k_named_splits_and_resize():
    s = build_splits(DataConfig(source="mnist5k"), seed=0)
    assert (s.train.shape, s.val.shape, s.test.shape) == ((4000, 1, 28, 28), (500, 1, 28, 28), (500, 1, 28, 28))
    assert not rows(s.train) & rows(s.test) and not rows(s.val) & rows(s.test)
    assert s.test_names[:2] == ["mnist5k-test-0", "mnist5k-test-1"] and len(s.test_names) == 500
    small = build_splits(DataConfig(source="mnist5k", size=14, train="val", val="val"), seed=0)
    assert small.train.shape == (500, 1, 14, 14) and torch.equal(small.train, small.val)
    check_unit(s.train, small.train)


def test_mnist5k_patches_for_training_and_validation_only():
    s = build_splits(DataConfig(source="mnist5k", patch_size=10, patches_per_image=2), seed=3)
    assert s.train.shape == (8000, 1, 10, 10) and s.val.shape == (1000, 1, 10, 10)
    assert s.test.shape == (500, 1, 28, 28)  # test images stay whole


# ---------------------------------------------------------------- skimage

def test_skimage_patches_with_a_held_out_tenth():
    cfg = DataConfig(source="skimage", names=("coffee", "chelsea"), test_names=("camera", "moon"), size=64,
                     patch_size=16, patches_per_image=10)
    s = build_splits(cfg, seed=1)
    assert s.train.shape == (18, 1, 16, 16) and s.val.shape == (2, 1, 16, 16)  # 20 patches, 10 % held out
    assert s.test.shape == (2, 1, 64, 64) and s.test_names == ["camera", "moon"]
    assert not rows(s.train) & rows(s.val)
    check_unit(s.train, s.val, s.test)
    again = build_splits(cfg, seed=1)
    other = build_splits(cfg, seed=2)
    assert torch.equal(again.train, s.train) and torch.equal(again.test, s.test)
    assert not torch.equal(other.train, s.train)  # the patches depend on the seed, the test images do not
    assert torch.equal(other.test, s.test)


def test_skimage_defaults_and_no_test_images():
    s = build_splits(DataConfig(source="skimage", names=("coins",), size=96), seed=0)
    assert s.train.shape == (58, 1, 64, 64) and s.val.shape == (6, 1, 64, 64)  # 64 patches of 64×64 by default
    assert s.test.shape == (0, 1, 64, 64) and s.test_names == []


def test_skimage_test_images_of_different_sizes_are_refused():
    cfg = DataConfig(source="skimage", names=("coins",), test_names=("camera", "coins"), patch_size=16)
    with pytest.raises(ValueError, match=r"data\.test_names: test images must share one size \(set data\.size\)"):
        build_splits(cfg)


# ---------------------------------------------------------------- ellipses

def test_ellipses_from_disjoint_seeds():
    cfg = DataConfig(source="ellipses", count=4, val_count=2, test_count=3, size=32)
    s = build_splits(cfg, seed=5)
    assert (s.train.shape, s.val.shape, s.test.shape) == ((4, 1, 32, 32), (2, 1, 32, 32), (3, 1, 32, 32))
    assert not rows(s.train) & rows(s.val) and not rows(s.train) & rows(s.test) and not rows(s.val) & rows(s.test)
    assert s.test_names == ["ellipses-test-0", "ellipses-test-1", "ellipses-test-2"]
    assert torch.equal(build_splits(cfg, seed=5).test, s.test)
    assert not torch.equal(build_splits(cfg, seed=6).train, s.train)
    # unset validation / test counts still give one image each; the side defaults to 128
    d = build_splits(DataConfig(source="ellipses", count=2), seed=0)
    assert d.val.shape == (1, 1, 128, 128) and d.test.shape == (1, 1, 128, 128)


# ---------------------------------------------------------------- pools split 80 / 10 / 10

def test_idx_pool_split_is_a_seeded_partition(tmp_path, distinct_pool):
    write_idx(tmp_path / "images.idx", distinct_pool)
    write_idx(tmp_path / "labels.idx", np.arange(20) % 10)  # read, but the splits do not use labels
    cfg = DataConfig(source="idx", path=str(tmp_path / "images.idx"), labels_path=str(tmp_path / "labels.idx"))
    s = build_splits(cfg, seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (16, 2, 2)
    index = lambda t: sorted(round(float(v) * 255) for v in t[:, 0, 0, 0])  # noqa: E731
    assert sorted(index(s.train) + index(s.val) + index(s.test)) == list(range(20))  # a partition of the pool
    assert index(build_splits(cfg, seed=0).test) == index(s.test)
    assert any(index(build_splits(cfg, seed=k).test) != index(s.test) for k in (1, 2, 3))
    resized = build_splits(DataConfig(source="idx", path=cfg.path, labels_path=cfg.labels_path, size=4), seed=0)
    assert resized.train.shape == (16, 1, 4, 4)


def test_idx_pool_without_labels(tmp_path, distinct_pool):
    write_idx(tmp_path / "images.idx", distinct_pool)
    s = build_splits(DataConfig(source="idx", path=str(tmp_path / "images.idx")), seed=0)
    assert (s.train.shape, s.val.shape, s.test.shape) == ((16, 1, 8, 8), (2, 1, 8, 8), (2, 1, 8, 8))


def test_image_folder_pool(tmp_path, distinct_pool):
    from PIL import Image

    for i in range(5):
        Image.fromarray(distinct_pool[i]).save(tmp_path / f"im{i}.png")
    s = build_splits(DataConfig(source="image_folder", path=str(tmp_path), size=6), seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (3, 1, 1)  # at least one validation and one test image
    assert s.train.shape[1:] == (1, 6, 6)
    check_unit(s.train, s.val, s.test)


def test_too_small_pools_are_refused(tmp_path, distinct_pool):
    write_idx(tmp_path / "two.idx", distinct_pool[:2])
    with pytest.raises(ValueError, match="data: need at least 3 images to split into train/val/test, got 2"):
        build_splits(DataConfig(source="idx", path=str(tmp_path / "two.idx")))


def test_lfw_faces_pool():
    s = build_splits(DataConfig(source="lfw", size=16), seed=0)
    assert (len(s.train), len(s.val), len(s.test)) == (80, 10, 10) and s.test.shape[1:] == (1, 16, 16)
    assert not rows(s.train) & rows(s.test)


# ---------------------------------------------------------------- a separate test file, and padding
def test_idx_with_a_test_file_cuts_validation_from_the_training_file(tmp_path, distinct_pool):
    write_idx(tmp_path / "train.idx", distinct_pool[:12])
    write_idx(tmp_path / "test.idx", distinct_pool[12:])
    cfg = DataConfig(source="idx", path=str(tmp_path / "train.idx"), test_path=str(tmp_path / "test.idx"))
    s = build_splits(cfg, seed=0)
    index = lambda t: sorted(round(float(v) * 255) for v in t[:, 0, 0, 0])  # noqa: E731
    assert index(s.test) == list(range(12, 20))  # the test file, whole and in order of index
    assert (len(s.train), len(s.val)) == (11, 1)
    assert sorted(index(s.train) + index(s.val)) == list(range(12))
    with pytest.raises(ValueError, match="only used with source 'idx', not 'mnist5k'"):
        DataConfig(source="mnist5k", test_path=str(tmp_path / "test.idx"))


def test_pad_zero_pads_every_split(tmp_path, distinct_pool):
    write_idx(tmp_path / "images.idx", distinct_pool)
    plain = build_splits(DataConfig(source="idx", path=str(tmp_path / "images.idx")), seed=0)
    padded = build_splits(DataConfig(source="idx", path=str(tmp_path / "images.idx"), pad=2), seed=0)
    for a, b in ((plain.train, padded.train), (plain.val, padded.val), (plain.test, padded.test)):
        assert b.shape[-2:] == (12, 12)
        assert torch.equal(b[..., 2:10, 2:10], a)
        border = b.clone()
        border[..., 2:10, 2:10] = 0
        assert float(border.abs().max()) == 0.0
    mnist = build_splits(DataConfig(source="mnist5k", pad=2), seed=0)
    assert mnist.test.shape[-2:] == (32, 32)
