"""Reading many runs at once: each run folder's record with liveness applied.

This is what `ls`, `clean` and shell completion read. A folder whose run.json is missing
or corrupt is an entry too (status `corrupt`, with the reason), never a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .lock import is_held, reconcile
from .record import CorruptRecord, RunRecord, read_record
from .store import RunRef, scan

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


def load_entry(ref: RunRef, live: bool = True) -> Entry:
    try:
        record = read_record(ref.path)
    except CorruptRecord as exc:
        if is_held(ref.path):  # being created right now: run.json is moments away
            return Entry(ref, None, "running", None)
        return Entry(ref, None, CORRUPT, str(exc))
    if live:
        record = reconcile(ref.path, record)
    return Entry(ref, record, record.status)


def entries(results_dir: Path, names: list[str] | None = None, live: bool = True
            ) -> Iterator[Entry]:
    """Every run in the tree (or of `names`), by name then number."""
    for ref in scan(results_dir, names):
        yield load_entry(ref, live)
