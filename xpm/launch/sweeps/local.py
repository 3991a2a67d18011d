"""Running a sweep's trials on this machine, N at once.

Each trial is an ordinary run supervised as `xpm run` supervises one: the sweep makes
its folder, then starts `xpm _supervise RUN_DIR` (or `xpm resume RUN_DIR` for a trial to
continue) in a session of its own, its output going to the run's output.log only. The
sweep waits on the children's pidfds, so that the next trial starts as soon as one ends.
Ctrl-C (or SIGTERM, SIGHUP) is forwarded once to each running trial's supervisor, which
stops its command and records the run `interrupted`; trials not started stay unstarted.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ... import console, times
from ...errors import Terminated, stop_on_termination
from ...machine import hostname
from ...project import Project
from ...runs import sweeps
from ...runs.record import (
    COMPLETED,
    CorruptRecord,
    RunRecord,
    read_record,
)
from ...runs.sweeps import Manifest
from .. import lifecycle
from .remaining import START, Step
from .template import RunTemplate


@dataclass
class _Child:
    step: Step
    run_id: str
    run_dir: Path
    pid: int
    wait: Callable[[], int]  # reaps it; its exit code
    pidfd: int


@dataclass
class Tally:
    total: int
    completed: int = 0
    failed: int = 0  # ended any other way
    running: int = 0

    @property
    def left(self) -> int:
        return self.total - self.completed - self.failed - self.running

    def line(self, sweep: str) -> str:
        return (f"{sweep}: {self.completed} done, {self.running} running, "
                f"{self.failed} failed, {self.left} left")


class LocalSweep:
    def __init__(self, results_dir: Path, manifest: Manifest, template: RunTemplate,
                 steps: list[Step], jobs: int, echo: bool = True) -> None:
        self.results_dir = results_dir
        self.manifest = manifest
        self.template = template
        self.pending = deque(steps)
        self.jobs = jobs
        self.echo = echo
        self.children: dict[int, _Child] = {}
        self.selector = selectors.DefaultSelector()
        self.tally = Tally(len(steps))
        self.stopped_by: int | None = None
        self.outcomes: dict[int, str] = {}  # trial index → final status

    # the manifest ---------------------------------------------------------------------
    def _save(self) -> None:
        sweeps.write(self.results_dir, self.manifest)

    # starting -------------------------------------------------------------------------
    def _spawn(self, step: Step) -> None:
        trial = self.manifest.trials[step.trial]
        if step.action == START and (trial.run is None
                                     or not (self.results_dir / trial.run).is_dir()):
            ref, _record, lock = self.template.make(trial, self.manifest.id)
            try:
                self.manifest = self.manifest.with_run(trial.index, ref.id)
                self._save()
            finally:
                lock.release()
            run_id, run_dir = ref.id, ref.path
        else:
            assert trial.run is not None
            run_id, run_dir = trial.run, self.results_dir / trial.run
        if step.action == START:
            pid = self._fork_supervisor(run_dir)

            def wait() -> int:
                return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        else:
            with open(os.devnull, "r+b") as null:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "xpm", "resume", str(run_dir)],
                    cwd=self.template.plan.project.root, stdin=null, stdout=null,
                    stderr=null, start_new_session=True,
                )
            pid, wait = proc.pid, proc.wait
        pidfd = os.pidfd_open(pid)
        self.children[pidfd] = _Child(step, run_id, run_dir, pid, wait, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ)
        self.tally.running += 1

    def _fork_supervisor(self, run_dir: Path) -> int:
        """Supervise the prepared run in a forked copy of this process, in a session of its
        own with its messages going nowhere (`xpm _supervise` without starting Python
        again: the same life cycle, minus ~60 ms of start-up per trial)."""
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:  # nothing here may return into the sweep's code
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            self.selector.close()
            for fd in self.children:
                os.close(fd)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            stop_on_termination()
            code = supervise_prepared(self.template.plan.project, run_dir,
                                      self.template.plan.command)
        except BaseException:  # the life cycle recorded it, if it started
            pass
        finally:
            os._exit(code)

    # ending ---------------------------------------------------------------------------
    def _reap(self, pidfd: int) -> None:
        child = self.children.pop(pidfd)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        code = child.wait()
        self.tally.running -= 1
        record = _read(child.run_dir)
        status = record.status if record is not None else "corrupt"
        self.outcomes[child.step.trial] = status
        if status == COMPLETED:
            self.tally.completed += 1
        else:
            self.tally.failed += 1
        if self.echo:
            console.clear_live()
            console.info(_finished_line(self.manifest, child.step.trial, child.run_id, record,
                                        status, code))

    def _forward(self, signum: int) -> None:
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    # the loop -------------------------------------------------------------------------
    def run(self) -> None:
        """Start and wait for the trials until none is left, or until interrupted (then
        `stopped_by` holds the signal); never raises KeyboardInterrupt."""
        try:
            while self.pending or self.children:
                while self.pending and len(self.children) < self.jobs \
                        and self.stopped_by is None:
                    self._spawn(self.pending.popleft())
                self._show()
                for key, _ in self.selector.select(timeout=1.0):
                    self._reap(int(key.fd))
        except KeyboardInterrupt as exc:
            self._interrupted(exc)
        finally:
            if self.echo:
                console.clear_live()

    def _interrupted(self, exc: KeyboardInterrupt) -> None:
        signum = exc.signum if isinstance(exc, Terminated) else signal.SIGINT.value
        self.stopped_by = signum
        self._forward(signum)
        while self.children:
            try:
                self._show()
                for key, _ in self.selector.select(timeout=1.0):
                    self._reap(int(key.fd))
            except KeyboardInterrupt:  # asked again: ask the trials again
                self._forward(signum)

    def _show(self) -> None:
        if self.echo:
            console.live(self.tally.line(self.manifest.id))


def supervise_prepared(project: Project, run_dir: Path, command: tuple[str, ...]) -> int:
    """Run a prepared (`queued`) run's command under supervision, as `xpm _supervise`;
    `command` as given (the record holds it with secrets masked)."""
    return lifecycle.take_prepared(run_dir, purpose="xpm sweep", echo=False, argv=command,
                                   project=project)


def _read(run_dir: Path) -> RunRecord | None:
    try:
        return read_record(run_dir)
    except CorruptRecord:
        return None


def _finished_line(manifest: Manifest, index: int, run_id: str, record: RunRecord | None,
                   status: str, code: int) -> str:
    trial = manifest.trials[index]
    values = " ".join(f"{k}={_short(v)}" for k, v in trial.overrides.items())
    if record is None:
        return f"trial {index}  {run_id}  {status} (exit {code})  {values}"
    duration = times.format_duration(record.duration)
    last = record.last_attempt
    reason = ""
    if status != COMPLETED and last is not None and last.reason:
        reason = f" ({last.reason})"
    return f"trial {index}  {run_id}  {status} after {duration}{reason}  {values}".rstrip()


def _short(value: object) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:39] + "…"


def take(results_dir: Path, manifest: Manifest) -> tuple[Manifest, Callable[[], None]]:
    """Hold the sweep's lock and record who runs it; returns the manifest and a release."""
    lock = sweeps.SweepLock(results_dir, manifest)
    lock.acquire()
    current = sweeps.read(results_dir, manifest.name, manifest.number)
    current = replace(current, runner={"pid": os.getpid(), "host": hostname(),
                                       "since": times.now_iso()})
    sweeps.write(results_dir, current)

    def release() -> None:
        try:
            latest = sweeps.read(results_dir, manifest.name, manifest.number)
            sweeps.write(results_dir, replace(latest, runner=None))
        finally:
            lock.release()

    return current, release

