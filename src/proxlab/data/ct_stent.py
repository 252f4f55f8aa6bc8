"""A real CT volume with no download from anywhere but the distribution's package mirror: the stent-graft CT
angiography volume that imageio ships as a standard image (Debian's ``python3-imageio``, BSD-2-Clause), 256
axial slices of 128×128, int16 values 0..2000 (a cropped, clipped export, not Hounsfield units).

::

    python -m proxlab.data.ct_stent [--cache DIR] [--debs FOLDER]

writes ``stent.npz`` (key ``arr_0``, unchanged) into ``~/.cache/proxlab/ct`` (``$PROXLAB_CACHE/ct``) and checks its
SHA-256; an experiment then reads it with the ``ct_volume`` source (``path``, ``scale = 2000``; split into
contiguous slabs with gaps, since neighbouring slices are strongly correlated). ``--debs`` takes a folder that
already holds the ``.deb``. Nothing is installed system-wide.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from pathlib import Path

from .photos import _download, _find_debs, default_cache_dir, read_deb_members

__all__ = ["PACKAGE", "SHA256", "fetch_ct_stent", "ct_stent_path"]

PACKAGE = "python3-imageio"
_IN_DEB = "usr/lib/python3/dist-packages/imageio/resources/images/stent.npz"
#: SHA-256 of ``stent.npz`` in python3-imageio 2.4.1-5 (Debian 12).
SHA256 = "60a83d2296b51ee6a53153e9ba96ba9020391b0c8952895d9d60a0a629ac6bb6"


def ct_stent_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where :func:`fetch_ct_stent` puts the volume: ``CACHE/ct/stent.npz``."""
    return (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "ct" / "stent.npz"


def fetch_ct_stent(cache_dir: str | os.PathLike | None = None, *, debs: str | os.PathLike | None = None,
                   log=print) -> Path:
    """Fetch ``stent.npz`` into :func:`ct_stent_path` (skipped when it is there with the right checksum).

    Raises ``RuntimeError`` without ``apt-get`` (pass ``debs``), ``FileNotFoundError`` when ``debs`` has no
    ``python3-imageio_*.deb``, ``ValueError`` when the package lacks the file or its checksum differs.
    """
    dest = ct_stent_path(cache_dir)
    if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == SHA256:
        log(f"complete: {dest}")
        return dest
    with tempfile.TemporaryDirectory(prefix="proxlab-debs-") as tmp:
        deb = (_find_debs(Path(debs), [PACKAGE]) if debs is not None else _download([PACKAGE], Path(tmp), log))[PACKAGE]
        data = read_deb_members(deb, [_IN_DEB]).get(_IN_DEB)
        if data is None:
            raise ValueError(f"{deb.name}: has no {_IN_DEB}")
        digest = hashlib.sha256(data).hexdigest()
        if digest != SHA256:
            raise ValueError(f"{deb.name}: {_IN_DEB} has SHA-256 {digest}, expected {SHA256} (another imageio version?)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_suffix(".npz.part")
        part.write_bytes(data)
        os.replace(part, dest)
    log(f"wrote {dest}")
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Fetch the stent CT volume from Debian's python3-imageio into the cache.")
    p.add_argument("--cache", default=None, help="cache folder (default $PROXLAB_CACHE or ~/.cache/proxlab)")
    p.add_argument("--debs", default=None, help="a folder that already holds python3-imageio_*.deb")
    a = p.parse_args(argv)
    fetch_ct_stent(a.cache, debs=a.debs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
