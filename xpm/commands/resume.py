"""`xpm resume`: continue a run in its own folder from its newest checkpoint."""

from __future__ import annotations

from dataclasses import replace

from .. import console, times
from ..errors import XpmError, stop_on_termination
from ..launch import lifecycle
from ..project import Project, load_project
from ..runs.catalog import entries
from ..runs.lock import RunLock
from ..runs.record import COMPLETED, QUEUED, RUNNING, read_record
from ..runs.tree import RunRef, resolve
from ..runs.update import update_record


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


def resume(run: str | None, force: bool, command: tuple[str, ...]) -> int:
    stop_on_termination()
    current = load_project()
    ref = resolve(current.results_dir, run) if run is not None else latest_started(current)
    if (read_record(ref.path).slurm or {}).get("job_id"):
        return _resubmit(current, ref, force, command)
    return lifecycle.resume(current, ref, force=force, command=command)


def _resubmit(current: Project, ref: RunRef, force: bool, command: tuple[str, ...]) -> int:
    """A Slurm run resumes in a new job: the same folder, a new job id, a new attempt
    (kind `resume`) once the job starts."""
    from ..launch import slurm

    lock = RunLock(ref.path)
    lock.acquire(ref.id, purpose="xpm resume")
    try:
        record = read_record(ref.path)
        job = (record.slurm or {}).get("job_id")
        if record.status in (QUEUED, RUNNING):
            raise XpmError(f"run `{record.id}` is {record.status} in Slurm as job {job}; "
                           f"wait for it, or `xpm cancel {record.id}` first")
        if record.status == COMPLETED and not force:
            raise XpmError(f"run `{record.id}` completed; resuming it reruns the command "
                           "(use --force to do so anyway)")
        if command:
            record = update_record(ref.path, lambda r: replace(r, command=tuple(command)))
        project = lifecycle.run_project(record, current)
        options = slurm.SlurmOptions.from_json((record.slurm or {}).get("options"))
        record = slurm.submit_run(ref.path, record, options, project.root,
                                  project.results_dir)
    finally:
        lock.release()
    job = (record.slurm or {}).get("job_id")
    console.info(f"run {record.id} resubmitted to Slurm as job {job}; it resumes from its "
                 "newest checkpoint when the job starts")
    console.out(f"{record.id} {job}")
    return 0
