"""Run folders written with the real record module, for tests that need many runs or
exact times and statuses (behaviour that depends on how a run ran uses real `xpm run`)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from xpm import times
from xpm.machine import hostname
from xpm.runs.record import METRICS_FILE, OUTPUT_FILE, Attempt, GitState, RunRecord, write_record
from xpm.runs.tree import allocate


def write_run(
    project: Path,
    name: str,
    *,
    status: str = "completed",
    config: dict[str, Any] | None = None,
    started: datetime | None = None,
    duration: float = 10.0,
    tags: tuple[str, ...] = (),
    note: str | None = None,
    metrics: list[dict[str, Any]] | None = None,
    output: bytes | None = None,
    host: str | None = None,
    pid: int = 1,
    heartbeat: datetime | None = None,
    git: GitState | None = None,
) -> Path:
    """A run folder results/NAME/N as `xpm run` leaves it, with these values."""
    ref = allocate(project / "results", name)
    start = started or times.now() - timedelta(hours=1)
    final = status not in ("running", "queued")
    end = start + timedelta(seconds=duration) if final else None
    host = host or hostname()
    attempt = Attempt(
        number=1, kind="start", started=times.iso(start), host=host, pid=pid,
        command=("python", "train.py"), ended=times.iso(end) if end else None,
        status=status if final else None, exit_code=(0 if status == "completed" else 1)
        if final else None,
    )
    record = RunRecord(
        name=ref.name, number=ref.number, status=status, command=("python", "train.py"),
        cwd=str(project), created=times.iso(start - timedelta(seconds=1)), seed=7,
        config={**(config or {}), "seed": 7}, host=host, user="tester", platform="Linux",
        python="3.11", python_executable="python", xpm_version="0",
        started=None if status == "queued" else times.iso(start),
        ended=times.iso(end) if end else None, duration=duration if final else None,
        exit_code=attempt.exit_code, tags=tags, note=note,
        attempts=() if status == "queued" else (attempt,), git=git,
        heartbeat=times.iso(heartbeat or start),
        slurm={"job_id": "1"} if status == "queued" else None,  # queued: a job waiting
    )
    write_record(ref.path, record)
    if metrics is not None:
        (ref.path / METRICS_FILE).write_text("".join(json.dumps(m) + "\n" for m in metrics))
    if output is not None:
        (ref.path / OUTPUT_FILE).write_bytes(output)
    return ref.path


# run.json fields of the wrong type, and the field each problem names.
WRONG_FIELDS = [
    ({"config": [1]}, "config"),
    ({"git": "x"}, "git"),
    ({"git": {"commit": 5, "branch": "main", "dirty": False}}, "git.commit"),
    ({"git": {"commit": "abc", "branch": "main", "dirty": "yes"}}, "git.dirty"),
    ({"started": 5}, "started"),
    ({"started": "garbage"}, "started"),
    ({"started": "2024-05-01T10:00:00"}, "started"),  # no timezone
    ({"ended": ["2024"]}, "ended"),
    ({"created": None}, "created"),
    ({"duration": "x"}, "duration"),
    ({"exit_code": "0"}, "exit_code"),
    ({"seed": 1.5}, "seed"),
    ({"tags": "abc"}, "tags"),
    ({"tags": [1]}, "tags"),
    ({"note": 5}, "note"),
    ({"host": ["a"]}, "host"),
    ({"command": "python train.py"}, "command"),
    ({"attempts": [5]}, "attempts[0]"),
    ({"attempts": [{"number": 1, "kind": "start", "pid": 1}]}, "attempts[0].started"),
    ({"heartbeat": 5}, "heartbeat"),
    ({"status": "running", "heartbeat": "soon"}, "heartbeat"),  # what liveness reads
    ({"duration": float("nan")}, "duration"),
]


def write_wrong(project: Path, name: str, fields: dict[str, Any]) -> Path:
    """A run folder whose run.json is valid JSON with some fields replaced."""
    run_dir = write_run(project, name)
    data = json.loads((run_dir / "run.json").read_text())
    data.update(fields)
    (run_dir / "run.json").write_text(json.dumps(data))
    return run_dir
