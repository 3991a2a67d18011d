"""Inside a Slurm job: `xpm _slurm_job RUN_DIR`, which job.sbatch `exec`s.

It supervises the run's command exactly as `xpm run` does (lock, heartbeat, output.log,
signals, final status) and records the node, job id, array task and restart count on the
attempt. What Slurm does to the job decides how the attempt ends:

- its warning signal (`--signal=B:USR2@90`, or `scancel --signal=USR2 --batch`): xpm
  forwards it to the command's process group, waits up to two thirds of the grace for the
  command to save a checkpoint and exit, ends the attempt `requeued` (the run goes back to
  `queued`) and runs `scontrol requeue` (JOB_TASK for an array task), unless the run was
  requeued max_requeues times already: then it ends `failed`, saying so;
- SIGTERM after `xpm cancel` (which leaves a `.cancel` file first): `cancelled`;
- SIGTERM while Slurm requeues the job itself (`scontrol requeue`, preemption): `requeued`;
- any other SIGTERM (a plain `scancel`): `interrupted`.

A requeued job finds the run's attempts and resumes it: newest checkpoint handed over,
XPM_RESUME=1, a new attempt of kind `requeue` (or `resume` after `xpm resume`
resubmitted it), output appended.
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import replace
from pathlib import Path

from .. import console, times
from ..errors import RunBusyError, XpmError, stop_on_termination
from ..project import load_project
from ..runs import checkpoints
from ..runs.lock import RunLock, mark_lost
from ..runs.record import (
    CANCELLED,
    COMPLETED,
    FAILED,
    INTERRUPTED,
    QUEUED,
    RECORD_FILE,
    REQUEUED,
    RUNNING,
    RunRecord,
    read_record,
    write_record,
)
from . import slurm
from .lifecycle import execute
from .supervisor import Outcome


def command_wait(grace: int) -> float:
    """How long the command may take to stop after the warning signal: the grace less a
    margin (a third, at most 30 s) in which xpm writes the record and requeues the job."""
    return max(1.0, grace - min(30.0, grace / 3))


def requeues(record: RunRecord) -> int:
    return sum(1 for a in record.attempts if a.status == REQUEUED)


def _fail(run_dir: Path, record: RunRecord, reason: str) -> None:
    now = times.now_iso()
    write_record(run_dir, replace(record, status=FAILED, ended=now, exit_code=1,
                                  duration=record.attempts_duration()))
    console.error(f"run {record.id} failed: {reason}")


def _take(lock: RunLock, run_id: str, purpose: str, patience: float = 30.0) -> None:
    """The run's lock; the submitting xpm holds it until it has recorded the job id, which
    a fast scheduler can start before that."""
    deadline = time.monotonic() + patience
    while not lock.try_acquire(purpose):
        if time.monotonic() > deadline:
            lock.acquire(run_id, purpose)  # fails, naming the holder
        time.sleep(0.05)


def run_job(run_dir: Path) -> int:
    """The job's body; see the module docstring. An error before the command starts is
    recorded (the run `failed`, with the reason), not only printed into slurm.out."""
    stop_on_termination()
    job = slurm.job_environment()
    job_id = str(job["job_id"] or "?")
    if not (run_dir / RECORD_FILE).is_file():
        raise XpmError(f"Slurm job {job_id}: the run folder {run_dir} or its run.json was "
                       "removed after the job was submitted; nothing to run")
    first = read_record(run_dir)
    try:
        return _run(run_dir, first, job, job_id)
    except RunBusyError:
        raise
    except XpmError as exc:
        with contextlib.suppress(OSError, XpmError):
            current = read_record(run_dir)
            if current.status == QUEUED:
                _fail(run_dir, current, f"Slurm job {job_id} could not start it: {exc}")
        raise


def _run(run_dir: Path, first: RunRecord, job: dict[str, str | int | None], job_id: str
         ) -> int:
    project = load_project(Path(first.cwd) if Path(first.cwd).is_dir() else run_dir)
    options = slurm.SlurmOptions.from_json((first.slurm or {}).get("options"))
    lock = RunLock(run_dir)
    _take(lock, first.id, f"Slurm job {job_id}")
    cancel_file = run_dir / slurm.CANCEL_FILE
    try:
        record = read_record(run_dir)
        if record.status == CANCELLED:
            console.info(f"run {record.id} was cancelled before job {job_id} started; "
                         "nothing to run")
            lock.release()
            return 0
        if record.status not in (QUEUED, RUNNING):
            console.info(f"run {record.id} is {record.status} already; job {job_id} has "
                         "nothing to run (`xpm resume` submits it again)")
            lock.release()
            return 0
        if record.status == RUNNING:  # its node died: we hold the lock, nothing runs it
            record = mark_lost(record)
        done = requeues(record)
        restarted = int(job["restart_count"] or 0) > 0
        kind = "start" if not record.attempts else ("requeue" if restarted else "resume")
        if kind == "requeue" and done > options.max_requeues:
            _fail(run_dir, record, f"Slurm requeued job {job_id} more than max_requeues "
                  f"({options.max_requeues}) times; raise slurm.max_requeues or "
                  f"`xpm resume {record.id}`")
            lock.release()
            return 1
        newest = (checkpoints.newest(run_dir, project.settings.checkpoints)
                  if record.attempts else None)
        cancel_file.unlink(missing_ok=True)
    except BaseException:
        lock.release()
        raise
    wanted: dict[str, bool] = {}
    warning = options.signum

    def over_limit(why: str) -> tuple[str, str]:
        return FAILED, (f"{why}, but the run was requeued {done} times already "
                        f"(max_requeues: {options.max_requeues}); raise slurm.max_requeues "
                        f"or `xpm resume {record.id}`")

    def ending(outcome: Outcome) -> tuple[str, str] | None:
        name = f"SIG{options.signal}"
        if outcome.forwarded == warning:
            why = f"Slurm sent {name} (the time limit or a preemption is near)"
            if done >= options.max_requeues:
                return over_limit(why)
            wanted["requeue"] = True
            return REQUEUED, f"{why}; xpm passed it on and requeued job {job_id}"
        terminated = outcome.forwarded == signal.SIGTERM or outcome.returncode in (
            -signal.SIGTERM, -signal.SIGKILL)
        if not terminated:
            return None
        if cancel_file.exists():
            return CANCELLED, f"cancelled by `xpm cancel` (scancel of job {job_id})"
        now = slurm.restarts(job_id)
        if now is not None and now > int(job["restart_count"] or 0):
            why = f"Slurm requeued job {job_id} (scontrol requeue or a preemption)"
            return over_limit(why) if done >= options.max_requeues else (REQUEUED, why)
        if outcome.forwarded == signal.SIGTERM:
            return INTERRUPTED, (f"Slurm stopped job {job_id} (scancel, or its time limit); "
                                 f"`xpm resume {record.id}` submits it again")
        return None

    fields = {"slurm_job_id": job_id, "slurm_array_task": job["array_task"],
              "slurm_restart_count": job["restart_count"]}
    code = execute(project, run_dir, record, lock, kind=kind,
                   checkpoint=str(newest.path) if newest else None, echo=False,
                   stop_signals={warning: command_wait(options.grace)},
                   ending=ending, attempt_fields=fields)
    cancel_file.unlink(missing_ok=True)
    if wanted.get("requeue"):
        # scontrol requeue sends this very job SIGTERM: it has nothing left to stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            slurm.requeue(job_id)
        except XpmError as exc:
            with contextlib.suppress(OSError, XpmError):
                _fail(run_dir, read_record(run_dir), str(exc))
            raise
        console.info(f"job {job_id} requeued; it resumes run {record.id} when Slurm starts "
                     "it again")
        return 0
    final = read_record(run_dir)
    return 0 if final.status in (COMPLETED, CANCELLED) else code
