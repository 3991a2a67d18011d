"""The simplest YAML documents, read and written without PyYAML.

PyYAML costs about 12 ms to import (its reader compiles a large regular expression),
more than the rest of `xpm run`'s own work on a typical project, whose xpm.yaml is a few
`key: value` lines and whose frozen config is `seed: 1234` plus some numbers and names.
This module reads and writes exactly those documents, and answers NOT_SIMPLE for any
other, which then goes to PyYAML (config.parse_yaml, config.dump_yaml). It never guesses:
what it gives is what PyYAML gives (config.yaml_loader's reading, dump_yaml's writing),
which the tests check against PyYAML on generated documents.

Read (`parse`): lines of plain ASCII, spaces only; blank lines and `#` comments (also after
a value, past a space); mappings nested by indentation; a value is a plain word (letters,
digits and `_./-`, starting with a letter, `_` or `/`), a decimal integer, a decimal or
exponent float, true/false, null or nothing (null), a flow list of those (`[a, 1]`) or a
block list of them (`- a`). Keys are plain words. A repeated key is NOT_SIMPLE.

`parse_value` reads one such value alone (`-s KEY=VALUE`).

Written (`dump`, None when not simple): a non-empty mapping of plain-word keys whose values
are plain words, integers, floats whose repr is a plain decimal, booleans, None, non-empty
mappings of the same, or non-empty lists of scalars; in PyYAML's block style (what
dump_yaml asks for).
"""

from __future__ import annotations

import re
from typing import Any, Final

NOT_SIMPLE: Final = object()  # "ask PyYAML"

_WORD = re.compile(r"[A-Za-z_/][A-Za-z0-9_./-]*\Z")
_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"-?[0-9]+(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)\Z")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+\Z")
# Words YAML 1.1 (PyYAML) reads as something other than text.
_SPECIAL = frozenset(
    form for word in ("yes", "no", "true", "false", "on", "off", "null")
    for form in (word, word.capitalize(), word.upper())
) | {"~"}
_BOOLEANS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
             "FALSE": False}
_NULLS = ("null", "Null", "NULL", "~")
_MAX_KEY = 100  # PyYAML writes a key of 128 characters or more as `? key`


class _NotSimple(Exception):
    pass


def _scalar(token: str) -> Any:
    if _WORD.match(token):
        if token in _SPECIAL:
            if token in _BOOLEANS:
                return _BOOLEANS[token]
            if token in _NULLS:
                return None
            raise _NotSimple  # yes/no/on/off: booleans to YAML 1.1; rare in a config
        return token
    if _INT.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(token)
    raise _NotSimple


def _value(text: str) -> Any:
    """A value after `key:` (comment already removed); [] for the start of a block."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise _NotSimple
        inner = text[1:-1].strip()
        if not inner:
            return []
        return [_scalar(item.strip()) for item in inner.split(",")]
    return _scalar(text)


def _strip_comment(line: str) -> str:
    at = line.find("#")
    if at < 0:
        return line.rstrip(" ")
    if at > 0 and line[at - 1] != " ":
        raise _NotSimple  # `a#b`: part of a word to YAML, not a comment
    return line[:at].rstrip(" ")


def parse(text: str) -> Any:
    """The document, as config.yaml_loader reads it, or NOT_SIMPLE."""
    try:
        return _parse(text)
    except _NotSimple:
        return NOT_SIMPLE


def parse_value(text: str) -> Any:
    """A one-line value (`-s KEY=VALUE`'s: `1e-3`, `[64, 64]`, `adam`) as
    config.yaml_loader reads it, or NOT_SIMPLE."""
    if not text.isascii() or not text.isprintable() or "#" in text:
        return NOT_SIMPLE
    try:
        return _value(text.strip(" "))
    except _NotSimple:
        return NOT_SIMPLE


def _parse(text: str) -> Any:
    if not text.isascii() or not text.replace("\n", "").isprintable():
        raise _NotSimple  # tabs, carriage returns, control characters: PyYAML decides
    lines: list[tuple[int, str]] = []
    for raw in text.split("\n"):
        line = _strip_comment(raw)
        if not line:
            continue
        if line.startswith(("---", "...", "%")):
            raise _NotSimple
        content = line.lstrip(" ")
        lines.append((len(line) - len(content), content))
    if not lines:
        return None
    if lines[0][0] != 0:
        raise _NotSimple
    value, end = _mapping(lines, 0, 0)
    if end != len(lines):
        raise _NotSimple
    return value


def _mapping(lines: list[tuple[int, str]], start: int, indent: int
             ) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    i = start
    while i < len(lines):
        level, content = lines[i]
        if level < indent:
            break
        if level > indent or content.startswith("-"):
            raise _NotSimple
        key, colon, rest = content.partition(":")
        if not colon or (rest and not rest.startswith(" ")):
            raise _NotSimple
        if not _WORD.match(key) or key in _SPECIAL or key in out:
            raise _NotSimple
        rest = rest.strip(" ")
        i += 1
        if rest:
            out[key] = _value(rest)
            continue
        nested = lines[i] if i < len(lines) else None
        if nested is not None and nested[1].startswith("-") and nested[0] >= indent:
            out[key], i = _sequence(lines, i, nested[0])
        elif nested is not None and nested[0] > indent:
            out[key], i = _mapping(lines, i, nested[0])
        else:
            out[key] = None
    return out, i


def _sequence(lines: list[tuple[int, str]], start: int, indent: int
              ) -> tuple[list[Any], int]:
    out: list[Any] = []
    i = start
    while i < len(lines):
        level, content = lines[i]
        if level < indent or (level == indent and not content.startswith("-")):
            break
        if level > indent or not content.startswith("- "):
            raise _NotSimple
        item = content[2:].strip(" ")
        if not item or item.startswith(("[", "- ")) or item == "-" or ":" in item:
            raise _NotSimple
        out.append(_scalar(item))
        i += 1
    return out, i


def dump(data: Any) -> str | None:
    """The text config.dump_yaml gives for `data`, or None when it is not this simple."""
    if type(data) is not dict or not data:
        return None
    out: list[str] = []
    try:
        _dump_mapping(data, "", out)
    except _NotSimple:
        return None
    return "".join(out)


def _dump_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is int:
        return str(value)
    if type(value) is float:
        shown = repr(value)
        if _DECIMAL.match(shown):
            return shown
        raise _NotSimple
    if type(value) is str and _WORD.match(value) and value not in _SPECIAL:
        return value
    raise _NotSimple


def _dump_key(key: Any) -> str:
    if type(key) is not str or len(key) > _MAX_KEY or not _WORD.match(key) or key in _SPECIAL:
        raise _NotSimple
    return key


def _dump_mapping(data: dict[Any, Any], indent: str, out: list[str]) -> None:
    for key, value in data.items():
        name = _dump_key(key)
        if type(value) is dict:
            if not value:
                raise _NotSimple
            out.append(f"{indent}{name}:\n")
            _dump_mapping(value, indent + "  ", out)
        elif type(value) is list:
            if not value:
                raise _NotSimple
            out.append(f"{indent}{name}:\n")
            out.extend(f"{indent}- {_dump_scalar(item)}\n" for item in value)
        else:
            out.append(f"{indent}{name}: {_dump_scalar(value)}\n")
