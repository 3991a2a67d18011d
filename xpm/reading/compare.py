"""What differs between runs: their records, environments and metrics compared field by
field, in sections (config, run, git, packages, environment, metrics, outcome).

`read_side` reads one run folder (run.json, environment.json, metrics.jsonl, git.patch);
`compare` is pure: sides (and what the repository knows of their commits) in, a
`Difference` out. Comparisons with more than two runs are made against the first one.

What differs by nature between any two runs (ids, start and end times, durations, pids,
heartbeats, scheduler job ids) is kept in its section but marked `by_nature`: shown only
on request and never a difference, so that two runs of the same command, config, seed and
code read as identical.
"""

from __future__ import annotations

import math
import operator
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config import flatten
from ..errors import XpmError
from ..runs.metrics import (
    MIN,
    NUMBER_TYPES,
    MetricSummary,
    Reader,
    add_column,
    columns,
    direction,
)
from ..runs.record import RunRecord, read_environment
from ..runs.regular import read_regular
from ..runs.tree import RunRef

if TYPE_CHECKING:
    from ..vcs.state import CommitFacts
    from ..vcs.trees import CodeDiff

SECTIONS = ("config", "run", "git", "packages", "environment", "metrics", "outcome")
DEFAULT_TOLERANCE = 1e-6

# Recorded variables whose values change from one job to the next by nature.
NATURE_VARIABLES = frozenset({
    "SLURM_JOB_ID", "SLURM_JOBID", "SLURM_ARRAY_JOB_ID", "SLURM_JOB_START_TIME",
    "SLURM_JOB_END_TIME", "SLURM_TASK_PID", "SLURM_STEP_ID", "SLURM_STEPID",
    "SLURM_SUBMIT_TIME", "SLURM_JOB_UID",
})
NATURE_SLURM_KEYS = ("job_id", "jobid", "_time", "pid")


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()  # a field a run does not have (not the same as a null value)


class PatchSummary(NamedTuple):
    """What a run's git.patch changes; equal summaries mean equal patches (same bytes)."""

    files: int
    insertions: int
    deletions: int
    content: bytes

    def to_json(self) -> dict[str, Any]:
        import hashlib  # here, not at the top: it costs more to import than a diff takes

        return {"files": self.files, "insertions": self.insertions,
                "deletions": self.deletions, "bytes": len(self.content),
                "sha256": hashlib.sha256(self.content).hexdigest()}


class Side(NamedTuple):
    """One run as read from its folder."""

    id: str
    path: Path
    record: RunRecord
    environment: dict[str, Any] | None  # None when environment.json is missing or unreadable
    metrics: Metrics | None = None  # None: no metrics
    patch: PatchSummary | None = None
    patch_missing: bool = False  # run.json names a git.patch the folder no longer holds
    metrics_problem: str | None = None  # bad lines in metrics.jsonl, said once


class Field(NamedTuple):
    key: str
    values: tuple[Any, ...]  # one per run; None where absent (see `present`)
    present: tuple[bool, ...]
    differs: bool
    by_nature: bool
    detail: dict[str, Any]  # facts of the field: commits apart, a metric's goal...

    @property
    def counts(self) -> bool:
        """Whether this field makes the runs differ."""
        return self.differs and not self.by_nature

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "values": [jsonable(v) for v in self.values],
                "present": list(self.present), "differs": self.differs,
                "by_nature": self.by_nature, **jsonable(self.detail)}


class Section(NamedTuple):
    name: str
    fields: tuple[Field, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def differs(self) -> bool:
        return any(f.counts for f in self.fields)

    def shown(self, everything: bool) -> tuple[Field, ...]:
        return self.fields if everything else tuple(f for f in self.fields if f.counts)

    def hidden_by_nature(self) -> int:
        return sum(1 for f in self.fields if f.differs and f.by_nature)


class Difference(NamedTuple):
    runs: tuple[Side, ...]
    sections: tuple[Section, ...]
    code: tuple[CodeDiff, ...] | None = None  # each run's code against the first's (--code)

    @property
    def differs(self) -> bool:
        return (any(s.differs for s in self.sections)
                or any(c.differs for c in self.code or ()))

    def section(self, name: str) -> Section:
        return next(s for s in self.sections if s.name == name)

    def to_json(self, everything: bool) -> dict[str, Any]:
        return {
            "runs": [{"id": s.id, "path": str(s.path)} for s in self.runs],
            "differs": self.differs,
            "sections": {
                s.name: {"differs": s.differs,
                         "fields": [f.to_json() for f in s.shown(everything)],
                         "notes": list(s.notes)}
                for s in self.sections
            },
            "code": None if self.code is None else [c.to_json() for c in self.code],
        }


def jsonable(value: Any) -> Any:
    if isinstance(value, PatchSummary):
        return value.to_json()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# ---- reading a run --------------------------------------------------------------------


def read_side(ref: RunRef) -> Side:
    """Read what `xpm diff` compares of one run; a corrupt record is an XpmError naming it."""
    from ..runs.catalog import load_entry

    entry = load_entry(ref)  # liveness applied: a run nothing runs is lost
    record = entry.record
    if record is None:
        problem = entry.problem or "it is still being created"
        raise XpmError(f"cannot read run `{ref.id}`: {problem}; restore its run.json from a "
                       f"copy or remove the run (`xpm clean {ref.id}`)")
    patch, patch_missing = None, False
    if record.git is not None and record.git.patch:
        try:
            patch = summarize_patch(read_regular(ref.path / record.git.patch))
        except OSError:
            patch_missing = True
    reader = Reader(ref.path, record.attempts)
    return Side(record.id, ref.path, record, _environment(ref.path),
                read_metrics(reader), patch, patch_missing, reader.problem(record.id))


# The fields of environment.json compared, with their JSON types.
_ENVIRONMENT_TYPES = {"distributions": dict, "gpus": list, "variables": dict}


def _environment(run_dir: Path) -> dict[str, Any] | None:
    """environment.json; None (unknown) when it is missing, unreadable or one of the fields
    compared has another type (a file edited by hand)."""
    environment = read_environment(run_dir)
    if environment is None or any(
            not isinstance(environment.get(key), (kind, type(None)))
            for key, kind in _ENVIRONMENT_TYPES.items()):
        return None
    return environment


def summarize_patch(data: bytes) -> PatchSummary:
    """Files, inserted and deleted lines of a `git diff` output."""
    files = insertions = deletions = 0
    in_hunk = False
    for line in data.splitlines():
        if line.startswith(b"diff --git "):
            files += 1
            in_hunk = False
        elif line.startswith(b"@@"):
            in_hunk = True
        elif in_hunk and line.startswith(b"+"):
            insertions += 1
        elif in_hunk and line.startswith(b"-"):
            deletions += 1
    return PatchSummary(files, insertions, deletions, data)


# ---- comparing ------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal values of the same type (1, 1.0 and True are three different config values)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def make(key: str, values: Sequence[Any], by_nature: bool = False,
         detail: dict[str, Any] | None = None,
         equal: Callable[[Any, Any], bool] = same) -> Field:
    present = tuple(v is not ABSENT for v in values)
    first = values[0]

    def agree(v: Any) -> bool:
        if v is ABSENT or first is ABSENT:
            return v is first
        return equal(first, v)

    differs = not all(agree(v) for v in values[1:])
    return Field(key, tuple(None if v is ABSENT else v for v in values), present, differs,
                 by_nature, detail or {})


def _union(dicts: Iterable[dict[str, Any]]) -> list[str]:
    keys: dict[str, None] = {}
    for d in dicts:
        keys.update(dict.fromkeys(d))
    return list(keys)


def _get(d: dict[str, Any] | None, key: str) -> Any:
    return ABSENT if d is None or key not in d else d[key]


def compare(sides: Sequence[Side], facts: CommitFacts | None = None,
            tolerance: float = DEFAULT_TOLERANCE,
            sections: Sequence[str] = SECTIONS) -> Difference:
    """The sections of what differs between runs; `facts`: what the repository knows of
    their commits (vcs.state.commit_facts; none asked when not given)."""
    if len(sides) < 2:
        raise ValueError("compare needs two runs or more")
    if facts is None:  # imported here: `xpm plot` compares configs, and never needs git
        from ..vcs.state import NO_FACTS

        facts = NO_FACTS
    builders: dict[str, Callable[[], Section]] = {
        "config": lambda: config_section(sides),
        "run": lambda: run_section(sides),
        "git": lambda: git_section(sides, facts),
        "packages": lambda: packages_section(sides),
        "environment": lambda: environment_section(sides),
        "metrics": lambda: metrics_section(sides, tolerance),
        "outcome": lambda: outcome_section(sides),
    }
    return Difference(tuple(sides), tuple(builders[name]() for name in SECTIONS
                                          if name in sections))


def config_flats(records: Sequence[RunRecord | None]) -> list[dict[str, Any]]:
    """Each record's config, flattened (`model.lr`), without the seed it was run with."""
    flats = []
    for record in records:
        config = record.config if record is not None else None
        flat = flatten(config) if config else {}
        # `seed` is written into every config; it is compared once, in the run section
        if record is not None and "seed" in flat and same(flat["seed"], record.seed):
            del flat["seed"]
        flats.append(flat)
    return flats


def varying_config(records: Sequence[RunRecord | None]
                   ) -> tuple[list[str], list[dict[str, Any]]]:
    """The config keys whose values differ between the records, and the flat configs."""
    flats = config_flats(records)
    keys = [k for k in _union(flats) if make(k, [_get(f, k) for f in flats]).differs]
    return keys, flats


def config_section(sides: Sequence[Side]) -> Section:
    flats = config_flats([side.record for side in sides])
    return Section("config", tuple(make(k, [_get(f, k) for f in flats]) for k in _union(flats)))


def run_section(sides: Sequence[Side]) -> Section:
    records = [s.record for s in sides]
    return Section("run", (
        make("id", [s.id for s in sides], by_nature=True),
        make("command", [r.command for r in records]),
        make("seed", [r.seed for r in records]),
        make("tags", [tuple(sorted(r.tags)) for r in records]),
        make("note", [r.note for r in records]),
        make("config files", [r.config_files for r in records]),
        make("created", [r.created for r in records], by_nature=True),
    ))


def git_section(sides: Sequence[Side], facts: CommitFacts) -> Section:
    gits = [s.record.git for s in sides]
    if all(g is None for g in gits):
        return Section("git")
    commits: list[Any] = [g.commit if g is not None else ABSENT for g in gits]
    first = commits[0]
    apart: list[dict[str, int] | None] = [None]
    for commit in commits[1:]:
        known = isinstance(first, str) and isinstance(commit, str)
        counts = facts.apart.get((first, commit)) if known else None
        apart.append(None if counts is None else {"ahead": counts[1], "behind": counts[0]})
    missing = [isinstance(c, str) and facts.repository is not None and c not in facts.found
               for c in commits]
    commit = make("commit", commits, detail={"apart": apart, "missing": missing})
    fields = [
        commit,
        make("branch", [g.branch if g else ABSENT for g in gits]),
        make("dirty", [g.dirty if g else ABSENT for g in gits]),
        make("patch", [ABSENT if g is None else "missing" if s.patch_missing else s.patch
                       for g, s in zip(gits, sides, strict=True)]),
        make("untracked", [tuple(sorted(g.untracked)) if g else ABSENT for g in gits],
             detail={"count": [g.untracked_count if g else None for g in gits]}),
        make("remote", [g.remote if g else ABSENT for g in gits]),
    ]
    modules = [dict(g.submodules) if g else None for g in gits]
    fields += [make(f"submodule {path}", [_get(m, path) if m is not None else ABSENT
                                         for m in modules])
               for path in _union(m for m in modules if m)]
    notes: list[str] = []
    for side, git in zip(sides, gits, strict=True):
        if git is None:
            notes.append(f"{side.id} was not run in a git repository")
    if len({c for c in commits if isinstance(c, str)}) > 1:
        repository = facts.repository
        for side, sha, gone in zip(sides, commits, missing, strict=True):
            if gone:
                notes.append(f"commit {sha[:10]} of {side.id} is not in the repository at "
                             f"{repository}; the rest is compared as recorded")
        if repository is None:
            notes.append("no git repository here holds these commits (looked in the project "
                         "folder and the runs' recorded repositories); they are compared as "
                         "recorded")
    return Section("git", tuple(fields), tuple(notes))


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def packages_section(sides: Sequence[Side]) -> Section:
    notes = [f"{s.id} has no readable environment.json: its packages are unknown"
             for s in sides if s.environment is None]
    if notes:
        return Section("packages", notes=tuple(notes))
    tables: list[dict[str, str]] = []
    names: dict[str, str] = {}
    for side in sides:
        dists = (side.environment or {}).get("distributions") or {}
        table = {}
        for name, version in dists.items():
            key = _canonical(str(name))
            names.setdefault(key, str(name))
            table[key] = str(version)
        tables.append(table)
    keys = sorted(_union(tables))
    return Section("packages", tuple(make(names[k], [_get(t, k) for t in tables]) for k in keys))


def _gpus(environment: dict[str, Any] | None) -> Any:
    if environment is None:
        return ABSENT
    found = environment.get("gpus") or []
    if not found:
        return "none"
    counts: dict[str, int] = {}
    for gpu in found:
        if not isinstance(gpu, dict):
            continue
        label = str(gpu.get("name", "?"))
        if gpu.get("memory.total"):
            label += f" ({gpu['memory.total']})"
        if gpu.get("driver_version"):
            label += f", driver {gpu['driver_version']}"
        counts[label] = counts.get(label, 0) + 1
    return "; ".join(f"{n} x {label}" if n > 1 else label for label, n in counts.items())


def environment_section(sides: Sequence[Side]) -> Section:
    records = [s.record for s in sides]
    envs = [s.environment for s in sides]
    fields = [
        make("host", [r.host for r in records]),
        make("user", [r.user for r in records]),
        make("platform", [r.platform for r in records]),
        make("python", [r.python for r in records]),
        make("implementation", [_get(e, "implementation") for e in envs]),
        make("python executable", [r.python_executable for r in records]),
        make("cpus", [_get(e, "cpu_count") for e in envs]),
        make("gpus", [_gpus(e) for e in envs]),
        make("project", [r.cwd for r in records]),
        make("xpm", [r.xpm_version for r in records]),
    ]
    variables = [None if e is None else dict(e.get("variables") or {}) for e in envs]
    for name in sorted(_union(v for v in variables if v)):
        fields.append(make(f"${name}", [ABSENT if v is None else _get(v, name)
                                        for v in variables],
                           by_nature=name in NATURE_VARIABLES))
    slurms = [flatten(r.slurm) if r.slurm else {} for r in records]
    for key in _union(slurms):
        fields.append(make(f"slurm.{key}", [_get(s, key) for s in slurms],
                           by_nature=key.lower().endswith(NATURE_SLURM_KEYS)))
    notes = tuple(f"{s.id} has no readable environment.json: part of its environment is "
                  "unknown" for s in sides if s.environment is None)
    return Section("environment", tuple(fields), notes)


# ---- metrics --------------------------------------------------------------------------


def goal(metric: str) -> str:
    """`max` for accuracies, scores and rewards; `min` for losses, errors and the rest."""
    return direction(metric) or MIN


def close(a: float, b: float, tolerance: float) -> bool:
    return a == b or abs(a - b) <= tolerance * max(abs(a), abs(b))


class Curve:
    """One metric's points in the order read, in compact arrays (8 bytes a number)."""

    __slots__ = ("sorted", "steps", "strict", "values")

    def __init__(self) -> None:
        self.steps = array("q")
        self.values = array("d")
        self.sorted = True  # steps never go down
        self.strict = True  # steps always go up (each step once)

    def extend(self, steps: Sequence[int], values: Sequence[float]) -> None:
        if self.sorted and steps:
            follows = not self.steps or self.steps[-1] < steps[0]
            self.strict = self.strict and follows and \
                all(map(operator.lt, steps, islice(steps, 1, None)))  # in C
            self.sorted = self.strict or (
                (not self.steps or self.steps[-1] <= steps[0])
                and all(map(operator.le, steps, islice(steps, 1, None))))
        self.steps.extend(steps)
        self.values.extend(values)

    def settled(self) -> Iterator[tuple[int, float]]:
        """(step, value) by step, the last value logged for a step (after a resume, the
        resumed attempt's)."""
        if not self.sorted:
            yield from sorted(dict(zip(self.steps, self.values, strict=True)).items())
            return
        steps, values = self.steps, self.values
        for i in range(len(steps)):
            if i + 1 == len(steps) or steps[i + 1] != steps[i]:
                yield steps[i], values[i]

    def as_dict(self) -> dict[int, float]:
        return dict(self.settled())

    def columns(self) -> tuple[Sequence[int], Sequence[float]]:
        """settled() as a column of steps and one of values: the arrays themselves when
        every step comes once, in order (the usual curve), at C speed."""
        if self.sorted and self.strict:
            return self.steps, self.values
        pairs = list(self.settled())
        return [at for at, _ in pairs], [value for _, value in pairs]


class Metrics(NamedTuple):
    """What `diff` keeps of a run's metrics: each one's summary and curve."""

    summaries: dict[str, MetricSummary]
    curves: dict[str, Curve]


def read_metrics(rows: Iterable[dict[str, Any]] | Reader) -> Metrics:
    """One streaming pass: summaries (finite values) and curves (step → value; rows
    without an integer `step` count in the order logged)."""
    seen: dict[str, list[Any]] = {}
    curves: dict[str, Curve] = {}
    counts: dict[str, int] = {}
    for key, column, steps in columns(rows):
        add_column(seen, key, column, steps, False)
        ordinal = counts.get(key, 0)
        if (set(map(type, column)) in NUMBER_TYPES and math.isfinite(math.fsum(column))
                and set(map(type, steps)) == {int}):  # the usual case, at C speed
            counts[key] = ordinal + len(column)
            curves.setdefault(key, Curve()).extend(steps, list(map(float, column)))
            continue
        kept_steps, kept = [], []
        for value, at in zip(column, steps, strict=True):
            if type(value) not in (int, float) or value - value != 0:
                continue
            kept_steps.append(at if type(at) is int else ordinal)
            kept.append(float(value))
            ordinal += 1
        counts[key] = ordinal
        if kept:
            curves.setdefault(key, Curve()).extend(kept_steps, kept)
    return Metrics({k: MetricSummary(*v) for k, v in seen.items()}, curves)


def series(rows: Iterable[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """Each metric's curve, step → value (the last one logged for a step)."""
    return {key: curve.as_dict() for key, curve in read_metrics(rows).curves.items()}


def diverges_at(a: Curve | dict[int, float], b: Curve | dict[int, float], tolerance: float
                ) -> int | None:
    """The first step both curves have at which they differ by more than the tolerance."""
    if isinstance(a, Curve) and isinstance(b, Curve):
        (left_steps, left_values), (right_steps, right_values) = a.columns(), b.columns()
        if len(left_steps) == len(right_steps) and \
                all(map(operator.eq, left_steps, right_steps)):  # the same steps: in C
            for index in compress(range(len(left_steps)),
                                  map(operator.ne, left_values, right_values)):
                if not close(left_values[index], right_values[index], tolerance):
                    return left_steps[index]
            return None
    left = iter(a.settled() if isinstance(a, Curve) else sorted(a.items()))
    right = iter(b.settled() if isinstance(b, Curve) else sorted(b.items()))
    x, y = next(left, None), next(right, None)
    while x is not None and y is not None:
        if x[0] < y[0]:
            x = next(left, None)
        elif y[0] < x[0]:
            y = next(right, None)
        else:
            if not close(x[1], y[1], tolerance):
                return x[0]
            x, y = next(left, None), next(right, None)
    return None


def metrics_section(sides: Sequence[Side], tolerance: float) -> Section:
    def equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
        return (close(a["last"], b["last"], tolerance)
                and close(a["best"], b["best"], tolerance)
                and a["samples"] == b["samples"] and a["last_step"] == b["last_step"])

    empty = Metrics({}, {})
    summaries = [(s.metrics or empty).summaries for s in sides]
    curves = [(s.metrics or empty).curves for s in sides]
    fields = []
    for name in _union(summaries):
        aim = goal(name)
        values: list[Any] = []
        for summary in summaries:
            s = summary.get(name)
            values.append(ABSENT if s is None else {
                "last": s.last, "best": s.min if aim == "min" else s.max,
                "samples": s.samples, "last_step": s.last_step,
            })
        first = values[0]
        change: list[dict[str, float] | None] = [None]
        divergence: list[int | None] = [None]
        for value, curve in zip(values[1:], curves[1:], strict=True):
            both = first is not ABSENT and value is not ABSENT
            change.append({"last": value["last"] - first["last"],
                           "best": value["best"] - first["best"]} if both else None)
            divergence.append(diverges_at(curves[0].get(name, Curve()),
                                          curve.get(name, Curve()), tolerance)
                              if both else None)

        made = make(name, values, detail={"goal": aim, "change": change,
                                          "diverges_at": divergence}, equal=equal)
        if any(step is not None for step in divergence):
            made = made._replace(differs=True)
        fields.append(made)
    return Section("metrics", tuple(fields))


# ---- outcome --------------------------------------------------------------------------


def _attempts(record: RunRecord) -> list[str]:
    out = []
    for a in record.attempts:
        text = f"{a.kind} on {a.host} pid {a.pid}, {a.started} → {a.ended or '…'}"
        if a.slurm_job_id:
            text += f", slurm job {a.slurm_job_id}"
        if a.checkpoint:
            text += f", from {Path(a.checkpoint).name}"
        out.append(text)
    return out


def outcome_section(sides: Sequence[Side]) -> Section:
    records = [s.record for s in sides]
    fields = [
        make("status", [r.status for r in records]),
        make("exit code", [r.exit_code for r in records]),
        make("signal", [r.signal for r in records]),
        make("reason", [r.last_attempt.reason if r.last_attempt else None for r in records]),
        make("attempts", [len(r.attempts) for r in records]),
        make("started", [r.started for r in records], by_nature=True),
        make("ended", [r.ended for r in records], by_nature=True),
        make("duration", [r.duration for r in records], by_nature=True),
        make("heartbeat", [r.heartbeat for r in records], by_nature=True),
    ]
    attempts = [_attempts(r) for r in records]
    for i in range(max(len(a) for a in attempts)):
        fields.append(make(f"attempt {i + 1}", [a[i] if i < len(a) else ABSENT
                                                for a in attempts], by_nature=True))
    return Section("outcome", tuple(fields))
