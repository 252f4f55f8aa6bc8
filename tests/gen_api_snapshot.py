"""The public API of proxlab, read from every public module's ``__all__``, and its checked-in snapshot.

A module is public when no part of its dotted name starts with ``_``. For each name in its ``__all__``
the snapshot records what it is and, for functions and classes, its signature (parameter names, kinds and
defaults, no annotations); a class also lists
the public methods and properties it defines itself (those of ``torch.nn.Module`` and ``object``
are left out). ``tests/test_api_surface.py`` compares the live API with ``tests/api_snapshot.json``.

Regenerate the snapshot after an intended API change:

    python tests/gen_api_snapshot.py            # writes tests/api_snapshot.json
    python tests/gen_api_snapshot.py --check    # exit 1 and print the differences if it is stale
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import re
import sys
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("api_snapshot.json")
COMMAND = "python tests/gen_api_snapshot.py"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _signature(obj) -> str:
    """Parameter names, kinds and defaults; annotations are left out (their text depends on the Python and
    library versions, the API does not)."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(?)"
    sig = sig.replace(parameters=[q.replace(annotation=inspect.Parameter.empty) for q in sig.parameters.values()],
                      return_annotation=inspect.Signature.empty)
    return _ADDRESS.sub("", str(sig))  # default values such as <function mse at 0x7f…> print without their address


def _own_members(cls) -> dict[str, str]:
    """Public methods / properties defined by ``cls`` or a base class of proxlab's, with signatures."""
    out = {}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("proxlab"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in out:
                continue
            if isinstance(member, property):
                out[name] = "property"
            elif isinstance(member, (staticmethod, classmethod)):
                out[name] = f"{type(member).__name__}{_signature(member.__func__)}"
            elif inspect.isfunction(member):
                out[name] = f"method{_signature(member)}"
    return dict(sorted(out.items()))


def describe(obj) -> dict | str:
    """What the snapshot records for one public name."""
    if inspect.isclass(obj):
        return {"class": _signature(obj), "members": _own_members(obj)}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return f"function{_signature(obj)}"
    if callable(obj) and not isinstance(obj, type):
        return f"callable {type(obj).__name__}{_signature(obj)}"
    if inspect.ismodule(obj):
        return f"module {obj.__name__}"
    return f"value {type(obj).__name__}"


def public_modules() -> list[str]:
    import proxlab

    names = ["proxlab"]
    for info in pkgutil.walk_packages(proxlab.__path__, "proxlab."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def surface() -> dict:
    """``{"modules": {module: {name: description}}, "without_all": [modules that declare no __all__]}``."""
    modules, without = {}, []
    for name in public_modules():
        mod = importlib.import_module(name)
        exported = getattr(mod, "__all__", None)
        if exported is None:
            without.append(name)
            continue
        modules[name] = {n: (describe(getattr(mod, n)) if hasattr(mod, n) else "MISSING (listed in __all__)")
                         for n in sorted(exported)}
    return {"modules": modules, "without_all": without}


def differences(old: dict, new: dict) -> list[str]:
    """Human-readable lines: names removed, added or changed between two surfaces."""
    lines = []
    om, nm = old.get("modules", {}), new.get("modules", {})
    for mod in sorted(set(om) | set(nm)):
        a, b = om.get(mod), nm.get(mod)
        if a is None:
            lines.append(f"+ module {mod} ({len(b)} names)")
            continue
        if b is None:
            lines.append(f"- module {mod} (had {len(a)} names)")
            continue
        for n in sorted(set(a) | set(b)):
            if n not in b:
                lines.append(f"- {mod}.{n}")
            elif n not in a:
                lines.append(f"+ {mod}.{n}: {json.dumps(b[n], ensure_ascii=False)}")
            elif a[n] != b[n]:
                lines.append(f"~ {mod}.{n}: {json.dumps(a[n], ensure_ascii=False)} -> "
                             f"{json.dumps(b[n], ensure_ascii=False)}")
    for mod in sorted(set(old.get("without_all", [])) ^ set(new.get("without_all", []))):
        state = "now declares no __all__" if mod in new.get("without_all", []) else "no longer listed without __all__"
        lines.append(f"? {mod} {state}")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true", help="compare with the snapshot instead of writing it")
    a = p.parse_args(argv)
    live = surface()
    if a.check:
        diff = differences(json.loads(SNAPSHOT.read_text()), live) if SNAPSHOT.is_file() else ["no snapshot"]
        print("\n".join(diff) if diff else "snapshot up to date")
        return 1 if diff else 0
    SNAPSHOT.write_text(json.dumps(live, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    n = sum(len(v) for v in live["modules"].values())
    print(f"wrote {SNAPSHOT} ({len(live['modules'])} modules, {n} names)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    raise SystemExit(main())
