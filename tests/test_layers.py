"""No upward import: every module of ``src/proxlab`` imports only its own layer or those below (DESIGN.md's table).

Imports are read from the source with ``ast``: module-level ones, those inside functions, and the literal
``importlib.import_module("proxlab....")`` / ``__import__`` / ``resources.files("proxlab....")`` calls.
Same-layer imports are allowed, but the packages must not import each other in a cycle.

The table below is DESIGN.md's, plus where its unlisted modules sit:

- ``_checks`` (argument checks) and ``weights`` (reading ``.safetensors`` weights, ``zoo:NAME`` resolution
  from the package-data folder) are helpers on torch alone: layer 0, usable by everything.
- ``registry`` (model names), ``models`` (the registrations: priors' nets, unrolled nets) and ``methods``
  (classic methods by name: solvers + classic priors + tasks' names) are layer 3, beside ``unrolled``.
  ``registry`` and ``models`` are one room for the cycle check: the registry imports ``proxlab.models`` on
  its first lookup so that the built-in names are always known, and ``models`` registers through it.
- ``reconstruction`` (``proxlab.reconstruct``: methods, registry and zoo) is layer 5, beside the zoo.
- The package root ``proxlab/__init__.py`` is the public façade: it is not checked, and importing it (for
  ``__version__``) is allowed everywhere, since it is loaded before any submodule anyway.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "proxlab"

LAYERS: dict[str, int] = {
    "operators": 0, "metrics": 0, "_checks": 0, "weights": 0,
    "priors": 1, "tasks": 1,
    "solvers": 2, "interop": 2,
    "unrolled": 3, "losses": 3, "methods": 3, "registry": 3, "models": 3,
    "data": 4, "training": 4,
    "experiments": 5, "zoo": 5, "reconstruction": 5,
    "cli": 6,
}
# Table entries that may import each other (one room split in two files); see the module docstring.
TOGETHER = {"registry": "models"}


def module_files(src: Path) -> dict[str, Path]:
    """``{"proxlab.operators.base": path, ...}`` for every ``.py`` file under ``src/proxlab``."""
    out = {}
    for path in sorted((src / ROOT).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _absolute(module: str, is_package: bool, target: str | None, level: int) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _literal_call_target(node: ast.Call, module: str, is_package: bool) -> str | None:
    """``importlib.import_module("x", package)``, ``__import__("x")``, ``resources.files("x")`` -> ``x``."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__", "files") or not node.args:
        return None
    arg = node.args[0]
    if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
        return None
    text = arg.value
    if text.startswith("."):  # relative to the package argument; here always the module's own package
        level = len(text) - len(text.lstrip("."))
        return _absolute(module, is_package, text[level:] or None, level)
    return text


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[int, str]]:
    """``(line, imported proxlab module)`` for every import in the file, wherever it is written."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.module, node.level)
            for a in node.names:  # "from pkg import sub" imports the submodule pkg.sub when there is one
                sub = f"{base}.{a.name}"
                found.append((node.lineno, sub if sub in known else base))
        elif isinstance(node, ast.Call):
            target = _literal_call_target(node, module, is_package)
            if target:
                found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == ROOT or name.startswith(ROOT + ".")]


def unit_of(module: str) -> str | None:
    """The layer-table entry a module belongs to (``proxlab.priors.lpn`` -> ``priors``); None for the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def check_layers(src: Path, layers: dict[str, int], together: dict[str, str] | None = None) -> list[str]:
    """Every upward import, import cycle between table entries (``together`` maps an entry to the one it
    forms a room with), and module missing from the table."""
    room = lambda unit: (together or {}).get(unit, unit)  # noqa: E731
    files = module_files(src)
    known = set(files)
    problems, edges = [], {}
    for module, path in files.items():
        unit = unit_of(module)
        if unit is None:
            continue  # the package root: the public façade
        if unit not in layers:
            problems.append(f"{module} ({path.relative_to(src)}) is not in the layer table")
            continue
        for line, target in imports_of(module, path, known):
            t_unit = unit_of(target)
            if t_unit is None or t_unit == unit:
                continue
            if t_unit not in layers:
                problems.append(f"{module}:{line} imports {target}, which is not in the layer table")
            elif layers[t_unit] > layers[unit]:
                problems.append(f"{module}:{line} (layer {layers[unit]}) imports {target} "
                                f"(layer {layers[t_unit]}): an upward import")
            elif room(t_unit) != room(unit):
                edges.setdefault(room(unit), {}).setdefault(room(t_unit), f"{module}:{line}")
    problems += [f"import cycle {' -> '.join(c)} (first edge at {edges[c[0]][c[1]]})" for c in _cycles(edges)]
    return problems


def _cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """One cycle per strongly connected group of table entries, found by depth-first search."""
    found, done = [], set()

    def visit(node, stack):
        if node in stack:
            found.append(stack[stack.index(node):] + [node])
            return True
        if node in done:
            return False
        stack.append(node)
        for nxt in sorted(edges.get(node, {})):
            if visit(nxt, stack):
                return True
        stack.pop()
        done.add(node)
        return False

    for start in sorted(edges):
        if start not in done:
            visit(start, [])
            done.update(n for c in found for n in c)
    return found


def test_no_module_imports_up_the_layer_table():
    problems = check_layers(SRC, LAYERS, TOGETHER)
    assert not problems, "\n".join(problems)


def test_the_table_covers_every_top_level_module():
    units = {unit_of(m) for m in module_files(SRC)} - {None}
    assert units == set(LAYERS), f"in the package, not the table: {units - set(LAYERS)}; " \
                                 f"in the table, not the package: {set(LAYERS) - units}"


# ---- the checker checks ----------------------------------------------------------------------------------------
def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "src" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "src"


CLEAN = {
    "proxlab/__init__.py": "from . import operators, zoo\n__version__ = '0'\n",
    "proxlab/operators/__init__.py": "from .base import Op\nfrom .. import _checks\n",
    "proxlab/operators/base.py": "from .._checks import check\nclass Op: ...\n",
    "proxlab/_checks.py": "def check(): ...\n",
    "proxlab/zoo/__init__.py": "from ..operators import Op\nfrom proxlab import __version__\n",
}
TINY_TABLE = {"operators": 0, "_checks": 0, "zoo": 5}


def test_checker_passes_a_clean_tree(tmp_path):
    assert check_layers(_tree(tmp_path, CLEAN), TINY_TABLE) == []


@pytest.mark.parametrize("planted, needle", [
    ("from ..zoo import load\n", "proxlab.operators.bad:1 (layer 0) imports proxlab.zoo (layer 5): an upward import"),
    ("def f():\n    from proxlab.zoo import load\n", "proxlab.operators.bad:2 (layer 0) imports proxlab.zoo"),
    ("import proxlab.zoo\n", "imports proxlab.zoo (layer 5)"),
    ("from .. import zoo\n", "imports proxlab.zoo (layer 5)"),
    ("import importlib\ndef f():\n    return importlib.import_module('proxlab.zoo')\n", "bad:3 (layer 0) imports proxlab.zoo"),
    ("from importlib import resources\nD = resources.files('proxlab.zoo')\n", "bad:2 (layer 0) imports proxlab.zoo"),
    ("from ..cli import main\n", "imports proxlab.cli, which is not in the layer table"),
])
def test_checker_catches_a_planted_upward_import(tmp_path, planted, needle):
    src = _tree(tmp_path, dict(CLEAN, **{"proxlab/operators/bad.py": planted}))
    problems = check_layers(src, TINY_TABLE)
    assert any(needle in p for p in problems), problems


def test_checker_catches_a_same_layer_cycle_and_an_unlisted_module(tmp_path):
    files = dict(CLEAN, **{"proxlab/experiments.py": "from . import zoo\n",
                           "proxlab/zoo/__init__.py": "def f():\n    from ..experiments import g\n",
                           "proxlab/newthing.py": "x = 1\n"})
    problems = check_layers(_tree(tmp_path, files), dict(TINY_TABLE, experiments=5))
    assert any(p.startswith("import cycle experiments -> zoo -> experiments") or
               p.startswith("import cycle zoo -> experiments -> zoo") for p in problems), problems
    assert any("proxlab.newthing (proxlab/newthing.py) is not in the layer table" in p for p in problems), problems
