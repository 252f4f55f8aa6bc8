"""The public API against its checked-in snapshot (``tests/api_snapshot.json``), and a light ``import proxlab``."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import proxlab

_GEN = Path(__file__).with_name("gen_api_snapshot.py")
_spec = importlib.util.spec_from_file_location("gen_api_snapshot", _GEN)
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def test_public_api_matches_the_snapshot():
    live = gen.surface()
    saved = json.loads(gen.SNAPSHOT.read_text())
    diff = gen.differences(saved, live)
    assert not diff, ("the public API differs from tests/api_snapshot.json (- removed, + added, ~ changed). If the "
                      f"change is intended, regenerate it with `{gen.COMMAND}`:\n" + "\n".join(diff))


def test_every_name_in_all_exists():
    missing = [f"{m}.{n}" for m, names in gen.surface()["modules"].items() for n, d in names.items()
               if isinstance(d, str) and d.startswith("MISSING")]
    assert not missing, f"names listed in __all__ but not defined: {missing}"


def test_snapshot_differences_are_reported():
    # the comparison itself can fail: a removed name, an added one and a changed signature are all reported
    old = {"modules": {"proxlab.x": {"f": "function(a)", "g": "function(b)"}}, "without_all": []}
    new = {"modules": {"proxlab.x": {"f": "function(a, c=1)", "h": "function()"}}, "without_all": ["proxlab.y"]}
    assert gen.differences(old, new) == ['~ proxlab.x.f: "function(a)" -> "function(a, c=1)"', "- proxlab.x.g",
                                         '+ proxlab.x.h: "function()"', "? proxlab.y now declares no __all__"]
    assert gen.differences(new, new) == []


def test_import_does_not_load_heavy_libraries():
    code = (
        "import sys, proxlab, proxlab.operators, proxlab.solvers, proxlab.data, proxlab.priors.classic;"
        "print(','.join(m for m in ('matplotlib', 'skimage', 'scipy', 'mlxtend', 'PIL', 'h5py') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import proxlab loaded {out}"


def test_version():
    assert proxlab.__version__.count(".") == 2
