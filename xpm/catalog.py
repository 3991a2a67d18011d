"""Reading many runs at once: each run folder's record with liveness applied.

This is what `ls`, `clean` and shell completion read. A folder whose run.json is missing
or corrupt is an entry too (status `corrupt`, with the reason), never a crash.

Listing thousands of runs costs what reading their run.json files costs: `raw_entries`
keeps each record as the JSON dict it is on disk, and builds a RunRecord (and looks at
the lock) only for the few whose status is `running`, the only ones liveness can change.
`entries` gives full RunRecords, for commands that act on runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .record import (
    RECORD_FILE,
    RUNNING,
    STATUSES,
    CorruptRecord,
    RunRecord,
    read_record_data,
    upgrade,
)
from .store import RunRef, run_names, run_numbers, scan

CORRUPT = "corrupt"


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
    if not isinstance(data.get("name"), str) or not isinstance(data.get("number"), int):
        raise CorruptRecord(f"`{path}` is not a run record (no name or number)")
    return str(status)


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
        return RawEntry(name, number, path, None, CORRUPT, str(exc))
    if live and status == RUNNING:
        entry = _live(RunRef(name, number, Path(path)), data)
        return RawEntry(name, number, path, entry.record.to_json() if entry.record else None,
                        entry.status, entry.problem)
    return RawEntry(name, number, path, data, status)


def _live(ref: RunRef, data: dict[str, Any]) -> Entry:
    from .lock import reconcile

    try:
        record = RunRecord.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        return Entry(ref, None, CORRUPT, f"`{ref.path / RECORD_FILE}` is not a run record "
                                         f"({exc})")
    record = reconcile(ref.path, record)
    return Entry(ref, record, record.status)


def load_entry(ref: RunRef, live: bool = True) -> Entry:
    raw = load_raw(ref, live=False)
    if raw.data is None:
        return Entry(ref, None, raw.status, raw.problem)
    if live and raw.status == RUNNING:
        return _live(ref, raw.data)
    try:
        record = RunRecord.from_json(raw.data)
    except (KeyError, TypeError, ValueError) as exc:
        return Entry(ref, None, CORRUPT, f"`{ref.path / RECORD_FILE}` is not a run record "
                                         f"({exc})")
    return Entry(ref, record, record.status)


def entries(results_dir: Path, names: list[str] | None = None, live: bool = True
            ) -> Iterator[Entry]:
    """Every run in the tree (or of `names`), by name then number."""
    for ref in scan(results_dir, names):
        yield load_entry(ref, live)


def raw_entries(results_dir: Path, names: list[str] | None = None, live: bool = True
                ) -> Iterator[RawEntry]:
    """Every run in the tree (or of `names`), by name then number, as raw JSON dicts."""
    for name in names if names is not None else run_names(results_dir):
        folder = os.path.join(results_dir, name)
        for number in run_numbers(results_dir, name):
            yield load_raw_at(name, number, f"{folder}/{number}", live)
