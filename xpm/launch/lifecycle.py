"""One start of a run's command under supervision: the child's environment, the lock,
the heartbeat, and a final status written whatever happens."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .. import console, times
from ..errors import Terminated, XpmError
from ..machine import hostname
from ..project import Project
from ..runs.lock import RunLock
from ..runs.record import (
    COMPLETED,
    CONFIG_FILE,
    FAILED,
    INTERRUPTED,
    KILLED,
    OUTPUT_FILE,
    RUNNING,
    Attempt,
    RunRecord,
    write_record,
)
from .supervisor import CommandNotFound, Outcome, Supervisor

_STOPPING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def expand(argv: tuple[str, ...] | list[str], values: dict[str, str | None]) -> list[str]:
    """Replace `{run_dir}`, `{config}`, `{seed}`, `{checkpoint}` in each argument."""
    out = []
    for arg in argv:
        for key, value in values.items():
            token = "{" + key + "}"
            if token in arg:
                if value is None:
                    raise XpmError(f"the command uses `{token}` but this run has no {key} "
                                   "(no checkpoint was found); remove it or save a checkpoint")
                arg = arg.replace(token, value)
        out.append(arg)
    return out


def child_environment(run_dir: Path, record: RunRecord, attempt: int,
                      checkpoint: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("XPM_CHECKPOINT", None)
    env.update({
        "XPM_RUN_DIR": str(run_dir),
        "XPM_RUN_NAME": record.name,
        "XPM_RUN_NUMBER": str(record.number),
        "XPM_RUN_ID": record.id,
        "XPM_CONFIG": str(run_dir / CONFIG_FILE),
        "XPM_SEED": str(record.seed),
        "XPM_ATTEMPT": str(attempt),
        "XPM_RESUME": "1" if attempt > 1 else "0",
    })
    if checkpoint is not None:
        env["XPM_CHECKPOINT"] = checkpoint
    env.setdefault("PYTHONUNBUFFERED", "1")  # stream Python's prints as they happen
    return env


def status_of(outcome: Outcome) -> str:
    if outcome.forwarded is not None:
        return INTERRUPTED
    if outcome.returncode == 0:
        return COMPLETED
    return KILLED if outcome.returncode < 0 else FAILED


def reason_of(outcome: Outcome) -> str:
    if outcome.forwarded is not None:
        name = signal.Signals(outcome.forwarded).name
        tail = "; killed after the grace period" if outcome.killed_after_grace else ""
        return f"xpm received {name} and forwarded it{tail}"
    if outcome.returncode < 0:
        return f"killed by {signal.Signals(-outcome.returncode).name}"
    return f"exit {outcome.returncode}"


def _separate(log: Path, attempt: Attempt) -> None:
    """A visible line in output.log where a resumed attempt's output begins."""
    try:
        with open(log, "rb") as f:
            f.seek(-1, os.SEEK_END)
            newline = b"" if f.read(1) == b"\n" else b"\n"
    except OSError:  # missing or empty
        newline = b""
    source = f"from {attempt.checkpoint}" if attempt.checkpoint else "without a checkpoint"
    line = (f"===== xpm: attempt {attempt.number} ({attempt.kind}) on {attempt.host} at "
            f"{attempt.started}, {source} =====\n")
    with open(log, "ab") as f:
        f.write(newline + line.encode())


def execute(
    project: Project,
    run_dir: Path,
    record: RunRecord,
    lock: RunLock,
    kind: str,
    checkpoint: str | None,
    echo: bool,
    on_running: Callable[[], None] | None = None,
) -> int:
    """Run the record's command once; the lock must be held and is released at the end.

    Returns xpm's exit code: the command's code, 128+N for death by signal N.
    """
    number = len(record.attempts) + 1
    values: dict[str, str | None] = {
        "run_dir": str(run_dir), "config": str(run_dir / CONFIG_FILE),
        "seed": str(record.seed), "checkpoint": checkpoint,
    }
    try:
        argv = expand(record.command, values)
    except XpmError:
        lock.release()
        raise
    started = times.now_iso()
    attempt = Attempt(number=number, kind=kind, started=started, host=hostname(),
                      pid=os.getpid(), command=tuple(argv), checkpoint=checkpoint)
    record = replace(record, status=RUNNING, started=record.started or started, ended=None,
                     exit_code=None, signal=None, heartbeat=started).with_attempt(attempt)
    state = {"record": record}
    failing = [False]  # the last heartbeat could not be written: said once, not each time

    def beat() -> None:
        current = replace(state["record"], heartbeat=times.now_iso())
        try:
            write_record(run_dir, current)
            state["record"] = current
        except OSError as exc:
            if not failing[0]:
                console.warn(f"cannot write the heartbeat of {record.id} ({exc.strerror}); "
                             "xpm keeps trying and says when it works again")
            failing[0] = True
            return
        if failing[0]:
            console.info(f"the heartbeat of {record.id} is written again")
            failing[0] = False

    status, exit_code, signum, reason = FAILED, 1, None, "xpm stopped before the command ended"
    try:
        write_record(run_dir, record)
        if number > 1:
            _separate(run_dir / OUTPUT_FILE, attempt)
        console.info(f"{'resuming' if number > 1 else 'run'} {record.id} "
                     f"in {console.path(run_dir)}"
                     + (f" (attempt {number})" if number > 1 else ""))
        supervisor = Supervisor(
            argv=argv, cwd=project.root,
            env=child_environment(run_dir, record, number, checkpoint),
            log_path=run_dir / OUTPUT_FILE, echo=echo,
            use_pty=echo and console.stdout_is_terminal(),
            grace_period=project.settings.grace_period,
            tick=beat, tick_interval=record.heartbeat_interval,
            on_started=(lambda _pid: on_running()) if on_running is not None else None,
        )
        try:
            outcome = supervisor.run()
        except CommandNotFound as exc:
            status, exit_code, reason = FAILED, exc.exit_code, str(exc)
            console.error(str(exc))
        else:
            status, exit_code = status_of(outcome), outcome.exit_code
            signum, reason = outcome.signal, reason_of(outcome)
    except KeyboardInterrupt as exc:
        got = signal.Signals(exc.signum if isinstance(exc, Terminated) else signal.SIGINT)
        status, exit_code = INTERRUPTED, 128 + got.value
        reason = f"xpm received {got.name} before the command started"
    finally:
        # Nothing may interrupt the final record: signals wait until it is written.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
        try:
            record = _finish(run_dir, state["record"], status, exit_code, signum, reason)
        finally:
            lock.release()
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    detail = "" if reason == f"exit {exit_code}" else f": {reason}"
    console.info(f"{record.id} {status} after {times.format_duration(record.duration)} "
                 f"(exit {exit_code}{detail})")
    return exit_code


def _finish(run_dir: Path, record: RunRecord, status: str, exit_code: int,
            signum: int | None, reason: str) -> RunRecord:
    """Write the run's final status; a failure to write (a full disk) is said, not raised."""
    ended = times.now_iso()
    last = record.last_attempt
    assert last is not None
    record = record.with_attempt(replace(last, ended=ended, status=status,
                                         exit_code=exit_code, signal=signum, reason=reason))
    record = replace(record, status=status, ended=ended, exit_code=exit_code, signal=signum,
                     duration=record.attempts_duration(), heartbeat=ended)
    try:
        write_record(run_dir, record)
    except OSError as exc:
        console.error(f"cannot write the final record of {record.id} to {run_dir} "
                      f"({exc.strerror}); it will read `lost` — free some space, then "
                      f"`xpm resume {record.id}` if it should go on")
    return record

