"""The run lock and liveness.

A run is being worked on exactly when some process holds the flock on its `.lock` (via
filelock). The file's presence means nothing. A record that says `running` while nothing
holds the lock (same host), or whose heartbeat is older than three intervals (another
host), is `lost`; the first reader to notice corrects the record, under the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import times
from ..errors import RunBusyError
from ..machine import hostname
from .record import LOCK_FILE, LOST, RUNNING, CorruptRecord, RunRecord, read_record, write_record

if TYPE_CHECKING:
    from filelock import BaseFileLock

STALE_HEARTBEATS = 3


class RunLock:
    """Exclusive, non-blocking lock on one run folder."""

    def __init__(self, run_dir: Path) -> None:
        from filelock import FileLock

        self.run_dir = run_dir
        self._lock: BaseFileLock = FileLock(str(run_dir / LOCK_FILE))

    def try_acquire(self, purpose: str | None = None) -> bool:
        """Take the lock if it is free. With a `purpose` ("xpm run", ...), the holder's pid,
        host, start time and purpose are written into the lock file, for whoever finds the
        run busy (a mere probe of the lock gives none and leaves the file alone)."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        if purpose is not None:
            self.announce(purpose)
        return True

    def announce(self, purpose: str) -> None:
        """Write who holds the lock (pid, host, start time, `purpose`) into the lock file.
        A command that may still refuse takes the lock without a purpose and announces
        itself once it goes ahead: a refused command leaves the tree as it found it."""
        holder = {"pid": os.getpid(), "host": hostname(), "since": times.now_iso(),
                  "by": purpose}
        with contextlib.suppress(OSError):
            fd = os.open(self.run_dir / LOCK_FILE, os.O_WRONLY | os.O_TRUNC)
            try:
                os.write(fd, (json.dumps(holder) + "\n").encode())
            finally:
                os.close(fd)

    def acquire(self, run_id: str, purpose: str | None = None) -> None:
        """Take the lock or fail at once naming who holds it."""
        if not self.try_acquire(purpose):
            raise RunBusyError(busy_message(self.run_dir, run_id))

    def release(self) -> None:
        self._lock.release(force=True)


def holder(run_dir: Path) -> str:
    """Who holds the run's lock, as its holder wrote it into the lock file (else as the
    record's newest attempt says): ` by xpm resume (pid 4242 on gpu-7 since ...)`."""
    try:
        data = json.loads((run_dir / LOCK_FILE).read_text())
        by, pid, host, since = data["by"], int(data["pid"]), data["host"], data["since"]
    except (OSError, ValueError, KeyError, TypeError):
        try:
            attempt = read_record(run_dir).last_attempt
        except CorruptRecord:
            attempt = None
        if attempt is None:
            return ""
        by, pid, host, since = "xpm", attempt.pid, attempt.host, attempt.started
    try:
        when = times.parse_iso(since).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        when = str(since)
    return f" by {by} (pid {pid} on {host} since {when})"


def busy_message(run_dir: Path, run_id: str) -> str:
    return (f"run `{run_id}` is in use{holder(run_dir)}; wait for it to finish, "
            f"or `xpm ls {run_id.split('/')[0]}` to see its state")


def is_held(run_dir: Path) -> bool:
    """Whether some process holds the run's lock (False when there is no lock file)."""
    if not (run_dir / LOCK_FILE).exists():
        return False
    lock = RunLock(run_dir)
    try:
        if lock.try_acquire():
            lock.release()
            return False
    except OSError:  # cannot open it (read-only copy): nothing of ours can hold it here
        return False
    return True


def heartbeat_is_stale(record: RunRecord) -> bool:
    beat = record.heartbeat or record.started
    if beat is None:
        return False
    age = (times.now() - times.parse_iso(beat)).total_seconds()
    return age > STALE_HEARTBEATS * record.heartbeat_interval


def on_this_host(record: RunRecord) -> bool:
    attempt = record.last_attempt
    return attempt is not None and attempt.host == hostname()


def looks_lost(run_dir: Path, record: RunRecord) -> bool:
    """A `running` record that nothing runs: lock free here, or heartbeat stale elsewhere."""
    if record.status != RUNNING:
        return False
    return not is_held(run_dir) if on_this_host(record) else heartbeat_is_stale(record)


def lost_while_held(record: RunRecord) -> bool:
    """Whether a `running` record is lost, as the holder of the run's lock sees it: on this
    host, yes (nothing else holds the lock); from another host only when the heartbeat is
    stale (a lock on a shared file system need not reach across hosts)."""
    return record.status == RUNNING and (on_this_host(record) or heartbeat_is_stale(record))


def mark_lost(record: RunRecord) -> RunRecord:
    """The record of a run whose supervisor is gone; it ended at its last heartbeat."""
    ended = record.heartbeat or record.started or record.created
    updated = replace(record, status=LOST, ended=ended)
    attempt = record.last_attempt
    if attempt is not None and attempt.ended is None:
        updated = updated.with_attempt(replace(
            attempt, ended=ended, status=LOST,
            reason="supervisor gone: no process holds the run's lock or its heartbeat stopped",
        ))
    return replace(updated, duration=updated.attempts_duration())


def reconcile(run_dir: Path, record: RunRecord) -> RunRecord:
    """The record with liveness applied; a lost run's record is corrected on disk."""
    if not looks_lost(run_dir, record):
        return record
    lock = RunLock(run_dir)
    try:
        if not lock.try_acquire():
            # Taken since we looked (a resume is starting): believe what is on disk now.
            return read_record(run_dir)
    except OSError:  # the folder is gone, or read-only
        return mark_lost(record)
    except CorruptRecord:  # removed (a purge) or rewritten since we read it
        return record
    try:
        try:
            current = read_record(run_dir)
        except CorruptRecord:  # removed since we read it: report what it said, lost
            return mark_lost(record)
        if current.status != RUNNING:
            return current
        lost = mark_lost(current)
        with contextlib.suppress(OSError):  # a read-only tree: report lost, uncorrected
            write_record(run_dir, lost)
        return lost
    finally:
        lock.release()
