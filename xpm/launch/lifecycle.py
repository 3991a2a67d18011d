"""A run's life: its first start, each resume, each requeue by a scheduler.

Every way a run's command starts comes through here: `xpm run` (start), `xpm run
--detach` and a scheduler job (`take_prepared`: start, or requeue when the run already
has attempts), `xpm resume` (resume). This module decides which checkpoint is handed
over, supervises one attempt (lock held, heartbeat, output), and maps how the attempt
ended to the attempt's and the run's final status (`ending`).

    attempt ended by             attempt status   run status
    exit 0                       completed        completed
    exit N                       failed           failed
    a signal xpm did not send    killed           killed
    SIGINT/SIGTERM/SIGHUP to xpm interrupted      interrupted  (forwarded to the command)
    the scheduler's signal,      requeued         queued       (the job waits to run again)
      then a requeue
    the scheduler's signal,      interrupted      interrupted  (reason says why no requeue)
      requeue refused
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from .. import console, times
from ..errors import Terminated, XpmError
from ..machine import hostname
from ..masking import is_masked, mask_argv
from ..project import Project, load_project
from ..runs import heartbeat
from ..runs.lock import RunLock, lost_while_held, mark_lost
from ..runs.record import (
    COMPLETED,
    CONFIG_FILE,
    FAILED,
    INTERRUPTED,
    KILLED,
    METRICS_FILE,
    OUTPUT_FILE,
    QUEUED,
    REQUEUED,
    RUNNING,
    Attempt,
    MetricsTally,
    RunRecord,
    read_record,
)
from ..runs.regular import irregular
from ..runs.tree import RunRef
from ..runs.update import update_record
from .handover import COMMAND_VARIABLE as COMMAND_VARIABLE
from .handover import handed_over_command as handed_over_command
from .handover import handover as handover
from .interpreter import BackgroundProbe
from .supervisor import INTERRUPTS, CommandNotFound, Outcome, Supervisor

START, RESUME, REQUEUE = "start", "resume", "requeue"  # attempt kinds
_STOPPING = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


class Scheduler(NamedTuple):
    """What a batch scheduler (Slurm) adds to supervising an attempt.

    `signal` is the signal the scheduler sends before the job's time limit: xpm forwards
    it to the command's process group (the command saves a checkpoint), waits up to the
    grace period, then calls `requeue`, which returns None once the job is requeued, or
    why it could not be. `job_id` is recorded on the attempt.

    `wait` is how long the command may take to stop after that signal (default: the
    project's grace period); `fields` are more attempt fields (Slurm's array task and
    restart count); `judge` reads any other outcome the scheduler's way (a cancel, a
    requeue the scheduler made itself), or returns None for the usual reading.
    `launcher` goes before the command (`srun --kill-on-bad-exit=1` for a job of several
    tasks); the attempt records the command with it, the run without it.
    """

    signal: int
    requeue: Callable[[], str | None]
    job_id: str | None = None
    wait: float | None = None
    fields: Mapping[str, Any] = MappingProxyType({})
    judge: Callable[[Outcome], Ending | None] | None = None
    launcher: tuple[str, ...] = ()


class Ending(NamedTuple):
    """How an attempt ended, for the attempt and for the run."""

    attempt_status: str
    run_status: str
    exit_code: int  # what xpm exits with
    signal: int | None  # the signal the command died of
    reason: str


def ending(outcome: Outcome, scheduler: Scheduler | None = None,
           requeue_refused: str | None = None) -> Ending:
    """The statuses an attempt's outcome gives (see the module's table). With a
    `scheduler` whose signal xpm forwarded first, the attempt is `requeued` unless
    `requeue_refused` says why the requeue did not happen."""
    code, died_of = outcome.exit_code, outcome.signal
    forwarded = outcome.forwarded
    tail = "; killed after the grace period" if outcome.killed_after_grace else ""
    if scheduler is not None and forwarded == scheduler.signal:
        name = signal.Signals(forwarded).name
        if requeue_refused is None:
            return Ending(REQUEUED, QUEUED, code, died_of,
                          f"the scheduler sent {name}, forwarded{tail}; job requeued")
        return Ending(INTERRUPTED, INTERRUPTED, code, died_of,
                      f"the scheduler sent {name}, forwarded{tail}; "
                      f"not requeued: {requeue_refused}")
    if forwarded is not None:
        name = signal.Signals(forwarded).name
        return Ending(INTERRUPTED, INTERRUPTED, code, died_of,
                      f"xpm received {name} and forwarded it{tail}")
    if outcome.returncode == 0:
        return Ending(COMPLETED, COMPLETED, 0, None, "exit 0")
    if outcome.returncode < 0:
        assert died_of is not None
        return Ending(KILLED, KILLED, code, died_of,
                      f"killed by {signal.Signals(died_of).name}")
    return Ending(FAILED, FAILED, code, None, f"exit {code}")


def _masked_command(record: RunRecord) -> XpmError:
    """The error of a run whose recorded command had its secrets masked, given again."""
    import shlex  # only here: `xpm run` does not pay for it

    return XpmError(f"run `{record.id}`'s command had secret values, which xpm does not "
                    f"record ({shlex.join(record.command)}); give the command again: "
                    f"xpm resume {record.id} -- COMMAND ARG...")


# ------------------------------------------------------------------ entry points

def start(project: Project, run_dir: Path, record: RunRecord, lock: RunLock, *,
          argv: tuple[str, ...] | None = None, echo: bool = True,
          on_running: Callable[[], None] | None = None,
          scheduler: Scheduler | None = None) -> int:
    """The first attempt of a prepared run (its folder made, its record `queued`, its lock
    held by the caller and released here). `argv` is the command as given, when the
    record holds it masked (secrets)."""
    return execute(project, run_dir, record, lock, kind=START, checkpoint=None, echo=echo,
                   on_running=on_running, argv=argv, scheduler=scheduler)


def resume(current: Project, ref: RunRef, *, force: bool = False,
           command: tuple[str, ...] = (), echo: bool = True,
           warn_code_change: bool = True) -> int:
    """`xpm resume`: take the run's lock (failing at once, naming the holder, when it is
    taken), decide whether the run may be resumed, hand over its newest checkpoint and run
    a new attempt of kind `resume`. `command` replaces the recorded command (recorded)."""
    lock = RunLock(ref.path)
    lock.acquire(ref.id, purpose="xpm resume")
    try:
        record = read_record(ref.path)
        project = run_project(record, current)
        record = _resumable(ref.path, record, force)
        if command:
            record = replace(record, command=mask_argv(command))
        elif is_masked(record.command):
            raise _masked_command(record)
        checkpoint = handed_over(ref.path, record, project)
        change = None
        if warn_code_change and not record.exact:  # an exact run runs its own code
            from ..vcs.drift import code_change

            change = code_change(project.root, ref.path, record)
    except BaseException:
        lock.release()
        raise
    if change:
        console.warn(f"the code differs from run {record.id}'s record: {change}")
    return execute(project, ref.path, record, lock, kind=RESUME, checkpoint=checkpoint,
                   echo=echo, argv=tuple(command) if command else None)


def requeue(project: Project, run_dir: Path, record: RunRecord, lock: RunLock, *,
            scheduler: Scheduler, max_requeues: int, argv: tuple[str, ...] | None = None,
            echo: bool = False, on_running: Callable[[], None] | None = None) -> int:
    """A scheduler started the job of a run that already has attempts (it was requeued):
    a new attempt of kind `requeue` from the newest checkpoint. Past `max_requeues`
    requeues the run ends `failed`, saying why, without running the command."""
    done = sum(1 for a in record.attempts if a.kind == REQUEUE)
    if done >= max_requeues:
        return _refuse_requeue(run_dir, record, lock, done, max_requeues, scheduler)
    checkpoint = handed_over(run_dir, record, project)
    return execute(project, run_dir, record, lock, kind=REQUEUE, checkpoint=checkpoint,
                   echo=echo, on_running=on_running, argv=argv, scheduler=scheduler)


def _refuse_requeue(run_dir: Path, record: RunRecord, lock: RunLock, done: int,
                    max_requeues: int, scheduler: Scheduler) -> int:
    """End a run requeued more often than allowed `failed`, with an attempt saying why."""
    now = times.now_iso()
    reason = (f"requeued {done} times already and max_requeues is {max_requeues}; "
              f"raise it, or `xpm resume {record.id}`")
    attempt = Attempt(number=len(record.attempts) + 1, kind=REQUEUE, started=now,
                      host=hostname(), pid=os.getpid(), command=record.command, ended=now,
                      status=FAILED, exit_code=1, reason=reason,
                      slurm_job_id=scheduler.job_id)

    def refuse(current: RunRecord) -> RunRecord:
        updated = current.with_attempt(attempt)
        if updated.status == RUNNING:
            updated = mark_lost(run_dir, updated)
        return replace(updated, status=FAILED, ended=now, exit_code=1, signal=None,
                       duration=updated.attempts_duration())

    try:
        update_record(run_dir, refuse)
    finally:
        lock.release()
    console.error(f"run {record.id} not started again: {reason}")
    return 1


def take_prepared(run_dir: Path, *, purpose: str, echo: bool = False,
                  on_running: Callable[[], None] | None = None,
                  scheduler: Scheduler | None = None, max_requeues: int = 3,
                  argv: tuple[str, ...] | None = None, project: Project | None = None
                  ) -> int:
    """Take a prepared run and run it: the background supervisor of `xpm run --detach`
    and a scheduler's job. The first attempt when the run has none; else (a scheduler
    requeued the job) a requeue. Fails, naming the holder, when the run is in use.
    `project`: the run's project when the caller has it loaded already."""
    lock = RunLock(run_dir)
    record = read_record(run_dir)
    lock.acquire(record.id, purpose=purpose)
    try:
        record = read_record(run_dir)  # as it is now that we hold it
        if project is None or Path(record.cwd) != project.root:
            project = run_project(record, None)
    except BaseException:
        lock.release()
        raise
    if not record.attempts:
        return start(project, run_dir, record, lock, argv=argv, echo=echo,
                     on_running=on_running, scheduler=scheduler)
    if scheduler is None:
        lock.release()
        raise XpmError(f"run {record.id} has started before; `xpm resume {record.id}` "
                       "continues it")
    return requeue(project, run_dir, record, lock, scheduler=scheduler,
                   max_requeues=max_requeues, argv=argv, echo=echo, on_running=on_running)


# ------------------------------------------------------------------ decisions

def run_project(record: RunRecord, current: Project | None) -> Project:
    """The project the run was made in (its recorded root), when that folder is still one;
    else the current project. The command reruns there, with that project's settings."""
    recorded = Path(record.cwd) if record.cwd else None
    if recorded is not None and recorded.is_dir() and (current is None
                                                        or recorded != current.root):
        return load_project(recorded)
    return current if current is not None else load_project()


def handed_over(run_dir: Path, record: RunRecord, project: Project) -> str | None:
    """The checkpoint a resumed attempt gets: the newest one matching the run's recorded
    checkpoint patterns (the project's today, for a record that has none)."""
    from ..runs import checkpoints  # only a resume or a requeue hands one over

    patterns = record.checkpoint_patterns or project.settings.checkpoints
    newest = checkpoints.newest(run_dir, patterns)
    return str(newest.path) if newest else None


def _resumable(run_dir: Path, record: RunRecord, force: bool) -> RunRecord:
    """The record to resume from, the lock held; XpmError when it must not be resumed."""
    if record.status == RUNNING:
        last = record.last_attempt
        if not lost_while_held(run_dir, record) and last is not None and not force:
            raise XpmError(f"run `{record.id}` is running on another host: pid {last.pid} "
                           f"on {last.host} (heartbeat at {_last_beat(run_dir, record)}); if "
                           "that host is gone, use --force (or wait until the heartbeat is "
                           "three intervals old)")
        return record  # we hold the lock: its supervisor is gone (execute marks it lost)
    if record.status == COMPLETED and not force:
        raise XpmError(f"run `{record.id}` completed; resuming it reruns the command "
                       "(use --force to do so anyway)")
    if record.status == QUEUED and not force:
        raise XpmError(f"run `{record.id}` is queued and has not started yet; wait for "
                       "it, or use --force to start it here")
    for name in (OUTPUT_FILE, METRICS_FILE):  # appended to by the new attempt
        kind = irregular(run_dir / name)
        if kind:
            raise XpmError(f"run `{record.id}` cannot be resumed: its {name} is {kind}, not "
                           f"a file; move it out of {run_dir} and resume again")
    return record


def _last_beat(run_dir: Path, record: RunRecord) -> str:
    beat = heartbeat.last_alive(run_dir, record)
    return times.iso(beat) if beat is not None else "unknown"


# ------------------------------------------------------------------ one attempt

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
    argv: tuple[str, ...] | None = None,
    scheduler: Scheduler | None = None,
) -> int:
    """Run the command once as a new attempt; the lock must be held and is released at
    the end. `argv` is the command to run when it is not the record's (the record keeps
    it with secrets masked).

    Returns xpm's exit code: the command's code, 128+N for death by signal N.
    """
    number = len(record.attempts) + 1
    values: dict[str, str | None] = {
        "run_dir": str(run_dir), "config": str(run_dir / CONFIG_FILE),
        "seed": str(record.seed), "checkpoint": checkpoint,
    }
    try:
        if argv is None and is_masked(record.command):
            raise _masked_command(record)
        real = expand(argv if argv is not None else record.command, values)
        if scheduler is not None:
            real = [*scheduler.launcher, *real]
    except XpmError:
        lock.release()
        raise
    shown = mask_argv(real)  # what the record and messages show
    started = times.now_iso()
    attempt = Attempt(number=number, kind=kind, started=started, host=hostname(),
                      pid=os.getpid(), command=shown, checkpoint=checkpoint,
                      slurm_job_id=scheduler.job_id if scheduler is not None else None,
                      **(scheduler.fields if scheduler is not None else {}))
    command = record.command

    def begin(current: RunRecord) -> RunRecord:
        if current.status == RUNNING:  # we hold the lock: the attempt it names is gone
            current = mark_lost(run_dir, current)
        return replace(current, status=RUNNING, command=command,
                       started=current.started or started, ended=None, exit_code=None,
                       signal=None, heartbeat=started).with_attempt(attempt)

    failing = [False]  # the last heartbeat could not be written: said once, not each time

    def beat() -> None:
        try:
            heartbeat.beat(run_dir, number)
        except OSError as exc:
            if not failing[0]:
                console.warn(f"cannot write the heartbeat of {record.id} ({exc.strerror}); "
                             "xpm keeps trying and says when it works again")
            failing[0] = True
            return
        if failing[0]:
            console.info(f"the heartbeat of {record.id} is written again")
            failing[0] = False

    outcome: Outcome | None = None
    probe: BackgroundProbe | None = None
    end = Ending(FAILED, FAILED, 1, None, "xpm stopped before the command ended")
    began = False
    trees = contextlib.ExitStack()  # an exact run's rebuilt code, removed at the end
    try:
        record = update_record(run_dir, begin)
        began = True
        if number > 1:
            _separate(run_dir / OUTPUT_FILE, attempt)
        console.info(f"{'resuming' if number > 1 else 'run'} {record.id} "
                     f"in {console.path(run_dir)}"
                     + (f" (attempt {number}, {kind})" if number > 1 else ""))
        stops = INTERRUPTS if scheduler is None else (*INTERRUPTS, scheduler.signal)
        cwd = project.root
        if record.exact:
            from .exact import exact_tree

            cwd = trees.enter_context(exact_tree(record, run_dir, project.root))
        env = child_environment(run_dir, record, number, checkpoint)
        probe = BackgroundProbe(run_dir, env, cwd)

        def command_started() -> None:
            probe.start()  # the command's Python, asked while the command runs
            if on_running is not None:
                on_running()

        supervisor = Supervisor(
            argv=real, cwd=cwd, env=env,
            log_path=run_dir / OUTPUT_FILE, echo=echo,
            use_pty=echo and console.stdout_is_terminal(),
            grace_period=(record.grace_period if record.grace_period is not None
                          else project.settings.grace_period),
            tick=beat, tick_interval=record.heartbeat_interval,
            on_started=lambda _pid: command_started(), stop_signals=stops,
            waits={scheduler.signal: scheduler.wait} if scheduler and scheduler.wait else None,
        )
        try:
            outcome = supervisor.run()
        except CommandNotFound as exc:
            end = Ending(FAILED, FAILED, exc.exit_code, None, str(exc))
            console.error(str(exc))
        else:
            end = ending(outcome)
            if (scheduler is not None and scheduler.judge is not None
                    and outcome.forwarded != scheduler.signal):
                end = scheduler.judge(outcome) or end
    except XpmError as exc:  # an exact run's code could not be rebuilt
        end = Ending(FAILED, FAILED, 1, None, str(exc))
        console.error(str(exc))
    except KeyboardInterrupt as exc:
        got = signal.Signals(exc.signum if isinstance(exc, Terminated) else signal.SIGINT)
        end = Ending(INTERRUPTED, INTERRUPTED, 128 + got.value, None,
                     f"xpm received {got.name} before the command started")
    finally:
        # Nothing may interrupt the final record: signals wait until it is written (a
        # scheduler that requeues the job sends SIGTERM soon after the requeue).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPPING)
        try:
            if (outcome is not None and scheduler is not None
                    and outcome.forwarded == scheduler.signal):
                end = ending(outcome, scheduler, _ask_requeue(scheduler))
            version = probe.finish() if probe is not None else None
            if began:
                record = _finish(run_dir, record, number, end, version)
        finally:
            try:
                trees.close()
            finally:
                lock.release()
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    detail = "" if end.reason == f"exit {end.exit_code}" else f": {end.reason}"
    console.info(f"{record.id} {end.attempt_status} after "
                 f"{times.format_duration(record.duration)} (exit {end.exit_code}{detail})")
    return end.exit_code


def _metrics_tally(run_dir: Path, record: RunRecord) -> MetricsTally | None:
    """The last value of every metric, kept in the ended run's record so that a listing
    without its cache need not read metrics.jsonl (runs.metrics.recorded); the one kept
    by an earlier attempt is extended. Nothing without a metrics file (nothing imported:
    `xpm run`'s overhead)."""
    if not (run_dir / METRICS_FILE).exists():
        return None
    from ..runs.metrics import recorded

    try:
        return recorded(run_dir, record.attempts, record.metrics_tally)
    except OSError:
        return None


def _ask_requeue(scheduler: Scheduler) -> str | None:
    try:
        return scheduler.requeue()
    except Exception as exc:  # a requeue that fails must not lose the final record
        return f"{exc.__class__.__name__}: {exc}"


def _finish(run_dir: Path, record: RunRecord, number: int, end: Ending,
            python: str | None = None) -> RunRecord:
    """Write the attempt's and the run's final status (a read-modify-write: fields others
    wrote meanwhile stay); a failure to write (a full disk) is said, not raised."""
    ended = times.now_iso()
    # Read before the record's lock is taken (a large file takes a while).
    counted = _metrics_tally(run_dir, record) if end.run_status != QUEUED else None

    def finish(current: RunRecord) -> RunRecord:
        attempt = next((a for a in current.attempts if a.number == number), None)
        if attempt is None:  # someone rewrote the record without our attempt
            attempt = record.attempts[-1]
        attempt = replace(attempt, ended=ended, status=end.attempt_status,
                          exit_code=end.exit_code, signal=end.signal, reason=end.reason)
        updated = current.with_attempt(attempt)
        if python and not updated.python:  # the command's Python, asked while it ran
            updated = replace(updated, python=python)
        if end.run_status == QUEUED:  # requeued: the run goes on in a new job
            return replace(updated, status=QUEUED, ended=None, exit_code=None, signal=None,
                           duration=updated.attempts_duration(), heartbeat=ended)
        return replace(updated, status=end.run_status, ended=ended, exit_code=end.exit_code,
                       signal=end.signal, duration=updated.attempts_duration(),
                       heartbeat=ended, metrics_tally=counted)

    try:
        return update_record(run_dir, finish)
    except (OSError, XpmError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        console.error(f"cannot write the final record of {record.id} to {run_dir} "
                      f"({why}); it will read `lost` — free some space, then "
                      f"`xpm resume {record.id}` if it should go on")
        return finish(record)

