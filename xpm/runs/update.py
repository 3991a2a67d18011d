"""Changing a run's record, run.json, when something happens to the run.

More than one process writes one run's record: the supervisor (start, end), a reader
that finds the run lost, the submitting host of a Slurm job (the job id), `xpm tag`.
Each change is a read-modify-write of the file as it is on disk now, under a short lock
of the record's own (`.record.lock`, held for milliseconds, never while the command
runs), so that no writer loses what another wrote meanwhile. Fields this xpm does not
know (written by a newer xpm or a user's tool) are kept.

Readers never take this lock: run.json is replaced atomically, so a reader sees the old
record or the new one, whole.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import XpmError
from .record import RunRecord, read_record, write_record

RECORD_LOCK_FILE = ".record.lock"
RECORD_LOCK_TIMEOUT = 30.0  # seconds; a change takes milliseconds


def update_record(run_dir: Path, change: Callable[[RunRecord], RunRecord]) -> RunRecord:
    """Apply `change` to the record on disk now and write the result; returns it.

    `change` gets the current record and returns the new one (it may be called with a
    record another process changed since the caller last read it: it should change
    only what it means to change, e.g. `lambda r: replace(r, tags=(*r.tags, "best"))`).
    Raises CorruptRecord when run.json is not a record (NewerRecord when a newer xpm wrote
    it: it is never changed), OSError when it cannot be written.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(run_dir / RECORD_LOCK_FILE))
    try:
        lock.acquire(timeout=RECORD_LOCK_TIMEOUT)
    except Timeout:
        raise XpmError(f"`{run_dir / RECORD_LOCK_FILE}` stayed locked for "
                       f"{RECORD_LOCK_TIMEOUT:.0f} s; is an xpm process stuck? If none is "
                       "running, remove that file") from None
    try:
        current = read_record(run_dir)  # a record from a newer xpm: NewerRecord, unchanged
        updated = change(current)
        if updated is current:  # nothing to change
            return current
        write_record(run_dir, updated)  # with the keys this xpm does not know (`extra`)
        return updated
    finally:
        lock.release()

