"""`xpm resume`: continue a run in its own folder from its newest checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .. import console, times
from ..errors import XpmError, stop_on_termination
from ..launch.lifecycle import execute
from ..project import Project, load_project
from ..runs import checkpoints
from ..runs.catalog import entries
from ..runs.lock import RunLock, lost_while_held, mark_lost
from ..runs.record import COMPLETED, PATCH_FILE, QUEUED, RUNNING, RunRecord, read_record
from ..runs.tree import RunRef, resolve


def latest_started(project: Project) -> RunRef:
    """The most recently started run of the project (times compared as times, whatever
    their timezone offsets)."""
    best: tuple[float, RunRef] | None = None
    for entry in entries(project.results_dir, live=False):
        if entry.record is None:
            continue
        last = entry.record.last_attempt
        try:
            started = times.parse_iso(last.started if last else entry.record.created)
        except ValueError:
            continue
        if best is None or started.timestamp() > best[0]:
            best = (started.timestamp(), entry.ref)
    if best is None:
        raise XpmError(f"there are no runs in {project.results_dir} to resume; "
                       "start one with `xpm run`")
    return best[1]


def run_project(record: RunRecord, current: Project) -> Project:
    """The project the run was made in (its recorded root), when that folder is still one;
    else the current project. The command reruns there, with that project's settings."""
    recorded = Path(record.cwd) if record.cwd else None
    if recorded is not None and recorded != current.root and recorded.is_dir():
        return load_project(recorded)
    return current


def code_change(project: Project, run_dir: Path, record: RunRecord) -> str | None:
    """Why the code today differs from the run's record, or None when it does not."""
    from ..vcs import state as gitinfo

    recorded = record.git
    try:
        now = gitinfo.capture(project.root)
    except gitinfo.GitUnreadable as exc:
        return f"{exc}, so the code cannot be compared"
    if recorded is None or now is None:
        return None
    if recorded.commit != now.commit:
        return f"the commit is {_short(now.commit)}, the run recorded {_short(recorded.commit)}"
    if recorded.patch and not (run_dir / PATCH_FILE).is_file():
        return "the run's git.patch is missing, so uncommitted changes cannot be compared"
    before = (run_dir / PATCH_FILE).read_bytes() if recorded.patch else b""
    after = gitinfo.current_patch(now) if now.dirty else b""
    if before != after:
        return "the uncommitted changes differ from the run's git.patch"
    return None


def _short(commit: str | None) -> str:
    return commit[:10] if commit else "no commit"


def resume(run: str | None, force: bool, command: tuple[str, ...]) -> int:
    stop_on_termination()
    current = load_project()
    ref = resolve(current.results_dir, run) if run else latest_started(current)
    lock = RunLock(ref.path)
    lock.acquire(ref.id)  # announced below, once resuming goes ahead
    try:
        record = read_record(ref.path)
        project = run_project(record, current)
        if record.status == RUNNING:
            last = record.last_attempt
            if not lost_while_held(record) and last is not None and not force:
                raise XpmError(f"run `{record.id}` is running on another host: pid {last.pid} "
                               f"on {last.host} (heartbeat at {record.heartbeat}); if that host "
                               "is gone, use --force (or wait until the heartbeat is three "
                               "intervals old)")
            record = mark_lost(record)  # we hold the lock: its supervisor is gone
        if record.status == COMPLETED and not force:
            raise XpmError(f"run `{record.id}` completed; resuming it reruns the command "
                           "(use --force to do so anyway)")
        if record.status == QUEUED and not force:
            raise XpmError(f"run `{record.id}` is queued and has not started yet; wait for "
                           "it, or use --force to start it here")
        if command:
            record = replace(record, command=tuple(command))
        newest = checkpoints.newest(ref.path, project.settings.checkpoints)
        change = code_change(project, ref.path, record)
    except BaseException:
        lock.release()
        raise
    lock.announce("xpm resume")
    if change:
        console.warn(f"the code differs from run {record.id}'s record: {change}")
    return execute(project, ref.path, record, lock, kind="resume",
                   checkpoint=str(newest.path) if newest else None, echo=True)
