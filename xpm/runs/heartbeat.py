"""The heartbeat of a running run, in a file of its own beside run.json.

The supervisor rewrites `.heartbeat` (atomically) every heartbeat interval, so that
run.json is written only when something happens. Liveness reads it for a run on another
host (a lock need not reach across hosts on a shared file system); a lost run's end is
its newest sign of life: the heartbeat, the output, the metrics.

    {"time": "2026-12-01T21:14:03.120+00:00", "pid": 4242, "host": "gpu-7", "attempt": 2}
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from .. import times
from ..machine import hostname
from .record import METRICS_FILE, OUTPUT_FILE, RunRecord, write_json_atomic
from .regular import read_regular

HEARTBEAT_FILE = ".heartbeat"


def beat(run_dir: Path, attempt: int) -> None:
    """Say that the run is alive now (raises OSError when the file cannot be written)."""
    write_json_atomic(run_dir / HEARTBEAT_FILE, {
        "time": times.now_iso(), "pid": os.getpid(), "host": hostname(), "attempt": attempt,
    }, indent=None)


def last_beat(run_dir: Path) -> datetime | None:
    """When the heartbeat file last said the run was alive; None without a readable one."""
    try:
        data = json.loads(read_regular(run_dir / HEARTBEAT_FILE))
        return _aware(times.parse_iso(data["time"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def last_alive(run_dir: Path, record: RunRecord) -> datetime | None:
    """The newest heartbeat: the heartbeat file's, or the record's (older xpm versions
    wrote it there; a record written at start carries one too)."""
    moments = [m for m in (last_beat(run_dir), _parsed(record.heartbeat or record.started))
               if m is not None]
    return max(moments) if moments else None


def newest_sign_of_life(run_dir: Path, record: RunRecord) -> str:
    """When a run whose supervisor is gone was last seen alive, as an ISO time: the newest
    of its heartbeat, the last write to output.log and to metrics.jsonl, the start of its
    newest attempt (never later than now)."""
    alive = last_alive(run_dir, record)
    moments = [alive] if alive is not None else []
    last = record.last_attempt
    for name in (OUTPUT_FILE, METRICS_FILE):
        try:
            mtime = os.stat(run_dir / name).st_mtime
        except OSError:
            continue
        moments.append(datetime.fromtimestamp(mtime).astimezone())
    now = times.now()
    if not moments:
        return times.iso(_parsed(record.created) or now)
    newest = min(max(moments), now)
    started = _parsed(last.started) if last is not None else None
    if started is not None and started > newest:  # another host's clock runs ahead
        newest = started
    return times.iso(newest)


def _parsed(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return _aware(times.parse_iso(text))
    except (TypeError, ValueError):
        return None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.astimezone()
