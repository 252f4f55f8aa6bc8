import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import proxlab.data as data

FASHION = Path("/usr/share/datasets/fashion-mnist")


def _idx_bytes(array: np.ndarray, code: int, fmt: str) -> bytes:
    """IDX bytes written by hand with struct (independent of the reader)."""
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    body = struct.pack(f">{array.size}{fmt}", *array.ravel().tolist())
    return header + body


def _write(path: Path, raw: bytes, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


class TestReadIdx:
    @pytest.mark.parametrize("compress", [False, True])
    def test_uint8_images_plain_and_gzip(self, tmp_path, compress):
        arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
        path = _write(tmp_path / ("x.idx3.gz" if compress else "x.idx3"), _idx_bytes(arr, 0x08, "B"), compress)
        out = data.read_idx(path)
        assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
        assert np.array_equal(out, arr)

    @pytest.mark.parametrize(
        "code,fmt,dtype",
        [(0x09, "b", np.int8), (0x0B, "h", np.int16), (0x0C, "i", np.int32), (0x0D, "f", np.float32), (0x0E, "d", np.float64)],
    )
    def test_all_type_codes_big_endian(self, tmp_path, code, fmt, dtype):
        arr = np.array([[-3, 1, 7], [100, -100, 0]], dtype=dtype)
        out = data.read_idx(_write(tmp_path / "a.idx", _idx_bytes(arr, code, fmt)))
        assert out.dtype == np.dtype(dtype) and out.dtype.isnative
        assert np.array_equal(out, arr)

    def test_gzip_detected_by_content_not_name(self, tmp_path):
        arr = np.array([1, 2, 3], dtype=np.uint8)
        out = data.read_idx(_write(tmp_path / "labels.idx1", _idx_bytes(arr, 0x08, "B"), compress=True))
        assert np.array_equal(out, arr)

    def test_missing_file(self, tmp_path):
        with pytest.raises(FileNotFoundError, match="IDX file not found"):
            data.read_idx(tmp_path / "nope.idx")

    def test_directory(self, tmp_path):
        with pytest.raises(ValueError, match="is not a file"):
            data.read_idx(tmp_path)

    def test_bad_magic(self, tmp_path):
        path = _write(tmp_path / "b.idx", b"\x89PNG\r\n\x1a\n" + bytes(20))
        with pytest.raises(ValueError, match=r"b\.idx: bad magic number 0x89504e47"):
            data.read_idx(path)

    def test_too_short(self, tmp_path):
        with pytest.raises(ValueError, match="too short"):
            data.read_idx(_write(tmp_path / "s.idx", b"\x00\x00"))

    def test_unknown_type_code(self, tmp_path):
        path = _write(tmp_path / "c.idx", struct.pack(">BBBBI", 0, 0, 0x07, 1, 2) + b"\x00\x00")
        with pytest.raises(ValueError, match="c.idx: unknown element type code 0x07"):
            data.read_idx(path)

    def test_truncated_header(self, tmp_path):
        path = _write(tmp_path / "h.idx", struct.pack(">BBBBI", 0, 0, 0x08, 3, 5))
        with pytest.raises(ValueError, match="h.idx: truncated header"):
            data.read_idx(path)

    @pytest.mark.parametrize("compress", [False, True])
    def test_truncated_data(self, tmp_path, compress):
        raw = _idx_bytes(np.zeros((4, 5, 5), np.uint8), 0x08, "B")[:-7]
        path = _write(tmp_path / "t.idx", raw, compress)
        with pytest.raises(ValueError, match=r"t.idx: truncated data, shape \(4, 5, 5\) of uint8 needs 100 bytes, found 93"):
            data.read_idx(path)

    def test_trailing_bytes(self, tmp_path):
        raw = _idx_bytes(np.zeros(3, np.uint8), 0x08, "B") + b"xx"
        with pytest.raises(ValueError, match="2 trailing bytes"):
            data.read_idx(_write(tmp_path / "r.idx", raw))

    def test_corrupt_gzip(self, tmp_path):
        good = gzip.compress(_idx_bytes(np.arange(200, dtype=np.uint8), 0x08, "B"))
        path = _write(tmp_path / "z.idx.gz", good[: len(good) // 2])
        with pytest.raises(ValueError, match="z.idx.gz: corrupt or truncated gzip"):
            data.read_idx(path)


class TestLoadIdxImages:
    def _files(self, tmp_path, n=5):
        rng = np.random.default_rng(0)
        imgs = rng.integers(0, 256, (n, 7, 6), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        ip = _write(tmp_path / "img.idx3-ubyte.gz", _idx_bytes(imgs, 0x08, "B"), compress=True)
        lp = _write(tmp_path / "lab.idx1-ubyte", _idx_bytes(labels, 0x08, "B"))
        return imgs, labels, ip, lp

    def test_images_and_labels(self, tmp_path):
        imgs, labels, ip, lp = self._files(tmp_path)
        x, y = data.load_idx_images(ip, lp)
        assert x.shape == (5, 1, 7, 6) and x.dtype == torch.float32
        assert y.shape == (5,) and y.dtype == torch.int64
        assert torch.equal(x[:, 0], torch.from_numpy(imgs.astype(np.float32) / 255))
        assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))

    def test_images_only(self, tmp_path):
        _, _, ip, _ = self._files(tmp_path)
        x = data.load_idx_images(ip)
        assert isinstance(x, torch.Tensor) and x.shape == (5, 1, 7, 6)
        assert 0.0 <= x.min() and x.max() <= 1.0

    def test_float_images(self, tmp_path):
        arr = np.full((2, 3, 3), 0.25, np.float32)
        x = data.load_idx_images(_write(tmp_path / "f.idx", _idx_bytes(arr, 0x0D, "f")))
        assert torch.equal(x, torch.full((2, 1, 3, 3), 0.25))
        bad = _write(tmp_path / "g.idx", _idx_bytes(arr * 8, 0x0D, "f"))
        with pytest.raises(ValueError, match=r"g.idx: float values must lie in \[0, 1\]"):
            data.load_idx_images(bad)

    def test_wrong_dims(self, tmp_path):
        path = _write(tmp_path / "v.idx", _idx_bytes(np.zeros(4, np.uint8), 0x08, "B"))
        with pytest.raises(ValueError, match=r"expected 3 dims \(N, H, W\), got shape \(4,\)"):
            data.load_idx_images(path)

    def test_wrong_image_type(self, tmp_path):
        path = _write(tmp_path / "w.idx", _idx_bytes(np.zeros((1, 2, 2), np.int16), 0x0B, "h"))
        with pytest.raises(ValueError, match="expected uint8 or float pixels, got int16"):
            data.load_idx_images(path)

    def test_label_count_mismatch(self, tmp_path):
        _, _, ip, _ = self._files(tmp_path)
        lp = _write(tmp_path / "few.idx1", _idx_bytes(np.zeros(3, np.uint8), 0x08, "B"))
        with pytest.raises(ValueError, match="hold 3 labels but .* holds 5 images"):
            data.load_idx_images(ip, lp)

    def test_labels_not_1d(self, tmp_path):
        _, _, ip, _ = self._files(tmp_path)
        lp = _write(tmp_path / "two.idx", _idx_bytes(np.zeros((5, 2), np.uint8), 0x08, "B"))
        with pytest.raises(ValueError, match="expected a 1-d integer array"):
            data.load_idx_images(ip, lp)


@pytest.mark.skipif(not FASHION.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_test_set():
    x, y = data.load_idx_images(FASHION / "t10k-images-idx3-ubyte.gz", FASHION / "t10k-labels-idx1-ubyte.gz")
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.equal(y.bincount(), torch.full((10,), 1000))
