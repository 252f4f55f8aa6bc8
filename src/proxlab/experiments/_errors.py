"""pydantic's validation errors as the spec's one-line messages (``key.path: expected ..., got ...``).

Validators inside the spec raise :class:`_Fail` (a key relative to the model and a message); :func:`validate`
turns the first error of a ``ValidationError`` into a :class:`~proxlab.experiments._toml.ConfigError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from . import _toml as v
from ._toml import ConfigError

class _Fail(ValueError):
    """Raised inside validators: a key (relative to the model) and a message; becomes a ConfigError."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(message)


def _choices(xs: Sequence[str]) -> str:
    return ", ".join(repr(x) for x in xs)


def _join(where: str, loc: Sequence) -> str:
    out = where
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith("["):
            out += part
        elif part:
            out = f"{out}.{part}" if out else str(part)
    return out


def _bounds(model: type[BaseModel], loc: Sequence) -> dict:
    """The ge/gt/le bounds of the field at ``loc`` (for messages such as 'expected an int >= 1')."""
    out: dict = {}
    field = model.model_fields.get(loc[0]) if loc and isinstance(loc[0], str) else None
    for m in getattr(field, "metadata", []) or []:
        for k in ("ge", "gt", "le", "lt"):
            if getattr(m, k, None) is not None:
                out[k] = getattr(m, k)
    return out


def _field_is_int(model: type[BaseModel], loc: Sequence) -> bool:
    field = model.model_fields.get(loc[0]) if loc and isinstance(loc[0], str) else None
    return getattr(field, "annotation", None) is int


def _known_keys(model: type[BaseModel], loc: Sequence) -> list[str]:
    cls = model
    for part in loc[:-1]:
        f = cls.model_fields.get(part) if isinstance(part, str) else None
        ann = getattr(f, "annotation", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            cls = ann
    return list(cls.model_fields)


def _message(model: type[BaseModel], err: dict) -> tuple[Sequence, str]:
    kind, loc, got = err["type"], list(err["loc"]), err.get("input")
    loc = [p for p in loc if not (isinstance(p, str) and ("[" in p and "]" in p and "." not in p and p[0] != "["))]
    shown = v.show(got)
    bounds = _bounds(model, loc)
    lo = [(k, bounds[k]) for k in ("ge", "gt") if k in bounds]
    hi = [(k, bounds[k]) for k in ("le", "lt") if k in bounds]
    if lo and hi:
        rng = f" in {'[' if lo[0][0] == 'ge' else '('}{lo[0][1]:g}, {hi[0][1]:g}{']' if hi[0][0] == 'le' else ')'}"
    else:
        rng = "".join(f" {s} {bounds[k]:g}" for k, s in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
                      if k in bounds)
    if kind == "value_error" and isinstance(err.get("ctx", {}).get("error"), _Fail):
        fail = err["ctx"]["error"]
        return [*loc, fail.key] if fail.key else loc, fail.message
    if kind == "value_error" and isinstance(err.get("ctx", {}).get("error"), ValueError):
        return loc, str(err["ctx"]["error"])  # a part's own validator: its message as it wrote it
    if kind == "extra_forbidden":
        key = str(loc[-1])
        return loc, "unknown key" + (v.hint(key, _known_keys(model, loc)) or
                                     f"; expected one of: {', '.join(_known_keys(model, loc))}")
    if kind == "missing":
        return loc[:-1], f"missing required key {loc[-1]!r}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return loc, f"expected an int{rng}, got {shown}"
    if kind in ("float_type", "float_parsing"):
        return loc, f"expected a number{rng}, got {shown}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        if not bounds:
            ctxb = err.get("ctx", {})
            (k, b), = [(k, ctxb[k]) for k in ("ge", "gt", "le", "lt") if k in ctxb]
            rng = f" {dict(ge='>=', gt='>', le='<=', lt='<')[k]} {b:g}"
            is_int = isinstance(b, int)
        else:
            is_int = _field_is_int(model, loc)
        return loc, f"expected {'an int' if is_int else 'a number'}{rng}, got {v.show(got, typed=False)}"
    if kind == "string_type":
        return loc, f"expected a string, got {shown}"
    if kind == "string_too_short":
        return loc, f"expected a non-empty string, got {v.show(got, typed=False)}"
    if kind == "bool_type":
        return loc, f"expected true or false, got {shown}"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        opts = re.findall(r"'([^']*)'", expected)
        return loc, f"expected one of {expected.replace(' or ', ', ')}, got {shown if not isinstance(got, str) else repr(got)}" \
                    + (v.hint(got, opts) if isinstance(got, str) else "")
    if kind in ("tuple_type", "list_type"):
        return loc, f"expected a list, got {shown}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return loc, f"expected a table, got {shown}"
    if kind == "too_short":
        return loc, f"expected a non-empty list, got {v.show(got, typed=False)}"
    return loc, f"{err['msg'].lower().rstrip('.')}, got {shown}"


def _validate(model: type[BaseModel], raw: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc, msg = _message(model, err)
        raise ConfigError(_join(where, loc) or where, msg) from None


def _validate_part_options(part, raw: Mapping, key: str) -> None:
    try:
        part.validate_options(dict(raw))
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc, msg = _message(part.options, err)
        raise _Fail(_join(key, loc), msg) from None
    except ValueError as e:
        raise _Fail(key, f"{part.name!r} {e}") from None
