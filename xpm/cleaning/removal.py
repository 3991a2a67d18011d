"""Removing things from the results tree without ever reaching outside it.

Three guarantees, each checked again right before anything changes:
  - a path is touched only when it lies below results_dir with no symbolic link on the way
    (`within`); a link itself is removed as a link, its target never;
  - folders are deleted by shutil.rmtree, which unlinks the links it meets instead of
    following them (and refuses a link as its top);
  - a run is touched only while this process holds its lock (`claimed`), so a run that
    starts or resumes meanwhile is left alone.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import RunBusyError, XpmError
from ..runs.catalog import ABANDONED, CORRUPT, NEWER
from ..runs.lock import RunLock, busy_message, lost_while_held
from ..runs.record import LOST, RUNNING, CorruptRecord, NewerRecord, read_record
from ..runs.tree import PREPARING_FILE, TRASH_DIR, RunRef


def within(root: Path, path: Path) -> Path | None:
    """`path` spelled from the real results_dir, when it lies strictly below `root` and every
    folder between them is a real folder (not a link); else None. The last part may be a
    link: removing it removes the link only."""
    root_real = Path(os.path.realpath(root))
    target = os.path.abspath(path)
    rel: Path | None = None
    for base in (os.path.abspath(root), str(root_real)):
        try:
            rel = Path(target).relative_to(base)
            break
        except ValueError:
            continue
    if rel is None or not rel.parts:
        return None
    current = root_real
    for part in rel.parts[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            return None
        if not stat.S_ISDIR(mode):  # a link (lstat does not follow it) or a file
            return None
    return current / rel.parts[-1]


def run_folder(results_dir: Path, ref: RunRef, in_trash: bool = False) -> Path | None:
    """The run's folder, spelled from the real results_dir, when it is exactly
    results_dir/NAME/N (or results_dir/.trash/NAME/N), a real folder, with no link anywhere
    on the way; else None. The one containment check everything that removes runs uses."""
    path = within(results_dir, ref.path)
    parts = (TRASH_DIR, ref.name, str(ref.number)) if in_trash else (ref.name, str(ref.number))
    expected = Path(os.path.realpath(results_dir)).joinpath(*parts)
    return path if path == expected and is_real_folder(path) else None


def is_real_folder(path: Path) -> bool:
    """A folder, not a link to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def remove(path: Path) -> None:
    """Delete a file, a link (never its target) or a folder and everything in it."""
    mode = os.lstat(path).st_mode
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def status_while_held(run_dir: Path) -> str:
    """The run's status as seen by the holder of its lock: a `running` record on this host
    is lost (nothing else can hold the lock); elsewhere its heartbeat decides."""
    try:
        record = read_record(run_dir)
    except NewerRecord:
        return NEWER
    except CorruptRecord:
        return ABANDONED if os.path.lexists(run_dir / PREPARING_FILE) else CORRUPT
    return LOST if lost_while_held(run_dir, record) else record.status


@contextmanager
def claimed(run_dir: Path, run_id: str) -> Iterator[str]:
    """Hold the run's lock while the caller works on it; yields its status under the lock.

    Raises RunBusyError when another process holds the lock, or when the record says the
    run is running on another host with a fresh heartbeat.
    """
    lock = RunLock(run_dir)
    try:
        taken = lock.try_acquire()
    except OSError as exc:
        raise XpmError(f"cannot lock run `{run_id}` ({exc.strerror}); "
                       "check the permissions of its folder") from None
    if not taken:
        raise RunBusyError(busy_message(run_dir, run_id))
    try:
        status = status_while_held(run_dir)
        if status == RUNNING:
            raise RunBusyError(busy_message(run_dir, run_id))
        yield status
    finally:
        lock.release()
