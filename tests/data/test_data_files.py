import numpy as np
import pytest
import torch
from PIL import Image

import proxlab.data as data

SET11_SIZES = {"fingerprint": 512, "flinstones": 512}


def _grey(h=6, w=5, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


class TestLoadImage:
    @pytest.mark.parametrize("ext", [".png", ".tif", ".bmp"])
    def test_grey_lossless(self, tmp_path, ext):
        arr = _grey()
        Image.fromarray(arr).save(tmp_path / f"g{ext}")
        img = data.load_image(tmp_path / f"g{ext}")
        assert img.shape == (1, 1, 6, 5) and img.dtype == torch.float32
        assert torch.equal(img[0, 0], torch.from_numpy(arr.astype(np.float32) / 255))

    def test_grey_as_colour(self, tmp_path):
        Image.fromarray(_grey()).save(tmp_path / "g.png")
        img = data.load_image(tmp_path / "g.png", grey=False)
        assert img.shape == (1, 3, 6, 5)
        assert torch.equal(img[:, 0], img[:, 2])

    def test_rgb_and_luma(self, tmp_path):
        rgb = np.stack([_grey(seed=s) for s in range(3)], axis=-1)
        Image.fromarray(rgb).save(tmp_path / "c.png")
        colour = data.load_image(tmp_path / "c.png", grey=False)
        assert colour.shape == (1, 3, 6, 5)
        assert torch.equal(colour[0].permute(1, 2, 0), torch.from_numpy(rgb.astype(np.float32) / 255))
        grey = data.load_image(tmp_path / "c.png")
        expected = (rgb.astype(np.float64) / 255) @ np.array([0.299, 0.587, 0.114])
        assert torch.allclose(grey[0, 0].double(), torch.from_numpy(expected), atol=1e-6)

    def test_rgba_drops_alpha(self, tmp_path):
        rgba = np.dstack([np.full((4, 4, 3), 200, np.uint8), np.zeros((4, 4), np.uint8)])
        Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
        assert torch.allclose(data.load_image(tmp_path / "a.png", grey=False), torch.full((1, 3, 4, 4), 200 / 255))

    def test_sixteen_bit(self, tmp_path):
        arr = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000).astype(np.uint16)
        Image.fromarray(arr).save(tmp_path / "d.png")
        img = data.load_image(tmp_path / "d.png")
        assert torch.equal(img[0, 0], torch.from_numpy(arr.astype(np.float32) / 65535))

    def test_jpeg(self, tmp_path):
        arr = np.full((16, 16), 128, np.uint8)
        Image.fromarray(arr).save(tmp_path / "j.jpg", quality=95)
        img = data.load_image(tmp_path / "j.jpg")
        assert img.shape == (1, 1, 16, 16) and (img - 128 / 255).abs().max() < 2 / 255

    def test_grey_palette_gives_palette_values(self, tmp_path):
        idx = np.array([[0, 1], [2, 3]], np.uint8)
        p = Image.fromarray(idx, "P")
        p.putpalette([0, 0, 0, 50, 50, 50, 100, 100, 100, 255, 255, 255])
        p.save(tmp_path / "p.tif")
        img = data.load_image(tmp_path / "p.tif")
        assert torch.equal(img[0, 0], torch.tensor([[0, 50], [100, 255]]) / 255.0)

    def test_identity_palette_gives_indices(self, tmp_path):
        idx = _grey(8, 8)
        p = Image.fromarray(idx, "P")
        p.putpalette([v for i in range(256) for v in (i, i, i)])
        p.save(tmp_path / "id.tif")
        assert torch.equal(data.load_image(tmp_path / "id.tif")[0, 0], torch.from_numpy(idx.astype(np.float32) / 255))

    def test_colour_palette_expands(self, tmp_path):
        p = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
        p.putpalette([255, 0, 0, 0, 0, 255])
        p.save(tmp_path / "cp.png")
        img = data.load_image(tmp_path / "cp.png", grey=False)
        assert torch.equal(img[0, :, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
        assert torch.equal(img[0, :, 0, 1], torch.tensor([0.0, 0.0, 1.0]))
        grey = data.load_image(tmp_path / "cp.png")
        assert torch.allclose(grey[0, 0, 0], torch.tensor([0.299, 0.114]))

    def test_resize(self, tmp_path):
        Image.fromarray(_grey(40, 30)).save(tmp_path / "r.png")
        assert data.load_image(tmp_path / "r.png", size=(20, 15)).shape == (1, 1, 20, 15)

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="image file not found: .*nope.png"):
            data.load_image(tmp_path / "nope.png")

    def test_unreadable_file(self, tmp_path):
        (tmp_path / "bad.png").write_bytes(b"not an image at all")
        with pytest.raises(ValueError, match="cannot read image .*bad.png"):
            data.load_image(tmp_path / "bad.png")

    def test_truncated_file(self, tmp_path):
        Image.fromarray(_grey(64, 64)).save(tmp_path / "t.png")
        raw = (tmp_path / "t.png").read_bytes()
        (tmp_path / "t.png").write_bytes(raw[: len(raw) // 2])
        with pytest.raises(ValueError, match="cannot read image .*t.png"):
            data.load_image(tmp_path / "t.png")

    def test_float_tiff_out_of_range(self, tmp_path):
        Image.fromarray(np.full((3, 3), 2.0, np.float32), "F").save(tmp_path / "f.tif")
        with pytest.raises(ValueError, match=r"f.tif: float values must lie in \[0, 1\]"):
            data.load_image(tmp_path / "f.tif")


class TestImageFolder:
    def _folder(self, tmp_path):
        for name, seed in (("b", 1), ("a", 0), ("c", 2)):
            Image.fromarray(_grey(8, 8, seed)).save(tmp_path / f"{name}.png")
        Image.fromarray(_grey(8, 8, 3)).save(tmp_path / "d.TIF")
        (tmp_path / "notes.txt").write_text("not an image")
        (tmp_path / "sub").mkdir()
        return tmp_path

    def test_sorted_items_and_len(self, tmp_path):
        ds = data.ImageFolder(self._folder(tmp_path))
        assert len(ds) == 4 and ds.names == ["a", "b", "c", "d"]
        x = ds[0]
        assert x.shape == (1, 8, 8)
        assert torch.equal(x[0], torch.from_numpy(_grey(8, 8, 0).astype(np.float32) / 255))
        assert torch.equal(ds[-1], ds[3])
        assert "n=4" in repr(ds)

    def test_dataloader_batches(self, tmp_path):
        ds = data.ImageFolder(self._folder(tmp_path), grey=False, size=4)
        batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
        assert batch.shape == (4, 3, 4, 4)

    def test_extensions(self, tmp_path):
        ds = data.ImageFolder(self._folder(tmp_path), extensions=("tif",))
        assert ds.names == ["d"]

    def test_index_error(self, tmp_path):
        ds = data.ImageFolder(self._folder(tmp_path))
        with pytest.raises(IndexError, match="index 4 out of range for 4 files"):
            ds[4]

    def test_missing_root(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="root .*nowhere does not exist"):
            data.ImageFolder(tmp_path / "nowhere")

    def test_root_is_file(self, tmp_path):
        (tmp_path / "f.png").write_bytes(b"")
        with pytest.raises(ValueError, match="is not a folder"):
            data.ImageFolder(tmp_path / "f.png")

    def test_empty_folder(self, tmp_path):
        (tmp_path / "x.txt").write_text("")
        with pytest.raises(ValueError, match="no files ending in .png"):
            data.ImageFolder(tmp_path)

    def test_bad_extensions(self, tmp_path):
        with pytest.raises(TypeError, match="extensions: expected a sequence of strings"):
            data.ImageFolder(self._folder(tmp_path), extensions=".png")

    def test_bad_size(self, tmp_path):
        with pytest.raises(ValueError, match="size must be positive"):
            data.ImageFolder(self._folder(tmp_path), size=(0, 4))

    def test_unreadable_item_names_file(self, tmp_path):
        folder = self._folder(tmp_path)
        (folder / "e.png").write_bytes(b"garbage")
        ds = data.ImageFolder(folder)
        with pytest.raises(ValueError, match="cannot read image .*e.png"):
            ds[4]


class TestSet11:
    def test_names_sizes_range(self, shared_data):
        images = data.load_set11(shared_data / "Set11")
        assert [n for n, _ in images] == list(data.SET11_NAMES) and len(images) == 11
        for name, img in images:
            s = SET11_SIZES.get(name, 256)
            assert img.shape == (1, 1, s, s) and img.dtype == torch.float32, name
            assert 0.0 <= img.min() and img.max() <= 1.0 and img.max() - img.min() > 0.5, name

    @pytest.mark.parametrize("name", ["Parrots", "foreman"])
    def test_palette_tiffs_give_indices(self, shared_data, name):
        path = shared_data / "Set11" / f"{name}.tif"
        with Image.open(path) as im:
            assert im.mode == "P"
            index = np.asarray(im).astype(np.float32) / 255
        assert torch.equal(data.load_image(path)[0, 0], torch.from_numpy(index))

    def test_grey_file_values(self, shared_data):
        path = shared_data / "Set11" / "cameraman.tif"
        with Image.open(path) as im:
            ref = np.asarray(im).astype(np.float32) / 255
        assert torch.equal(dict(data.load_set11(shared_data / "Set11"))["cameraman"][0, 0], torch.from_numpy(ref))

    def test_missing_folder(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="load_set11: folder .* does not exist"):
            data.load_set11(tmp_path / "Set11")

    def test_missing_files(self, tmp_path):
        Image.fromarray(_grey()).save(tmp_path / "barbara.tif")
        with pytest.raises(FileNotFoundError, match="lacks boats.tif, cameraman.tif"):
            data.load_set11(tmp_path)
