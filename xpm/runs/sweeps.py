"""Sweeps on disk: the manifest `results/NAME/.sweeps/K.json` and `NAME@K` references.

The manifest lists a sweep's trials (index, `-s` assignments, the varying keys' values)
and the run each became, as runs are allocated; the runs themselves record `sweep`
(`NAME@K`) and `trial`. K is allocated like a run number, without a global lock: the
first version of the file is written under a temporary name and hard-linked into place,
which fails when a concurrent xpm took that K. Later versions replace it atomically.
One process at a time works on a sweep: it holds `.sweeps/K.lock`.

MANIFEST_VERSION history:
  1  first version.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import XpmError
from ..machine import hostname
from .record import write_json_atomic
from .tree import check_name

if TYPE_CHECKING:
    from filelock import BaseFileLock

SWEEPS_DIR = ".sweeps"
MANIFEST_VERSION = 1
_REF = re.compile(r"^([A-Za-z0-9_\-][A-Za-z0-9._\-]*)@(-?\d+)$")


@dataclass(frozen=True)
class TrialEntry:
    index: int
    assignments: tuple[str, ...]
    overrides: dict[str, Any]
    run: str | None = None  # NAME/N, once its folder is allocated

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialEntry:
        return cls(index=int(data["index"]), assignments=tuple(data.get("assignments") or ()),
                   overrides=dict(data.get("overrides") or {}), run=data.get("run"))


@dataclass(frozen=True)
class Manifest:
    name: str
    number: int
    created: str
    mode: str  # grid, zip, random or trials
    keys: tuple[str, ...]  # the keys that vary, in order
    command: tuple[str, ...]
    options: dict[str, Any]  # the run options every trial shares, as given
    trials: tuple[TrialEntry, ...]
    launcher: str = "local"  # or "slurm": one job array (see `slurm`)
    jobs: int = 1  # trials at once; 0: no limit (a Slurm array without -j)
    sweep_seed: int | None = None
    runner: dict[str, Any] | None = None  # pid and host of the process working on it
    slurm: dict[str, Any] | None = None
    schema_version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # fields a newer xpm wrote

    @property
    def id(self) -> str:
        return f"{self.name}@{self.number}"

    def path(self, results_dir: Path) -> Path:
        return manifest_path(results_dir, self.name, self.number)

    def with_run(self, index: int, run: str) -> Manifest:
        trials = list(self.trials)
        trials[index] = replace(trials[index], run=run)
        return replace(self, trials=tuple(trials))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        ordered: dict[str, Any] = {"schema_version": data.pop("schema_version"), "id": self.id}
        ordered.update(data)
        return {**extra, **ordered}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        version = data.get("schema_version")
        if not isinstance(version, int) or version < 1:
            raise ValueError("no schema_version")
        if version > MANIFEST_VERSION:
            raise ValueError(f"schema_version {version} is newer than this xpm understands "
                             f"({MANIFEST_VERSION}); upgrade xpm-runs")
        known = {f for f in cls.__dataclass_fields__ if f != "extra"} | {"id"}
        return cls(
            name=str(data["name"]), number=int(data["number"]), created=str(data["created"]),
            mode=str(data.get("mode", "grid")), keys=tuple(data.get("keys") or ()),
            command=tuple(data.get("command") or ()), options=dict(data.get("options") or {}),
            trials=tuple(TrialEntry.from_json(t) for t in data.get("trials") or ()),
            launcher=str(data.get("launcher", "local")),
            jobs=int(data["jobs"]) if data.get("jobs") is not None else 1,
            sweep_seed=data.get("sweep_seed"), runner=data.get("runner"),
            slurm=data.get("slurm"),
            extra={k: v for k, v in data.items() if k not in known},
        )


def manifest_path(results_dir: Path, name: str, number: int) -> Path:
    return results_dir / name / SWEEPS_DIR / f"{number}.json"


def _numbers(folder: Path) -> list[int]:
    try:
        return sorted(int(p.stem) for p in folder.iterdir()
                      if p.suffix == ".json" and p.stem.isdigit())
    except (FileNotFoundError, NotADirectoryError):
        return []


def create(results_dir: Path, manifest: Manifest) -> Manifest:
    """Write the first version of a manifest under the next free K; returns it with K."""
    check_name(manifest.name)
    folder = results_dir / manifest.name / SWEEPS_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise XpmError(f"cannot create `{folder}` ({exc.strerror}); check `results_dir` in "
                       "xpm.yaml and its permissions") from None
    number = max(_numbers(folder), default=0) + 1
    tmp = folder / f".new.{hostname()}.{os.getpid()}.tmp"
    try:
        while True:
            manifest = replace(manifest, number=number)
            write_json_atomic(tmp, manifest.to_json(), durable=True)
            try:
                os.link(tmp, folder / f"{number}.json")
            except FileExistsError:
                number += 1
                continue
            return manifest
    finally:
        tmp.unlink(missing_ok=True)


def write(results_dir: Path, manifest: Manifest) -> None:
    write_json_atomic(manifest.path(results_dir), manifest.to_json(), durable=True)


def read(results_dir: Path, name: str, number: int) -> Manifest:
    path = manifest_path(results_dir, name, number)
    try:
        data = json.loads(path.read_bytes())
        return Manifest.from_json(data)
    except FileNotFoundError:
        raise XpmError(f"there is no sweep `{name}@{number}` in {results_dir}; "
                       f"`xpm ls {name}` shows the sweeps of its runs") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise XpmError(f"`{path}` is not a sweep manifest ({exc}); restore it from a "
                       "backup, or remove it") from None


def is_ref(text: str) -> bool:
    """Whether `text` names a sweep (`NAME@K`, `NAME@-1`) rather than a run."""
    return _REF.match(text.strip()) is not None


def resolve(results_dir: Path, text: str) -> Manifest:
    """`NAME@K`, or `NAME@-1` (the newest sweep of NAME), `NAME@-2`..."""
    match = _REF.match(text.strip())
    if match is None:
        raise XpmError(f"`{text}` is not a sweep; write NAME@K (e.g. mnist@1)")
    name, k = match.group(1), int(match.group(2))
    if k < 0:
        numbers = _numbers(results_dir / name / SWEEPS_DIR)
        if -k > len(numbers):
            raise XpmError(f"`{text}`: `{name}` has {len(numbers)} sweeps; "
                           f"`xpm ls {name}` shows them in its sweep column")
        k = numbers[k]
    return read(results_dir, name, k)


def run_ids(results_dir: Path, texts: tuple[str, ...] | list[str]) -> list[str]:
    """The arguments with each `NAME@K` replaced by its trials' runs still in the tree,
    in trial order."""
    out: list[str] = []
    for text in texts:
        if not is_ref(text):
            out.append(text)
            continue
        manifest = resolve(results_dir, text)
        runs = [t.run for t in manifest.trials
                if t.run is not None and (results_dir / t.run).is_dir()]
        if not runs:
            raise XpmError(f"sweep `{manifest.id}` has no runs in {results_dir}; "
                           f"`xpm sweep --resume {manifest.id}` starts its trials")
        out.extend(runs)
    return out


def reconcile(results_dir: Path, manifest: Manifest) -> Manifest:
    """The manifest with each trial that has no run yet given the run recording that
    sweep and trial, if one exists (the sweep died before writing it down)."""
    missing = {t.index for t in manifest.trials if t.run is None}
    if not missing:
        return manifest
    from .record import read_record_data
    from .tree import run_numbers

    found = manifest
    for number in run_numbers(results_dir, manifest.name):
        try:
            data = read_record_data(results_dir / manifest.name / str(number))
        except XpmError:
            continue
        trial = data.get("trial")
        if data.get("sweep") == manifest.id and isinstance(trial, int) and trial in missing:
            found = found.with_run(trial, f"{manifest.name}/{number}")
            missing.discard(trial)
    return found


class SweepLock:
    """The one process working on a sweep (running or resuming it) holds this."""

    def __init__(self, results_dir: Path, manifest: Manifest) -> None:
        from filelock import FileLock

        self.manifest = manifest
        path = manifest.path(results_dir).with_suffix(".lock")
        self._lock: BaseFileLock = FileLock(str(path))

    def acquire(self) -> None:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            runner = self.manifest.runner or {}
            who = (f" (pid {runner.get('pid')} on {runner.get('host')})"
                   if runner.get("pid") else "")
            raise XpmError(f"sweep `{self.manifest.id}` is being run by another xpm{who}; "
                           f"wait for it, or stop it, then `xpm sweep --resume "
                           f"{self.manifest.id}`") from None

    def release(self) -> None:
        self._lock.release(force=True)
