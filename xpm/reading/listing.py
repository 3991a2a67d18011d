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
folders so that only one line is in memory at a time. A line is three JSON texts apart by
tabs (JSON text never holds a raw tab): [number, run.json's identity (null for a run that
is read every time), metrics.jsonl's identity, the order key, tally], the fields, and the
run's `ls --json` object as it was rendered, without its path (0 for a run read every
time). So a listing parses of each line what it needs: `ls -a --json` only the first
text (the identities and the order key) and prints the third as it is; a line that did
not change is copied as it is when the file is written again.

Beside each cache file, NAME.index holds the order key and the offset of each line (and
the identity of the cache file it describes): plain `xpm ls` (the newest 30) picks its
runs from it and reads only their lines and folders, besides every run that is read
every time (queued, running, unreadable). It trusts an ended run's order key as cached
without looking at its folder (an ended run's start and creation times never change;
xpm rewrites run.json only to resume, retag or annotate, which keep them); the runs it
shows are checked as every listing checks them, and any difference (or a run the cache
does not hold yet) makes it list every run instead, which brings the cache up to date.
"""

from __future__ import annotations

import heapq
import json
import os
from collections.abc import Iterator
from itertools import compress
from operator import not_
from pathlib import Path
from typing import IO, Any

from .. import console
from ..runs import schema
from ..runs.atomic import atomic_file, write_atomic
from ..runs.catalog import CORRUPT, UNREAD, load_raw_at
from ..runs.record import ACTIVE, METRICS_FILE, RECORD_FILE, Attempt, MetricsTally, fast_loads
from ..runs.tree import run_names, run_numbers
from .query import COLUMNS, RunInfo, info_of, time_key

CACHE_DIR = ".cache"
# Bump when what a row holds changes in another way than its columns (which the header
# names: a cache of other columns is ignored), e.g. when what counts as corrupt changes.
# 2: a record with a wrongly typed field is corrupt. 3: rows derived from record.py.
# 4: every metric ever logged, from a tally kept in the row (also for running runs).
# 5: a line is three texts (head with the order key, fields, rendered --json object);
#    NAME.index beside the file.
# 6: a run's metrics are rank 0's (lines logged with all_ranks=True no longer mixed in).
FORMAT = 6
KEYS = [c.key for c in COLUMNS]  # the columns of the rows, as the header names them
_CONFIG = KEYS.index("config")
# How cached values are read back: the config's sections by index; equal texts and
# tuples read line by line become one object (statuses, hosts, tags: memory).
_SHARED = tuple(n for n, c in enumerate(COLUMNS) if c.form == "text")
_TUPLES = tuple(n for n, c in enumerate(COLUMNS) if c.form == "tuple")
_TAB = b"\t"
_NO_KEY = float("-inf")

# A run kept in the cache file: number, order key (None: -inf), whether it is read every
# time (no run.json identity), and its line: the offset of its line in the file read
# (copied as it is), or, for a run read from its folder, its line made at once in two
# parts (head and fields; the `--json` object, shared with the listing) so that a listing
# of many runs holds no RunInfo for the cache (memory).
Kept = tuple[int, "float | None", bool, "int | tuple[bytes, bytes]"]


class Listed:
    """One run as a listing found it: its order key (`query.time_key`) and its fields,
    as a RunInfo (`info`) and, for a run the cache answered for, its `ls --json` object
    as rendered then, without its path (`out`). A listing that asks for no fields (see
    `listed`) leaves `info` None for cached runs."""

    __slots__ = ("folder", "info", "key", "name", "number", "out")

    def __init__(self, name: str, number: int, folder: str, key: float,
                 info: RunInfo | None, out: bytes | None) -> None:
        self.name = name
        self.number = number
        self.folder = folder
        self.key = key
        self.info = info
        self.out = out

    @property
    def id(self) -> str:
        return f"{self.name}/{self.number}"

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.number}"

    @property
    def unread(self) -> bool:
        """A run without a record (corrupt, newer, abandoned): only read from its folder."""
        return self.info is not None and self.info.status in UNREAD

    def run(self) -> RunInfo:
        """Its RunInfo (read from its folder when the listing kept none)."""
        if self.info is None:
            info = _read_run(self.name, self.number, self.folder, None)[0]
            self.info = info if info is not None else RunInfo(
                self.name, self.number, self.folder, CORRUPT, f"`{self.path}` is gone")
        return self.info


def infos(results_dir: Path, names: list[str] | None = None) -> Iterator[RunInfo]:
    """Every run in the tree (or of `names`), by name then number, metrics included; a
    name that is a link to a folder elsewhere (results/big -> /scratch/big) included."""
    for item in listed(results_dir, names):
        yield item.run()


def listed(results_dir: Path, names: list[str] | None = None, fields: bool = True,
           rendered: bool = False) -> Iterator[Listed]:
    """infos(), as Listed runs: with `fields`, each with its RunInfo; with `rendered`,
    each the cache answered for with its `ls --json` object (`out`). A run read from its
    folder always has its RunInfo and never `out`."""
    shared: dict[Any, Any] = {}  # one object for equal values met in many runs (memory)
    for name in names if names is not None else run_names(results_dir, follow_links=True):
        yield from _listed_of(results_dir, name, shared, fields, rendered)


def order_listed(items: list[Listed], reverse: bool = False) -> list[Listed]:
    """query.order(infos, None, reverse) for Listed runs: newest first (by the order key,
    then the number), ties in the order given; `reverse`: oldest first."""
    return sorted(items, key=lambda i: (i.key, i.number), reverse=not reverse)


def newest(results_dir: Path, names: list[str] | None, limit: int, fields: bool = True,
           rendered: bool = False) -> tuple[list[Listed], int] | None:
    """The `limit` runs `order_listed` puts first, as `listed` gives them, and how many
    runs there are, without reading every run: through the cache's indexes (see the
    module's notes). None when the indexes cannot answer (a name without one, a run the
    cache does not hold yet, a run shown that changed): then list every run."""
    pool: list[tuple[tuple[float, int, int], Listed | tuple[Any, ...]]] = []
    total = 0
    for at, name in enumerate(names if names is not None
                              else run_names(results_dir, follow_links=True)):
        numbers = run_numbers(results_dir, name)
        if not numbers:
            continue
        folder = os.path.join(results_dir, name)
        file = cache_file(results_dir, name)
        index = _read_index(file)
        if index is None:
            return None
        identity, flat = index
        indexed, keys, offsets, live = flat[0::4], flat[1::4], flat[2::4], flat[3::4]
        if None in keys:
            keys = [_NO_KEY if key is None else key for key in keys]
        present = set(numbers)
        # The ended runs, by their cached keys: the newest `limit` of this name that are
        # still there count (sorting keys that mostly ascend already takes one pass).
        ended = list(compress(zip(keys, indexed, offsets, strict=True), map(not_, live)))
        ended.sort()
        taken = 0
        for key, number, offset in reversed(ended):
            if taken == limit:
                break
            if number in present:
                taken += 1
                pool.append(((key, number, -at), (name, folder, file, identity, offset)))
        known = set(compress(indexed, map(not_, live)))
        total += len(known & present)
        # The others: read every time (queued, running, unreadable), or not cached yet.
        lines = dict(compress(zip(indexed, offsets, strict=True), live)) if 1 in live else {}
        for number in sorted(present - known):
            offset = lines.get(number)
            line = _line_at(file, identity, offset) if offset is not None else None
            info, _, cacheable = _read_run(name, number, folder, line)
            if info is None:
                continue  # removed since the folder was listed
            if cacheable and os.path.lexists(f"{folder}/{number}/{RECORD_FILE}"):
                return None  # ended since, or new: a whole listing puts it in the cache
            total += 1
            item = Listed(name, number, folder, time_key(info), info, None)
            pool.append(((item.key, number, -at), item))
    shared: dict[Any, Any] = {}
    sections: dict[Path, list[Any]] = {}  # each cache file's config sections
    chosen: list[tuple[int, Listed]] = []
    for (_, number, minus_at), what in heapq.nlargest(limit, pool, key=lambda p: p[0]):
        if not isinstance(what, Listed):
            name, folder, file, identity, offset = what
            found = _cached(name, folder, file, identity, offset, number, fields, rendered,
                            shared, sections)
            if found is None:
                return None
            what = found
        chosen.append((-minus_at, what))
    chosen.sort(key=lambda c: (c[0], c[1].number))  # in listing order, for equal keys
    return order_listed([item for _, item in chosen]), total


def _read_index(file: Path) -> tuple[list[int], list[Any]] | None:
    """NAME.index: the identity of the cache file it describes (when that is the file
    there now) and, flat, for each run: number, order key (None: -inf), offset of its
    line, whether it is read every time (1) or not (0)."""
    import orjson  # a flat list nests one deep: safe (see record.fast_loads)

    try:
        with open(_index_file(file), "rb") as f:
            header = json.loads(f.readline())
            text = f.readline()
        st = os.stat(file)
        identity = [st.st_ino, st.st_size, st.st_mtime_ns]
        if header.get("format") != FORMAT or header.get("cache") != identity or \
                text.count(b"[") != 1:
            return None
        flat = orjson.loads(text)
        if type(flat) is not list or len(flat) % 4 or not flat or \
                set(map(type, flat[0::4])) != {int} or \
                not set(map(type, flat[1::4])) <= {float, type(None)} or \
                set(map(type, flat[2::4])) != {int} or not set(flat[3::4]) <= {0, 1}:
            return None
        return identity, flat
    except (OSError, ValueError, AttributeError):
        return None


def _line_at(file: Path, identity: list[int], offset: int) -> _Line | None:
    """The cache file's line at `offset`, when the file is still the one indexed."""
    try:
        with open(file, "rb") as f:
            if _file_identity(f) != identity:
                return None
            f.seek(offset)
            text = f.readline()
    except OSError:
        return None
    head, tab, rest = text.partition(_TAB)
    try:
        row = fast_loads(head)
    except ValueError:
        return None
    if not tab or type(row) is not list or len(row) != 5:
        return None
    return _Line(row, offset, rest)


def _cached(name: str, folder: str, file: Path, identity: list[int], offset: int,
            number: int, fields: bool, rendered: bool, shared: dict[Any, Any],
            sections: dict[Path, list[Any]]) -> Listed | None:
    """The run the cache's line at `offset` answers for, when its files did not change
    (`sections`: the config sections of the cache files read so far)."""
    path = f"{folder}/{number}"
    identities = [_identity(f"{path}/{RECORD_FILE}"), _identity(f"{path}/{METRICS_FILE}")]
    line = _line_at(file, identity, offset)
    if line is None or line.head[0] != number or line.head[1:3] != identities:
        return None
    if file not in sections:
        try:
            with open(file, "rb") as f:
                header = json.loads(f.readline())
            sections[file] = [_share_section(s, shared) for s in header["sections"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return line.listed(name, folder, sections[file], shared, fields, rendered)


def cache_file(results_dir: Path, name: str) -> Path:
    return results_dir / CACHE_DIR / "ls" / f"{name}.jsonl"


def _index_file(file: Path) -> Path:
    return file.with_suffix(".index")


def _identity(path: str) -> list[int] | None:
    """inode, size, modification and change times (ns): as JSON gives them back."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _file_identity(f: IO[bytes]) -> list[int]:
    """An open cache file's inode, size and modification time (a rename changes its
    change time, so that is left out)."""
    st = os.fstat(f.fileno())
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _listed_of(results_dir: Path, name: str, shared: dict[Any, Any], fields: bool,
               rendered: bool) -> Iterator[Listed]:
    file = cache_file(results_dir, name)
    cache = _Reader(file, shared)
    kept: list[Kept] = []
    changed = False
    folder = os.path.join(results_dir, name)
    finite = FiniteRuns()  # config sections are shared between runs: each looked at once
    # The distinct config sections, by index (those of the file read keep their places:
    # its lines are copied as they are).
    table: list[Any] = list(cache.sections)
    sections: dict[int, int] = {id(s): n for n, s in enumerate(table)}
    try:
        for number in run_numbers(results_dir, name):
            path = f"{folder}/{number}"
            # Identities first, then contents: a file written in between differs next time.
            record_id = _identity(f"{path}/{RECORD_FILE}")
            metrics_id = _identity(f"{path}/{METRICS_FILE}")
            line = cache.line(number)
            item = None
            if line is not None and record_id is not None and line.head[1:3] == [record_id,
                                                                                 metrics_id]:
                item = line.listed(name, folder, cache.sections, shared, fields, rendered)
                if item is not None:
                    kept.append((number, line.head[3], False, line.offset))
            if item is None:
                info, position, cacheable = _read_run(name, number, folder, line, metrics_id)
                cacheable = cacheable and record_id is not None
                if info is None:
                    continue  # removed since the folder was listed (a purge): not a run
                if info.values:
                    _share_config(info.config, shared)
                out = None
                clean = False  # only finite numbers (then faster to encode)
                if info.values and cacheable:  # rendered once: printed, kept
                    out, clean = rendered_json(info, finite)
                # Without `fields`, a rendered run is kept as its text alone (memory).
                item = Listed(name, number, folder, time_key(info),
                              info if fields or not rendered or out is None else None,
                              out if rendered else None)
                if info.values:
                    changed = changed or cacheable or line is None or \
                        line.head[1] is not None or line.head[4] != position
                    key = None if item.key == _NO_KEY else item.key
                    head = _dumps([number, record_id if cacheable else None, metrics_id,
                                   key, position], True) + _TAB + \
                        _dumps(_to_row(info, sections, table), clean) + _TAB
                    kept.append((number, key, not cacheable,
                                 (head, b"0" if out is None else out)))
                else:  # unreadable: nothing kept
                    changed = changed or line is not None
            yield item
        changed = changed or cache.skipped or cache.line(None) is not None  # runs now gone
        if changed or (kept and not cache.indexed()):
            _write(file, kept, cache, table)
    finally:
        cache.close()


def _read_run(name: str, number: int, folder: str, line: _Line | None,
              metrics_id: list[int] | None = None
              ) -> tuple[RunInfo | None, list[Any] | None, bool]:
    """A run read from its folder (None when the folder is gone), its tally's position,
    and whether its status lets the cache answer for it next time (an ended run); `line`,
    its cached line, gives the tally to extend."""
    from ..runs.metrics import Tally, kept, kept_if_current, tally

    path = f"{folder}/{number}"
    row = line.row() if line is not None else None
    position = line.head[4] if line is not None else None
    raw = load_raw_at(name, number, path)
    info = info_of(raw)
    if info.status == CORRUPT and not os.path.isdir(path):
        return None, None, False
    attempts = _attempts(raw.data)
    previous = Tally.at(position, _metrics_of(row)) if row is not None else None
    counted = None
    summary = _kept_tally(raw.data) if previous is None else None
    if summary is not None:
        # No cache: the tally kept in the record at the run's end, while the file is as it
        # was then (no read of it at all); else extended from there (see tally).
        if metrics_id is None:
            metrics_id = _identity(f"{path}/{METRICS_FILE}")
        counted = kept_if_current(summary, metrics_id, attempts)
        previous = kept(summary) if counted is None else None
    if counted is None:
        counted = tally(path, attempts, previous)
    position = counted.position() if counted is not None else None
    info = info._replace(folder=folder, metrics=counted.last if counted else {})
    return info, position, info.status not in (*ACTIVE, *UNREAD)


# A raw record (catalog.RawEntry.data) was checked when it was read: its parts are built
# without checking them again.

def _kept_tally(data: dict[str, Any] | None) -> MetricsTally | None:
    """The metrics tally a raw record keeps (RunRecord.metrics_tally), if any."""
    value = (data or {}).get("metrics_tally")
    return schema.build(MetricsTally, value) if isinstance(value, dict) else None


def _attempts(data: dict[str, Any] | None) -> list[Attempt]:
    """The attempts of a raw record that decide which metrics lines stand: none when
    there is one (only a later attempt supersedes lines)."""
    items = (data or {}).get("attempts") or ()
    return [schema.build(Attempt, item) for item in items] if len(items) > 1 else []


def _metrics_of(row: list[Any]) -> dict[str, Any]:
    """The metrics' last values in a cached line's fields."""
    try:
        metrics = row[-1]
        return metrics if isinstance(metrics, dict) else {}
    except (TypeError, IndexError, KeyError):
        return {}


class _Line:
    """One line of a cache file: its head parsed ([number, record id, metrics id, order
    key, tally]), the rest parsed only when asked."""

    __slots__ = ("_text", "head", "offset")

    def __init__(self, head: list[Any], offset: int, text: bytes) -> None:
        self.head = head
        self.offset = offset  # where the line starts in the file
        self._text = text  # the line after the head's tab

    def row(self) -> list[Any] | None:
        """The fields ([status, problem, *values, metrics]), or None when unreadable."""
        try:
            row = fast_loads(self._text.split(_TAB, 1)[0])
        except ValueError:
            return None
        return row if type(row) is list else None

    def listed(self, name: str, folder: str, sections: list[Any], shared: dict[Any, Any],
               fields: bool, rendered: bool) -> Listed | None:
        """The run this line answers for (its RunInfo with `fields`, its --json object
        with `rendered`); None when the line is not what this xpm writes."""
        number = self.head[0]
        key = self.head[3]
        if key is None:
            key = _NO_KEY
        elif type(key) is not float:
            return None
        info = None
        if fields:
            row = self.row()
            if row is None:
                return None
            info = _from_row(name, number, folder, row, sections, shared)
            if info is None:
                return None
        out = None
        if rendered:
            out = self._text.partition(_TAB)[2].rstrip(b"\n")
            if out[-1:] != b"}":
                return None
        return Listed(name, number, folder, key, info, out)


class _Reader:
    """The cache file's lines, read forward as the run numbers ascend."""

    def __init__(self, file: Path, shared: dict[Any, Any]) -> None:
        self.file = file
        self.sections: list[Any] = []
        self.skipped = False  # a line was dropped: its run is gone, or it was unreadable
        self._file: IO[bytes] | None = None
        self._next: _Line | None = None
        self._offset = 0
        try:
            self._file = open(file, "rb")  # noqa: SIM115 (closed by close())
            first = self._file.readline()
            self._offset = len(first)
            header = json.loads(first)
            if header.get("format") != FORMAT or header.get("columns") != KEYS or \
                    not isinstance(header["sections"], list):
                raise ValueError("another format")
            self.sections = [_share_section(s, shared) for s in header["sections"]]
        except (OSError, ValueError, AttributeError, KeyError, TypeError):
            self.close()
        self._source = self._file  # kept open until close(), to copy lines from

    def line(self, number: int | None) -> _Line | None:
        """The line of run `number`, if any; with None, the next line left."""
        while True:
            if self._next is None:
                self._next = self._read()
                if self._next is None:
                    return None
            if number is None or self._next.head[0] == number:
                line, self._next = self._next, None
                return line
            if self._next.head[0] > number:
                return None
            self._next = None  # a run that is gone
            self.skipped = True

    def _read(self) -> _Line | None:
        while self._file is not None:
            offset = self._offset
            text = self._file.readline()
            self._offset += len(text)
            if not text:
                self._file = None
                return None
            head, tab, rest = text.partition(_TAB)
            try:
                row = fast_loads(head)
                if tab and type(row) is list and len(row) == 5 and type(row[0]) is int:
                    return _Line(row, offset, rest)
            except ValueError:
                pass
            self.skipped = True
        return None

    def copy(self, offset: int) -> bytes:
        """The line at `offset` of the file read, as it is (OSError when it cannot be)."""
        if self._source is None:
            raise OSError("the cache file is closed")
        self._source.seek(offset)
        line = self._source.readline()
        return line if line.endswith(b"\n") else line + b"\n"  # a file cut short

    def indexed(self) -> bool:
        """Whether NAME.index describes the file read, and can be read."""
        if self._source is None:
            return False
        index = _read_index(self.file)
        return index is not None and index[0] == _file_identity(self._source)

    def close(self) -> None:
        for f in (self._file, getattr(self, "_source", None)):
            if f is not None:
                f.close()
        self._file = self._source = None


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


class FiniteRuns:
    """Whether a run's `--json` object holds only finite numbers, quickly: only metrics
    and config can hold others (a record's numbers are checked when read), and equal
    config sections are one object, looked at once (the memo keeps each alive)."""

    def __init__(self) -> None:
        self.sections: dict[int, tuple[Any, bool]] = {}

    def __call__(self, item: dict[str, Any]) -> bool:
        metrics = item["metrics"]
        if metrics and not _finite_sum(metrics.values()):
            return False
        for value in item["config"].values():
            if type(value) is dict:
                known = self.sections.get(id(value))
                if known is None:
                    known = self.sections[id(value)] = (value, console.all_finite(value))
                if not known[1]:
                    return False
            elif not console.all_finite(value):
                return False
        return True


def _finite_sum(values: Any) -> bool:
    """No float among `values` is inf or nan (False, too, when their sum overflows)."""
    total = sum(v for v in values if type(v) is float)
    return bool(total - total == 0.0)


def rendered_json(info: RunInfo, finite: FiniteRuns) -> tuple[bytes, bool]:
    """A run's `ls --json` object without its path (the last key), as a cache line keeps
    it (`with_path` completes it), and whether it holds only finite numbers."""
    data = info.to_json()
    del data["path"]
    clean = finite(data)
    # orjson's bytes keep the room they grew in (a third more); a listing keeps 100,000 of
    # them, so they are copied to their size.
    return memoryview(console.json_line(data, lambda _: clean)).tobytes(), clean


def with_path(out: bytes, path: str) -> bytes:
    """A cached `ls --json` object (`rendered_json`) with the run's path, as `ls` prints
    it."""
    return out[:-1] + b',"path":' + console.json_line(path) + b"}"


def _write(file: Path, kept: list[Kept], cache: _Reader, table: list[Any]) -> None:
    """The cache file, written in one step (atomic_file): its header (`table`, the config
    sections its lines refer to), its lines (a line that did not change copied as it
    is), then its index."""
    index: list[Any] = []
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(file) as f:
            header = _dumps({"format": FORMAT, "columns": KEYS, "sections": table}) + b"\n"
            f.write(header)
            offset = len(header)
            for number, json_key, every_time, source in kept:
                if isinstance(source, int):
                    line = cache.copy(source)
                else:
                    head, out = source
                    line = head + out + b"\n"
                f.write(line)
                index.extend((number, json_key, offset, 1 if every_time else 0))
                offset += len(line)
            f.flush()
            identity = _file_identity(f)
        write_atomic(_index_file(file), _dumps({"format": FORMAT, "cache": identity}) +
                     b"\n" + _dumps(index) + b"\n")
    except OSError:  # a read-only tree, a full disk: listing works without the cache
        pass


def _dumps(value: Any, clean: bool = False) -> bytes:
    """Compact JSON; `clean` (only finite numbers in `value`, which orjson would write as
    null) lets orjson encode it, 5 times faster."""
    if clean:
        import orjson

        try:
            return orjson.dumps(value)
        except TypeError:  # text that is no valid UTF-8 (undecodable file names)
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8",
                                                                              "surrogateescape")
