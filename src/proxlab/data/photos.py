r"""A photo training set from four Debian packages, fetched into a cache folder without installing anything.

:data:`PHOTOS` lists 65 photographs picked by eye from ``opencv-doc`` (OpenCV's sample images),
``lomiri-wallpapers-16.04``, ``mate-backgrounds`` (its ``nature/`` folder) and
``plasma-workspace-wallpapers``: renders, drawings, logos, text scans, chessboards, masks, tiny crops and
one of each near-duplicate pair (stereo left/right, consecutive video frames, the two graffiti views) are
left out, and so is every image of the held-out test sets. ``opencv-doc`` ships ``reg/home.png``, which
*is* Set11's ``house`` (normalised correlation 0.998 at 64x64), and the Set14 images ``baboon`` and
``butterfly``: none of them is listed. Every listed photo was compared with all of Set11 and BSD68 (grey,
64x64, the 8 flips/rotations, whole image and square centre crop, correlation of the high-passed images:
house scored 0.994, the highest listed photo 0.195).

:func:`fetch_photos` runs ``apt-get download`` for the four packages in a temporary folder (or takes the
``.deb`` files from ``debs``), reads the listed files straight out of each ``.deb`` in Python -- a ``.deb``
is an ``ar`` archive whose ``data.tar.xz`` holds the files, so no ``dpkg`` is needed and nothing but the
listed files is unpacked -- shrinks each so that its longer side is at most ``max_side`` pixels
(Lanczos; the wallpapers are up to 5312 px wide, where a 33x33 block is nearly flat), and writes::

    CACHE/photos/train/<name>.png     61 photos
    CACHE/photos/val/<name>.png       4 photos, one per package (validation only)
    CACHE/photos/manifest.json        package versions, paths, licences, sizes, SHA-256 of each source file
    CACHE/photos/LICENSES.txt         who holds the copyright of each photo, under which licence
    CACHE/photos/copyright/<pkg>      each package's Debian copyright file (the full licence texts)

``CACHE`` is ``cache_dir``, else ``$PROXLAB_CACHE``, else ``~/.cache/proxlab``. The folder is built
under a temporary name and renamed when complete; a complete one is reused. One command does it all::

    python -m proxlab.data.photos [--cache DIR] [--debs DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["Photo", "PHOTOS", "PHOTO_PACKAGES", "fetch_photos", "read_deb_members", "default_cache_dir"]

#: The Debian packages the photos come from.
PHOTO_PACKAGES = ("opencv-doc", "lomiri-wallpapers-16.04", "mate-backgrounds", "plasma-workspace-wallpapers")
#: Bump when the selection or the processing changes: a cached folder of another version is rebuilt.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Photo:
    """One photograph: the file ``path`` inside Debian package ``package``, stored as ``<split>/<name>.png``.

    ``size`` is ``(width, height)`` as shipped in Debian 12 (bookworm); ``licence`` and ``author`` are
    what the package's ``copyright`` file (for KDE wallpapers also the wallpaper's ``metadata.json``) says.
    """

    name: str
    package: str
    path: str
    licence: str
    author: str
    size: tuple[int, int]
    split: str = "train"


_OCV_DIR = "/usr/share/doc/opencv-doc/examples/"
_OCV_LICENCE = "Apache-2.0 AND BSD-3-Clause (debian/copyright of OpenCV, 'Files: *')"


def _ocv(rel: str, size: tuple[int, int], split: str = "train", name: str | None = None) -> Photo:
    stem = name or Path(rel).stem.lower()
    return Photo(f"opencv-{stem}", "opencv-doc", _OCV_DIR + rel, _OCV_LICENCE, "OpenCV contributors", size, split)


def _lomiri(file: str, licence: str, author: str, size: tuple[int, int], split: str = "train") -> Photo:
    return Photo(f"lomiri-{file.split('_by_')[0].lower()}", "lomiri-wallpapers-16.04",
                 f"/usr/share/backgrounds/{file}.jpg", licence, author, size, split)


def _mate(file: str, author: str, size: tuple[int, int], split: str = "train") -> Photo:
    return Photo(f"mate-{file.lower()}", "mate-backgrounds", f"/usr/share/backgrounds/mate/nature/{file}.jpg",
                 "GPL-2+", author, size, split)


def _plasma(folder: str, author: str, split: str = "train") -> Photo:
    return Photo(f"plasma-{folder.lower()}", "plasma-workspace-wallpapers",
                 f"/usr/share/wallpapers/{folder}/contents/images/2560x1600.jpg",
                 "LGPL-3.0 (wallpaper metadata.json; debian/copyright: GPL-2+, KDE Visual Design Group)",
                 author, (2560, 1600), split)


#: The 65 photographs, in package order (61 for training, 4 with ``split="val"``).
PHOTOS: tuple[Photo, ...] = (
    _ocv("data/aero1.jpg", (640, 480)),
    _ocv("data/aloeL.jpg", (1282, 1110)),
    _ocv("data/apple.jpg", (512, 512)),
    _ocv("data/basketball1.png", (640, 480)),
    _ocv("data/board.jpg", (640, 480)),
    _ocv("data/box_in_scene.png", (512, 384)),
    _ocv("data/building.jpg", (868, 600)),
    _ocv("data/chicky_512.png", (512, 512)),
    _ocv("data/ela_original.jpg", (902, 770)),
    _ocv("data/fruits.jpg", (512, 480)),
    _ocv("data/graf1.png", (800, 640)),
    _ocv("data/home.jpg", (512, 384)),
    _ocv("data/left.jpg", (612, 459), name="books"),
    _ocv("data/leuvenA.jpg", (751, 563), split="val"),
    _ocv("data/messi5.jpg", (548, 342)),
    _ocv("data/orange.jpg", (512, 512)),
    _ocv("data/rubberwhale1.png", (584, 388)),
    _ocv("data/squirrel_cls.jpg", (535, 426)),
    _ocv("data/stuff.jpg", (640, 480)),
    _ocv("alphamat/input_images/plant.jpg", (500, 333)),
    _ocv("hfs/data/000.jpg", (380, 254), name="hfs000"),
    _ocv("hfs/data/001.jpg", (380, 254), name="hfs001"),
    _ocv("hfs/data/002.jpg", (380, 254), name="hfs002"),
    *(_ocv(f"text/scenetext0{i}.jpg", s) for i, s in
      enumerate([(800, 600), (1280, 960), (1004, 958), (1280, 868), (1280, 960), (640, 480)], start=1)),
    _lomiri("Bridge_by_Sander_Klootwijk", "CC-BY-SA-4.0", "Sander Klootwijk, 2018", (4352, 2448)),
    _lomiri("Dragonfly_by_Bolly", "CC-BY-SA-4.0", "\"Bolly\", 2018", (4224, 3168)),
    _lomiri("Picture_0B_by_freespace", "CC-BY-4.0", "Trevor \"Freespace\", 2018", (2572, 1740)),
    _lomiri("Picture_1A_by_freespace", "CC-BY-4.0", "Trevor \"Freespace\", 2018", (1365, 1074)),
    _lomiri("Wine_by_Jakkub_Mede", "CC-BY-4.0", "Jakub Mede, 2018", (2560, 3837)),
    _lomiri("aitzgorri_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi, 2018", (3088, 2056)),
    _lomiri("free_by_Peter_Nerlich", "CC-BY-SA-4.0", "Peter Nerlich, 2018", (2880, 2160)),
    _lomiri("friends_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi, 2018", (2056, 3088)),
    _lomiri("greentock_by_Peter_Nerlich", "CC-BY-SA-4.0", "Peter Nerlich, 2018", (2880, 2160)),
    _lomiri("life_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi, 2018", (3088, 2056)),
    _lomiri("picosdeeuropa_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi, 2018", (3264, 2448), split="val"),
    _lomiri("seeding_by_Clements_Engelhardt", "CC0-1.0", "Clemens Engelhardt, 2018", (5312, 2988)),
    _lomiri("sunset_by_Aitzol_Berasategi", "CC-BY-4.0", "Aitzol Berasategi, 2018", (4272, 2848)),
    _mate("Aqua", "Charles Barbin, 2008", (2560, 1600)),
    _mate("Blinds", "Lennart Poettering, 2008", (1920, 1200)),
    _mate("Dune", "Marco Cogoni, 2007", (1680, 1050)),
    _mate("FreshFlower", "Jens Ansorg, 2005", (1600, 1203)),
    _mate("Garden", "Charles Barbin, 2008", (2560, 1600)),
    _mate("GreenMeadow", "Timothy Schellhase, 2005", (1280, 1024)),
    _mate("LadyBird", "Charles Barbin, 2008", (2560, 1600), split="val"),
    _mate("RainDrops", "\"blackcombwhistler07\", 2008", (1920, 1200)),
    _mate("Storm", "Sergey Nazarov, 2008", (1920, 1280)),
    _mate("TwoWings", "Charles Barbin, 2008", (2560, 1600)),
    _mate("Wood", "Jean-François Fortin Tam, 2008", (2560, 1920)),
    _mate("YellowFlower", "Charles Barbin, 2008", (2560, 1600)),
    _plasma("BytheWater", "Maciej Wiklo"),
    _plasma("ColdRipple", "Risto Saukonpää"),
    _plasma("ColorfulCups", "Dmitri Popov"),
    _plasma("DarkestHour", "Risto Saukonpää"),
    _plasma("EveningGlow", "Ian Hex", split="val"),
    _plasma("FallenLeaf", "Martin Klapetek"),
    _plasma("Grey", "Sigi Sagi"),
    _plasma("Kite", "Risto Saukonpää"),
    _plasma("OneStandsOut", "Risto Saukonpää"),
    _plasma("Path", "Risto Saukonpää"),
    _plasma("summer_1am", "Risto Saukonpää"),
)


def default_cache_dir() -> Path:
    """``$PROXLAB_CACHE`` if set, else ``~/.cache/proxlab``."""
    env = os.environ.get("PROXLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "proxlab"


# ---- reading a .deb without dpkg ------------------------------------------------------------------
def _ar_members(f) -> Iterable[tuple[str, int, int]]:
    """``(name, offset, size)`` of each member of the ``ar`` archive open as ``f`` (the format of a .deb)."""
    if f.read(8) != b"!<arch>\n":
        raise ValueError("not an ar archive (a .deb file starts with '!<arch>')")
    pos = 8
    while True:
        f.seek(pos)
        header = f.read(60)
        if not header:
            return
        if len(header) < 60 or header[58:60] != b"`\n":
            raise ValueError(f"corrupt ar member header at byte {pos}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        yield name, pos + 60, size
        pos += 60 + size + (size % 2)  # members are padded to an even length


class _Slice(io.RawIOBase):
    """A read-only window ``[offset, offset + size)`` of an open file."""

    def __init__(self, f, offset: int, size: int):
        self.f, self.pos, self.end = f, offset, offset + size

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.end - self.pos)
        if n <= 0:
            return 0
        self.f.seek(self.pos)
        data = self.f.read(n)
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)


def _norm(member: str) -> str:
    """``./usr/x``, ``/usr/x`` and ``usr/x`` name the same member."""
    return re.sub(r"^(\./|/)+", "", member)


def read_deb_members(deb: str | os.PathLike, paths: Sequence[str]) -> dict[str, bytes]:
    """The contents of the regular files ``paths`` (as installed: ``/usr/share/...``) inside the .deb ``deb``.

    Reads the ``ar`` archive and streams its ``data.tar`` (``.xz``, ``.gz``, ``.bz2`` or plain) with
    :mod:`tarfile`; a ``data.tar.zst`` is streamed through ``dpkg-deb --fsys-tarfile``. Paths that are
    absent (or not regular files) are missing from the result. Raises ``FileNotFoundError`` for a
    missing file, ``ValueError`` for a file that is not a .deb.
    """
    deb = Path(deb)
    if not deb.is_file():
        raise FileNotFoundError(f"deb: file not found: {deb}")
    wanted = {_norm(p): p for p in paths}
    out: dict[str, bytes] = {}
    with open(deb, "rb") as f:
        try:
            members = list(_ar_members(f))
        except ValueError as err:
            raise ValueError(f"deb {deb}: {err}") from None
        data = [(n, o, s) for n, o, s in members if n.startswith("data.tar")]
        if not data:
            raise ValueError(f"deb {deb}: no data.tar member (members: {[m[0] for m in members]})")
        name, offset, size = data[0]
        proc = None
        if name == "data.tar.zst":  # Python's tarfile cannot decompress zstd before 3.14
            dpkg = shutil.which("dpkg-deb")
            if dpkg is None:
                raise RuntimeError(f"deb {deb}: its data.tar.zst needs dpkg-deb to decompress, and dpkg-deb is not on PATH")
            proc = subprocess.Popen([dpkg, "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL)  # stopping early makes it complain of a broken pipe
            stream = proc.stdout
        elif name in ("data.tar", "data.tar.xz", "data.tar.gz", "data.tar.bz2"):
            stream = io.BufferedReader(_Slice(f, offset, size), buffer_size=1 << 20)
        else:
            raise ValueError(f"deb {deb}: unsupported data member {name!r}")
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tar:
                for info in tar:
                    key = _norm(info.name)
                    if key in wanted and info.isfile():
                        out[wanted[key]] = tar.extractfile(info).read()
                        if len(out) == len(wanted):
                            break
        except tarfile.TarError as err:
            raise ValueError(f"deb {deb}: cannot read {name}: {err}") from None
        finally:
            if proc is not None:
                proc.stdout.close()
                proc.kill()
                proc.wait()
    return out


# ---- fetching ------------------------------------------------------------------------------------
def _find_debs(folder: Path, packages: Sequence[str]) -> dict[str, Path]:
    found, missing = {}, []
    for pkg in packages:
        hits = sorted(folder.glob(f"{pkg}_*.deb"))
        if len(hits) > 1:  # picking by name would rank 1.9 above 1.10
            raise ValueError(f"debs: {folder} holds {len(hits)} versions of {pkg} ({', '.join(h.name for h in hits)}); "
                             "keep one")
        if hits:
            found[pkg] = hits[0]
        else:
            missing.append(pkg)
    if missing:
        raise FileNotFoundError(f"debs: {folder} has no {', '.join(f'{p}_*.deb' for p in missing)}")
    return found


def _download(packages: Sequence[str], folder: Path, log) -> dict[str, Path]:
    apt = shutil.which("apt-get")
    if apt is None:
        raise RuntimeError("fetch_photos needs apt-get (Debian/Ubuntu) to download "
                           f"{', '.join(packages)}; elsewhere download those .deb files and pass debs=FOLDER "
                           "(python -m proxlab.data.photos --debs FOLDER)")
    for pkg in packages:
        log(f"apt-get download {pkg}")
        r = subprocess.run([apt, "download", pkg], cwd=folder, capture_output=True, text=True)
        if r.returncode != 0 or not list(folder.glob(f"{pkg}_*.deb")):
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"apt-get download {pkg} failed (exit code {r.returncode}): {' | '.join(tail)}. "
                               "Is the package in your apt sources (Debian 12 / Ubuntu 22.04 or later; "
                               "run apt-get update)?")
    return _find_debs(folder, packages)


def _version(deb: Path) -> str:
    parts = deb.name[:-4].split("_")  # PACKAGE_VERSION_ARCH.deb, ':' of the epoch written as %3a
    return urllib.parse.unquote(parts[1]) if len(parts) >= 3 else "unknown"


def _is_complete(root: Path, photos: Sequence[Photo], max_side: int) -> bool:
    try:
        m = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if m.get("format") != FORMAT_VERSION or m.get("max_side") != max_side:
        return False
    if sorted(e["name"] for e in m.get("photos", [])) != sorted(p.name for p in photos):
        return False
    return all((root / p.split / f"{p.name}.png").is_file() for p in photos)


def _store(data: bytes, photo: Photo, dest: Path, max_side: int) -> dict:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        if img.size != tuple(photo.size):
            warnings.warn(f"{photo.package}:{photo.path} is {img.size[0]}x{img.size[1]}, the manifest says "
                          f"{photo.size[0]}x{photo.size[1]} (another package version?)", stacklevel=3)
        if img.mode.startswith("I"):  # 16/32-bit grey: convert("L") would clip everything above 255 to white;
            # values up to 65535 are scaled by 255/65535 (a grey image that never exceeds 255 is taken as 8-bit)
            import numpy as np

            a = np.asarray(img, dtype=np.float64)
            im = Image.fromarray(np.clip(a * 255.0 / (65535.0 if a.max() > 255 else 255.0), 0, 255).round().astype(np.uint8))
        else:
            im = img.convert("L" if img.mode in ("L", "LA") else "RGB")
        w, h = im.size
        if max(w, h) > max_side:
            s = max_side / max(w, h)
            im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        im.save(dest, format="PNG")
        return {"source_size": list(img.size), "stored_size": list(im.size)}


def _licences_text(photos: Sequence[Photo], versions: dict[str, str], max_side: int) -> str:
    lines = ["Photographs taken from Debian packages by proxlab.data.photos.fetch_photos.",
             f"Each is converted to PNG and, where larger, shrunk to at most {max_side} px on its longer side.",
             "The full licence texts are in copyright/<package> (each package's /usr/share/doc/<package>/copyright).",
             ""]
    for pkg in dict.fromkeys(p.package for p in photos):
        lines.append(f"== {pkg} {versions.get(pkg, '')}".rstrip())
        for p in (q for q in photos if q.package == pkg):
            lines.append(f"{p.split}/{p.name}.png  <-  {p.path}")
            lines.append(f"    (c) {p.author}; licence: {p.licence}")
        lines.append("")
    return "\n".join(lines)


def fetch_photos(cache_dir: str | os.PathLike | None = None, *, debs: str | os.PathLike | None = None,
                 max_side: int = 1024, progress: bool = True, photos: Sequence[Photo] = PHOTOS) -> Path:
    """Fetch :data:`PHOTOS` into ``CACHE/photos`` (see the module docstring) and return that folder.

    Parameters
    ----------
    cache_dir: the cache (default :func:`default_cache_dir`).
    debs: a folder that already holds the ``.deb`` files (``PACKAGE_*.deb``); default: ``apt-get download``
        them into a temporary folder (removed afterwards; nothing is installed).
    max_side: longer side of the stored images in pixels (larger photos are shrunk, smaller ones kept).
    progress: print one line per step to stderr.
    photos: the selection (default :data:`PHOTOS`; tests pass a small one).

    Returns the folder holding ``train/``, ``val/``, ``manifest.json`` and ``LICENSES.txt``; a complete
    folder from an earlier call with the same ``max_side`` is returned at once.
    Raises ``RuntimeError`` when apt-get is missing or a download fails, ``FileNotFoundError`` when
    ``debs`` lacks a package, ``ValueError`` when a package does not contain a listed file.
    """
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 33:
        raise ValueError(f"max_side: expected an int >= 33 (pixels; one 33x33 block must fit), got {max_side!r}")
    if not photos:
        raise ValueError("photos: expected a non-empty selection")

    def short_side(p, side: int) -> int:  # the short side once stored (as _store shrinks it)
        return min(p.size) if max(p.size) <= side else round(min(p.size) * side / max(p.size))

    tiny = [p.name for p in photos if min(p.size) < 33]
    if tiny:
        raise ValueError(f"photos: expected photos of at least 33x33 pixels (one block), got {', '.join(tiny[:3])} smaller")
    thin = [p.name for p in photos if short_side(p, max_side) < 33]
    if thin:
        need = next(s for s in range(max_side, 1 << 16) if all(short_side(p, s) >= 33 for p in photos if p.name in thin))
        raise ValueError(f"max_side: expected at least {need} (pixels), so that every photo keeps a short side of 33 "
                         f"or more for one 33x33 block; {max_side!r} shrinks {', '.join(thin[:3])}"
                         f"{' …' if len(thin) > 3 else ''} below that")
    names = [p.name for p in photos]
    if len(set(names)) != len(names):
        raise ValueError(f"photos: names must be unique, got duplicates {sorted({n for n in names if names.count(n) > 1})}")
    bad_split = [p.name for p in photos if p.split not in ("train", "val")]
    if bad_split:
        raise ValueError(f"photos: split must be 'train' or 'val', wrong for {bad_split}")
    base = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    root = base / "photos"

    def log(msg: str) -> None:
        if progress:
            print(f"[photos] {msg}", file=sys.stderr, flush=True)

    if _is_complete(root, photos, max_side):
        log(f"complete: {root}")
        return root
    packages = list(dict.fromkeys(p.package for p in photos))
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".photos-", dir=base))
    try:
        with tempfile.TemporaryDirectory(prefix="proxlab-debs-") as tmp:
            files = _find_debs(Path(debs), packages) if debs is not None else _download(packages, Path(tmp), log)
            versions = {pkg: _version(files[pkg]) for pkg in packages}
            records = []
            for pkg in packages:
                mine = [p for p in photos if p.package == pkg]
                copyright_path = f"/usr/share/doc/{pkg}/copyright"
                log(f"reading {len(mine)} photo(s) from {files[pkg].name}")
                got = read_deb_members(files[pkg], [p.path for p in mine] + [copyright_path])
                missing = [p.path for p in mine if p.path not in got]
                if missing:
                    raise ValueError(f"package {pkg} {versions[pkg]} ({files[pkg]}) lacks {len(missing)} listed "
                                     f"file(s), e.g. {missing[:3]}")
                if copyright_path in got:
                    (staging / "copyright").mkdir(exist_ok=True)
                    (staging / "copyright" / pkg).write_bytes(got[copyright_path])
                for p in mine:
                    data = got[p.path]
                    rec = _store(data, p, staging / p.split / f"{p.name}.png", max_side)
                    records.append({**asdict(p), "size": list(p.size), "version": versions[pkg],
                                    "sha256": hashlib.sha256(data).hexdigest(), **rec})
        manifest = {"format": FORMAT_VERSION, "max_side": max_side, "packages": versions,
                    "counts": {s: sum(p.split == s for p in photos) for s in ("train", "val")}, "photos": records}
        (staging / "LICENSES.txt").write_text(_licences_text(photos, versions, max_side), encoding="utf-8")
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide a shared cache from other users
        old = None
        if root.exists():  # an incomplete or outdated folder: moved aside first, and put back if the swap fails
            old = Path(tempfile.mkdtemp(prefix=".photos-old-", dir=base))
            os.replace(root, old / "photos")
        try:
            staging.rename(root)
        except BaseException:
            if old is not None and not root.exists():
                os.replace(old / "photos", root)
                shutil.rmtree(old, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"wrote {manifest['counts']['train']} training and {manifest['counts']['val']} validation photos to {root}")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m proxlab.data.photos", description=(
        "Fetch the photo training set (65 photographs from four Debian packages) into a cache folder."))
    ap.add_argument("--cache", default=None, help="cache folder (default $PROXLAB_CACHE or ~/.cache/proxlab)")
    ap.add_argument("--debs", default=None, help="folder with the .deb files already downloaded (default: apt-get download)")
    ap.add_argument("--max-side", type=int, default=1024, help="longer side of the stored photos in pixels (default 1024)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    try:
        root = fetch_photos(args.cache, debs=args.debs, max_side=args.max_side, progress=not args.quiet, photos=PHOTOS)
    except (RuntimeError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(root)
    print("train ISTA-Net+ on it: proxlab run istanet-plus-cs25 --set "
          f"data.options.images={shlex.quote(str(Path(root).resolve()))}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
