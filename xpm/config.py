"""Configs: load YAML/JSON files, deep-merge them, apply `-s KEY=VALUE`, freeze to YAML.

Python config files (forge style, exposing ``load(config, *args, **kwargs)``) are copied
into the run but never executed by xpm at run time; `xpm.load` calls them on request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import UsageError, XpmError

YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)
PYTHON_SUFFIXES = (".py",)

_INDEX = re.compile(r"\[(-?\d+)\]")


def _yaml() -> Any:
    import yaml

    return yaml


_LOADER: Any = None
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_FLOAT = "tag:yaml.org,2002:float"
_EXPONENT = re.compile(r"^[-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+$")


def yaml_loader() -> Any:
    """The safe loader (C when available), with two changes that configs need:

    - `1e-3` is a number, as YAML 1.2 reads it (YAML 1.1, PyYAML's, reads it as text);
    - dates and times stay the text they are, so that a config survives JSON (run.json)
      and YAML (config.yaml) unchanged.
    """
    global _LOADER
    if _LOADER is None:
        yaml = _yaml()
        base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        _LOADER = type("ConfigLoader", (base,), {})
        _LOADER.yaml_implicit_resolvers = {
            first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
            for first, resolvers in base.yaml_implicit_resolvers.items()
        }
        _LOADER.add_implicit_resolver(_FLOAT, _EXPONENT, list("-+0123456789"))
    return _LOADER


def _problem(exc: Exception) -> str:
    return str(getattr(exc, "problem", None) or str(exc).splitlines()[0])


MAX_DEPTH = 100  # levels of nesting a config may have (a cycle would have no end)


def check_plain(data: Any, source: str, path: str = "", _depth: int = 0) -> None:
    """Configs hold mappings with text keys, lists, text, numbers, booleans and nulls only:
    what JSON and YAML both keep the same. Anything else (binary data, sets, explicitly
    tagged dates, a number as a key, an anchor that holds itself) is an error naming the
    key."""
    where = path or "(top level)"
    if _depth > MAX_DEPTH:
        raise XpmError(f"{source}: `{where}` is nested more than {MAX_DEPTH} levels deep "
                       "(an anchor that holds itself?); flatten the config")
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                shown = "null" if key is None else repr(key)
                raise XpmError(f"{source}: key {shown} under `{where}` is a "
                               f"{type(key).__name__}, not text; quote it, e.g. '{key}': ...")
            check_plain(value, source, f"{path}.{key}" if path else key, _depth + 1)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            check_plain(value, source, f"{path}[{i}]", _depth + 1)
    elif not isinstance(data, str | int | float | bool) and data is not None:
        raise XpmError(f"{source}: `{where}` is a {type(data).__name__} value; "
                       "configs hold mappings, lists, text, numbers, booleans and nulls — "
                       "quote it to keep it as text")


def yaml_dumper() -> Any:
    yaml = _yaml()
    return getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def parse_yaml(text: str, source: str) -> Any:
    """Parse YAML; a syntax error becomes one line naming the file and line. The simplest
    documents are read without importing PyYAML (simpleyaml: the same answer, sooner)."""
    from . import simpleyaml

    simple = simpleyaml.parse(text)
    if simple is not simpleyaml.NOT_SIMPLE:
        return simple
    yaml = _yaml()
    try:
        return yaml.load(text, Loader=yaml_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise XpmError(f"{where}: malformed YAML ({_problem(exc)}); fix the file and try "
                       "again") from None
    except RecursionError:
        raise XpmError(f"{source}: nested too deeply to read; flatten it") from None


def dump_yaml(data: Any) -> str:
    """YAML in block style, keys in their order (simpleyaml writes the simplest configs
    without importing PyYAML, as PyYAML would)."""
    from . import simpleyaml

    simple = simpleyaml.dump(data)
    if simple is not None:
        return simple
    return pyyaml_dump(data)


def pyyaml_dump(data: Any) -> str:
    """dump_yaml's text as PyYAML writes it."""
    text: str = _yaml().dump(
        data, Dumper=yaml_dumper(), sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return text


def read_text(path: Path, what: str = "config file") -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise XpmError(f"{what} `{path}` does not exist; check the path") from None
    except IsADirectoryError:
        raise XpmError(f"{what} `{path}` is a folder, not a file; name a file") from None
    except (PermissionError, UnicodeDecodeError) as exc:
        raise XpmError(f"{what} `{path}` cannot be read ({exc.__class__.__name__}); "
                       "check its permissions and encoding") from None


def load_file(path: Path) -> dict[str, Any] | None:
    """A YAML or JSON config file as a mapping; None for a Python config file."""
    suffix = path.suffix.lower()
    if suffix in PYTHON_SUFFIXES:
        if not path.is_file():
            raise XpmError(f"config file `{path}` does not exist; check the path")
        return None
    text = read_text(path)
    if suffix in JSON_SUFFIXES:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise XpmError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg}); fix the file "
                           "and try again") from None
        except RecursionError:
            raise XpmError(f"config file `{path}` is nested too deeply to read; "
                           "flatten it") from None
    elif suffix in YAML_SUFFIXES:
        data = parse_yaml(text, str(path))
    else:
        raise XpmError(f"config file `{path}` is not YAML, JSON or Python; "
                       "use a .yaml, .yml, .json or .py file")
    if data is None:
        return {}
    check_plain(data, str(path))
    if not isinstance(data, dict):
        raise XpmError(f"config file `{path}` holds a {type(data).__name__}, not a mapping; "
                       "its top level must be `key: value` pairs")
    return data


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; anything else in `update` replaces what `base` had."""
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def parse_key(key: str) -> list[str | int]:
    """`model.layers[1].units` or `model.layers.1.units` → ['model', 'layers', 1, 'units']."""
    parts: list[str | int] = []
    for segment in key.split("."):
        head, _, rest = segment.partition("[")
        rest = "[" + rest if rest else ""
        if head:
            parts.append(int(head) if head.lstrip("-").isdigit() and parts else head)
        elif not rest:
            raise UsageError(f"`{key}` has an empty part; write keys like model.lr")
        indexes = _INDEX.findall(rest)
        if "".join(f"[{i}]" for i in indexes) != rest:
            raise UsageError(f"`{key}` has a malformed index; write keys like model.layers[1]")
        parts.extend(int(i) for i in indexes)
    if not parts or not isinstance(parts[0], str):
        raise UsageError(f"`{key}` must start with a key name; write keys like model.lr")
    return parts


def parse_assignment(text: str) -> tuple[list[str | int], Any]:
    """`a.b=VALUE` with VALUE a YAML scalar or flow value (`1e-3`, `[64, 64]`, `abc`)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"-s `{text}` is not KEY=VALUE; write e.g. -s model.lr=0.001")
    from . import simpleyaml

    value: Any = simpleyaml.parse_value(raw) if raw.strip() else ""
    if value is simpleyaml.NOT_SIMPLE:
        yaml = _yaml()
        try:
            value = yaml.load(raw, Loader=yaml_loader())
        except yaml.YAMLError as exc:
            raise UsageError(f"-s `{text}`: the value is not a YAML value ({_problem(exc)}); "
                             "quote it to pass text, e.g. -s 'name=\"a: b\"'") from None
        except RecursionError:
            raise UsageError(f"-s `{text[:40]}`: the value is nested too deeply") from None
    shown = text if len(text) <= 60 else text[:57] + "..."
    check_plain(value, f"-s `{shown}`", key.strip())
    return parse_key(key.strip()), value


def set_path(config: dict[str, Any], path: list[str | int], value: Any, text: str) -> None:
    """Set `value` at `path`, creating mappings on the way; never index into a scalar."""
    node: Any = config
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(node, dict):
            if last:
                node[part] = value
            elif node.get(part) is None:
                node[part] = {} if isinstance(path[depth + 1], str) else []
        elif isinstance(node, list) and isinstance(part, int):
            if not -len(node) <= part < len(node):
                raise UsageError(f"-s `{text}`: index {part} of `{_render(path[:depth])}` is "
                                 f"out of range (the list has {len(node)} items)")
            if last:
                node[part] = value
        else:
            raise UsageError(f"-s `{text}` indexes into `{_render(path[:depth])}`, which is a "
                             f"{type(node).__name__}; set it whole instead")
        if not last:
            node = node[part]


def _render(path: list[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


def apply_assignments(config: dict[str, Any], assignments: list[str]) -> dict[str, Any]:
    for text in assignments:
        path, value = parse_assignment(text)
        set_path(config, path, value, text)
    return config


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Nested config → {'model.layers[1]': 64, ...}; empty containers are kept as leaves."""
    flat: dict[str, Any] = {}
    if isinstance(config, dict) and config:
        for key, value in config.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(config, list) and config:
        for i, value in enumerate(config):
            flat.update(flatten(value, f"{prefix}[{i}]"))
    else:
        flat[prefix] = config
    return flat
