"""Fashion-MNIST from Debian's package: the four IDX files land in the cache unchanged, and the errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from proxlab.data import fashion_mnist as fm

_spec = importlib.util.spec_from_file_location("photos_tests", Path(__file__).with_name("test_data_photos.py"))
_photos_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_photos_tests)


def _fake_package(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return _photos_tests._deb(folder / f"{fm.PACKAGE}_0.1-1_all.deb",
                              {f"usr/share/datasets/fashion-mnist/{k}": v for k, v in files.items()})


def test_fetch_writes_the_files_unchanged_and_skips_when_complete(tmp_path):
    payload = {name: f"content of {name}".encode() * (i + 1) for i, name in enumerate(fm.FILES)}
    debs = tmp_path / "debs"
    _fake_package(debs, payload)
    logs = []
    root = fm.fetch_fashion_mnist(tmp_path / "cache", debs=debs, log=logs.append)
    assert root == tmp_path / "cache" / "fashion-mnist"
    assert {p.name: p.read_bytes() for p in root.iterdir()} == payload
    assert fm.fetch_fashion_mnist(tmp_path / "cache", debs=tmp_path / "nowhere", log=logs.append) == root
    assert logs[-1] == f"complete: {root}"


def test_fetch_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dataset-fashion-mnist_\*\.deb"):
        fm.fetch_fashion_mnist(tmp_path / "cache", debs=tmp_path, log=lambda m: None)
    _fake_package(tmp_path / "debs", {fm.FILES[0]: b"x"})
    with pytest.raises(ValueError, match="has no usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"):
        fm.fetch_fashion_mnist(tmp_path / "cache", debs=tmp_path / "debs", log=lambda m: None)
    assert not (tmp_path / "cache" / "fashion-mnist").exists()
