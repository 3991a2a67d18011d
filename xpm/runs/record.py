"""The run record, `run.json`: typed, versioned, written atomically.

On disk it is JSON (see docs/run-folder.md for every field); in memory a frozen dataclass.
SCHEMA_VERSION history:
  1  first version.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import XpmError
from .regular import describe, read_regular

SCHEMA_VERSION = 1
RECORD_FILE = "run.json"
CONFIG_FILE = "config.yaml"
ENVIRONMENT_FILE = "environment.json"
OUTPUT_FILE = "output.log"
METRICS_FILE = "metrics.jsonl"
PATCH_FILE = "git.patch"
CONFIGS_DIR = "configs"
CHECKPOINTS_DIR = "checkpoints"
LOCK_FILE = ".lock"

QUEUED = "queued"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
INTERRUPTED = "interrupted"
KILLED = "killed"
LOST = "lost"
STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, INTERRUPTED, KILLED, LOST)
ACTIVE = (QUEUED, RUNNING)


class CorruptRecord(XpmError):
    """run.json is missing, unreadable or not a run record."""


@dataclass(frozen=True)
class GitState:
    commit: str | None
    branch: str | None
    dirty: bool
    remote: str | None = None
    patch: str | None = None
    untracked: tuple[str, ...] = ()
    untracked_count: int = 0
    root: str | None = None
    submodules: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GitState:
        return cls(
            commit=data.get("commit"),
            branch=data.get("branch"),
            dirty=bool(data.get("dirty")),
            remote=data.get("remote"),
            patch=data.get("patch"),
            untracked=tuple(data.get("untracked") or ()),
            untracked_count=int(data.get("untracked_count") or 0),
            root=data.get("root"),
            submodules=dict(data.get("submodules") or {}),
        )


@dataclass(frozen=True)
class Attempt:
    """One start of the command: the first run, each resume, each requeue."""

    number: int
    kind: str  # "start", "resume" or "requeue"
    started: str
    host: str
    pid: int
    command: tuple[str, ...]
    ended: str | None = None
    status: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    checkpoint: str | None = None
    slurm_job_id: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attempt:
        return cls(
            number=int(data["number"]),
            kind=str(data.get("kind", "start")),
            started=str(data["started"]),
            host=str(data.get("host", "")),
            pid=int(data.get("pid", 0)),
            command=tuple(data.get("command") or ()),
            ended=data.get("ended"),
            status=data.get("status"),
            exit_code=data.get("exit_code"),
            signal=data.get("signal"),
            reason=data.get("reason"),
            checkpoint=data.get("checkpoint"),
            slurm_job_id=data.get("slurm_job_id"),
        )


@dataclass(frozen=True)
class RunRecord:
    name: str
    number: int
    status: str
    command: tuple[str, ...]
    cwd: str
    created: str
    seed: int
    config: dict[str, Any]
    host: str
    user: str
    platform: str
    python: str
    python_executable: str
    xpm_version: str
    started: str | None = None
    ended: str | None = None
    duration: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    tags: tuple[str, ...] = ()
    note: str | None = None
    config_files: tuple[str, ...] = ()
    checkpoint_patterns: tuple[str, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    git: GitState | None = None
    heartbeat: str | None = None
    heartbeat_interval: float = 30.0
    slurm: dict[str, Any] | None = None
    sweep: str | None = None  # NAME@K, for a trial of a sweep
    trial: int | None = None  # its index in the sweep
    schema_version: int = SCHEMA_VERSION

    @property
    def id(self) -> str:
        return f"{self.name}/{self.number}"

    @property
    def last_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def with_attempt(self, attempt: Attempt) -> RunRecord:
        """Replace the newest attempt (same number) or append a new one."""
        attempts = list(self.attempts)
        if attempts and attempts[-1].number == attempt.number:
            attempts[-1] = attempt
        else:
            attempts.append(attempt)
        return replace(self, attempts=tuple(attempts))

    def attempts_duration(self) -> float:
        """Seconds the command ran, summed over the attempts that have ended."""
        from ..times import seconds_between

        return round(sum(seconds_between(a.started, a.ended)
                         for a in self.attempts if a.ended), 3)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        ordered: dict[str, Any] = {"schema_version": data.pop("schema_version"), "id": self.id}
        ordered.update(data)
        return ordered

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        data = upgrade(data)
        git = data.get("git")
        return cls(
            name=str(data["name"]),
            number=int(data["number"]),
            status=str(data["status"]),
            command=tuple(data.get("command") or ()),
            cwd=str(data.get("cwd", "")),
            created=str(data["created"]),
            seed=int(data.get("seed", 0)),
            config=dict(data.get("config") or {}),
            host=str(data.get("host", "")),
            user=str(data.get("user", "")),
            platform=str(data.get("platform", "")),
            python=str(data.get("python", "")),
            python_executable=str(data.get("python_executable", "")),
            xpm_version=str(data.get("xpm_version", "")),
            started=data.get("started"),
            ended=data.get("ended"),
            duration=data.get("duration"),
            exit_code=data.get("exit_code"),
            signal=data.get("signal"),
            tags=tuple(data.get("tags") or ()),
            note=data.get("note"),
            config_files=tuple(data.get("config_files") or ()),
            checkpoint_patterns=tuple(data.get("checkpoint_patterns") or ()),
            attempts=tuple(Attempt.from_json(a) for a in data.get("attempts") or ()),
            git=GitState.from_json(git) if isinstance(git, dict) else None,
            heartbeat=data.get("heartbeat"),
            heartbeat_interval=float(data.get("heartbeat_interval") or 30.0),
            slurm=data.get("slurm"),
            sweep=data.get("sweep"),
            trial=data.get("trial"),
            schema_version=SCHEMA_VERSION,
        )


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring an older record up to SCHEMA_VERSION (nothing to do yet)."""
    version = data.get("schema_version")
    if not isinstance(version, int) or version < 1:
        raise ValueError("no schema_version")
    if version > SCHEMA_VERSION:
        raise ValueError(f"schema_version {version} is newer than this xpm understands "
                         f"({SCHEMA_VERSION}); upgrade xpm-runs")
    return data


def write_json_atomic(path: Path, data: Any, indent: int | None = 2) -> None:
    """Write JSON to a temporary file in the same folder, then rename it into place; on
    failure (a full disk) nothing is left behind and the old file stays whole."""
    try:
        text = json.dumps(data, indent=indent, ensure_ascii=False)
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from the system (file names, argv)
        text = json.dumps(data, indent=indent, ensure_ascii=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_record(run_dir: Path, record: RunRecord) -> None:
    write_json_atomic(run_dir / RECORD_FILE, record.to_json())


def read_record_data(run_dir: Path | str) -> dict[str, Any]:
    """The raw JSON of run.json, or CorruptRecord naming what is wrong."""
    path = os.path.join(run_dir, RECORD_FILE)  # a str path: listing calls this 100,000 times
    try:
        data = json.loads(read_regular(path))
    except FileNotFoundError:
        raise CorruptRecord(f"`{path}` is missing") from None
    except OSError as exc:
        raise CorruptRecord(f"`{path}` cannot be read ({describe(exc)})") from None
    except ValueError as exc:
        raise CorruptRecord(f"`{path}` is not valid JSON ({exc})") from None
    except RecursionError:
        raise CorruptRecord(f"`{path}` is not a run record (nested too deeply)") from None
    if not isinstance(data, dict):
        raise CorruptRecord(f"`{path}` is not a JSON object")
    return data


def read_environment(run_dir: Path) -> dict[str, Any] | None:
    """environment.json as a dict; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(read_regular(run_dir / ENVIRONMENT_FILE))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def read_record(run_dir: Path) -> RunRecord:
    data = read_record_data(run_dir)
    try:
        return RunRecord.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptRecord(f"`{run_dir / RECORD_FILE}` is not a run record ({exc})") from None
