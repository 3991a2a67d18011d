"""The run record, `run.json`: typed, versioned, written atomically.

On disk it is JSON (see docs/run-folder.md for every field); in memory a frozen dataclass.
SCHEMA_VERSION history (each step has an upgrade in `_UPGRADES`; see docs/run-folder.md):
  1  first version.
  2  one declaration (below) for checking, reading, writing and listing; keys this xpm
     does not know survive every rewrite; a newer record is listed as `newer`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import XpmError
from . import schema
from .atomic import write_atomic
from .regular import describe, read_regular

SCHEMA_VERSION = 2
RECORD_FILE = "run.json"
CONFIG_FILE = "config.yaml"
ENVIRONMENT_FILE = "environment.json"
OUTPUT_FILE = "output.log"
METRICS_FILE = "metrics.jsonl"
PATCH_FILE = "git.patch"
UNTRACKED_FILE = "untracked.tar.gz"  # the untracked files' content, when captured
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
CANCELLED = "cancelled"  # a Slurm run stopped by `xpm cancel`
STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, INTERRUPTED, KILLED, LOST, CANCELLED)
REQUEUED = "requeued"  # an attempt's end only: Slurm requeued the job, the run goes on
ACTIVE = (QUEUED, RUNNING)


class CorruptRecord(XpmError):
    """run.json is missing, unreadable or not a run record."""


class NewerRecord(CorruptRecord):
    """run.json was written by a newer xpm (a higher schema_version than this one reads)."""


class NewerSchema(ValueError):
    def __init__(self, version: int) -> None:
        super().__init__(f"written by a newer xpm (schema_version {version}; this xpm reads "
                         f"up to {SCHEMA_VERSION}); upgrade xpm-runs to read it")


# ----------------------------------------------------------------------------------------
# run.json, declared once. Checking a record, reading and writing it, the fields of
# `xpm ls` (--json, --csv, --columns, --where, --sort) and the listing cache's rows are
# all derived from the three dataclasses below (see schema.py for the rules).
#
# To add a field: add ONE line to RunRecord (or GitState, Attempt), with a default
# (records written before it lack it), e.g.
#       queue: str | None = None
# Its annotation is one of str, Time (an ISO 8601 time with a timezone), int, float, bool,
# tuple[str, ...], dict[str, Any], dict[str, str], GitState, tuple[Attempt, ...], each
# optionally `| None`. A field without a default must be in every record (unless its
# metadata says what its absence reads as: {"absent": value}).
# To list it too (`xpm ls --json`, --where, --columns, --csv, the cache), give it
# `field(default=..., metadata=LISTED)`: listed fields appear in `ls --json` in the order
# declared here (RunRecord is keyword-only, so order is free). Then add tests, the field
# to docs/run-folder.md and a CHANGELOG line. If a record written before the field needs
# another value than the default, say how in the newest upgrade step (`_UPGRADES`).
# A field whose meaning or type changes needs a new SCHEMA_VERSION and an upgrade step.
# ----------------------------------------------------------------------------------------

Time = str  # an ISO 8601 time with a timezone (checked as such when read)
LISTED: dict[str, Any] = {"listed": True}  # a field of `xpm ls` (see above)
COUNTED: dict[str, Any] = {"listed": "count"}  # listed as the number of its items


@dataclass(frozen=True)
class GitState:
    commit: str | None = field(default=None, metadata=LISTED)
    branch: str | None = field(default=None, metadata=LISTED)
    dirty: bool = field(default=False, metadata=LISTED)
    remote: str | None = None
    patch: str | None = None
    untracked: tuple[str, ...] = ()
    untracked_count: int = 0
    root: str | None = None
    submodules: dict[str, str] = field(default_factory=dict)
    untracked_archive: str | None = None  # untracked.tar.gz, when their content was kept
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GitState:
        return _from_json(cls, data)  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        return schema.dump(self)


@dataclass(frozen=True)
class Attempt:
    """One start of the command: the first run, each resume, each requeue."""

    number: int
    kind: str = field(metadata={"absent": "start"})  # "start", "resume" or "requeue"
    started: Time
    host: str = field(metadata={"absent": ""})
    pid: int = field(metadata={"absent": 0})
    command: tuple[str, ...] = field(metadata={"absent": ()})
    ended: Time | None = None
    status: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    checkpoint: str | None = None
    slurm_job_id: str | None = None  # JOB, or ARRAYJOB_TASK for a job array's task
    slurm_array_task: int | None = None
    slurm_restart_count: int | None = None  # SLURM_RESTART_COUNT: the job's requeues so far
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attempt:
        return _from_json(cls, data)  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        return schema.dump(self)


@dataclass(frozen=True)
class MetricsTally:
    """The last value of every metric in metrics.jsonl when the run ended, and the file
    they were read from (its inode, size and modification time, the superseding of the
    attempts, the last bytes read): a listing with no cache takes them instead of reading
    the file while it is unchanged (runs.metrics.Tally)."""

    inode: int = 0
    size: int = 0  # bytes of complete lines read
    mtime_ns: int = 0  # 0: the file changed while it was read (never taken as is)
    lines: int = 0
    attempts: str = ""
    seal: str = ""
    last: dict[str, Any] = field(default_factory=dict)  # as a metrics line: non-finite marked
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MetricsTally:
        return _from_json(cls, data)  # type: ignore[no-any-return]

    def to_json(self) -> dict[str, Any]:
        return schema.dump(self)


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    DERIVED_KEYS = ("schema_version", "id")  # keys of run.json that are no field

    name: str
    number: int
    status: str
    created: Time = field(metadata=LISTED)
    started: Time | None = field(default=None, metadata=LISTED)
    ended: Time | None = field(default=None, metadata=LISTED)
    duration: float | None = field(default=None, metadata=LISTED)
    exit_code: int | None = field(default=None, metadata=LISTED)
    signal: int | None = field(default=None, metadata=LISTED)
    attempts: tuple[Attempt, ...] = field(default=(), metadata=COUNTED)
    tags: tuple[str, ...] = field(default=(), metadata=LISTED)
    note: str | None = field(default=None, metadata=LISTED)
    sweep: str | None = field(default=None, metadata=LISTED)  # NAME@K, for a sweep's trial
    trial: int | None = field(default=None, metadata=LISTED)  # its index in the sweep
    seed: int = field(default=0, metadata=LISTED)
    host: str = field(default="", metadata=LISTED)
    user: str = field(default="", metadata=LISTED)
    rerun_of: str | None = field(default=None, metadata=LISTED)  # NAME/N this run reran
    git: GitState | None = field(default=None, metadata=LISTED)
    config: dict[str, Any] = field(default_factory=dict, metadata=LISTED)
    command: tuple[str, ...] = ()
    cwd: str = ""
    platform: str = ""
    python: str = ""
    python_executable: str = ""
    xpm_version: str = ""
    config_files: tuple[str, ...] = ()
    checkpoint_patterns: tuple[str, ...] = ()
    heartbeat: Time | None = None
    heartbeat_interval: float = 30.0
    slurm: dict[str, Any] | None = None
    exact: bool = False  # run in a tree rebuilt from its recorded code (xpm rerun --exact)
    worktree: str | None = None  # the exact tree kept for the run (--keep-worktree)
    # What a rerun needs, as it was given (docs/run-folder.md, "What a rerun needs"):
    assignments: tuple[str, ...] = ()  # each `-s KEY=VALUE`, as typed, in order
    config_sources: tuple[str, ...] = ()  # each config file given, relative to the project
    launch: dict[str, Any] = field(default_factory=dict)  # name, tags, note, detach, ...
    # The settings that decide resume and supervision, frozen when the run was made (with
    # checkpoint_patterns and heartbeat_interval):
    grace_period: float | None = None  # seconds from a forwarded signal to SIGKILL
    env_patterns: tuple[str, ...] = ()  # xpm.yaml's `env:`: more variables recorded
    reason: str | None = None  # why the run has its status, when no attempt says it
    metrics_tally: MetricsTally | None = None  # metrics.jsonl's last values at the end
    # Keys this xpm does not know, kept as read and written back (never set by hand).
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.name}/{self.number}"

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION

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
        """run.json's content: schema_version and id first, then the fields as declared,
        then the keys kept from the record read (unknown to this xpm)."""
        ordered: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "id": self.id}
        ordered.update(schema.dump(self))
        return ordered

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """The record of run.json's content, upgraded; ValueError naming what is wrong
        (NewerSchema when a newer xpm wrote it)."""
        return _from_json(cls, check(data))  # type: ignore[no-any-return]


def _from_json(cls: Any, data: dict[str, Any]) -> Any:
    found = schema.problem(data, cls)
    if found is not None:
        raise ValueError(found)
    return schema.build(cls, data)


# ------------------------------------------------------------------------- upgrades
#
# Each step takes a record of version N (a dict, changed in place) to version N + 1.

def _from_1(data: dict[str, Any]) -> None:
    """1 → 2: nothing renamed or retyped. Version 2 records are written from the one
    declaration above, keep the keys they do not know, and may carry fields added since
    (each reads as its default in a version-1 record); `heartbeat_interval`, written by
    every version-1 xpm, is made explicit for hand-made records that lack it."""
    data.setdefault("heartbeat_interval", 30.0)


_UPGRADES: dict[int, Callable[[dict[str, Any]], None]] = {1: _from_1}


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a record up to SCHEMA_VERSION, in place; ValueError when it has no usable
    schema_version, NewerSchema when it is newer than this xpm."""
    version = data.get("schema_version")
    if type(version) is not int or version < 1:
        raise ValueError("no schema_version")
    if version > SCHEMA_VERSION:
        raise NewerSchema(version)
    while version < SCHEMA_VERSION:
        _UPGRADES[version](data)
        version += 1
        data["schema_version"] = version
    return data


def check(data: dict[str, Any]) -> dict[str, Any]:
    """The record upgraded and checked (every field of the type declared, a known status);
    ValueError naming the first thing wrong."""
    upgrade(data)
    status = data.get("status")
    if status not in STATUSES:
        raise ValueError(f"status {status!r}")
    found = schema.problem(data, RunRecord)
    if found is not None:
        raise ValueError(found)
    return data


def listed_fields() -> list[tuple[str, Any]]:
    """The listed fields of RunRecord, in order: (key, spec)."""
    return [(s.key, s) for s in schema.schema_of(RunRecord).specs if s.metadata.get("listed")]


def write_json_atomic(path: Path, data: Any, indent: int | None = 2,
                      durable: bool = False) -> None:
    """Write JSON in one step (atomic.write_atomic: never a partial file, no temporary
    file left on failure); `durable` (records) syncs it to the disk too."""
    try:
        text = json.dumps(data, indent=indent, ensure_ascii=False)
        content = (text + "\n").encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes from the system (file names, argv)
        content = (json.dumps(data, indent=indent, ensure_ascii=True) + "\n").encode()
    write_atomic(path, content, durable)


def write_record_data(run_dir: Path, data: dict[str, Any]) -> None:
    """Write run.json's content: atomically, and synced to the disk (file and folder)."""
    write_json_atomic(run_dir / RECORD_FILE, data, durable=True)


def write_record(run_dir: Path, record: RunRecord) -> None:
    write_record_data(run_dir, record.to_json())


def read_record_data(run_dir: Path | str, fast: bool = False) -> dict[str, Any]:
    """The raw JSON of run.json, or CorruptRecord naming what is wrong. `fast` (listing
    many records) parses with orjson, 3 times faster than json but 5 ms to import, which
    `xpm run` does not pay."""
    path = os.path.join(run_dir, RECORD_FILE)  # a str path: listing calls this 100,000 times
    try:
        content = read_regular(path)
        data = fast_loads(content) if fast else json.loads(content)
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


# orjson (3.8) has no nesting limit and overflows the stack on a damaged file nested
# 100,000 deep; a text with fewer openers than this cannot be nested deeper than it.
_FAST_OPENERS = 512


def fast_loads(content: bytes) -> Any:
    """JSON parsed by orjson where that is safe, else by json (NaN, which orjson refuses;
    deep nesting, which json reports as RecursionError)."""
    if content.count(b"{") + content.count(b"[") > _FAST_OPENERS:
        return json.loads(content)
    import orjson

    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:  # NaN in a config, or not JSON: json says which
        return json.loads(content)


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
    except NewerSchema as exc:
        raise NewerRecord(f"`{run_dir / RECORD_FILE}` was {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptRecord(f"`{run_dir / RECORD_FILE}` is not a run record ({exc})") from None
