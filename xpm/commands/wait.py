"""`xpm wait RUN|NAME@K...`: block until runs end, for scripts that chain runs started with
`--detach`. Exit 0 when every run completed, else the exit code of the first one (in the
order given) that did not."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import console
from ..errors import EXIT_ERROR, UsageError, XpmError
from ..project import load_project
from ..runs import sweeps
from ..runs.catalog import CORRUPT, RawEntry, load_raw
from ..runs.record import ACTIVE, COMPLETED
from ..runs.tree import RunRef, resolve

POLL = 0.2  # seconds between looks at the records
LIVENESS_EVERY = 1.0  # seconds between liveness checks (the lock, the heartbeat)


@dataclass
class Awaited:
    """One argument: a run, or a sweep whose trials may not all have runs yet."""

    text: str
    runs: Callable[[], list[RunRef]]  # the runs it stands for, as known now
    pending: Callable[[], str | None]  # why it is not over though its runs are, or None


def wait(targets: tuple[str, ...], quiet: bool = False) -> int:
    if not targets:
        raise UsageError("name the runs to wait for, e.g. `xpm wait mnist/3 mnist@1`")
    results = load_project().results_dir
    awaited = [_awaited(results, text) for text in targets]
    last_live = 0.0
    while True:
        live = time.monotonic() - last_live >= LIVENESS_EVERY
        if live:
            last_live = time.monotonic()
        ends: list[RawEntry] = []
        running = False
        for item in awaited:
            for ref in item.runs():
                entry = load_raw(ref, live=live)
                if entry.status in ACTIVE:
                    running = True
                ends.append(entry)
            if not running and item.pending() is not None:
                running = True
        if not running:
            break
        time.sleep(POLL)
    for item in awaited:  # a sweep whose runner stopped before starting every trial
        why = item.pending()
        if why is not None and why.startswith("stopped"):
            raise XpmError(f"sweep `{item.text}` {why}; `xpm sweep --resume {item.text}` "
                           "runs the rest")
    return _outcome(ends, quiet)


def _outcome(ends: list[RawEntry], quiet: bool) -> int:
    failed = [e for e in ends if e.status != COMPLETED]
    if not quiet:
        done = sum(1 for e in ends if e.status == COMPLETED)
        summary = f"{console.plural(len(ends), 'run')} ended: {done} completed"
        if failed:
            first = failed[0]
            summary += f"; first not completed: {first.id} {first.status}{_code(first)}"
        console.info(summary)
    return exit_code_of(failed[0]) if failed else 0


def exit_code_of(entry: RawEntry) -> int:
    """The code a run that did not complete stands for: its command's exit code, 128+N for
    a signal, else 1 (lost, corrupt, interrupted without a code)."""
    data = entry.data or {}
    code, signum = data.get("exit_code"), data.get("signal")
    if type(code) is int and 0 < code < 256:
        return code
    if type(signum) is int and 0 < signum < 128:
        return 128 + signum
    return EXIT_ERROR


def _code(entry: RawEntry) -> str:
    if entry.status == CORRUPT:
        return f" ({entry.problem})"
    code = exit_code_of(entry)
    return f" (exit {code})"


def _awaited(results: Path, text: str) -> Awaited:
    """The hook for each kind of argument: a run (NAME/N, NAME, NAME/-1, a folder), or a
    sweep (NAME@K), whose trials get their runs as it goes."""
    if sweeps.is_ref(text):
        return _sweep(results, text)
    ref = resolve(results, text)
    return Awaited(text, lambda: [ref], lambda: None)


def _sweep(results: Path, text: str) -> Awaited:
    first = sweeps.resolve(results, text)  # fails now, naming it, when there is no such sweep
    state = {"manifest": first}

    def runs() -> list[RunRef]:
        manifest = sweeps.read(results, first.name, first.number)
        state["manifest"] = manifest
        out = []
        for trial in manifest.trials:
            if trial.run is not None and (results / trial.run).is_dir():
                out.append(resolve(results, trial.run))
        return out

    def pending() -> str | None:
        manifest = state["manifest"]
        missing = [t.index for t in manifest.trials if t.run is None]
        if not missing:
            return None
        if _sweep_is_worked_on(results, manifest):
            return f"has {console.plural(len(missing), 'trial')} still to start"
        return (f"stopped with {console.plural(len(missing), 'trial')} never started "
                f"(trial {missing[0]} first)")

    return Awaited(first.id, runs, pending)


def _sweep_is_worked_on(results: Path, manifest: sweeps.Manifest) -> bool:
    """Whether a process holds the sweep's lock (its runner)."""
    from filelock import FileLock, Timeout

    path = manifest.path(results).with_suffix(".lock")
    if not path.exists():
        return False
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError:
        return False
    lock.release()
    return False
