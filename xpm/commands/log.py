"""`xpm log RUN [-f] [-n LINES]`: print a run's output.log, and follow it while it runs."""

from __future__ import annotations

import os
import time

from .. import console, times
from ..errors import XpmError
from ..project import load_project
from ..runs.catalog import CORRUPT, NEWER, RawEntry, load_raw
from ..runs.logfile import copy_out, size_of, start_of_last_lines
from ..runs.record import ACTIVE, OUTPUT_FILE
from ..runs.tree import RunRef, resolve

POLL = 0.1  # seconds between looks at the log while following
LIVENESS_EVERY = 1.0  # seconds between liveness checks of a running run


def log(run: str, follow: bool, lines: int | None) -> int:
    project = load_project()
    ref = resolve(project.results_dir, run)
    path = ref.path / OUTPUT_FILE
    if os.path.lexists(path) and not path.is_file():
        raise XpmError(f"`{path}` is not a file, so {ref.id}'s output cannot be shown; "
                       "move it away to see the output written from now on")
    offset = start_of_last_lines(path, lines) if lines is not None else 0
    offset = copy_out(path, offset)
    if not follow:
        if size_of(path) is None:
            entry = load_raw(ref)
            console.info(f"{ref.id} has no output yet ({entry.status})")
        return 0
    return _follow(ref, offset)


def _follow(ref: RunRef, offset: int) -> int:
    """Copy what the run writes until it reaches a final status (on any host)."""
    path = ref.path / OUTPUT_FILE
    entry = load_raw(ref)
    checked = time.monotonic()
    while entry.status in ACTIVE:
        time.sleep(POLL)
        offset = copy_out(path, offset)
        due = time.monotonic() - checked >= LIVENESS_EVERY
        # The record is read each time (it is small); the lock only every LIVENESS_EVERY.
        entry = load_raw(ref, live=due)
        if due:
            checked = time.monotonic()
    copy_out(path, offset)
    console.flush()
    _report_end(entry)
    return 0


def _report_end(entry: RawEntry) -> None:
    if entry.status == CORRUPT:
        console.warn(f"{entry.id} is corrupt: {entry.problem}")
        return
    if entry.status == NEWER:
        console.warn(f"{entry.id}: {entry.problem}")
        return
    data = entry.data or {}
    detail = []
    if data.get("exit_code") is not None:
        detail.append(f"exit {data['exit_code']}")
    if data.get("duration") is not None:
        detail.append(f"after {times.format_duration(data['duration'])}")
    tail = f" ({', '.join(detail)})" if detail else ""
    console.info(f"{entry.id} {entry.status}{tail}")

