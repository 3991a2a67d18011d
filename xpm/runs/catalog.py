"""Reading many runs at once: each run folder's record with liveness applied.

This is what `ls`, `show`, `clean` and shell completion read. A folder whose run.json is
missing or corrupt is an entry too (status `corrupt`, with the reason), never a crash. A
record is corrupt too when a field that listing, `show` or liveness read has the wrong
type (`"started": 5`, `"config": [1]`): the reason names the field.

Listing thousands of runs costs what reading their run.json files costs: `load_raw_at`
(what listing.infos reads through) keeps each record as the JSON dict it is on disk, and
builds a RunRecord (and looks at the lock) only for the few whose status is `running`,
the only ones liveness can change. `entries` gives full RunRecords, for commands that act
on runs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import UsageError
from .record import (
    RECORD_FILE,
    RUNNING,
    STATUSES,
    CorruptRecord,
    RunRecord,
    read_record_data,
    upgrade,
)
from .tree import PREPARING_FILE, RunRef, scan

CORRUPT = "corrupt"
ABANDONED = "abandoned"  # a folder whose preparation died before its run.json was written
LISTED_STATUSES = (*STATUSES, CORRUPT, ABANDONED)  # what a listing can show


@dataclass(frozen=True)
class Entry:
    ref: RunRef
    record: RunRecord | None
    status: str  # the record's status with liveness applied, or "corrupt"
    problem: str | None = None  # why the record is corrupt

    @property
    def id(self) -> str:
        return self.ref.id


class RawEntry(NamedTuple):
    """A run folder's run.json as a JSON dict, liveness applied (None when corrupt).

    The folder's path is a str: building 100,000 Path objects costs more than reading
    the records.
    """

    name: str
    number: int
    path: str
    data: dict[str, Any] | None
    status: str
    problem: str | None = None

    @property
    def id(self) -> str:
        return f"{self.name}/{self.number}"

    @property
    def ref(self) -> RunRef:
        return RunRef(self.name, self.number, Path(self.path))


def _check(data: dict[str, Any], path: str) -> str:
    """The record's status, or CorruptRecord when the dict is not a run record."""
    try:
        upgrade(data)
    except ValueError as exc:
        raise CorruptRecord(f"`{path}` is not a run record ({exc})") from None
    status = data.get("status")
    if status not in STATUSES:
        raise CorruptRecord(f"`{path}` is not a run record (status {status!r})")
    if not isinstance(data.get("name"), str) or type(data.get("number")) is not int:
        raise CorruptRecord(f"`{path}` is not a run record (no name or number)")
    problem = _wrong_field(data)
    if problem is not None:
        raise CorruptRecord(f"`{path}` is not a run record ({problem})")
    return str(status)


# ------------------------------------------------------------------------- field types
#
# Each field listing, `show` and liveness read, with the JSON types it may have and, for
# some, a closer test. Listing checks every record it reads, so this is a flat loop of
# type lookups: a few microseconds a record.

Types = frozenset[type]
_NULL = type(None)
_TEXT: Types = frozenset({str, _NULL})
_INT: Types = frozenset({int, _NULL})  # type(True) is bool: booleans are not numbers here
_NUMBER: Types = frozenset({int, float, _NULL})
_LIST: Types = frozenset({list, _NULL})
_OBJECT: Types = frozenset({dict, _NULL})
_ONE_TEXT: Types = frozenset({str})
_ONE_INT: Types = frozenset({int})
_TIME = "an ISO 8601 time with a timezone"


def _is_time(value: str) -> bool:
    """An ISO 8601 time with a timezone, as xpm writes them."""
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


def _is_finite(value: float) -> bool:
    return math.isfinite(value)


class Fields(NamedTuple):
    """Fields of one kind: the JSON types they may have (_NULL: they may be null), what
    they must be (for the message), a closer test of a value that is not null, and the
    value an absent field stands for (_ABSENT: it must be there)."""

    keys: tuple[str, ...]
    types: Types
    what: str
    test: Callable[[Any], bool] | None = None
    default: Any = None


_ABSENT = object()
_RECORD = (
    Fields(("created",), _ONE_TEXT, _TIME, _is_time, _ABSENT),
    Fields(("started", "ended", "heartbeat"), _TEXT, _TIME, _is_time),
    Fields(("duration", "heartbeat_interval"), _NUMBER, "a number of seconds", _is_finite),
    Fields(("exit_code", "signal"), _INT, "a whole number"),
    Fields(("seed",), _ONE_INT, "a whole number", default=0),
    Fields(("command", "tags", "config_files"), _LIST, "a list of text", _is_texts),
    Fields(("note", "host", "user", "cwd", "platform", "python", "python_executable",
            "xpm_version"), _TEXT, "text"),
    Fields(("config", "git", "slurm"), _OBJECT, "an object"),
    Fields(("attempts",), _LIST, "a list"),
)
_GIT = (
    Fields(("commit", "branch", "remote", "patch", "root"), _TEXT, "text"),
    Fields(("dirty",), frozenset({bool, _NULL}), "true or false"),
    Fields(("untracked",), _LIST, "a list of text", _is_texts),
    Fields(("untracked_count",), _INT, "a whole number"),
    Fields(("submodules",), _OBJECT, "an object"),
)
_ATTEMPT = (
    Fields(("number",), _ONE_INT, "a whole number", default=_ABSENT),
    Fields(("started",), _ONE_TEXT, _TIME, _is_time, _ABSENT),
    Fields(("ended",), _TEXT, _TIME, _is_time),
    Fields(("kind",), _ONE_TEXT, "text", default="start"),
    Fields(("pid",), _ONE_INT, "a whole number", default=0),
    Fields(("host", "status", "reason", "checkpoint", "slurm_job_id"), _TEXT, "text"),
    Fields(("exit_code", "signal"), _INT, "a whole number"),
    Fields(("command",), _LIST, "a list of text", _is_texts),
)


def _wrong_field(data: dict[str, Any]) -> str | None:
    """What is wrong with the first field of the wrong type, naming it; None if nothing."""
    problem = _wrong(data, _RECORD, "")
    if problem is not None:
        return problem
    git = data.get("git")
    if git is not None:
        problem = _wrong(git, _GIT, "git.")
        if problem is not None:
            return problem
    for index, attempt in enumerate(data.get("attempts") or ()):
        where = f"attempts[{index}]"
        if type(attempt) is not dict:
            return f"`{where}` is {_shown(attempt)}, not an object"
        problem = _wrong(attempt, _ATTEMPT, f"{where}.")
        if problem is not None:
            return problem
    return None


def _wrong(data: dict[str, Any], kinds: tuple[Fields, ...], prefix: str) -> str | None:
    get = data.get
    for keys, types, what, test, default in kinds:
        for key in keys:
            value = get(key, default)
            if type(value) in types and (test is None or value is None or test(value)):
                continue
            if value is _ABSENT:
                return f"`{prefix}{key}` is missing"
            return f"`{prefix}{key}` is {_shown(value)}, not {what}"
    return None


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


def _being_created(path: str) -> bool:
    from .lock import is_held

    return is_held(Path(path))


def load_raw(ref: RunRef, live: bool = True) -> RawEntry:
    return load_raw_at(ref.name, ref.number, str(ref.path), live)


def load_raw_at(name: str, number: int, path: str, live: bool = True) -> RawEntry:
    """load_raw for the run folder at `path` (a str, as listing keeps it)."""
    try:
        data = read_record_data(path)
        status = _check(data, os.path.join(path, RECORD_FILE))
    except CorruptRecord as exc:
        if _being_created(path):  # run.json is moments away
            return RawEntry(name, number, path, None, RUNNING, None)
        if os.path.lexists(os.path.join(path, PREPARING_FILE)):
            return RawEntry(name, number, path, None, ABANDONED,
                            "its preparation stopped before run.json was written")
        return RawEntry(name, number, path, None, CORRUPT, str(exc))
    if live and status == RUNNING:
        entry = _entry(RunRef(name, number, Path(path)), data, live=True)
        if entry.record is None:
            return RawEntry(name, number, path, None, entry.status, entry.problem)
        if entry.status != RUNNING:  # found lost (and corrected): the record changed
            data = entry.record.to_json()
        return RawEntry(name, number, path, data, entry.status)
    return RawEntry(name, number, path, data, status)


def _entry(ref: RunRef, data: dict[str, Any], live: bool) -> Entry:
    """The Entry of a checked record's JSON; with `live`, liveness applied."""
    try:
        record = RunRecord.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        return Entry(ref, None, CORRUPT, f"`{ref.path / RECORD_FILE}` is not a run record "
                                         f"({exc})")
    if live and record.status == RUNNING:
        from .lock import reconcile

        record = reconcile(ref.path, record)
    return Entry(ref, record, record.status)


def load_entry(ref: RunRef, live: bool = True) -> Entry:
    raw = load_raw(ref, live=False)
    if raw.data is None:
        return Entry(ref, None, raw.status, raw.problem)
    return _entry(ref, raw.data, live)


def entries(results_dir: Path, names: list[str] | None = None, live: bool = True
            ) -> Iterator[Entry]:
    """Every run in the tree (or of `names`), by name then number."""
    for ref in scan(results_dir, names):
        yield load_entry(ref, live)


def parse_statuses(text: str, allowed: tuple[str, ...] = STATUSES) -> tuple[str, ...]:
    """`failed,lost` → ('failed', 'lost'); an unknown status, or none, is a usage error."""
    statuses: list[str] = []
    for part in text.split(","):
        status = part.strip().lower()
        if not status:
            continue
        if status not in allowed:
            raise UsageError(f"--status `{status}` is not a status; use one or more of "
                             f"{', '.join(allowed)}, separated by commas")
        if status not in statuses:
            statuses.append(status)
    if not statuses:
        raise UsageError(f"--status `{text}` names no status; use one or more of "
                         f"{', '.join(allowed)}, separated by commas")
    return tuple(statuses)
