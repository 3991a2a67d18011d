"""Finding checkpoints in a run folder.

A checkpoint is a file or folder matched by the checkpoint patterns (xpm.yaml
`checkpoints:`, relative to the run folder). Its step is the last integer in its name,
not counting file-type extensions (`weights-100.h5` is step 100);
the newest is the highest step, ties broken by modification time; one with no integer
in its name counts as older than any with a step. TensorFlow's multi-file checkpoints
(`model.ckpt-1000.index`, `.data-00000-of-00001`, `.meta`) count once, as their prefix
`model.ckpt-1000` (what tf.train.latest_checkpoint returns), and only once the `.index`
file exists. A sharded checkpoint, one file per rank of a distributed run
(`step-00000100.rank-0-of-2.pt`, `step-00000100.rank-1-of-2.pt`), counts once, as the name
without the rank (`step-00000100.pt`), and only once every rank's file is there and
finished: a set with a rank missing is never handed over. Unfinished-looking entries never
count: names ending in `.tmp`, `.partial` or `~`, hidden names, empty files and empty
folders.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from ..project import DEFAULT_CHECKPOINT_PATTERNS, checkpoint_pattern_problem
from .record import (
    CONFIG_FILE,
    CONFIGS_DIR,
    ENVIRONMENT_FILE,
    LOCK_FILE,
    METRICS_FILE,
    OUTPUT_FILE,
    PATCH_FILE,
    RECORD_FILE,
    UNTRACKED_FILE,
)

# The run folder's own files are never checkpoints, whatever a pattern matches.
RUN_FILES = (RECORD_FILE, CONFIG_FILE, ENVIRONMENT_FILE, OUTPUT_FILE, METRICS_FILE, PATCH_FILE,
             CONFIGS_DIR, LOCK_FILE, UNTRACKED_FILE)
UNFINISHED_SUFFIXES = (".tmp", ".partial", "~", ".incomplete", ".lock")
_TF_SUFFIX = r"\.(?:index|meta|data-\d+-of-\d+)$"  # the files of a TensorFlow checkpoint
_TF_PART = re.compile(r"^(?P<prefix>.+-\d+)" + _TF_SUFFIX)
_INTEGER = re.compile(r"\d+")
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,9}$")  # .pt .h5 .hdf5 .tar .json ...
_TMP = re.compile(r"\.tmp[.\-_]")
_SHARD = re.compile(r"^(?P<stem>.+)\.rank-(?P<rank>\d+)-of-(?P<world>\d+)(?P<suffix>.*)$")


class Checkpoint(NamedTuple):
    step: int | None
    path: Path
    mtime: float

    def sort_key(self) -> tuple[int, int, float]:
        return (self.step is not None, self.step or 0, self.mtime)


def step_of(name: str) -> int | None:
    """The last integer in a name, file-type extensions aside: `model.ckpt-1000` → 1000,
    `epoch=3-step=500.ckpt` → 500, `weights-100.h5` → 100 (not the 5 of `.h5`)."""
    stem = name
    while True:
        match = _EXTENSION.search(stem)
        if not match or match.start() == 0:
            break
        stem = stem[: match.start()]
    numbers = _INTEGER.findall(stem)
    return int(numbers[-1]) if numbers else None


def _looks_unfinished(name: str) -> bool:
    return name.startswith(".") or name.endswith(UNFINISHED_SUFFIXES) or bool(_TMP.search(name))


def is_unfinished(path: Path) -> bool:
    if _looks_unfinished(path.name):
        return True
    try:
        if path.is_dir():
            return not any(os.scandir(path))
        return path.stat().st_size == 0
    except OSError:
        return True


def _matches(run_dir: Path, patterns: Iterable[str]) -> set[Path]:
    """What the patterns match strictly inside the run folder. A pattern that cannot be
    used (absolute, leading out with `..`, malformed: xpm.yaml refuses these) matches
    nothing; an error while reading the folders ends only that pattern's search."""
    found: set[Path] = set()
    own = {run_dir / name for name in RUN_FILES}
    for pattern in patterns:
        if checkpoint_pattern_problem(pattern):
            continue
        try:
            found.update(p for p in run_dir.glob(pattern)
                         if p != run_dir and p not in own and not own.intersection(p.parents))
        except (OSError, ValueError, NotImplementedError):
            continue
    return found


def shard_name(stem: str, suffix: str, rank: int, world_size: int) -> str:
    """The file name of one rank's part of a sharded checkpoint named `stem + suffix`."""
    return f"{stem}.rank-{rank}-of-{world_size}{suffix}"


def _shard(name: str) -> tuple[str, int, int] | None:
    """(the set's name, rank, world size) of a shard's file name, else None."""
    match = _SHARD.match(name)
    if match is None:
        return None
    rank, world = int(match.group("rank")), int(match.group("world"))
    if not 0 <= rank < world:
        return None
    return match.group("stem") + match.group("suffix"), rank, world


def _set_name(name: str) -> str | None:
    shard = _shard(name)
    return shard[0] if shard else None


def find(run_dir: Path, patterns: Iterable[str] = DEFAULT_CHECKPOINT_PATTERNS
         ) -> list[Checkpoint]:
    """The run's finished checkpoints, oldest first."""
    checkpoints: dict[Path, Checkpoint] = {}
    # (set path, world size) -> {rank: mtime} of each rank's finished file
    shards: dict[tuple[Path, int], dict[int, float]] = {}
    for path in _matches(run_dir, patterns):
        if path.is_symlink() and not path.exists():
            continue
        tf = _TF_PART.match(path.name)
        if tf:
            prefix = path.with_name(tf.group("prefix"))
            index = path.with_name(tf.group("prefix") + ".index")
            if prefix in checkpoints or is_unfinished(index):
                continue
            try:
                mtime = index.stat().st_mtime
            except OSError:  # deleted meanwhile
                continue
            checkpoints[prefix] = Checkpoint(step_of(prefix.name), prefix, mtime)
            continue
        parents = [p.name for p in path.relative_to(run_dir).parents if p.name]
        if any(_looks_unfinished(name) for name in parents):
            continue
        if is_unfinished(path):
            continue
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        shard = _shard(path.name)
        if shard is not None:
            name, rank, world = shard
            shards.setdefault((path.with_name(name), world), {})[rank] = mtime
            continue
        checkpoints[path] = Checkpoint(step_of(path.name), path, mtime)
    whole_files = set(checkpoints)
    for (whole, world), ranks in shards.items():
        if len(ranks) < world or whole in whole_files:
            continue  # a rank's file is missing, or a file of that very name is the checkpoint
        mtime = max(ranks.values())
        if whole not in checkpoints or checkpoints[whole].mtime < mtime:  # newest set wins
            checkpoints[whole] = Checkpoint(step_of(whole.name), whole, mtime)
    return sorted(checkpoints.values(), key=Checkpoint.sort_key)


def newest(run_dir: Path, patterns: Iterable[str] = DEFAULT_CHECKPOINT_PATTERNS
           ) -> Checkpoint | None:
    found = find(run_dir, patterns)
    return found[-1] if found else None


def files_of(path: Path) -> list[Path]:
    """The files making up one checkpoint: itself, the `.index`, `.meta` and `.data-*`
    files of a TensorFlow checkpoint prefix (`model.ckpt-1000`), or every rank's file of a
    sharded checkpoint (`step-00000100.pt`: `step-00000100.rank-<R>-of-<N>.pt`)."""
    if os.path.lexists(path):
        return [path]
    part = re.compile(re.escape(path.name) + _TF_SUFFIX)
    try:
        with os.scandir(path.parent) as found:
            names = [e.name for e in found]
    except OSError:
        return []
    return sorted(path.parent / name for name in names
                  if part.match(name) or _set_name(name) == path.name)


def shard_of(path: Path, rank: int, world_size: int) -> Path | None:
    """Rank `rank`'s file of the sharded checkpoint `path` saved by `world_size` ranks, when
    `path` is such a checkpoint and that file exists."""
    if os.path.lexists(path):
        return None
    for file in files_of(path):
        if _shard(file.name) == (path.name, rank, world_size):
            return file
    return None
