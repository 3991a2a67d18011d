"""Listing many runs fast: each run's listed fields (a query.RunInfo), through a cache.

Reading 100,000 run.json files and the ends of as many metrics.jsonl files takes
seconds, yet a run that has ended no longer changes. So the fields of ended runs are
kept in `results/.cache/ls/NAME.jsonl`, each under the identity of the two files they
were read from (inode, size, modification and change times, as git's index keeps them).
A run is read from its folder again when either file's identity differs, when it is
queued or running (its liveness is checked every time), and when the cache is missing,
unreadable or of another format. The folders stay the truth: the cache never answers
for a file that changed, and deleting it costs one slower listing. It is written only
when something changed, atomically, and silently not at all where the tree is read-only.

The metrics shown are the last value of every metric the run ever logged (a validation
score logged once, long ago, too), from a tally of its metrics.jsonl (runs.metrics.Tally)
kept in the same line: where reading stopped, under the file's inode and the bytes
before that point. A queued or running run keeps its line too (its fields are read again
every time, its tally is not): each listing reads only the lines its metrics.jsonl gained
since, so a running run costs what it added, not the file. A file rewritten in place, or
an attempt that supersedes lines, is read anew.

The file holds a header line (format, and the distinct config sections: a sweep's runs
share most of them) and then one line per run, by number, read in step with the run
folders so that only one line is in memory at a time: [number, run.json's identity (null
for a run that is read every time), metrics.jsonl's identity, fields, tally].
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..runs.atomic import atomic_file
from ..runs.catalog import CORRUPT, UNREAD, load_raw_at
from ..runs.record import ACTIVE, METRICS_FILE, RECORD_FILE, Attempt, fast_loads
from ..runs.tree import run_names, run_numbers
from .query import COLUMNS, RunInfo, info_of

CACHE_DIR = ".cache"
# Bump when what a row holds changes in another way than its columns (which the header
# names: a cache of other columns is ignored), e.g. when what counts as corrupt changes.
# 2: a record with a wrongly typed field is corrupt. 3: rows derived from record.py.
# 4: every metric ever logged, from a tally kept in the row (also for running runs).
# 5: a run's metrics are rank 0's (lines logged with all_ranks=True no longer mixed in).
FORMAT = 5
KEYS = [c.key for c in COLUMNS]  # the columns of the rows, as the header names them
_CONFIG = KEYS.index("config")
# How cached values are read back: the config's sections by index; equal texts and
# tuples read line by line become one object (statuses, hosts, tags: memory).
_SHARED = tuple(n for n, c in enumerate(COLUMNS) if c.form == "text")
_TUPLES = tuple(n for n, c in enumerate(COLUMNS) if c.form == "tuple")

Kept = tuple[int, "list[int] | None", "list[int] | None", RunInfo, "list[Any] | None"]


def infos(results_dir: Path, names: list[str] | None = None) -> Iterator[RunInfo]:
    """Every run in the tree (or of `names`), by name then number, metrics included; a
    name that is a link to a folder elsewhere (results/big -> /scratch/big) included."""
    shared: dict[Any, Any] = {}  # one object for equal values met in many runs (memory)
    for name in names if names is not None else run_names(results_dir, follow_links=True):
        yield from _infos_of(results_dir, name, shared)


def cache_file(results_dir: Path, name: str) -> Path:
    return results_dir / CACHE_DIR / "ls" / f"{name}.jsonl"


def _identity(path: str) -> list[int] | None:
    """inode, size, modification and change times (ns): as JSON gives them back."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _infos_of(results_dir: Path, name: str, shared: dict[Any, Any]) -> Iterator[RunInfo]:
    from ..runs.metrics import Tally, tally

    file = cache_file(results_dir, name)
    cache = _Reader(file, shared)
    kept: list[Kept] = []
    changed = False
    folder = os.path.join(results_dir, name)
    try:
        for number in run_numbers(results_dir, name):
            path = f"{folder}/{number}"
            # Identities first, then contents: a file written in between differs next time.
            record_id = _identity(f"{path}/{RECORD_FILE}")
            metrics_id = _identity(f"{path}/{METRICS_FILE}")
            row = cache.row(number)
            info = None
            position = row[4] if row is not None else None
            if row is not None and record_id is not None and row[1:3] == [record_id,
                                                                          metrics_id]:
                info = _from_row(name, number, folder, row[3], cache.sections, shared)
            cacheable = record_id is not None
            if info is None:
                raw = load_raw_at(name, number, path)
                info = info_of(raw)
                if info.status == CORRUPT and not os.path.isdir(path):
                    continue  # removed since the folder was listed (a purge): not a run
                if info.values:
                    _share_config(info.config, shared)
                previous = Tally.at(position, _metrics_of(row)) if row is not None else None
                counted = tally(path, _attempts(raw.data), previous)
                position = counted.position() if counted is not None else None
                info = info._replace(folder=folder, metrics=counted.last if counted else {})
                cacheable = cacheable and info.status not in (*ACTIVE, *UNREAD)
                if not cacheable:  # read every time; its tally is kept all the same
                    record_id = None
                if info.values:
                    changed = changed or cacheable or row is None or row[1] is not None \
                        or row[4] != position
                else:  # unreadable: nothing kept
                    changed = changed or row is not None
            if info.values:
                kept.append((number, record_id, metrics_id, info, position))
            yield info
        changed = changed or cache.skipped or cache.row(None) is not None  # runs now gone
    finally:
        cache.close()
    if changed:
        _write(file, kept)


def _attempts(data: dict[str, Any] | None) -> list[Attempt]:
    """The attempts of a raw record (they decide which metrics lines stand)."""
    out = []
    for item in (data or {}).get("attempts") or ():
        try:
            out.append(Attempt.from_json(item))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return out


def _metrics_of(row: list[Any]) -> dict[str, Any]:
    """The metrics' last values in a cached line's fields."""
    try:
        metrics = row[3][-1]
        return metrics if isinstance(metrics, dict) else {}
    except (TypeError, IndexError, KeyError):
        return {}


class _Reader:
    """The cache file's lines, read forward as the run numbers ascend."""

    def __init__(self, file: Path, shared: dict[Any, Any]) -> None:
        self.sections: list[Any] = []
        self.skipped = False  # a line was dropped: its run is gone, or it was unreadable
        self._file: IO[bytes] | None = None
        self._next: list[Any] | None = None
        try:
            self._file = open(file, "rb")  # noqa: SIM115 (closed by close())
            header = json.loads(self._file.readline())
            if header.get("format") != FORMAT or header.get("columns") != KEYS or \
                    not isinstance(header["sections"], list):
                raise ValueError("another format")
            self.sections = [_share_section(s, shared) for s in header["sections"]]
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            self.close()

    def row(self, number: int | None) -> list[Any] | None:
        """The line of run `number` ([number, record id, metrics id, fields, tally]), if any;
        with None, the next line left."""
        while True:
            if self._next is None:
                self._next = self._read()
                if self._next is None:
                    return None
            if number is None or self._next[0] == number:
                row, self._next = self._next, None
                return row
            if self._next[0] > number:
                return None
            self._next = None  # a run that is gone
            self.skipped = True

    def _read(self) -> list[Any] | None:
        while self._file is not None:
            line = self._file.readline()
            if not line:
                self.close()
                return None
            try:
                row = fast_loads(line)
                if type(row) is list and len(row) == 5 and type(row[0]) is int:
                    return row
            except ValueError:
                pass
            self.skipped = True
        return None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _share_config(config: dict[str, Any], shared: dict[Any, Any]) -> dict[str, Any]:
    """The config with its equal sections made one object: in a sweep most sections
    (`data`, `train`...) are the same in every run, and 100,000 copies of them would be
    most of the memory a listing takes. Listing never changes a config."""
    for key, value in config.items():
        if isinstance(value, dict):
            config[key] = _share_section(value, shared)
    return config


def _share_section(value: Any, shared: dict[Any, Any]) -> Any:
    """One object for equal config sections (repr tells them apart as JSON would, nan from
    null and 1 from 1.0 and true, and takes a tenth of json.dumps's time)."""
    return shared.setdefault(("section", repr(value)), value)


def _from_row(name: str, number: int, folder: str, row: list[Any], sections: list[Any],
              shared: dict[Any, Any]) -> RunInfo | None:
    """A run from its cached fields ([status, problem, *values, metrics]); None when they
    are not what this xpm writes."""
    share = shared.setdefault
    try:
        status, problem, *values, metrics = row
        if len(values) != len(KEYS):
            return None
        for index in _SHARED:
            value = values[index]
            if value is not None:
                values[index] = share(value, value)
        for index in _TUPLES:
            value = values[index]
            if value is not None:
                value = tuple(value)
                values[index] = share(value, value)
        values[_CONFIG] = {share(k, k): sections[v] if type(v) is int else v[0]
                           for k, v in values[_CONFIG]}
        metrics = {share(k, k): v for k, v in metrics.items()}
        return RunInfo(name, number, folder, share(status, status), problem, values, metrics)
    except (TypeError, ValueError, IndexError, KeyError, AttributeError):
        return None


def _to_row(info: RunInfo, sections: dict[int, int], table: list[Any]) -> list[Any]:
    """A run's cached fields: [status, problem, *values, metrics], the config's sections
    as indexes into `table` (each distinct section once)."""
    config = []
    for key, value in info.config.items():
        if isinstance(value, dict):
            index = sections.get(id(value))
            if index is None:
                index = sections[id(value)] = len(table)
                table.append(value)
            config.append([key, index])
        else:
            config.append([key, [value]])
    values = list(info.values)
    values[_CONFIG] = config
    return [info.status, info.problem, *values, info.metrics or {}]


def _write(file: Path, kept: list[Kept]) -> None:
    """The cache file, written in one step (atomic_file), its rows made one at a time."""
    sections: dict[int, int] = {}
    table: list[Any] = []
    for _, _, _, info, _ in kept:  # the header first: the distinct config sections
        for value in info.config.values():
            if isinstance(value, dict) and id(value) not in sections:
                sections[id(value)] = len(table)
                table.append(value)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(file) as f:
            f.write(_dumps({"format": FORMAT, "columns": KEYS, "sections": table}) + b"\n")
            f.writelines(_dumps([number, record_id, metrics_id,
                                 _to_row(info, sections, table), position]) + b"\n"
                         for number, record_id, metrics_id, info, position in kept)
    except OSError:  # a read-only tree, a full disk: listing works without the cache
        pass




def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8",
                                                                              "surrogateescape")
