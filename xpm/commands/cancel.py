"""`xpm cancel`: scancel queued or running Slurm runs; they end `cancelled`."""

from __future__ import annotations

from dataclasses import replace

from .. import console, times
from ..errors import XpmError
from ..launch import slurm
from ..project import load_project
from ..runs.lock import RunLock
from ..runs.record import ACTIVE, CANCELLED, QUEUED, RunRecord, read_record
from ..runs.tree import RunRef, resolve
from ..runs.update import update_record


def cancel(runs: tuple[str, ...]) -> int:
    project = load_project()
    chosen: list[tuple[RunRef, str]] = []
    for arg in runs:  # everything is checked before anything is cancelled
        ref = resolve(project.results_dir, arg)
        record = read_record(ref.path)
        job = (record.slurm or {}).get("job_id")
        if not job:
            raise XpmError(f"run `{record.id}` is a local run, not a Slurm job; stop it with "
                           f"Ctrl-C where it runs, or `kill {_pid(record)}`")
        if record.status not in ACTIVE:
            raise XpmError(f"run `{record.id}` is {record.status} already; there is nothing "
                           "to cancel (`xpm ls` shows the runs that are queued or running)")
        chosen.append((ref, str(job)))
    for ref, job in chosen:
        lock = RunLock(ref.path)
        if lock.try_acquire("xpm cancel"):  # queued: no job runs it; we record the end
            try:
                record = read_record(ref.path)
                if record.status == QUEUED:
                    slurm.cancel([job])
                    update_record(ref.path, _cancelled)
                    console.info(f"run {ref.id} (Slurm job {job}) cancelled before it started")
                    continue
            finally:
                lock.release()
        # running: its job records `cancelled` when Slurm's SIGTERM reaches it
        (ref.path / slurm.CANCEL_FILE).write_text(times.now_iso() + "\n")
        slurm.cancel([job])
        console.info(f"run {ref.id} (Slurm job {job}) cancelled; its job records the end")
    return 0


def _cancelled(record: RunRecord) -> RunRecord:
    now = times.now_iso()
    return replace(record, status=CANCELLED, ended=now,
                   slurm={**(record.slurm or {}), "cancelled": now})


def _pid(record: object) -> str:
    last = getattr(record, "last_attempt", None)
    return str(last.pid) if last is not None else "PID"
