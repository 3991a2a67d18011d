"""`xpm resume`: continue a run in its own folder from its newest checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .. import checkpoints, console
from ..attempt import execute
from ..catalog import entries
from ..errors import XpmError
from ..lock import RunLock, mark_lost
from ..project import Project, load_project
from ..record import COMPLETED, PATCH_FILE, QUEUED, RUNNING, RunRecord, read_record
from ..store import RunRef, resolve


def latest_started(project: Project) -> RunRef:
    """The most recently started run of the project."""
    best: tuple[str, RunRef] | None = None
    for entry in entries(project.results_dir, live=False):
        if entry.record is None:
            continue
        last = entry.record.last_attempt
        started = last.started if last else entry.record.created
        if best is None or started > best[0]:
            best = (started, entry.ref)
    if best is None:
        raise XpmError(f"there are no runs in {project.results_dir} to resume; "
                       "start one with `xpm run`")
    return best[1]


def code_change(project: Project, run_dir: Path, record: RunRecord) -> str | None:
    """Why the code today differs from the run's record, or None when it does not."""
    from .. import gitinfo

    recorded = record.git
    now = gitinfo.capture(project.root)
    if recorded is None or now is None:
        return None
    if recorded.commit != now.commit:
        return f"the commit is {_short(now.commit)}, the run recorded {_short(recorded.commit)}"
    before = (run_dir / PATCH_FILE).read_bytes() if recorded.patch else b""
    after = gitinfo.current_patch(now) if now.dirty else b""
    if before != after:
        return "the uncommitted changes differ from the run's git.patch"
    return None


def _short(commit: str | None) -> str:
    return commit[:10] if commit else "no commit"


def resume(run: str | None, force: bool, command: tuple[str, ...]) -> int:
    project = load_project()
    ref = resolve(project.results_dir, run) if run else latest_started(project)
    lock = RunLock(ref.path)
    lock.acquire(ref.id)
    try:
        record = read_record(ref.path)
        if record.status == RUNNING:  # we hold the lock, so its supervisor is gone
            record = mark_lost(record)
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
    if change:
        console.warn(f"the code differs from run {record.id}'s record: {change}")
    return execute(project, ref.path, record, lock, kind="resume",
                   checkpoint=str(newest.path) if newest else None, echo=True)
