"""Value checks, TOML reading/writing and overrides behind :mod:`proxlab.experiments.config`.

Every check is a callable ``check(key, value) -> value`` that returns the value normalised (ints
accepted where floats are expected become floats, lists become tuples) or raises
:class:`ConfigError` with a one-line message ``"<key path>: expected ..., got ..."``.
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


# ---------------------------------------------------------------- TOML formatting
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def toml_string(s: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped (one line)."""
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(key: str) -> str:
    """A bare key where TOML allows one, else a quoted key."""
    return key if _BARE_KEY.match(key) else toml_string(key)


def toml_value(v: Any) -> str:
    """One TOML value on one line (tables inline). Raises ``TypeError`` for non-TOML values."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # repr always has '.', 'e', and round-trips exactly
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (datetime.date, datetime.time)):  # datetime is a date
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"not a TOML value: {v!r} ({type(v).__name__})")


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


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def table(key: str, v: Any) -> Mapping:
    if not isinstance(v, Mapping):
        raise ConfigError(key, f"expected a table, got {show(v)}")
    return v


# ---------------------------------------------------------------- checks
def integer(low: int | None = None) -> Check:
    want = "an int" + (f" >= {low}" if low is not None else "")

    def check(key: str, v: Any) -> int:
        if not is_int(v):
            raise ConfigError(key, f"expected {want}, got {show(v)}")
        if low is not None and v < low:
            raise ConfigError(key, f"expected {want}, got {v}")
        return v

    return check


def number(low: float | None = None, strict: bool = False, high: float | None = None) -> Check:
    """A finite number (int or float, not bool) >= low (> low when strict), <= high; returns float."""
    if high is not None:
        want = f"a number in {'(' if strict else '['}{low:g}, {high:g}]"
    elif low is not None:
        want = f"a number {'>' if strict else '>='} {low:g}"
    else:
        want = "a number"

    def check(key: str, v: Any) -> float:
        if not is_number(v):
            raise ConfigError(key, f"expected {want}, got {show(v)}")
        ok = math.isfinite(v)
        ok = ok and (low is None or (v > low if strict else v >= low)) and (high is None or v <= high)
        if not ok:
            raise ConfigError(key, f"expected {want}, got {show(v, typed=False)}")
        return float(v)

    return check


def string(pattern: str | None = None, nonempty: bool = False) -> Check:
    regex = re.compile(pattern + r"\Z") if pattern else None
    want = f"a str matching {pattern}" if pattern else ("a non-empty str" if nonempty else "a str")

    def check(key: str, v: Any) -> str:
        if not isinstance(v, str):
            raise ConfigError(key, f"expected {want}, got {show(v)}")
        if (regex and not regex.match(v)) or (nonempty and not v):
            raise ConfigError(key, f"expected {want}, got {show(v, typed=False)}")
        return v

    return check


def boolean(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(key, f"expected true or false, got {show(v)}")
    return v


def choice(choices: Sequence[str]) -> Check:
    listed = ", ".join(map(repr, choices))

    def check(key: str, v: Any) -> str:
        if not isinstance(v, str):
            raise ConfigError(key, f"expected one of {listed}, got {show(v)}")
        if v not in choices:
            raise ConfigError(key, f"expected one of {listed}, got {v!r}{hint(v, choices)}")
        return v

    return check


def array(item: Check, nonempty: bool = False, unique: bool = False) -> Check:
    """A list (or tuple) whose items pass ``item`` (checked as ``key[i]``); returns a tuple."""

    def check(key: str, v: Any) -> tuple:
        if not isinstance(v, (list, tuple)):
            raise ConfigError(key, f"expected a list, got {show(v)}")
        out = tuple(item(f"{key}[{i}]", x) for i, x in enumerate(v))
        if nonempty and not out:
            raise ConfigError(key, "expected a non-empty list, got []")
        if unique and len(set(out)) < len(out):
            dup = next(x for i, x in enumerate(out) if x in out[:i])
            raise ConfigError(key, f"expected no repeated entries, got {show(dup, typed=False)} twice")
        return out

    return check


def plain(key: str, v: Any) -> Any:
    """Any TOML value, copied: tuples become lists, mappings dicts with str keys."""
    if isinstance(v, (bool, int, float, str, datetime.date, datetime.time)):
        return v
    if isinstance(v, (list, tuple)):
        return [plain(f"{key}[{i}]", x) for i, x in enumerate(v)]
    if isinstance(v, Mapping):
        return free_table(key, v)
    raise ConfigError(key, f"expected a TOML value (str, int, float, bool, date, list or table), got {show(v)}")


def free_table(key: str, v: Any, value: Check = plain) -> dict:
    """A table with non-empty str keys whose values pass ``value`` (any TOML value by default)."""
    out = {}
    for k, x in table(key, v).items():
        if not isinstance(k, str) or not k:
            raise ConfigError(key, f"expected non-empty str keys, got key {show(k)}")
        out[k] = value(join(key, k), x)
    return out


def table_of(value: Check) -> Check:
    return lambda key, v: free_table(key, v, value)


DEVICE = re.compile(r"(auto|cpu|cuda(:\d+)?)\Z")


def device(key: str, v: Any) -> str:
    if not isinstance(v, str) or not DEVICE.match(v):
        got = show(v) if not isinstance(v, str) else f"{v!r}{hint(v, ('auto', 'cpu', 'cuda'))}"
        raise ConfigError(key, f"expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {got}")
    return v


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
    return {k: copy_tables(y) for k, y in x.items()} if isinstance(x, Mapping) else x


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
            if not re.match(r"[A-Za-z_][\w.:/+-]*\Z", value):
                raise
            parsed = value  # a bare word such as cuda:1 or cosine is taken as a string
    except (ValueError, toml.TOMLDecodeError) as e:
        raise ConfigError(where, str(e)) from None
    node = raw
    for i, k in enumerate(path[:-1]):
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(where, f"{'.'.join(path[: i + 1])} is not a table")
    node[path[-1]] = parsed


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


def emit_toml(lines: list[str], header: list[str], tbl: Mapping) -> None:
    """Append ``tbl`` as TOML to ``lines``: values first, then non-empty sub-tables as ``[a.b]``."""
    if header:
        lines += ["", "[" + ".".join(map(toml_key, header)) + "]"]
    subs = [(k, x) for k, x in tbl.items() if isinstance(x, Mapping) and x]
    lines += [f"{toml_key(k)} = {toml_value(x)}" for k, x in tbl.items() if not (isinstance(x, Mapping) and x)]
    for k, x in subs:
        emit_toml(lines, [*header, k], x)
