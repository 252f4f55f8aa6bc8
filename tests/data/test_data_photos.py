"""The Debian photo set: the manifest, the .deb reader, the cache folder it writes, and its errors."""

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from proxlab.data import photos as ph

# Test images that must never be trained on: Set11, Set5 and Set14 (names as these sets and OpenCV spell them).
TEST_IMAGE_NAMES = {"barbara", "boats", "cameraman", "fingerprint", "flinstones", "flintstones", "foreman", "house",
                    "lena", "lenna", "monarch", "parrots", "peppers", "pepper", "baby", "bird", "butterfly", "head",
                    "woman", "baboon", "bridge", "coastguard", "comic", "face", "flowers", "man", "ppt3", "zebra"}


def _stem_key(path: str) -> str:
    """File stem in lower case without digits and separators: ``lena256.tif`` -> ``lena``."""
    return re.sub(r"[\d_\-. ]+", "", Path(path).stem.lower())


# ---- the manifest ---------------------------------------------------------------------------------
def test_manifest_is_unique_and_complete():
    import proxlab.data

    assert proxlab.data.fetch_photos is ph.fetch_photos and proxlab.data.PHOTOS is ph.PHOTOS
    names = [p.name for p in ph.PHOTOS]
    assert len(ph.PHOTOS) == 65 and len(set(names)) == 65
    assert len({(p.package, p.path) for p in ph.PHOTOS}) == 65
    assert {p.package for p in ph.PHOTOS} == set(ph.PHOTO_PACKAGES)
    counts = {pkg: sum(p.package == pkg for p in ph.PHOTOS) for pkg in ph.PHOTO_PACKAGES}
    assert counts == {"opencv-doc": 29, "lomiri-wallpapers-16.04": 13, "mate-backgrounds": 12,
                      "plasma-workspace-wallpapers": 11}
    val = [p for p in ph.PHOTOS if p.split == "val"]
    assert sorted(p.package for p in val) == sorted(ph.PHOTO_PACKAGES)  # one held-out photo per package
    assert all(p.split in ("train", "val") for p in ph.PHOTOS)
    assert all(p.path.startswith("/usr/share/") and p.licence and p.author for p in ph.PHOTOS)
    assert all(min(p.size) >= 254 for p in ph.PHOTOS)  # no tiny crops
    assert all(re.fullmatch(r"[a-z0-9_-]+", n) for n in names)  # safe file names


def test_manifest_holds_no_test_set_image_by_name():
    from proxlab.data import SET11_NAMES

    assert {_stem_key(n) for n in SET11_NAMES} <= TEST_IMAGE_NAMES  # the rule covers Set11 itself
    hits = [p.path for p in ph.PHOTOS if _stem_key(p.path) in TEST_IMAGE_NAMES or _stem_key(p.name) in TEST_IMAGE_NAMES]
    assert hits == []
    # opencv-doc's reg/home.png is Set11's house; its dnn_superres/butterfly.png and data/baboon.jpg are Set5/Set14
    assert not any(p.path.endswith(("reg/home.png", "butterfly.png", "butterfly.jpg", "baboon.jpg")) for p in ph.PHOTOS)


# ---- a .deb built here ----------------------------------------------------------------------------
def _png(w: int, h: int, seed: int = 0) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _tar(files: dict[str, bytes], mode: str = "w:xz", links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name in sorted({str(Path(n).parent) for n in files}):
            info = tarfile.TarInfo("./" + name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo("./" + name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        out.append(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode())
        out.append(data + (b"\n" if len(data) % 2 else b""))
    return b"".join(out)


def _deb(path: Path, files: dict[str, bytes], compression: str = "xz", links=None) -> Path:
    ext = {"xz": ".xz", "gz": ".gz", "": ""}[compression]
    mode = f"w:{compression}" if compression else "w"
    control = _tar({"control": b"Package: x\nVersion: 1\n"}, "w:xz") + b"x"  # odd length: tests the ar padding
    path.write_bytes(_ar([("debian-binary", b"2.0\n"), ("control.tar.xz", control),
                          (f"data.tar{ext}", _tar(files, mode, links))]))
    return path


@pytest.mark.parametrize("compression", ["xz", "gz", ""])
def test_read_deb_members_returns_listed_regular_files(tmp_path, compression):
    a, b = _png(40, 35, 1), _png(50, 60, 2)
    deb = _deb(tmp_path / "x_1_all.deb", {"usr/share/p/a.png": a, "usr/share/p/q/b.png": b}, compression,
               links={"usr/share/p/link.png": "a.png"})
    got = ph.read_deb_members(deb, ["/usr/share/p/a.png", "usr/share/p/q/b.png", "/usr/share/p/link.png",
                                    "/usr/share/p/none.png"])
    assert got == {"/usr/share/p/a.png": a, "usr/share/p/q/b.png": b}  # the symlink and the absent file are left out


def test_read_deb_members_agrees_with_dpkg_deb(tmp_path):
    dpkg = shutil.which("dpkg-deb")
    if dpkg is None:
        pytest.skip("dpkg-deb not installed")
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text("Package: proxlab-test\nVersion: 1.0\nArchitecture: all\n"
                                            "Maintainer: t <t@t>\nDescription: test\n")
    data = _png(37, 41, 3)
    (pkg / "usr/share/p").mkdir(parents=True)
    (pkg / "usr/share/p/c.png").write_bytes(data)
    subprocess.run([dpkg, "--root-owner-group", "-Zxz", "--build", str(pkg), str(tmp_path / "t.deb")], check=True,
                   capture_output=True)
    assert ph.read_deb_members(tmp_path / "t.deb", ["/usr/share/p/c.png"]) == {"/usr/share/p/c.png": data}


def test_read_deb_members_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="deb: file not found"):
        ph.read_deb_members(tmp_path / "absent.deb", ["/a"])
    (tmp_path / "bad.deb").write_bytes(b"PK\x03\x04 not an ar archive")
    with pytest.raises(ValueError, match="not an ar archive"):
        ph.read_deb_members(tmp_path / "bad.deb", ["/a"])
    (tmp_path / "nodata.deb").write_bytes(_ar([("debian-binary", b"2.0\n")]))
    with pytest.raises(ValueError, match="no data.tar member"):
        ph.read_deb_members(tmp_path / "nodata.deb", ["/a"])
    (tmp_path / "zst.deb").write_bytes(_ar([("debian-binary", b"2.0\n"), ("data.tar.zst", b"\x28\xb5\x2f\xfd")]))
    monkeypatch.setattr(ph.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="data.tar.zst needs dpkg-deb"):
        ph.read_deb_members(tmp_path / "zst.deb", ["/a"])


# ---- fetch_photos on fake packages ----------------------------------------------------------------
def _fake_selection(tmp_path: Path) -> tuple[list, Path]:
    """Two small packages, three photos (one for validation, one larger than max_side), and their debs."""
    sel = [ph.Photo("pa-one", "pkg-a", "/usr/share/a/one.png", "CC0-1.0", "Ann", (120, 80)),
           ph.Photo("pa-two", "pkg-a", "/usr/share/a/two.png", "CC-BY-4.0", "Bob", (60, 50), "val"),
           ph.Photo("pb-big", "pkg-b", "/usr/share/b/big.png", "GPL-2+", "Cy", (300, 150))]
    debs = tmp_path / "debs"
    debs.mkdir()
    _deb(debs / "pkg-a_1.0-1_all.deb", {"usr/share/a/one.png": _png(120, 80), "usr/share/a/two.png": _png(60, 50),
                                        "usr/share/doc/pkg-a/copyright": b"Files: *\nLicense: CC0-1.0\n"})
    _deb(debs / "pkg-b_2%3a3.0_all.deb", {"usr/share/b/big.png": _png(300, 150)})
    return sel, debs


def test_fetch_writes_the_folder_layout_and_is_idempotent(tmp_path):
    from PIL import Image

    sel, debs = _fake_selection(tmp_path)
    root = ph.fetch_photos(tmp_path / "cache", debs=debs, max_side=100, progress=False, photos=sel)
    assert root == tmp_path / "cache" / "photos"
    assert sorted(p.name for p in (root / "train").iterdir()) == ["pa-one.png", "pb-big.png"]
    assert sorted(p.name for p in (root / "val").iterdir()) == ["pa-two.png"]
    assert Image.open(root / "train" / "pb-big.png").size == (100, 50)  # longer side shrunk to max_side
    assert Image.open(root / "train" / "pa-one.png").size == (100, 67)
    assert Image.open(root / "val" / "pa-two.png").size == (60, 50)  # smaller ones are kept as they are
    m = json.loads((root / "manifest.json").read_text())
    assert m["packages"] == {"pkg-a": "1.0-1", "pkg-b": "2:3.0"} and m["counts"] == {"train": 2, "val": 1}
    rec = {r["name"]: r for r in m["photos"]}
    assert rec["pb-big"]["source_size"] == [300, 150] and rec["pb-big"]["stored_size"] == [100, 50]
    assert rec["pa-two"]["licence"] == "CC-BY-4.0" and rec["pa-two"]["path"] == "/usr/share/a/two.png"
    assert len(rec["pa-one"]["sha256"]) == 64
    lic = (root / "LICENSES.txt").read_text()
    assert "val/pa-two.png  <-  /usr/share/a/two.png" in lic and "(c) Bob; licence: CC-BY-4.0" in lic
    assert (root / "copyright" / "pkg-a").read_text().startswith("Files: *")
    assert not list((tmp_path / "cache").glob(".photos-*"))  # no staging folder left behind
    # a second call finds the folder complete: it needs no packages and rewrites nothing
    stamp = (root / "manifest.json").stat().st_mtime_ns
    shutil.rmtree(debs)
    assert ph.fetch_photos(tmp_path / "cache", debs=tmp_path / "gone", max_side=100, progress=False, photos=sel) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp


def test_fetch_rebuilds_an_incomplete_or_different_folder(tmp_path):
    from PIL import Image

    sel, debs = _fake_selection(tmp_path)
    root = ph.fetch_photos(tmp_path / "c", debs=debs, max_side=100, progress=False, photos=sel)
    (root / "train" / "pa-one.png").unlink()
    ph.fetch_photos(tmp_path / "c", debs=debs, max_side=100, progress=False, photos=sel)
    assert (root / "train" / "pa-one.png").is_file()
    ph.fetch_photos(tmp_path / "c", debs=debs, max_side=200, progress=False, photos=sel)
    assert Image.open(root / "train" / "pb-big.png").size == (200, 100)
    assert not list((tmp_path / "c").glob(".photos-*"))  # the replaced folder and the staging one are gone
    assert (root.stat().st_mode & 0o777) == 0o755  # readable by other users of a shared cache


def test_a_failed_swap_puts_the_previous_folder_back(tmp_path, monkeypatch):
    from PIL import Image

    sel, debs = _fake_selection(tmp_path)
    root = ph.fetch_photos(tmp_path / "c", debs=debs, max_side=100, progress=False, photos=sel)

    def refuse(self, target):
        raise OSError("rename refused (test)")

    monkeypatch.setattr(Path, "rename", refuse)
    with pytest.raises(OSError, match="rename refused"):
        ph.fetch_photos(tmp_path / "c", debs=debs, max_side=200, progress=False, photos=sel)
    assert Image.open(root / "train" / "pb-big.png").size == (100, 50)  # the complete earlier set, in place
    assert not list((tmp_path / "c").glob(".photos-*"))


def test_a_max_side_that_leaves_a_photo_thinner_than_a_block_is_refused(tmp_path):
    sel, debs = _fake_selection(tmp_path)  # pb-big is 300x150: at max_side 65 it would be stored 65x32
    with pytest.raises(ValueError, match=r"max_side: expected at least 66 \(pixels\).*65 shrinks pb-big below"):
        ph.fetch_photos(tmp_path / "c", debs=debs, max_side=65, progress=False, photos=sel)
    assert not (tmp_path / "c").exists()  # refused before anything was read or written
    small = [ph.Photo("pa-tiny", "pkg-a", "/usr/share/a/tiny.png", "CC0-1.0", "Ann", (40, 20))]
    with pytest.raises(ValueError, match=r"photos: expected photos of at least 33x33 pixels \(one block\), got pa-tiny"):
        ph.fetch_photos(tmp_path / "c", debs=debs, max_side=1024, progress=False, photos=small)


def test_two_versions_of_a_package_in_debs_are_refused(tmp_path):
    sel, debs = _fake_selection(tmp_path)
    shutil.copy(debs / "pkg-a_1.0-1_all.deb", debs / "pkg-a_1.10-1_all.deb")
    with pytest.raises(ValueError, match=r"debs: .* holds 2 versions of pkg-a .*keep one"):
        ph.fetch_photos(tmp_path / "c", debs=debs, max_side=100, progress=False, photos=sel)


def test_a_16_bit_grey_photo_keeps_its_tones(tmp_path):
    """A 16-bit grey PNG is scaled to 8 bits, not clipped at 255 (which would make it almost all white)."""
    from PIL import Image

    ramp = (np.linspace(0, 65535, 64 * 32).reshape(32, 64)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")
    photo = ph.Photo("ramp", "pkg", "/usr/share/ramp.png", "CC0-1.0", "A", (64, 32))
    ph._store(buf.getvalue(), photo, tmp_path / "ramp.png", max_side=1024)
    got = np.asarray(Image.open(tmp_path / "ramp.png"))
    assert got.dtype == np.uint8 and got.shape == (32, 64)
    np.testing.assert_allclose(got, ramp / 257.0, atol=0.51)


def test_fetch_default_cache_is_proxlab_cache(tmp_path, monkeypatch):
    sel, debs = _fake_selection(tmp_path)
    monkeypatch.setenv("PROXLAB_CACHE", str(tmp_path / "envcache"))
    assert ph.default_cache_dir() == tmp_path / "envcache"
    assert ph.fetch_photos(debs=debs, progress=False, photos=sel) == tmp_path / "envcache" / "photos"
    monkeypatch.delenv("PROXLAB_CACHE")
    assert ph.default_cache_dir() == Path.home() / ".cache" / "proxlab"


def test_fetch_errors_name_the_problem(tmp_path, monkeypatch):
    sel, debs = _fake_selection(tmp_path)
    cache = tmp_path / "cache"
    (debs / "pkg-b_2%3a3.0_all.deb").unlink()
    with pytest.raises(FileNotFoundError, match=r"has no pkg-b_\*\.deb"):
        ph.fetch_photos(cache, debs=debs, progress=False, photos=sel)
    _deb(debs / "pkg-b_2_all.deb", {"usr/share/b/other.png": _png(40, 40)})
    with pytest.raises(ValueError, match=r"package pkg-b 2 .* lacks 1 listed file\(s\), e\.g\. \['/usr/share/b/big.png'\]"):
        ph.fetch_photos(cache, debs=debs, progress=False, photos=sel)
    assert not (cache / "photos").exists() and not list(cache.glob(".photos-*"))  # nothing half-written
    with pytest.raises(ValueError, match="max_side: expected an int >= 33"):
        ph.fetch_photos(cache, debs=debs, max_side=10, progress=False, photos=sel)
    with pytest.raises(ValueError, match="names must be unique"):
        ph.fetch_photos(cache, debs=debs, progress=False, photos=[sel[0], sel[0]])
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        ph.fetch_photos(cache, debs=debs, progress=False, photos=[ph.Photo("x", "pkg-a", "/a", "l", "a", (40, 40), "test")])
    monkeypatch.setattr(ph.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs apt-get .* pass debs=FOLDER"):
        ph.fetch_photos(cache, progress=False, photos=sel)


def test_fetch_reports_a_failed_download(tmp_path, monkeypatch):
    sel, _ = _fake_selection(tmp_path)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apt-get").write_text("#!/bin/sh\necho 'E: Unable to locate package '$2 >&2\nexit 100\n")
    (fake / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(RuntimeError, match=r"apt-get download pkg-a failed \(exit code 100\): E: Unable to locate package pkg-a"):
        ph.fetch_photos(tmp_path / "cache", progress=False, photos=sel)


def test_command_line_prints_the_folder(tmp_path, capsys, monkeypatch):
    sel, debs = _fake_selection(tmp_path)
    monkeypatch.setattr(ph, "PHOTOS", tuple(sel))
    assert ph.main(["--cache", str(tmp_path / "c"), "--debs", str(debs), "--max-side", "100", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "c" / "photos") and "--set data.options.images=" in err
    assert ph.main(["--cache", str(tmp_path / "c2"), "--debs", str(tmp_path / "nowhere"), "--quiet"]) == 1
    assert "error: debs:" in capsys.readouterr().err


# ---- the held-out test sets -----------------------------------------------------------------------
def _signature(path: Path) -> list[np.ndarray]:
    """Grey 64x64 views (whole image, square centre crop) with their low frequencies removed, unit norm."""
    from PIL import Image
    from scipy.ndimage import gaussian_filter

    with Image.open(path) as img:
        img.draft("RGB", (512, 512))
        im = img.convert("L")
    w, h = im.size
    s = min(w, h)
    views = [im, im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))]
    out = []
    for v in views:
        a = np.asarray(v.resize((64, 64), Image.BILINEAR, reducing_gap=3.0), dtype=np.float64)
        a = a - gaussian_filter(a, 2.0)
        a -= a.mean()
        out.append(a / max(np.linalg.norm(a), 1e-12))
    return out


def _max_similarity(photo: Path, tests: list[list[np.ndarray]]) -> float:
    best = -1.0
    for a in _signature(photo):
        dihedral = [np.rot90(a, k)[:, ::f] for k in range(4) for f in (1, -1)]
        for sig in tests:
            best = max(best, max(float((d * t).sum()) for d in dihedral for t in sig))
    return best


def _test_signatures(shared_data: Path) -> list[list[np.ndarray]]:
    files = sorted((shared_data / "Set11").glob("*.tif")) + sorted((shared_data / "BSD68").glob("*.png"))
    if len(files) < 11 + 68:
        pytest.skip("Set11 / BSD68 incomplete")
    return [_signature(f) for f in files]


def test_similarity_check_finds_a_flipped_resized_test_image(tmp_path, shared_data):
    # the check used to vet the selection can fail: a flipped, rescaled, re-encoded Set11 image scores near 1
    from PIL import Image

    tests = _test_signatures(shared_data)
    im = Image.open(shared_data / "Set11" / "boats.tif").convert("L").transpose(Image.FLIP_LEFT_RIGHT)
    im.resize((400, 400), Image.LANCZOS).save(tmp_path / "copy.jpg", quality=90)
    assert _max_similarity(tmp_path / "copy.jpg", tests) > 0.9
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)).save(tmp_path / "noise.png")
    assert _max_similarity(tmp_path / "noise.png", tests) < 0.3


@pytest.mark.slow
def test_real_fetch_is_complete_and_disjoint_from_set11_and_bsd68(tmp_path, shared_data):
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get not available")
    root = ph.fetch_photos(tmp_path, progress=False)
    m = json.loads((root / "manifest.json").read_text())
    assert m["counts"] == {"train": 61, "val": 4}
    assert all(max(r["stored_size"]) <= 1024 for r in m["photos"])
    tests = _test_signatures(shared_data)
    scores = {p.name: _max_similarity(root / p.split / f"{p.name}.png", tests) for p in ph.PHOTOS}
    assert max(scores.values()) < 0.5, sorted(scores.items(), key=lambda kv: -kv[1])[:3]


def test_printed_override_is_a_valid_key_of_the_shipped_experiment(tmp_path, capsys, monkeypatch):
    """The command the fetcher prints must load: an unknown key (``images=`` at the top level) is refused."""
    import re
    import shlex

    from proxlab.experiments.config import load_config

    sel, debs = _fake_selection(tmp_path)
    monkeypatch.setattr(ph, "PHOTOS", tuple(sel))
    assert ph.main(["--cache", str(tmp_path / "c"), "--debs", str(debs), "--max-side", "100", "--quiet"]) == 0
    hint = capsys.readouterr().err
    words = shlex.split(hint[hint.index("proxlab run"):].splitlines()[0])
    name, sets = words[2], [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    cfg_file = Path(ph.__file__).parents[1] / "experiments" / "configs" / f"{name}.toml"
    cfg = load_config(cfg_file, overrides=sets)
    assert cfg.data.options["images"] == str(tmp_path / "c" / "photos")
    with pytest.raises(Exception, match=re.escape("images")):
        load_config(cfg_file, overrides=[f"images={tmp_path}"])
