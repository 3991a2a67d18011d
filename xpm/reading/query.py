"""The fields of a run as `xpm ls --json` shows them, and the questions asked of them:
`--where` conditions (parsed, never evaluated as code) and `--sort` keys.

Fields: id, name, number, status, problem, created, started, ended, duration, exit_code,
signal, attempts, tags, note, seed, host, user, git.commit, git.branch, git.dirty,
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
from ..runs.record import RUNNING

if TYPE_CHECKING:
    from ..runs.catalog import RawEntry

PLAIN_FIELDS = (
    "id", "name", "number", "status", "problem", "created", "started", "ended", "duration",
    "exit_code", "signal", "attempts", "tags", "note", "seed", "host", "user", "path",
)
GIT_FIELDS = ("commit", "branch", "dirty")
TIME_FIELDS = ("created", "started", "ended")
NUMBER_FIELDS = ("number", "duration", "exit_code", "signal", "attempts", "seed")
ALIASES = {"tag": "tags", "commit": "git.commit", "branch": "git.branch", "dirty": "git.dirty"}
OPERATORS = ("!=", "<=", ">=", "==", "!~", "=", "<", ">", "~")
FIELD_HELP = ", ".join((*PLAIN_FIELDS, *(f"git.{g}" for g in GIT_FIELDS))) + \
    ", config.KEY or metrics.NAME"

_OPERATOR_CHARS = "=!<>~"
_CONDITION = re.compile(r"^\s*(?P<field>[^=!<>~]*?)\s*(?P<op>!=|<=|>=|==|!~|=|<|>|~)"
                        r"\s*(?P<value>.*?)\s*$", re.S)


class RunInfo(NamedTuple):
    """What listing knows of one run: run.json's listed fields and the metrics' last values."""

    name: str
    number: int
    folder: str  # the name's folder (one str shared by its runs)
    status: str
    problem: str | None = None
    created: str | None = None
    started: str | None = None
    ended: str | None = None
    duration: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    attempts: int = 0
    tags: tuple[str, ...] = ()
    note: str | None = None
    seed: int | None = None
    host: str | None = None
    user: str | None = None
    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    config: dict[str, Any] = {}  # noqa: RUF012 (never mutated; NamedTuple defaults are shared)
    metrics: dict[str, Any] | None = None  # None until read

    @property
    def id(self) -> str:
        return f"{self.name}/{self.number}"

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.number}"

    @property
    def when(self) -> str | None:
        """When the run started, or was created when it has not started yet."""
        return self.started or self.created

    def to_json(self) -> dict[str, Any]:
        """The object `xpm ls --json` prints: every key always present, in this order."""
        return {
            "id": self.id, "name": self.name, "number": self.number, "status": self.status,
            "problem": self.problem, "created": self.created, "started": self.started,
            "ended": self.ended, "duration": self.duration, "exit_code": self.exit_code,
            "signal": self.signal, "attempts": self.attempts, "tags": list(self.tags),
            "note": self.note, "seed": self.seed, "host": self.host, "user": self.user,
            "git": {"commit": self.commit, "branch": self.branch, "dirty": self.dirty},
            "config": self.config, "metrics": self.metrics or {}, "path": self.path,
        }


def info_of(entry: RawEntry) -> RunInfo:
    """The listed fields of a run from its raw record (metrics are read separately)."""
    data = entry.data
    folder = entry.path.rpartition("/")[0]
    if data is None:
        return RunInfo(entry.name, entry.number, folder, entry.status, problem=entry.problem)
    git = data.get("git") or {}
    attempts = data.get("attempts") or ()
    duration = data.get("duration")
    if entry.status == RUNNING:
        duration = live_duration(attempts)
    tags = data.get("tags") or ()
    return RunInfo(
        name=entry.name, number=entry.number, status=entry.status, folder=folder,
        created=data.get("created"), started=data.get("started"), ended=data.get("ended"),
        duration=duration, exit_code=data.get("exit_code"), signal=data.get("signal"),
        attempts=len(attempts), tags=tuple(tags), note=data.get("note"),
        seed=data.get("seed"), host=data.get("host"), user=data.get("user"),
        commit=git.get("commit"), branch=git.get("branch"),
        dirty=git.get("dirty") if git else None, config=data.get("config") or {},
    )


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
    kind: str  # "plain", "git", "config" or "metrics"
    parts: tuple[str | int, ...]

    def get(self, info: RunInfo) -> Any:
        """The field's value for a run; None when the run has no such field."""
        if self.kind in ("plain", "git"):  # RunInfo's attributes (id and path: properties)
            return getattr(info, str(self.parts[0]))
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
    if head == "git" and rest in GIT_FIELDS:
        return Field(text, "git", (rest,))
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
    newest_first = sorted(infos, key=lambda i: (_time_key(i), i.number),
                          reverse=not reverse if field is None else True)
    if field is None:
        return newest_first
    present = [i for i in newest_first if not _missing(field.get(i))]
    missing = [i for i in newest_first if _missing(field.get(i))]
    present.sort(key=sort_key(field), reverse=reverse)
    return present + missing


def _missing(value: Any) -> bool:
    return value is None or (type(value) is float and value != value)  # None or nan


def _time_key(info: RunInfo) -> float:
    when = info.when
    moment = parse_time(when) if when else None
    return moment.timestamp() if moment else float("-inf")

