"""`xpm sync`: ask Slurm, once, about the queued and running Slurm runs; record what it
says. The one command that calls Slurm for reading: listing never does."""

from __future__ import annotations

from dataclasses import replace

from .. import console, times
from ..launch import slurm
from ..project import load_project
from ..runs.catalog import Entry, entries, load_entry
from ..runs.lock import RunLock
from ..runs.record import LOST, QUEUED, RUNNING, read_record
from ..runs.tree import resolve
from ..runs.update import update_record

_GONE = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL",
         "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "REVOKED"}


def sync(runs: tuple[str, ...]) -> int:
    project = load_project()
    results = project.results_dir
    names = [r for r in runs if "/" not in r and not (results / r / "run.json").exists()]
    chosen: list[Entry] = [load_entry(resolve(results, r)) for r in runs if r not in names]
    if names or not runs:
        chosen += list(entries(results, names or None))
    active = [e for e in chosen if e.record is not None and e.status in (QUEUED, RUNNING)
              and (e.record.slurm or {}).get("job_id")]
    if not active:
        console.info("no queued or running Slurm runs; nothing to ask Slurm")
        return 0
    jobs = {str((e.record.slurm or {})["job_id"]): e for e in active if e.record}
    states = slurm.queue_states(sorted(jobs))
    rows = []
    for job, entry in jobs.items():
        state = states.get(job)
        said = f"{state.state} ({state.reason})" if state and state.reason not in (
            "None", "") else (state.state if state else "unknown to Slurm")
        status = entry.status
        if entry.status == QUEUED and (state is None or state.state in _GONE):
            status = _mark_lost(entry, job, said) or status
        rows.append([entry.id, job, status, said])
    console.table(["run", "job", "status", "Slurm says"], rows)
    return 0


def _mark_lost(entry: Entry, job: str, said: str) -> str | None:
    """A queued run whose job Slurm no longer runs or knows: `lost`, saying why."""
    lock = RunLock(entry.ref.path)
    if not lock.try_acquire("xpm sync"):
        return None  # its job has just started
    try:
        record = read_record(entry.ref.path)
        if record.status != QUEUED:
            return record.status
        now = times.now_iso()
        reason = (f"Slurm job {job} is {said} and never started xpm (scancel, or a launch "
                  f"failure: see slurm.out); `xpm resume {record.id}` submits it again")
        update_record(entry.ref.path, lambda r: replace(
            r, status=LOST, ended=now,
            slurm={**(r.slurm or {}), "synced": now, "lost_reason": reason}))
        console.warn(f"run {record.id}: {reason}")
        return LOST
    finally:
        lock.release()
