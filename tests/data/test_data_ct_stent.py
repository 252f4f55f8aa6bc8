"""The stent CT volume from Debian's python3-imageio: written unchanged after its checksum, skipped when present,
refused when the package's file differs."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest

from proxlab.data import ct_stent

_spec = importlib.util.spec_from_file_location("photos_tests", Path(__file__).with_name("test_data_photos.py"))
_photos_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_photos_tests)


def _fake_package(folder: Path, data: bytes | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    members = {} if data is None else {ct_stent._IN_DEB: data}
    members["usr/share/doc/python3-imageio/copyright"] = b"BSD-2-Clause"
    return _photos_tests._deb(folder / f"{ct_stent.PACKAGE}_2.4.1-5_all.deb", members)


def test_fetch_checks_the_checksum_and_writes_the_file_unchanged(tmp_path, monkeypatch):
    data = b"a stand-in for stent.npz"
    monkeypatch.setattr(ct_stent, "SHA256", hashlib.sha256(data).hexdigest())
    _fake_package(tmp_path / "debs", data)
    logs = []
    path = ct_stent.fetch_ct_stent(tmp_path / "cache", debs=tmp_path / "debs", log=logs.append)
    assert path == tmp_path / "cache" / "ct" / "stent.npz" and path.read_bytes() == data
    assert ct_stent.fetch_ct_stent(tmp_path / "cache", debs=tmp_path / "nowhere", log=logs.append) == path
    assert logs[-1] == f"complete: {path}"


def test_fetch_refuses_another_file_and_a_package_without_it(tmp_path):
    _fake_package(tmp_path / "debs", b"not the volume")
    with pytest.raises(ValueError, match=r"has SHA-256 [0-9a-f]{64}, expected 60a83d22"):
        ct_stent.fetch_ct_stent(tmp_path / "cache", debs=tmp_path / "debs", log=lambda m: None)
    assert not (tmp_path / "cache" / "ct" / "stent.npz").exists()
    _fake_package(tmp_path / "debs2", None)
    with pytest.raises(ValueError, match="has no usr/lib/python3/dist-packages/imageio/resources/images/stent.npz"):
        ct_stent.fetch_ct_stent(tmp_path / "cache", debs=tmp_path / "debs2", log=lambda m: None)
    with pytest.raises(FileNotFoundError, match=r"python3-imageio_\*\.deb"):
        ct_stent.fetch_ct_stent(tmp_path / "cache", debs=tmp_path, log=lambda m: None)


def test_the_real_package_file_matches_the_shared_copy(shared_data):
    """The checksum pinned here is the one of the shared reference copy (the same file)."""
    ref = shared_data / "CT_stent" / "stent.npz"
    if not ref.is_file():
        pytest.skip("no shared CT_stent volume")
    assert hashlib.sha256(ref.read_bytes()).hexdigest() == ct_stent.SHA256
