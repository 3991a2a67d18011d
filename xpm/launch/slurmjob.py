"""Inside a Slurm job: `xpm _slurm_job RUN_DIR`, which job.sbatch `exec`s.

It supervises the run's command exactly as `xpm run` does (lock, heartbeat, output.log,
signals, final status) and records the node, job id, array task and restart count on the
attempt. What Slurm does to the job decides how the attempt ends:

- its warning signal (`--signal=B:USR2@90`, or `scancel --signal=USR2 --batch`): xpm
  forwards it to the command's process group, waits up to two thirds of the grace for the
  command to save a checkpoint and exit, ends the attempt `requeued` (the run goes back to
  `queued`) and runs `scontrol requeue` (JOB_TASK for an array task); the requeued job
  of a run requeued more than max_requeues times ends it `failed`, saying so, without
  running the command (lifecycle.requeue);
- SIGTERM after `xpm cancel` (which leaves a `.cancel` file first): `cancelled`;
- SIGTERM while Slurm requeues the job itself (`scontrol requeue`, preemption): `requeued`;
- any other SIGTERM (a plain `scancel`): `interrupted`.

A job of several tasks (`ntasks`, `nodes`) starts the command with `srun
--kill-on-bad-exit=1` (slurm.task_launcher): the warning signal reaches xpm (`B:`), xpm
forwards it to srun's process group, and srun forwards it to every task.

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
from ..runs.lock import RunLock
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
)
from ..runs.update import update_record
from . import lifecycle, slurm
from .lifecycle import Ending, Scheduler
from .supervisor import Outcome


def command_wait(grace: int) -> float:
    """How long the command may take to stop after the warning signal: the grace less a
    margin (a third, at most 30 s) in which xpm writes the record and requeues the job."""
    return max(1.0, grace - min(30.0, grace / 3))


def _fail(run_dir: Path, reason: str) -> None:
    """Record a run that its job could not start `failed`, with the reason."""
    now = times.now_iso()

    def fail(current: RunRecord) -> RunRecord:
        if current.status not in (QUEUED, RUNNING):
            return current
        return replace(current, status=FAILED, ended=now, exit_code=1,
                       slurm={**(current.slurm or {}), "error": reason})

    with contextlib.suppress(OSError, XpmError):
        update_record(run_dir, fail)


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
    try:
        return _run(run_dir, job, job_id)
    except RunBusyError:
        raise
    except XpmError as exc:
        _fail(run_dir, f"Slurm job {job_id} could not run it: {exc}")
        raise


def _run(run_dir: Path, job: dict[str, str | int | None], job_id: str) -> int:
    first = read_record(run_dir)
    options = slurm.SlurmOptions.from_json((first.slurm or {}).get("options"))
    lock = RunLock(run_dir)
    _take(lock, first.id, f"Slurm job {job_id}")
    cancel_file = run_dir / slurm.CANCEL_FILE
    try:
        record = read_record(run_dir)
        if record.status not in (QUEUED, RUNNING):
            console.info(f"run {record.id} is {record.status} already; job {job_id} has "
                         f"nothing to run (`xpm resume {record.id}` submits it again)")
            lock.release()
            return 0
        project = lifecycle.run_project(record, None)
        cancel_file.unlink(missing_ok=True)
    except BaseException:
        lock.release()
        raise
    restart = int(job["restart_count"] or 0)
    argv = lifecycle.handed_over_command()  # the command as given, if the record masks it

    def requeue() -> str | None:
        # scontrol requeue sends this very job SIGTERM: it has nothing left to stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            slurm.requeue(job_id)
        except XpmError as exc:
            return str(exc)
        return None

    def judge(outcome: Outcome) -> Ending | None:
        """SIGTERM from Slurm: a cancel by `xpm cancel`, a requeue, or a plain scancel."""
        if outcome.forwarded != signal.SIGTERM and outcome.returncode not in (
                -signal.SIGTERM, -signal.SIGKILL):
            return None
        code, died_of = outcome.exit_code, outcome.signal
        if cancel_file.exists():
            return Ending(CANCELLED, CANCELLED, code, died_of,
                          f"cancelled by `xpm cancel` (scancel of job {job_id})")
        now = slurm.restarts(job_id)
        if now is not None and now > restart:
            return Ending(REQUEUED, QUEUED, code, died_of,
                          f"Slurm requeued job {job_id} (scontrol requeue or a preemption)")
        if outcome.forwarded == signal.SIGTERM:
            return Ending(INTERRUPTED, INTERRUPTED, code, died_of,
                          f"Slurm stopped job {job_id} (scancel, or its time limit); "
                          f"`xpm resume {record.id}` submits it again")
        return None

    scheduler = Scheduler(
        signal=options.signum, requeue=requeue, job_id=job_id,
        wait=command_wait(options.grace), judge=judge,
        fields={"slurm_array_task": job["array_task"], "slurm_restart_count": restart},
        launcher=slurm.task_launcher(options, argv or record.command))
    if not record.attempts:
        code = lifecycle.start(project, run_dir, record, lock, argv=argv, echo=False,
                               scheduler=scheduler)
    elif restart > 0:  # Slurm started this job again
        code = lifecycle.requeue(project, run_dir, record, lock, scheduler=scheduler,
                                 max_requeues=options.max_requeues, argv=argv)
    else:  # `xpm resume` submitted it again
        code = lifecycle.execute(project, run_dir, record, lock, kind=lifecycle.RESUME,
                                 checkpoint=lifecycle.handed_over(run_dir, record, project),
                                 echo=False, scheduler=scheduler, argv=argv)
    cancel_file.unlink(missing_ok=True)
    final = read_record(run_dir)
    return 0 if final.status in (COMPLETED, CANCELLED, QUEUED) else code
