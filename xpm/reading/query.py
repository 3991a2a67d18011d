"""The fields of a run as `xpm ls --json` shows them, and the questions asked of them:
`--where` conditions (parsed, never evaluated as code) and `--sort` keys.

Fields: id, name, number, status, problem, then run.json's listed fields (COLUMNS, derived
from the declaration in runs/record.py: created, started, ended, duration, exit_code,
signal, attempts, tags, note, seed, host, user, git.commit, git.branch, git.dirty, ...),
config.KEY (nested keys as in `-s`: model.layers[1]), metrics.NAME (last values), path.
`tag`, `commit`, `branch` and `dirty` are short for tags, git.commit, git.branch, git.dirty.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import times
from ..errors import UsageError
from ..runs.record import RUNNING, listed_fields
from ..runs.schema import REQUIRED, schema_of

if TYPE_CHECKING:
    from ..runs.catalog import RawEntry


class Column(NamedTuple):
    """A listed field of run.json as listing keeps it: `created`, `tags`, `git.commit`..."""

    key: str  # the field's path: `created`, `git.commit`
    parent: str | None  # the nested object it is in (`git`), or None
    field: str  # its name in that object
    form: str | None  # "tuple" (a list kept as a tuple), "count" (a list kept as its
    #                   length), "config" (the config), "time", "text" or None
    default: Any  # its value when the record lacks it (not for a missing parent object)


def _columns() -> tuple[Column, ...]:
    """The listed fields, in order, from record.py's one declaration."""
    def column(key: str, parent: str | None, spec: Any) -> Column:
        form = spec.form
        if spec.metadata.get("listed") == "count":
            form = "count"
        elif key == "config":
            form = "config"
        elif spec.annotation.startswith("Time"):
            form = "time"
        elif spec.annotation.startswith("str"):
            form = "text"
        default = None if spec.default is REQUIRED or form == "count" else spec.default
        return Column(f"{parent}.{key}" if parent else key, parent, key, form, default)

    out: list[Column] = []
    for key, spec in listed_fields():
        if spec.form == "object":
            out.extend(column(sub.key, key, sub) for sub in schema_of(spec.nested).specs
                       if sub.metadata.get("listed"))
        else:
            out.append(column(key, None, spec))
    return tuple(out)


COLUMNS = _columns()
INDEX = {c.key: n for n, c in enumerate(COLUMNS)}  # a column's place in RunInfo.values
NESTED = tuple(dict.fromkeys(c.parent for c in COLUMNS if c.parent))  # ("git",)
PLAIN_FIELDS = ("id", "name", "number", "status", "problem",
                *(c.key for c in COLUMNS if c.parent is None and c.form != "config"), "path")
TIME_FIELDS = tuple(c.key for c in COLUMNS if c.form == "time")
NUMBER_FIELDS = ("number", "duration", "exit_code", "signal", "attempts", "seed")
ALIASES = {"tag": "tags", "commit": "git.commit", "branch": "git.branch", "dirty": "git.dirty"}
OPERATORS = ("!=", "<=", ">=", "==", "!~", "=", "<", ">", "~")
FIELD_HELP = ", ".join((*PLAIN_FIELDS, *(c.key for c in COLUMNS if c.parent))) + \
    ", config.KEY or metrics.NAME"

_OPERATOR_CHARS = "=!<>~"
_CONDITION = re.compile(r"^\s*(?P<field>[^=!<>~]*?)\s*(?P<op>!=|<=|>=|==|!~|=|<|>|~)"
                        r"\s*(?P<value>.*?)\s*$", re.S)
_NO_VALUES: tuple[Any, ...] = ()
_HEAD = ("id", "name", "number", "status", "problem", "path")  # RunInfo's own attributes
# What `--json` shows of a run without a record (corrupt, newer).
_UNREAD_VALUES: tuple[Any, ...] = tuple(() if c.form == "tuple" else 0 if c.form == "count" else
                       {} if c.form == "config" else None for c in COLUMNS)
_CONFIG = INDEX["config"]
_TAGS = INDEX["tags"]
_DURATION = INDEX["duration"]
_STARTED = INDEX["started"]
_CREATED = INDEX["created"]


class RunInfo(NamedTuple):
    """What listing knows of one run: run.json's listed fields (COLUMNS, in `values`) and
    the metrics' last values. A corrupt run has no values."""

    name: str
    number: int
    folder: str  # the name's folder (one str shared by its runs)
    status: str
    problem: str | None = None
    values: tuple[Any, ...] | list[Any] = _NO_VALUES  # one per column of COLUMNS
    metrics: dict[str, Any] | None = None  # None until read

    @classmethod
    def of(cls, name: str, number: int, folder: str, status: str, problem: str | None = None,
           metrics: dict[str, Any] | None = None, **fields: Any) -> RunInfo:
        """A RunInfo from keyword fields (`tags=`, `config=`, `git_commit=` for git.commit);
        the others take their defaults (None for a nested object's: no such object)."""
        values = [fields.pop(c.key.replace(".", "_"), None if c.parent else c.default)
                  for c in COLUMNS]
        if fields:
            raise TypeError(f"no listed fields {sorted(fields)}")
        return cls(name, number, folder, status, problem, tuple(values), metrics)

    def get(self, key: str) -> Any:
        """A column's value (`created`, `git.commit`); None for a corrupt run."""
        values = self.values
        return values[INDEX[key]] if values else None

    @property
    def id(self) -> str:
        return f"{self.name}/{self.number}"

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.number}"

    @property
    def config(self) -> dict[str, Any]:
        return self.values[_CONFIG] if self.values else {}

    @property
    def tags(self) -> tuple[str, ...]:
        return self.values[_TAGS] if self.values else ()

    @property
    def duration(self) -> float | None:
        return self.values[_DURATION] if self.values else None

    @property
    def commit(self) -> str | None:
        commit: str | None = self.get("git.commit")
        return commit

    @property
    def dirty(self) -> bool | None:
        dirty: bool | None = self.get("git.dirty")
        return dirty

    @property
    def when(self) -> str | None:
        """When the run started, or was created when it has not started yet."""
        values = self.values
        return (values[_STARTED] or values[_CREATED]) if values else None

    def to_json(self) -> dict[str, Any]:
        """The object `xpm ls --json` prints: every key always present, in this order."""
        data: dict[str, Any] = {"id": self.id, "name": self.name, "number": self.number,
                                "status": self.status, "problem": self.problem}
        for column, value in zip(COLUMNS, self.values or _UNREAD_VALUES, strict=True):
            if column.parent is not None:
                data.setdefault(column.parent, {})[column.field] = value
            else:
                data[column.key] = list(value) if column.form == "tuple" else value
        data["metrics"] = self.metrics or {}
        data["path"] = self.path
        return data


def info_of(entry: RawEntry) -> RunInfo:
    """The listed fields of a run from its raw record (metrics are read separately)."""
    data = entry.data
    folder = entry.path.rpartition("/")[0]
    if data is None:
        return RunInfo(entry.name, entry.number, folder, entry.status, entry.problem)
    values: list[Any] = []
    get = data.get
    for column in COLUMNS:
        if column.parent is None:
            value = get(column.field)
        else:
            parent = get(column.parent)
            if parent is None:
                values.append(None)
                continue
            value = parent.get(column.field)
        form = column.form
        if form == "count":
            value = len(value or ())
        elif value is None:
            value = column.default
        elif form == "tuple":
            value = tuple(value)
        values.append(value)
    if entry.status == RUNNING:
        values[_DURATION] = live_duration(get("attempts") or ())
    return RunInfo(entry.name, entry.number, folder, entry.status, None, values)


def live_duration(attempts: Any) -> float | None:
    """Time spent running so far: every finished attempt, and the current one until now."""
    total = 0.0
    current = times.now()
    for attempt in attempts:
        started = attempt.get("started")
        if not started:
            continue
        end = times.parse_iso(attempt["ended"]) if attempt.get("ended") else current
        total += (end - times.parse_iso(started)).total_seconds()
    return round(total, 3) if attempts else None


class Field(NamedTuple):
    """A field path: a plain field, a git field, or a key under config or metrics."""

    text: str  # as the user wrote it
    kind: str  # "plain", a nested object's name ("git"), "config" or "metrics"
    parts: tuple[str | int, ...]

    def get(self, info: RunInfo) -> Any:
        """The field's value for a run; None when the run has no such field."""
        if self.kind == "plain":
            name = str(self.parts[0])
            if name in _HEAD:
                return getattr(info, name)
            return info.get(name)
        if self.kind in NESTED:
            return info.get(f"{self.kind}.{self.parts[0]}")
        if self.kind == "metrics":
            return (info.metrics or {}).get(str(self.parts[0]))
        node: Any = info.config
        for part in self.parts:
            if isinstance(part, int) and isinstance(node, list) and -len(node) <= part < len(node):
                node = node[part]
            elif isinstance(node, dict) and str(part) in node:
                node = node[str(part)]
            else:
                return None
        return node

    @property
    def is_time(self) -> bool:
        return self.kind == "plain" and self.parts[0] in TIME_FIELDS


def parse_field(text: str, what: str) -> Field:
    """`config.model.lr`, `metrics.loss`, `status`, ... → a Field; UsageError otherwise.

    `what` names where the field was given, for the message (e.g. "--sort `x`").
    """
    from ..config import parse_key

    name = ALIASES.get(text.strip(), text.strip())
    head, dot, rest = name.partition(".")
    if head in PLAIN_FIELDS and not dot:
        return Field(text, "plain", (head,))
    if head in NESTED and name in INDEX:
        return Field(text, head, (rest,))
    if head == "metrics" and rest:
        return Field(text, "metrics", (rest,))
    if head == "config" and rest:
        try:
            return Field(text, "config", tuple(parse_key(rest)))
        except UsageError as exc:
            raise UsageError(f"{what}: {exc}") from None
    if head in ("config", "metrics") and not rest:
        raise UsageError(f"{what}: name a key under `{head}`, e.g. {head}."
                         f"{'lr' if head == 'config' else 'loss'}")
    raise UsageError(f"{what}: unknown field `{text}`; use one of {FIELD_HELP}")


# ------------------------------------------------------------------------- values

def parse_value(text: str) -> Any:
    """A `--where` value: a number, true/false/null, a JSON list/object/string, else text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    if text[:1] in "[{\"":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return _number(text)


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) or text.lower() in ("inf", "-inf", "nan") else text


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_text(value: Any) -> str:
    """A value as `~` matches it and as CSV shows it: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 date or time; without a timezone, the local one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.astimezone()


# ------------------------------------------------------------------------- conditions

class Condition(NamedTuple):
    """One `--where FIELD OP VALUE`."""

    text: str
    field: Field
    op: str
    raw: str  # the value as written
    value: Any  # the value parsed (number, bool, None, list, text)
    pattern: re.Pattern[str] | None = None
    moment: datetime | None = None  # the value as a time, for created/started/ended

    def matches(self, info: RunInfo) -> bool:
        actual = self.field.get(info)
        if self.op in ("~", "!~"):
            assert self.pattern is not None
            found = actual is not None and any(
                self.pattern.search(as_text(a)) for a in _items(actual))
            return found == (self.op == "~")
        if self.op in ("=", "!="):
            return self._equal(actual) == (self.op == "=")
        return self._order(actual)

    def _equal(self, actual: Any) -> bool:
        if actual is None or self.value is None:
            return actual is None and self.value is None
        if isinstance(actual, list | tuple) and not isinstance(self.value, list):
            return any(self._same(a) for a in actual)  # membership: tag=baseline
        return self._same(actual)

    def _same(self, actual: Any) -> bool:
        if is_number(actual) and is_number(self.value):  # nan=nan finds a diverged loss
            return bool(actual == self.value) or (actual != actual and self.value != self.value)
        if isinstance(actual, tuple):
            actual = list(actual)
        if type(actual) is type(self.value) and actual == self.value:
            return True
        return as_text(actual) == self.raw

    def _order(self, actual: Any) -> bool:
        left: Any
        right: Any
        if self.field.is_time and self.moment is not None and isinstance(actual, str):
            left, right = parse_time(actual), self.moment
            if left is None:
                return False
        elif is_number(actual) and is_number(self.value):
            left, right = actual, self.value
        elif isinstance(actual, str) and not is_number(self.value):
            left, right = actual, self.value if isinstance(self.value, str) else self.raw
        else:
            return False
        return bool(_ORDER[self.op](left, right))


def _one_operator(op: str, value: str) -> str:
    """`<` and `<3` → `<3`; `=` and `>3` → `>=3`: the operator and value likely meant."""
    for guess in (op + value[0], value[0] + op):
        if guess in OPERATORS:
            return guess + value[1:].lstrip(_OPERATOR_CHARS)
    return op + value.lstrip(_OPERATOR_CHARS)


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def parse_condition(text: str, statuses: tuple[str, ...] = ()) -> Condition:
    """`config.lr<0.01`, `status=failed`, `tag=baseline`, `note~warm.?up` → a Condition.

    `statuses`, when given, are the values `status=`/`status!=` may name.
    """
    match = _CONDITION.match(text)
    if match is None or not match.group("field"):
        raise UsageError(f"--where `{text}` is not FIELD OP VALUE; OP is one of "
                         "= != < <= > >= ~ !~, e.g. --where config.lr<0.01 or "
                         "--where status=failed")
    op = "=" if match.group("op") == "==" else match.group("op")
    raw = match.group("value")
    field = parse_field(match.group("field"), f"--where `{text}`")
    name = match.group("field")
    if op not in ("~", "!~") and raw and raw[0] in _OPERATOR_CHARS:  # config.lr<<3, lr=>3
        raise UsageError(f"--where `{text}`: the value `{raw}` begins with an operator; did "
                         f"you mean --where '{name}{_one_operator(op, raw)}'? (Quote a value "
                         f"that does begin with `{raw[0]}` as JSON text: {name}{op}\"{raw}\")")
    if op in ("<", "<=", ">", ">=") and not raw:
        raise UsageError(f"--where `{text}` has no value after `{op}`; e.g. --where "
                         f"'{name}{op}0.01'")
    value = parse_value(raw)
    pattern = None
    moment = None
    if op in ("~", "!~"):
        try:
            pattern = re.compile(raw)
        except re.error as exc:
            raise UsageError(f"--where `{text}`: `{raw}` is not a regular expression "
                             f"({exc}); escape special characters with \\") from None
    elif op in ("<", "<=", ">", ">="):
        if field.parts == ("tags",):
            raise UsageError(f"--where `{text}`: tags compare only with =, !=, ~ or !~")
        if field.kind == "plain" and field.parts[0] in NUMBER_FIELDS and not is_number(value):
            raise UsageError(f"--where `{text}`: `{field.parts[0]}` is a number and `{raw}` "
                             f"is not; e.g. --where '{name}{op}10'")
        if field.is_time:
            moment = parse_time(raw)
            if moment is None:
                raise UsageError(f"--where `{text}`: `{raw}` is not a date or time; write "
                                 "e.g. 2024-05-01 or 2024-05-01T14:00 (or use --since 3d)")
    if field.parts == ("status",) and op in ("=", "!=") and statuses and raw not in statuses:
        raise UsageError(f"--where `{text}`: unknown status `{raw}`; statuses are "
                         f"{', '.join(statuses)}")
    return Condition(text, field, op, raw, value, pattern, moment)


# ------------------------------------------------------------------------- ordering

def sort_key(field: Field) -> Callable[[RunInfo], tuple[int, Any]]:
    """A key putting numbers before times, times before text, text before the rest."""

    def key(info: RunInfo) -> tuple[int, Any]:
        value = field.get(info)
        if is_number(value) or isinstance(value, bool):
            return (0, float(value))
        if field.is_time and isinstance(value, str):
            moment = parse_time(value)
            if moment is not None:
                return (1, moment.timestamp())
        if isinstance(value, str):
            return (2, value)
        return (3, as_text(value))

    return key


def order(infos: list[RunInfo], field: Field | None, reverse: bool) -> list[RunInfo]:
    """Sorted by `field` ascending (descending with `reverse`), runs without it (or with
    nan, which has no order) last.

    Without a field: newest first (by start, or creation for runs not started yet), and
    `reverse` gives oldest first. Ties keep the newest-first order.
    """
    # By time, then number: runs started at the same moment (or never: corrupt ones) keep
    # the newest number first.
    newest_first = sorted(infos, key=lambda i: (time_key(i), i.number),
                          reverse=not reverse if field is None else True)
    if field is None:
        return newest_first
    present = [i for i in newest_first if not _missing(field.get(i))]
    missing = [i for i in newest_first if _missing(field.get(i))]
    present.sort(key=sort_key(field), reverse=reverse)
    return present + missing


def _missing(value: Any) -> bool:
    return value is None or (type(value) is float and value != value)  # None or nan


def time_key(info: RunInfo) -> float:
    """What listing orders runs by (newest first): when the run started, or was created
    when it has not started, as a timestamp; -inf for a run without either."""
    when = info.when
    moment = parse_time(when) if when else None
    return moment.timestamp() if moment else float("-inf")

