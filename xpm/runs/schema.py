"""Typed JSON records made from frozen dataclasses: checking, reading and writing them.

record.py declares run.json once, as frozen dataclasses; everything here is derived from
those declarations (their fields, annotations, defaults and metadata), so that a field is
declared in one line and checked, read, written and listed without another word:

- A field's annotation (a string: the modules use `from __future__ import annotations`)
  is one of the kinds in `_KINDS`, a dataclass declared beside it, or a tuple of one;
  `| None` lets the field be null.
- A field without a default must be present (and not null); one with a default (or with
  `{"absent": value}` in its metadata) reads as that when it is absent or null.
- Keys a declaration does not know (written by a newer xpm, or by a user's tool) are kept
  in the object's `extra` and written back after the known ones, so that they survive
  every rewrite.

Checking is what listing does to every record it reads, so it is a flat loop over
specs computed once, on first use (never at import: `xpm run` does not pay for them).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

_NULL = type(None)
REQUIRED = object()  # the default of a field that must be present
TIME_WHAT = "an ISO 8601 time with a timezone"


def _is_time(value: str) -> bool:
    try:
        return datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _is_texts(value: list[Any]) -> bool:
    try:
        "".join(value)  # only text joins: the fastest test of every item
    except TypeError:
        return False
    return True


# annotation → (JSON types, what it must be (for messages), a closer test or None, the
# in-memory form: "tuple" (a JSON list read as a tuple), "dict" (copied) or None)
_KINDS: dict[str, tuple[frozenset[type], str, Callable[[Any], bool] | None, str | None]] = {
    "str": (frozenset({str}), "text", None, None),
    "Time": (frozenset({str}), TIME_WHAT, _is_time, None),
    "int": (frozenset({int}), "a whole number", None, None),  # bool is no int here
    "float": (frozenset({int, float}), "a number", math.isfinite, None),
    "bool": (frozenset({bool}), "true or false", None, None),
    "tuple[str, ...]": (frozenset({list}), "a list of text", _is_texts, "tuple"),
    "dict[str, Any]": (frozenset({dict}), "an object", None, "dict"),
    "dict[str, str]": (frozenset({dict}), "an object", None, "dict"),
}


class Spec(NamedTuple):
    """One field as checked and read."""

    key: str
    types: frozenset[type]  # the JSON types it may have (with NoneType when it may be null)
    what: str
    test: Callable[[Any], bool] | None
    default: Any  # REQUIRED, or the value an absent or null field reads as
    form: str | None  # "tuple", "dict", "object" (one nested record), "objects" (a list)
    nested: Any  # the nested record's dataclass, for "object" and "objects"
    annotation: str
    metadata: Any


class Schema(NamedTuple):
    cls: Any
    specs: tuple[Spec, ...]
    known: frozenset[str]  # keys it reads or writes itself (its fields, DERIVED_KEYS)


_SCHEMAS: dict[Any, Schema] = {}


def schema_of(cls: Any) -> Schema:
    """The specs of a record dataclass (made once, on first use: not at import)."""
    known = _SCHEMAS.get(cls)
    if known is not None:
        return known
    namespace = vars(__import__(cls.__module__, fromlist=["_"]))
    specs = []
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            continue
        annotation = str(f.type)
        base, _, null = annotation.partition(" | ")
        if null not in ("", "None"):
            raise TypeError(f"{cls.__name__}.{f.name}: write `X | None`, not {annotation}")
        nested = None
        if base in _KINDS:
            types, what, test, form = _KINDS[base]
        elif base.startswith("tuple[") and base.endswith(", ...]"):
            nested = namespace[base[6:-6]]
            types, what, test, form = frozenset({list}), "a list", None, "objects"
        else:
            nested = namespace[base]
            types, what, test, form = frozenset({dict}), "an object", None, "object"
        if "absent" in f.metadata:  # required when made, not when read
            default = f.metadata["absent"]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = REQUIRED
        if null or default is not REQUIRED:  # null reads as the default
            types = types | {_NULL}
        specs.append(Spec(f.name, types, what, test, default, form, nested, annotation,
                          f.metadata))
    also = getattr(cls, "DERIVED_KEYS", ())  # keys written from other fields (an id)
    schema = Schema(cls, tuple(specs), frozenset((*(s.key for s in specs), *also, "extra")))
    _SCHEMAS[cls] = schema
    return schema


def problem(data: dict[str, Any], cls: Any, prefix: str = "") -> str | None:
    """What is wrong with the first field of the wrong type, naming it; None if nothing."""
    specs = schema_of(cls).specs
    get = data.get
    for key, types, what, test, default, form, nested, _, _ in specs:
        value = get(key, REQUIRED)
        if value is REQUIRED:
            if default is REQUIRED:
                return f"`{prefix}{key}` is missing"
            continue
        if type(value) not in types:
            return f"`{prefix}{key}` is {_shown(value)}, not {what}"
        if value is None:
            continue
        if test is not None and not test(value):
            return f"`{prefix}{key}` is {_shown(value)}, not {what}"
        if form == "object":
            found = problem(value, nested, f"{prefix}{key}.")
            if found is not None:
                return found
        elif form == "objects":
            for index, item in enumerate(value):
                where = f"{prefix}{key}[{index}]"
                if type(item) is not dict:
                    return f"`{where}` is {_shown(item)}, not an object"
                found = problem(item, nested, f"{where}.")
                if found is not None:
                    return found
    return None


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


def build(cls: Any, data: dict[str, Any]) -> Any:
    """The record of a checked JSON object (see `problem`); unknown keys kept in `extra`."""
    schema = schema_of(cls)
    values: dict[str, Any] = {}
    for spec in schema.specs:
        value = data.get(spec.key)
        if value is None:
            continue  # the default
        form = spec.form
        if form == "tuple":
            value = tuple(value)
        elif form == "dict":
            value = dict(value)
        elif form == "object":
            value = build(spec.nested, value)
        elif form == "objects":
            value = tuple(build(spec.nested, item) for item in value)
        values[spec.key] = value
    known = schema.known
    extra = {k: v for k, v in data.items() if k not in known}
    return cls(**values, extra=extra) if extra else cls(**values)


def dump(record: Any) -> dict[str, Any]:
    """A record as JSON data: its fields in declaration order, then the keys it kept."""
    schema = schema_of(type(record))
    data: dict[str, Any] = {}
    for spec in schema.specs:
        value = getattr(record, spec.key)
        form = spec.form
        if value is None:
            pass
        elif form == "tuple":
            value = list(value)
        elif form == "dict":
            value = dict(value)
        elif form == "object":
            value = dump(value)
        elif form == "objects":
            value = [dump(item) for item in value]
        data[spec.key] = value
    for key, value in record.extra.items():
        data.setdefault(key, value)
    return data
