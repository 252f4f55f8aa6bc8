"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017; MIT licence) from Debian's ``dataset-fashion-mnist``, no download
from anywhere but the distribution's package mirror, nothing installed system-wide.

::

    python -m proxlab.data.fashion_mnist [--cache DIR] [--debs FOLDER]

writes ``train-images-idx3-ubyte.gz`` (60,000 images), ``t10k-images-idx3-ubyte.gz`` (10,000) and the two label
files into ``~/.cache/proxlab/fashion-mnist`` (``$PROXLAB_CACHE/fashion-mnist``), the files of the package's
``usr/share/datasets/fashion-mnist/`` folder, unchanged; an experiment then reads them with the ``idx`` source
(``data.path`` / ``data.test_path``). ``--debs`` takes a folder that already holds the ``.deb``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from .photos import _download, _find_debs, default_cache_dir, read_deb_members

__all__ = ["PACKAGE", "FILES", "fetch_fashion_mnist", "fashion_mnist_dir"]

PACKAGE = "dataset-fashion-mnist"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
_IN_DEB = "usr/share/datasets/fashion-mnist/"


def fashion_mnist_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where :func:`fetch_fashion_mnist` puts the files: ``CACHE/fashion-mnist``."""
    return (Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()) / "fashion-mnist"


def fetch_fashion_mnist(cache_dir: str | os.PathLike | None = None, *, debs: str | os.PathLike | None = None,
                        log=print) -> Path:
    """Fetch the four IDX files into :func:`fashion_mnist_dir` (skipped when all are there); returns the folder.

    Raises ``RuntimeError`` without ``apt-get`` (pass ``debs``), ``FileNotFoundError`` when ``debs`` has no
    ``dataset-fashion-mnist_*.deb``, ``ValueError`` when the package lacks one of :data:`FILES`.
    """
    root = fashion_mnist_dir(cache_dir)
    if all((root / f).is_file() for f in FILES):
        log(f"complete: {root}")
        return root
    with tempfile.TemporaryDirectory(prefix="proxlab-debs-") as tmp:
        deb = (_find_debs(Path(debs), [PACKAGE]) if debs is not None else _download([PACKAGE], Path(tmp), log))[PACKAGE]
        members = read_deb_members(deb, [_IN_DEB + f for f in FILES])
        missing = [f for f in FILES if _IN_DEB + f not in members]
        if missing:
            raise ValueError(f"{deb.name}: has no {', '.join(_IN_DEB + f for f in missing)}")
        root.mkdir(parents=True, exist_ok=True)
        for f in FILES:
            part = root / (f + ".part")
            part.write_bytes(members[_IN_DEB + f])
            os.replace(part, root / f)
    log(f"wrote {len(FILES)} files to {root}")
    return root


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cache", default=None, help="cache folder (default $PROXLAB_CACHE or ~/.cache/proxlab)")
    p.add_argument("--debs", default=None, help="a folder that already holds dataset-fashion-mnist_*.deb")
    a = p.parse_args(argv)
    root = fetch_fashion_mnist(a.cache, debs=a.debs)
    print(f"train: --set data.path={root / FILES[0]}  test: --set data.test_path={root / FILES[2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
