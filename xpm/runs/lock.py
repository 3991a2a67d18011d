"""The run lock and liveness.

A run is being worked on exactly when some process holds the flock on its `.lock` (via
filelock). The file's presence means nothing, and xpm never writes into it (filelock
opens it, and some versions truncate it on every probe). Whoever takes the lock for a
purpose says who it is in `.lock-holder.json` beside it, and removes that file before
letting go. A record that says `running` while nothing holds the lock (same host), or
whose heartbeat is older than three intervals (another host), is `lost`; the first
reader to notice corrects the record, under the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import times
from ..errors import RunBusyError
from ..machine import hostname
from .heartbeat import last_alive, newest_sign_of_life
from .record import (
    LOCK_FILE,
    LOST,
    QUEUED,
    RUNNING,
    CorruptRecord,
    RunRecord,
    read_record,
    write_json_atomic,
)
from .regular import read_regular

if TYPE_CHECKING:
    from filelock import BaseFileLock

STALE_HEARTBEATS = 3
HOLDER_FILE = ".lock-holder.json"
HOLDER_WAIT = 1.0  # seconds a busy message waits for a new holder to say who it is


class RunLock:
    """Exclusive, non-blocking lock on one run folder."""

    def __init__(self, run_dir: Path) -> None:
        from filelock import FileLock

        self.run_dir = run_dir
        self._lock: BaseFileLock = FileLock(str(run_dir / LOCK_FILE))
        self._said = False

    def try_acquire(self, purpose: str | None = None) -> bool:
        """Take the lock if it is free. With a `purpose` ("xpm run", ...), the holder's pid,
        host, start time and purpose go in the holder file, for whoever finds the run busy
        (a mere probe of the lock says nothing)."""
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        if purpose is not None:
            self.say(purpose)
        return True

    def say(self, purpose: str) -> None:
        """Write (or rewrite, when the holder's purpose changes) the holder file."""
        holder = {"pid": os.getpid(), "host": hostname(), "since": times.now_iso(),
                  "by": purpose}
        with contextlib.suppress(OSError):  # a read-only copy: the lock still works
            write_json_atomic(self.run_dir / HOLDER_FILE, holder, indent=None)
            self._said = True

    def moved_to(self, run_dir: Path) -> None:
        """The folder was renamed while the lock is held (a flock belongs to the open
        file, not its path, so it stays held): from now on, use its new path."""
        self.run_dir = run_dir

    def acquire(self, run_id: str, purpose: str | None = None) -> None:
        """Take the lock or fail at once naming who holds it."""
        if not self.try_acquire(purpose):
            raise RunBusyError(busy_message(self.run_dir, run_id))

    def release(self) -> None:
        if self._said:
            self._said = False
            with contextlib.suppress(OSError):
                os.unlink(self.run_dir / HOLDER_FILE)
        self._lock.release(force=True)


def _read_holder(run_dir: Path) -> dict[str, Any] | None:
    """The holder file, when it names a holder that may be alive (a dead pid on this host
    is a holder that died before removing it; the new holder is about to replace it)."""
    try:
        data = json.loads(read_regular(run_dir / HOLDER_FILE))
        pid, host = int(data["pid"]), str(data["host"])
        str(data["by"]), str(data["since"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == hostname() and not _alive(pid):
        return None
    return dict(data)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def _running_attempt(run_dir: Path) -> dict[str, Any] | None:
    """Without a holder file (a run started elsewhere by an older xpm): the record's
    newest attempt, when it has not ended and its process may be alive."""
    try:
        attempt = read_record(run_dir).last_attempt
    except CorruptRecord:
        return None
    if attempt is None or attempt.ended is not None:
        return None
    if attempt.host == hostname() and not _alive(attempt.pid):
        return None
    return {"by": "xpm", "pid": attempt.pid, "host": attempt.host, "since": attempt.started}


def holder(run_dir: Path, wait: float = HOLDER_WAIT) -> str:
    """Who holds the run's lock, as the holder file says: ` by xpm resume (pid 4242 on
    gpu-7 since ...)`; "" when no live holder has said so within `wait` seconds (a probe,
    or a holder that has only just taken the lock)."""
    deadline = time.monotonic() + wait
    while True:
        data = _read_holder(run_dir)
        if data is not None or time.monotonic() >= deadline or not is_held(run_dir):
            break
        time.sleep(0.02)
    if data is None:
        data = _running_attempt(run_dir)
    if data is None:
        return ""
    since = data["since"]
    try:
        when = times.parse_iso(since).strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        when = str(since)
    return f" by {data['by']} (pid {data['pid']} on {data['host']} since {when})"


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


def heartbeat_is_stale(run_dir: Path, record: RunRecord) -> bool:
    beat = last_alive(run_dir, record)
    if beat is None:
        return False
    age = (times.now() - beat).total_seconds()
    return age > STALE_HEARTBEATS * record.heartbeat_interval


def on_this_host(record: RunRecord) -> bool:
    attempt = record.last_attempt
    return attempt is not None and attempt.host == hostname()


def abandoned(record: RunRecord) -> bool:
    """A `queued` run that was to start here at once (`xpm run`, `--detach`, a sweep's
    trial; no scheduler job) and has not, three heartbeat intervals after it was made: no
    attempt, no Slurm section. With its lock free, its supervisor died before taking it."""
    if record.status != QUEUED or record.attempts or record.slurm is not None:
        return False
    try:
        made = times.parse_iso(record.created)
    except (TypeError, ValueError):
        return False
    return (times.now() - made).total_seconds() > STALE_HEARTBEATS * record.heartbeat_interval


def looks_lost(run_dir: Path, record: RunRecord) -> bool:
    """A `running` record that nothing runs: lock free here, or heartbeat stale elsewhere;
    or a `queued` one abandoned (see `abandoned`) whose lock is free."""
    if record.status == QUEUED:
        return abandoned(record) and not is_held(run_dir)
    if record.status != RUNNING:
        return False
    if on_this_host(record):
        return not is_held(run_dir)
    return heartbeat_is_stale(run_dir, record)


def lost_while_held(run_dir: Path, record: RunRecord) -> bool:
    """Whether a `running` record is lost, as the holder of the run's lock sees it: on this
    host, yes (nothing else holds the lock); from another host only when the heartbeat is
    stale (a lock on a shared file system need not reach across hosts)."""
    return record.status == RUNNING and (on_this_host(record)
                                         or heartbeat_is_stale(run_dir, record))


def mark_lost(run_dir: Path, record: RunRecord) -> RunRecord:
    """The record of a run whose supervisor is gone; it ended at its newest sign of life
    (heartbeat, output, metrics). A queued run that never started gets a reason only."""
    if record.status == QUEUED:
        return replace(record, status=LOST, reason=(
            "never started: its supervisor (xpm run, --detach, a sweep) died before taking "
            f"the run; `xpm resume {record.id}` starts it"))
    ended = newest_sign_of_life(run_dir, record)
    if on_this_host(record):
        reason = "supervisor gone: no process holds the run's lock"
    else:
        reason = (f"supervisor gone: no heartbeat for more than {STALE_HEARTBEATS} "
                  f"intervals of {record.heartbeat_interval:g} s")
    updated = replace(record, status=LOST, ended=ended)
    attempt = record.last_attempt
    if attempt is not None and attempt.ended is None:
        updated = updated.with_attempt(replace(attempt, ended=ended, status=LOST,
                                               reason=reason))
    return replace(updated, duration=updated.attempts_duration())


def _lost_under_lock(record: RunRecord) -> bool:
    """Whether a record is lost, read while holding the run's lock."""
    return record.status == RUNNING or abandoned(record)


def reconcile(run_dir: Path, record: RunRecord) -> RunRecord:
    """The record with liveness applied; a lost run's record is corrected on disk."""
    from .update import update_record

    if not looks_lost(run_dir, record):
        return record
    lock = RunLock(run_dir)
    try:
        if not lock.try_acquire():
            # Taken since we looked (a resume is starting): believe what is on disk now.
            return read_record(run_dir)
    except OSError:  # the folder is gone, or read-only
        return mark_lost(run_dir, record)
    except CorruptRecord:  # removed (a purge) or rewritten since we read it
        return record
    try:
        try:
            current = read_record(run_dir)
        except CorruptRecord:  # removed since we read it: report what it said, lost
            return mark_lost(run_dir, record)
        if not _lost_under_lock(current):
            return current
        lost = mark_lost(run_dir, current)
        with contextlib.suppress(OSError, CorruptRecord):  # read-only, or removed meanwhile
            lost = update_record(
                run_dir, lambda now: mark_lost(run_dir, now) if _lost_under_lock(now) else now)
        return lost
    finally:
        lock.release()
