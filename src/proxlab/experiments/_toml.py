"""TOML reading, ``key=value`` overrides and one-line error formatting behind :mod:`proxlab.experiments.config`.

The schema itself is pydantic's (:mod:`proxlab.experiments.config`); writing TOML is tomli-w's.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["ConfigError"]

Check = Callable[[str, Any], Any]


class ConfigError(ValueError):
    """An invalid experiment config. The message is one line that starts with the key path
    (``training.lr``), or the file name for TOML syntax errors; ``key`` holds that path."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}")


def toml_value(v: Any) -> str:
    """One TOML value on one line, as tomli-w writes it (``TypeError`` for a non-TOML value)."""
    import tomli_w

    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{tomli_w.dumps({k: 0}).split('=')[0].strip()} = {toml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if v is None:
        raise TypeError(f"not a TOML value: {v!r} ({type(v).__name__})")
    try:
        return tomli_w.dumps({"v": v}).split("=", 1)[1].strip()
    except TypeError:
        raise TypeError(f"not a TOML value: {v!r} ({type(v).__name__})") from None


def show(v: Any, typed: bool = True) -> str:
    """``v`` as it would be written in TOML (shortened), with its Python type when ``typed``."""
    try:
        s = toml_value(v)
    except TypeError:
        s = repr(v)
    s = s if len(s) <= 60 else s[:57] + "..."
    return f"{s} ({type(v).__name__})" if typed else s


# ---------------------------------------------------------------- small helpers
def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def hint(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_key(path: str, key: str, known: Sequence[str]) -> ConfigError:
    h = hint(str(key), known) or f"; expected one of: {', '.join(known)}"
    return ConfigError(join(path, str(key)), "unknown key" + h)


# ---------------------------------------------------------------- TOML in and out, overrides
def toml_module() -> Any:
    """``tomllib`` (Python 3.11+) or ``tomli`` (3.10)."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli
    except ImportError:
        raise ImportError("reading TOML on Python 3.10 needs the 'tomli' package: pip install tomli") from None
    return tomli


def parse_toml(text: str, where: str) -> dict:
    """Parse TOML text; syntax errors become ``ConfigError("<where>: invalid TOML: <message (line, column)>")``."""
    toml = toml_module()
    try:
        return toml.loads(text)
    except toml.TOMLDecodeError as e:
        raise ConfigError(where, f"invalid TOML: {e}") from None


def copy_tables(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: copy_tables(y) for k, y in x.items()}
    return [copy_tables(y) for y in x] if isinstance(x, list) else x


def split_override(text: str) -> tuple[str, str]:
    """Split at the first ``=`` outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return text[:i].strip(), text[i + 1:].strip()
    raise ValueError("expected 'section.key=value'")


def apply_override(raw: dict, text: str) -> None:
    """Set ``raw[section][key] = value`` from ``"section.key=value"`` (value parsed as TOML), in place."""
    toml, where = toml_module(), f"override {text!r}"
    try:
        if "\n" in text or "\r" in text:
            raise ValueError("expected one line 'section.key=value'")
        key, value = split_override(text)
        if not key or not value:
            raise ValueError("expected 'section.key=value'")
        path, node = [], toml.loads(f"{key} = 0")  # TOML parses the (dotted, maybe quoted) key
        while isinstance(node, dict):
            (k, node), = node.items()
            path.append(k)
        try:
            parsed = toml.loads(f"v = {value}")["v"]
        except toml.TOMLDecodeError:
            if not re.match(r"[A-Za-z_./~][\w.:/+~-]*\Z", value):  # a bare word or a path
                raise
            parsed = value  # a bare word such as cuda:1 or cosine is taken as a string
    except (ValueError, toml.TOMLDecodeError) as e:
        raise ConfigError(where, str(e)) from None
    node: Any = raw
    for i, k in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):  # an array of tables: stages.0.steps=50
            if not k.isdigit() or int(k) >= len(node):
                raise ConfigError(where, f"{'.'.join(path[:i])} has {len(node)} entries; {k!r} is not an index")
            if last:
                node[int(k)] = parsed
            else:
                node[int(k)] = dict(node[int(k)]) if isinstance(node[int(k)], Mapping) else node[int(k)]
                node = node[int(k)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(where, f"{'.'.join(path[:i])} is not a table")
        if last:
            node[k] = parsed
        else:
            nxt = node.setdefault(k, {})
            node[k] = list(nxt) if isinstance(nxt, list) else nxt
            node = node[k]


def apply_overrides(raw: Mapping, overrides: Sequence[str] | None) -> dict:
    """A copy of ``raw`` (tables copied, values shared) with ``overrides`` applied in order."""
    if overrides is None:
        overrides = ()
    if isinstance(overrides, str) or not isinstance(overrides, Sequence):
        raise TypeError(f"overrides: expected a list of 'section.key=value' strings, got {type(overrides).__name__}")
    raw = copy_tables(raw)
    for o in overrides:
        if not isinstance(o, str):
            raise TypeError(f"overrides: expected str items, got {o!r} ({type(o).__name__})")
        apply_override(raw, o)
    return raw
