"""metrics.jsonl: one JSON object per line, {"step": ..., "time": ..., "attempt": ..., name: value}.

Writing: every line is standard JSON (RFC 8259). A non-finite number is written as null,
and the line's `nonfinite` object says what it was (`{"loss": null, "nonfinite":
{"loss": "nan"}}`): pandas and jq read a missing value, xpm reads back nan, inf or -inf.
Files written by older versions, with Python's bare `NaN`/`Infinity`, still read.

Superseding: each line carries the attempt that wrote it. An attempt that resumed from the
checkpoint of step S supersedes the lines of earlier attempts with a step above S (an
attempt that resumed without a checkpoint started over: it supersedes all their stepped
lines). The file is never rewritten: run.json's attempts say where each began, and every
reader (`ls`, `show`, `diff`, `metrics`, `plot`, `Run.metrics()`) leaves those lines out,
so a resumed run has one curve. Lines without an attempt (older files, lines a program
wrote itself) are never superseded.

Ranks: `run.log(..., all_ranks=True)` lines carry the writer's `rank`. A run's curve is
rank 0's (and the lines without a rank); readers leave the other ranks' lines out unless
asked for one of them (`rank=N`) or for all (`rank=None`, as `xpm metrics` does).

Reading streams: the file is parsed in blocks of lines (one orjson parse per block, as a
JSON array; the standard library's json where orjson cannot be trusted with the block, and
line by line only in a block that holds a bad line), so memory stays bounded by the block
whatever the file's size. A line that is not a JSON object is skipped and counted (its
line number kept for one warning); an unfinished last line (a write in progress) is not.
"""

from __future__ import annotations

import json
import math
import operator
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, compress, repeat
from pathlib import Path
from typing import Any, NamedTuple

from .record import METRICS_FILE, Attempt, MetricsTally
from .regular import open_regular

STEP, TIME, ATTEMPT, NONFINITE, RANK = "step", "time", "attempt", "nonfinite", "rank"
RESERVED = (STEP, TIME, ATTEMPT, NONFINITE, RANK)  # never metric names
RESERVED_NAMES = frozenset(RESERVED)

# What listing reads of each metrics.jsonl: its final block, whatever the file's size.
TAIL_BYTES = 4096
# Deleted from a line to get its shape: two lines of one shape log the same metrics.
_NUMERIC = b"0123456789.+-"
# Bytes parsed at a time when streaming a file.
BLOCK_BYTES = 1 << 20
# Bad line numbers kept for the warning (the count goes on).
_KEPT_BAD = 3
# orjson (3.8) has no nesting limit and overflows the stack on objects nested about
# 100,000 deep: it parses a block only when no line in it can nest deeper than this.
_FAST_DEPTH = 512
_RANK_KEY = b'"rank"'
_NOT_OPENERS = bytes(sorted(set(range(256)) - set(b"\n{[")))

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class MetricSummary(NamedTuple):
    last: float
    min: float
    max: float
    samples: int
    last_step: int | None


# ---- writing --------------------------------------------------------------------------

def encode(entry: dict[str, Any]) -> str:
    """One line of metrics.jsonl (without its newline): standard JSON, a non-finite value
    as null plus its name under `nonfinite`; one nested in a list or mapping as null."""
    try:
        return json.dumps(entry, allow_nan=False)
    except ValueError:
        pass
    marker: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key, value in entry.items():
        if isinstance(value, float) and not math.isfinite(value):
            marker[str(key)] = non_finite_name(value)
            clean[key] = None
        else:
            clean[key] = _nulled(value)
    if marker:
        clean[NONFINITE] = marker
    return json.dumps(clean, allow_nan=False)


def non_finite_name(value: float) -> str:
    """"nan", "inf" or "-inf": the names `--json` output uses too."""
    return "nan" if value != value else ("inf" if value > 0 else "-inf")


def _nulled(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nulled(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nulled(v) for v in value]
    return value


def decode(row: dict[str, Any]) -> dict[str, Any]:
    """A parsed line with its `nonfinite` marker applied (and removed)."""
    marker = row.pop(NONFINITE, None)
    if isinstance(marker, dict):
        for key, name in marker.items():
            if row.get(key) is None and name in _NON_FINITE:
                row[key] = _NON_FINITE[name]
    return row


# ---- superseding ----------------------------------------------------------------------

def start_step(attempt: Attempt) -> float | None:
    """The step after which an attempt's lines replace those of the attempts before it:
    its checkpoint's step; -inf for a resume without a checkpoint (it started over); None
    for the first attempt, or a checkpoint whose name holds no step (nothing replaced)."""
    if attempt.number <= 1 or attempt.kind == "start":
        return None
    if not attempt.checkpoint:
        return -math.inf
    from .checkpoints import step_of

    step = step_of(Path(attempt.checkpoint).name)
    return None if step is None else float(step)


def cutoffs(attempts: Sequence[Attempt]) -> dict[int, float]:
    """Attempt number → the highest step of its lines that still stands (only attempts
    that later ones superseded in part)."""
    out: dict[int, float] = {}
    lowest = math.inf
    for attempt in sorted(attempts, key=lambda a: a.number, reverse=True):
        if lowest < math.inf:
            out[attempt.number] = lowest
        start = start_step(attempt)
        if start is not None:
            lowest = min(lowest, start)
    return out


def signature(attempts: Sequence[Attempt]) -> str:
    """The superseding that attempts make, as text (which caches are read under)."""
    return ";".join(f"{a}:{s}" for a, s in sorted(cutoffs(attempts).items()))


# ---- reading --------------------------------------------------------------------------

class Reader:
    """One streaming pass over a run's metrics.jsonl: iterate it for the rows that stand
    (decoded, superseded lines left out); afterwards `bad`, `bad_lines` and `superseded`
    say what was skipped, and `end` is the offset after the last complete line."""

    def __init__(self, run_dir: Path | str, attempts: Sequence[Attempt] = (),
                 start: int = 0, first_line: int = 1, rank: int | None = 0) -> None:
        self.path = os.path.join(run_dir, METRICS_FILE)
        self.cutoffs = cutoffs(attempts)
        self.rank = rank  # the rank whose lines stand (0: the run's curve); None: all
        self.start = start
        self.first_line = first_line
        self.bad = 0
        self.bad_lines: list[int] = []
        self.superseded = 0
        self.other_ranks = 0  # lines of ranks other than `rank`, left out
        self.lines = 0  # complete lines read
        self.end = start

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for rows in self.blocks():
            yield from rows

    def blocks(self) -> Iterator[list[dict[str, Any]]]:
        """The rows that stand, a block of lines at a time."""
        for body, first, count in self.bodies():
            yield self.rows_of(body, first, count)

    def bodies(self) -> Iterator[tuple[bytes, int, int]]:
        """The file's complete lines a block at a time, unparsed: (lines without the last
        newline, the first one's line number, how many); last, a final line without its
        newline (whole, or being written), with 0."""
        try:
            f = os.fdopen(open_regular(self.path), "rb")  # closed below (a generator)
        except OSError:  # none, or not a file one can read (a folder, a FIFO)
            return
        with f:
            if self.start:
                f.seek(self.start)
            rest = b""
            while True:
                block = f.read(BLOCK_BYTES)
                if not block:
                    break
                if rest:
                    block = rest + block
                cut = block.rfind(b"\n")
                if cut < 0:
                    rest = block
                    continue
                rest = block[cut + 1:]
                body = block[:cut]
                first = self.first_line + self.lines
                count = body.count(b"\n") + 1
                self.lines += count
                self.end += cut + 1
                yield body, first, count
            if rest.strip():
                yield rest, self.first_line + self.lines, 0

    def rows_of(self, body: bytes, first: int, count: int) -> list[dict[str, Any]]:
        """The rows that stand of a body from `bodies()`."""
        if not count:  # a last line without its newline: read when whole, else left
            row = _parse(body)
            return self._stand([row], NONFINITE in row, _RANK_KEY in body) if row else []
        return self._stand(self._parse(body, first, count), b'"nonfinite"' in body,
                           _RANK_KEY in body)

    def _parse(self, body: bytes, first: int, count: int) -> list[dict[str, Any]]:
        """The objects of complete lines `body` (the first is line `first`): the whole block
        parsed as one JSON array, line by line only when that fails."""
        if b"\n\n" not in body and body[:1] != b"\n":
            rows = _loads_lines(body, count)
            if rows is not None:
                return rows
        rows = []
        for index, line in enumerate(body.split(b"\n")):
            if not line.strip():
                continue
            row = _parse(line)
            if row is None:
                self.bad += 1
                if len(self.bad_lines) < _KEPT_BAD:
                    self.bad_lines.append(first + index)
            else:
                rows.append(row)
        return rows

    def _stand(self, rows: list[dict[str, Any]], marked: bool, ranked: bool = False
               ) -> list[dict[str, Any]]:
        """The rows decoded, those superseded and those of other ranks left out."""
        if marked:
            for row in rows:
                if NONFINITE in row:
                    decode(row)
        if self.rank is not None and (ranked or self.rank != 0):
            wanted, count = self.rank, len(rows)
            rows = [row for row in rows
                    if (r if type(r := row.get(RANK, 0)) is int else 0) == wanted]
            self.other_ranks += count - len(rows)
        limits = self.cutoffs
        if not limits:
            return rows
        kept = []
        for row in rows:
            attempt = row.get(ATTEMPT)
            if type(attempt) is int and attempt in limits:
                at = row.get(STEP)
                if type(at) is int and at > limits[attempt]:
                    self.superseded += 1
                    continue
            kept.append(row)
        return kept

    def problem(self, run_id: str) -> str | None:
        """One sentence about the bad lines skipped, or None."""
        if not self.bad:
            return None
        where = ", ".join(str(n) for n in self.bad_lines)
        more = f" and {self.bad - len(self.bad_lines)} more" if self.bad > len(self.bad_lines) \
            else ""
        if self.bad == 1:
            return f"{run_id}: {METRICS_FILE} line {where} is not a JSON object; skipped it"
        return (f"{run_id}: {METRICS_FILE} lines {where}{more} are not JSON objects; "
                "skipped them")


class Tally(NamedTuple):
    """The last value of every metric a metrics.jsonl ever logged (superseded lines left
    out), and where reading stopped, so that a listing extends it by the lines added since
    instead of reading the file again."""

    inode: int
    offset: int  # bytes of complete lines read
    lines: int  # complete lines read
    attempts: str  # the superseding it was read with (see `cutoffs`)
    seal: str  # the bytes before `offset` (hex): a file rewritten in place reads anew
    last: dict[str, Any]

    def position(self) -> list[Any]:
        """Where reading stopped, as JSON: the values are kept apart (listing keeps them
        as the run's metrics)."""
        return [self.inode, self.offset, self.lines, self.attempts, self.seal]

    @classmethod
    def at(cls, position: Any, last: dict[str, Any]) -> Tally | None:
        """The Tally of a `position()` and its values; None when it is not one."""
        try:
            inode, offset, lines, attempts, seal = position
            return cls(int(inode), int(offset), int(lines), str(attempts), str(seal),
                       dict(last))
        except (TypeError, ValueError):
            return None


_SEAL = 32


def tally(run_dir: Path | str, attempts: Sequence[Attempt] = (),
          previous: Tally | None = None) -> Tally | None:
    """The Tally of a run's metrics.jsonl (None without one): `previous` extended by the
    lines added since, when it was read from this file with the same superseding; else
    the whole file read."""
    path = os.path.join(run_dir, METRICS_FILE)
    try:
        st = os.stat(path)
    except OSError:
        return None
    limits = cutoffs(attempts)
    signed = signature(attempts)
    start = previous if previous is not None and previous.inode == st.st_ino and \
        previous.attempts == signed and previous.offset <= st.st_size and \
        _seal(path, previous.offset) == previous.seal else None
    if start is not None and start.offset == st.st_size:
        return start
    offset, lines = (start.offset, start.lines) if start else (0, 0)
    last = dict(start.last) if start else {}
    reader = Reader(run_dir, attempts, offset, lines + 1)
    for body, first, count in reader.bodies():
        if limits:  # superseded lines: every line parsed, to know which stand
            for keys, group in shapes(reader.rows_of(body, first, count)):
                final = group[-1]
                last.update((k, final[k]) for k in keys if k not in RESERVED_NAMES)
        else:  # only the newest line of each shape parsed (see block_values)
            last.update(block_values(body, count))
    offset, lines = reader.end, lines + reader.lines
    return Tally(st.st_ino, offset, lines, signed, _seal(path, offset), last)


def recorded(run_dir: Path | str, attempts: Sequence[Attempt],
             previous: MetricsTally | None = None) -> MetricsTally | None:
    """The tally of a run's metrics.jsonl to keep in its record when it ends (None without
    the file), extending `previous`, the one kept at the end of an earlier attempt."""
    path = os.path.join(run_dir, METRICS_FILE)
    try:
        st = os.stat(path)
    except OSError:
        return None
    counted = tally(run_dir, attempts, kept(previous) if previous is not None else None)
    if counted is None:
        return None
    unchanged = counted.inode == st.st_ino and counted.offset == st.st_size
    return MetricsTally(counted.inode, counted.offset, st.st_mtime_ns if unchanged else 0,
                        counted.lines, counted.attempts, counted.seal,
                        json.loads(encode(counted.last)))


def kept(summary: MetricsTally) -> Tally:
    """The Tally a record keeps (`recorded`)."""
    return Tally(summary.inode, summary.size, summary.lines, summary.attempts, summary.seal,
                 decode(dict(summary.last)))


def kept_if_current(summary: MetricsTally, identity: Sequence[int] | None,
                    attempts: Sequence[Attempt]) -> Tally | None:
    """The Tally a record keeps when metrics.jsonl is as it was then (`identity`: its
    inode, size and modification time now) under the same superseding; else None."""
    if identity is None or summary.mtime_ns == 0 or \
            [summary.inode, summary.size, summary.mtime_ns] != list(identity[:3]) or \
            summary.attempts != signature(attempts):
        return None
    return kept(summary)


def _seal(path: str, offset: int) -> str:
    try:
        with os.fdopen(open_regular(path), "rb") as f:
            f.seek(max(0, offset - _SEAL))
            return f.read(min(offset, _SEAL)).hex()
    except OSError:
        return ""


def read(run_dir: Path | str, attempts: Sequence[Attempt] = (), rank: int | None = 0
         ) -> list[dict[str, Any]]:
    """Every row that stands, in order (decoded; superseded, torn and malformed lines and
    those of other ranks left out)."""
    return list(Reader(run_dir, attempts, rank=rank))


def number(value: Any, non_finite: bool = False) -> float | None:
    """A metric's value as a float: a finite number (or any number, with `non_finite`),
    never a boolean; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if non_finite or math.isfinite(value) else None


def step(row: dict[str, Any]) -> int | None:
    """A row's integer step (a boolean is not a step)."""
    value = row.get("step")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


MIN, MAX = "min", "max"
_LOWER_SUBSTRINGS = ("loss", "error")
_LOWER_WORDS = frozenset({
    "err", "mse", "mae", "rmse", "nll", "perplexity", "ppl", "wer", "cer", "fid", "regret",
    "distance", "dist",
})
_HIGHER_WORDS = frozenset({
    "acc", "accuracy", "f1", "auc", "auroc", "roc", "precision", "prec", "recall", "score",
    "bleu", "rouge", "reward", "return", "map", "iou", "miou", "dice", "r2", "top", "correct",
    "ap", "ndcg", "mrr", "psnr", "ssim", "hit", "hits", "success",
})
_WORD = re.compile(r"[a-z0-9]+")


def direction(metric: str) -> str | None:
    """MIN when lower is better (losses, errors), MAX when higher is (accuracies, scores,
    rewards; `top5`, `hits@10`), None when the name does not tell. One rule for `xpm diff`'s
    "best" and `xpm clean --keep-best`."""
    lowered = metric.lower()
    if any(word in lowered for word in _LOWER_SUBSTRINGS):
        return MIN
    words = _WORD.findall(lowered)
    bases = {w.rstrip("0123456789") for w in words} | set(words)
    if bases & _HIGHER_WORDS:
        return MAX
    if bases & _LOWER_WORDS:
        return MIN
    return None


def tail_values(run_dir: Path | str, window: int = TAIL_BYTES) -> dict[str, Any]:
    """The last value of each metric logged in the final `window` bytes of metrics.jsonl.

    `read` reads the whole file; this costs the same for a file of 30 lines and of
    3 million, which is what listing thousands of runs needs. A metric last logged before
    that block is not seen (`xpm show` reads the whole file).

    Within the block only the newest line of each shape is parsed. A line's shape is the
    line without digits, signs and points: the lines one `run.log(...)` call writes at
    each step share a shape, and lines of one shape hold the same metrics, so the newest
    line holding a metric is the newest of its shape. When a parsed line has a metric
    whose name holds such a character (`top1`, `layer.0`), names could differ between
    lines of one shape, so shapes are then told apart by the lines' strings (the names).
    The one case this misses: an older line whose names differ from those of the newest
    line of its shape only by such characters (`loss1` on one line, `loss` on a later one).
    """
    try:
        fd = open_regular(os.path.join(run_dir, METRICS_FILE))
    except OSError:
        return {}
    try:
        size = os.fstat(fd).st_size
        start = max(0, size - window)
        chunk = os.pread(fd, size - start, start)
    except OSError:
        return {}
    finally:
        os.close(fd)
    if start:  # the block begins inside a line: drop that part
        chunk = chunk[chunk.find(b"\n") + 1:] if b"\n" in chunk else b""
    return block_values(chunk)


def block_values(chunk: bytes, count: int = 0) -> dict[str, Any]:
    """The last value of each metric in `chunk`, whole lines of metrics.jsonl (`count` of
    them, when known), parsing only the newest line of each shape (see tail_values);
    every line's, rank 0's, where lines carry a rank (`all_ranks=True`)."""
    count = count or chunk.count(b"\n") + 1
    values = _block_values(chunk, count)
    if values is None:
        reader = Reader("")
        values = {}
        for keys, group in shapes(reader.rows_of(chunk, 1, count)):
            values.update((k, group[-1][k]) for k in keys if k not in RESERVED_NAMES)
    return values


def _block_values(chunk: bytes, count: int) -> dict[str, Any] | None:
    """block_values when no line carries a rank; None when one may (every line must be
    parsed then, to leave out the other ranks)."""
    translated = chunk.translate(None, _NUMERIC)
    final = translated[translated.rfind(b"\n") + 1:]
    if _RANK_KEY in final:
        return None
    if len(translated) + 1 == (len(final) + 1) * count and \
            translated + b"\n" == (final + b"\n") * count:
        # Lines of one shape (one run.log call at every step): the last line says all.
        row = _parse(chunk[chunk.rfind(b"\n") + 1:])
        if row is not None and not any(map(_has_numeric, row)):
            decode(row)
            for key in RESERVED:
                row.pop(key, None)
            return row
    lines = chunk.split(b"\n")
    shapes: list[Any] = translated.split(b"\n")
    newest = dict(zip(shapes, range(len(shapes)), strict=True))
    if any(_RANK_KEY in shape for shape in newest):
        return None
    rows = {index: _parse(lines[index]) for index in newest.values()}
    if any(row is None or any(map(_has_numeric, row)) for row in rows.values()):
        # A torn or malformed line (the one before it of its shape counts), or metric
        # names with digits: tell the lines apart by their strings (names) instead.
        lines = lines or chunk.split(b"\n")
        shapes = [tuple(line.split(b'"')[1::2]) for line in lines]
        rows = _newest_of_each_shape(lines, shapes)
        if None in rows.values():
            rows = {}
            seen: set[Any] = set()
            for index in range(len(lines) - 1, -1, -1):
                if shapes[index] not in seen and (row := _parse(lines[index])) is not None:
                    seen.add(shapes[index])
                    rows[index] = row
    last: dict[str, Any] = {}
    for index in sorted(rows):
        last.update(decode(rows[index] or {}))
    for key in RESERVED:
        last.pop(key, None)
    return last


def line_names(chunk: bytes) -> list[str]:
    """The names in the lines of `chunk` (whole lines of metrics.jsonl; reserved ones
    too), in the order first seen, parsing only the first line of each shape (see
    tail_values); every line where a name holds a digit, sign or point or a line does not
    parse (lines of one shape could then hold other names)."""
    shapes = chunk.translate(None, _NUMERIC).split(b"\n")
    lines = chunk.split(b"\n")
    names: dict[str, None] = {}
    for shape in dict.fromkeys(shapes):
        row = _parse(lines[shapes.index(shape)])
        if row is None or any(map(_has_numeric, row)):
            break
        names.update(dict.fromkeys(row))
    else:
        return list(names)
    rows = _loads_lines(chunk, len(lines)) if b"\n\n" not in chunk else None
    for row in rows if rows is not None else map(_parse, lines):
        if row:
            names.update(dict.fromkeys(row))
    return list(names)


def _newest_of_each_shape(lines: list[bytes], shapes: list[Any]
                          ) -> dict[int, dict[str, Any] | None]:
    """Line index → parsed line (None when it does not parse), for the newest of each shape."""
    newest = dict(zip(shapes, range(len(shapes)), strict=True))
    return {index: _parse(lines[index]) for index in newest.values()}


def _has_numeric(name: str) -> bool:
    return any(c in "0123456789.+-" for c in name)


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return {}
    rows = _loads_lines(line, 1)
    return rows[0] if rows is not None else None


def _loads_lines(body: bytes, count: int) -> list[dict[str, Any]] | None:
    """The `count` lines of `body` (no empty ones) parsed as one JSON array, when each is
    an object; None when one is not, or is not JSON (the caller then reads line by line).

    orjson parses the block when it is safe: when no line can nest deeper than
    _FAST_DEPTH. A line nests at most as deep as it has openers (`{`, `[`), so the
    openers beyond the first of each line that has one bound the depth of every line.
    Else (nested values in many lines, or NaN that orjson refuses) json, whose recursion
    limit turns a line nested too deep into an error."""
    text = b"[" + body.replace(b"\n", b",") + b"]"
    marks = body.translate(None, _NOT_OPENERS)  # the newlines and openers only
    holding = marks.count(b"\n{") + (marks[:1] == b"{")  # lines with an opener
    rows: Any = None
    if len(marks) - (count - 1) - holding < _FAST_DEPTH:
        import orjson

        try:
            rows = orjson.loads(text)
        except orjson.JSONDecodeError:
            rows = None
    if rows is None:
        try:
            rows = json.loads(text)
        except (ValueError, RecursionError):
            return None
    if len(rows) == count and set(map(type, rows)) <= {dict}:
        return rows  # type: ignore[no-any-return]
    return None


def summarize(rows: Iterable[dict[str, Any]] | Reader, non_finite: bool = False
              ) -> dict[str, MetricSummary]:
    """Last, min, max and number of samples of each numeric metric (finite values only),
    in one pass (a Reader is read a block at a time, a column of each metric at a time,
    so that a file of millions of lines takes about what parsing it takes; see columns).

    With `non_finite`, inf, -inf and nan count too (a loss that diverged): the last value
    may be one of them, min and max pass over nan (nan when every value is nan)."""
    seen: dict[str, list[Any]] = {}  # name → [last, min, max, samples, last step]
    for key, column, steps in columns(rows):
        add_column(seen, key, column, steps, non_finite)
    return {key: MetricSummary(*s) for key, s in seen.items()}


def columns(rows: Iterable[dict[str, Any]] | Reader
            ) -> Iterator[tuple[str, list[Any], list[Any]]]:
    """(metric, values, steps) for each metric of each block, in the order logged. A Reader
    of a file of more than a block has each plain block read as columns of every metric
    (runs.columns.metric_columns: the same summaries and curves, at about half the cost)."""
    if isinstance(rows, Reader) and rows.rank is not None and _large(rows):
        from .columns import metric_columns  # msgspec: only for files of several blocks

        yield from metric_columns(rows, rows.rank)
        return
    blocks = rows.blocks() if isinstance(rows, Reader) else [list(rows)]
    for block in blocks:
        yield from block_columns(block)


def block_columns(block: list[dict[str, Any]]) -> Iterator[tuple[str, list[Any], list[Any]]]:
    """(metric, values, steps) of each metric of a block of rows, each in the order
    logged, the rows without it (or with null) left out."""
    keys = [key for key in dict.fromkeys(chain.from_iterable(block))
            if key not in RESERVED_NAMES]
    if not keys:
        return
    steps = [row.get(STEP) for row in block]
    for key in keys:
        found = present(steps, [row.get(key) for row in block])
        if found is not None:
            yield key, found[2], found[1]


_FEW_HOLES = 64  # lines without a value in a block cut out one by one (else a mask)


def present(xcol: list[Any], column: list[Any]) -> tuple[int, list[Any], list[Any]] | None:
    """The index of the first value that is not None, then the x column and the column
    less the lines where the column holds None; None when it holds nothing else."""
    missing = column.count(None)
    if missing == len(column):
        return None
    if not missing:
        return 0, xcol, column
    if missing <= _FEW_HOLES:  # a line here and there without it: cut those
        holes = _holes(column, missing)
        first = 0
        for hole in holes:
            if hole != first:
                break
            first += 1
        return first, without(xcol, holes), without(column, holes)
    mask = list(map(operator.is_not, column, repeat(None)))
    return mask.index(True), list(compress(xcol, mask)), list(compress(column, mask))


def _holes(column: list[Any], missing: int) -> tuple[int, ...]:
    """Where the `missing` Nones of a column are."""
    found, at = [], -1
    for _ in range(missing):
        at = column.index(None, at + 1)
        found.append(at)
    return tuple(found)


def without(values: list[Any], holes: tuple[int, ...]) -> list[Any]:
    """The values less those at `holes` (in order)."""
    out: list[Any] = []
    start = 0
    for hole in holes:
        out += values[start:hole]
        start = hole + 1
    out += values[start:]
    return out


def _large(reader: Reader) -> bool:
    """Whether a Reader's file holds more than a block (then read as columns)."""
    try:
        return os.stat(reader.path).st_size - reader.start > BLOCK_BYTES
    except OSError:
        return False


def shapes(rows: list[dict[str, Any]], by_first: bool = False
           ) -> list[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """The rows grouped by their keys, the group holding the last row last (so that a
    metric's last value is the last group's); with `by_first`, in the order each shape
    first appears."""
    keys = list(map(tuple, rows))
    if not keys:
        return []
    distinct = dict.fromkeys(keys)  # in the order first seen
    if len(distinct) == 1:
        return [(keys[0], rows)]
    groups = [(shape, list(compress(rows, map(shape.__eq__, keys)))) for shape in distinct]
    if by_first:
        return groups
    backwards = keys[::-1]
    return sorted(groups, key=lambda group: -backwards.index(group[0]))


NUMBER_TYPES = ({float}, {int}, {float, int})  # a column of numbers (no booleans)


def add_column(seen: dict[str, list[Any]], key: str, column: list[Any], steps: list[Any],
                non_finite: bool) -> None:
    types = set(map(type, column))
    if types in NUMBER_TYPES:
        total = math.fsum(column) if float in types else 0.0
        if math.isfinite(total):  # no nan or inf, and no sum too large: in C
            least, most = float(min(column)), float(max(column))
            at = steps[-1] if type(steps[-1]) is int else None
            s = seen.get(key)
            if s is None:
                seen[key] = [float(column[-1]), least, most, len(column), at]
                return
            s[0], s[3], s[4] = float(column[-1]), s[3] + len(column), at
            if least < s[1] or s[1] != s[1]:
                s[1] = least
            if most > s[2] or s[2] != s[2]:
                s[2] = most
            return
    for value, at in zip(column, steps, strict=True):  # value by value
        kind = type(value)
        if kind is int:
            value = float(value)
        elif kind is not float or (value - value != 0.0 and not non_finite):
            continue  # not a number (a boolean, a string), or not finite
        s = seen.get(key)
        at = at if type(at) is int else None
        if s is None:
            seen[key] = [value, value, value, 1, at]
            continue
        s[0], s[3], s[4] = value, s[3] + 1, at
        if value < s[1] or s[1] != s[1]:
            s[1] = value
        if value > s[2] or s[2] != s[2]:
            s[2] = value
