"""Reading many runs at once: each run folder's record with liveness applied.

This is what `ls`, `show`, `clean` and shell completion read. A folder whose run.json is
missing or corrupt is an entry too (status `corrupt`, with the reason), never a crash. A
record is corrupt too when a field has the wrong type (`"started": 5`, `"config": [1]`):
the reason names the field (the types are those declared in record.py). A record written
by a newer xpm is an entry of status `newer`, neither read nor ever changed.

Listing thousands of runs costs what reading their run.json files costs: `load_raw_at`
(what listing.infos reads through) keeps each record as the JSON dict it is on disk, and
builds a RunRecord (and looks at the lock) only for the few whose status is `running`,
the only ones liveness can change. `entries` gives full RunRecords, for commands that act
on runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import UsageError
from .record import (
    ACTIVE,
    RECORD_FILE,
    RUNNING,
    STATUSES,
    CorruptRecord,
    NewerRecord,
    NewerSchema,
    RunRecord,
    check,
    read_record_data,
)
from .tree import PREPARING_FILE, RunRef, scan

CORRUPT = "corrupt"
NEWER = "newer"  # run.json written by a newer xpm: not read, never changed
ABANDONED = "abandoned"  # a folder whose preparation died before its run.json was written
LISTED_STATUSES = (*STATUSES, CORRUPT, NEWER, ABANDONED)  # what a listing can show
UNREAD = (CORRUPT, NEWER, ABANDONED)  # listed statuses without a record


@dataclass(frozen=True)
class Entry:
    ref: RunRef
    record: RunRecord | None
    status: str  # the record's status with liveness applied, or "corrupt" or "newer"
    problem: str | None = None  # why the record is corrupt or not read

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
    """The record's status (the record upgraded in place), or CorruptRecord (NewerRecord
    when a newer xpm wrote it) naming what is wrong."""
    try:
        check(data)
    except NewerSchema as exc:
        raise NewerRecord(f"`{path}` was {exc}") from None
    except ValueError as exc:
        raise CorruptRecord(f"`{path}` is not a run record ({exc})") from None
    return str(data["status"])


def _being_created(path: str) -> bool:
    from .lock import is_held

    return is_held(Path(path))


def load_raw(ref: RunRef, live: bool = True) -> RawEntry:
    return load_raw_at(ref.name, ref.number, str(ref.path), live)


def load_raw_at(name: str, number: int, path: str, live: bool = True) -> RawEntry:
    """load_raw for the run folder at `path` (a str, as listing keeps it)."""
    try:
        data = read_record_data(path, fast=True)
        status = _check(data, os.path.join(path, RECORD_FILE))
    except NewerRecord as exc:
        return RawEntry(name, number, path, None, NEWER, str(exc))
    except CorruptRecord as exc:
        if _being_created(path):  # run.json is moments away
            return RawEntry(name, number, path, None, RUNNING, None)
        if os.path.lexists(os.path.join(path, PREPARING_FILE)):
            return RawEntry(name, number, path, None, ABANDONED,
                            "its preparation stopped before run.json was written")
        return RawEntry(name, number, path, None, CORRUPT, str(exc))
    if live and status in ACTIVE:  # the only statuses liveness can change
        entry = _entry(RunRef(name, number, Path(path)), data, live=True)
        if entry.record is None:
            return RawEntry(name, number, path, None, entry.status, entry.problem)
        if entry.status != status:  # found lost (and corrected): the record changed
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
    if live and record.status in ACTIVE:
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
