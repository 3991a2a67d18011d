"""`xpm cancel`: scancel queued or running Slurm runs; they end `cancelled`.

`NAME@K` names a Slurm sweep's trials: those still queued or running are cancelled (the
ended ones are left alone), all in one scancel."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .. import console, times
from ..errors import XpmError
from ..launch import slurm
from ..project import load_project
from ..runs import sweeps
from ..runs.lock import RunLock
from ..runs.record import ACTIVE, CANCELLED, QUEUED, RunRecord, read_record
from ..runs.tree import RunRef, resolve
from ..runs.update import update_record


def cancel(runs: tuple[str, ...]) -> int:
    project = load_project()
    results = project.results_dir
    chosen: dict[str, tuple[RunRef, str]] = {}
    for arg in runs:  # everything is checked before anything is cancelled
        if sweeps.is_ref(arg):
            chosen.update(_sweep_runs(results, arg))
            continue
        ref = resolve(results, arg)
        record = read_record(ref.path)
        chosen[record.id] = (ref, _job(record))
        if record.status not in ACTIVE:
            raise XpmError(f"run `{record.id}` is {record.status} already; there is nothing "
                           "to cancel (`xpm ls` shows the runs that are queued or running)")
    held: list[tuple[RunRef, RunLock, str]] = []  # queued: no job runs them; we record it
    running: list[tuple[RunRef, str]] = []  # their jobs record `cancelled` themselves
    try:
        for ref, job in chosen.values():
            lock = RunLock(ref.path)
            if lock.try_acquire("xpm cancel"):
                status = read_record(ref.path).status
                if status == QUEUED:
                    held.append((ref, lock, job))
                    continue
                lock.release()
                if status not in ACTIVE:  # ended meanwhile
                    continue
            (ref.path / slurm.CANCEL_FILE).write_text(times.now_iso() + "\n")
            running.append((ref, job))
        slurm.cancel([job for _, _, job in held] + [job for _, job in running])
        for ref, _, job in held:
            update_record(ref.path, _cancelled)
            console.info(f"run {ref.id} (Slurm job {job}) cancelled before it started")
    finally:
        for _, lock, _ in held:
            lock.release()
    for ref, job in running:
        console.info(f"run {ref.id} (Slurm job {job}) cancelled; its job records the end")
    return 0


def _job(record: RunRecord) -> str:
    job = (record.slurm or {}).get("job_id")
    if not job:
        raise XpmError(f"run `{record.id}` is a local run, not a Slurm job; stop it with "
                       f"Ctrl-C where it runs, or `kill {_pid(record)}`")
    return str(job)


def _sweep_runs(results: Path, text: str) -> dict[str, tuple[RunRef, str]]:
    """The queued and running runs of a sweep, each with its job."""
    manifest = sweeps.resolve(results, text)
    if manifest.launcher != "slurm":
        raise XpmError(f"sweep `{manifest.id}` runs on this machine, not in Slurm; stop it "
                       "with Ctrl-C where it runs (or signal its runner: `xpm ls "
                       f"{manifest.id}` shows its trials)")
    found: dict[str, tuple[RunRef, str]] = {}
    for run in sweeps.run_ids(results, [manifest.id]):
        ref = resolve(results, run)
        record = read_record(ref.path)
        if record.status in ACTIVE and (record.slurm or {}).get("job_id"):
            found[record.id] = (ref, _job(record))
    if not found:
        raise XpmError(f"sweep `{manifest.id}` has no queued or running trials; there is "
                       f"nothing to cancel (`xpm ls {manifest.id}` shows them)")
    return found


def _cancelled(record: RunRecord) -> RunRecord:
    now = times.now_iso()
    return replace(record, status=CANCELLED, ended=now,
                   slurm={**(record.slurm or {}), "cancelled": now})


def _pid(record: object) -> str:
    last = getattr(record, "last_attempt", None)
    return str(last.pid) if last is not None else "PID"
