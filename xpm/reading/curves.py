"""Runs' metrics as curves, for `xpm plot`: one curve per run and metric (superseded
stretches left out), labelled by the config keys that vary between the runs."""

from __future__ import annotations

import operator
import os
import sys
from bisect import bisect_left
from collections.abc import Sequence
from itertools import chain, islice
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..runs.catalog import load_raw
from ..runs.metrics import (
    RESERVED_NAMES,
    STEP,
    TIME,
    Reader,
    direction,
    present,
    signature,
)
from ..runs.record import Attempt, RunRecord
from ..runs.tree import RunRef
from . import curvecache
from .query import RunInfo, as_text, info_of

if TYPE_CHECKING:
    from ..runs.columns import Columns

X_AXES = ("step", "time")


class Curve(NamedTuple):
    xs: list[float]
    ys: list[float]


class RunCurves(NamedTuple):
    """One run's curves: metric → points in x order (finite values only)."""

    ref: RunRef
    info: RunInfo
    record: RunRecord | None
    curves: dict[str, Curve]
    problem: str | None  # bad lines in metrics.jsonl, said once

    @property
    def id(self) -> str:
        return self.ref.id


def load(ref: RunRef, x: str = "step", wanted: Sequence[str] = (), rank: int = 0,
         cache_dir: Path | None = None) -> RunCurves:
    """The curves of one run, against its steps (a line without a step counts as the next
    point of its metric) or the seconds since its first line (`x="time"`): rank 0's
    lines (and those without a rank), or another rank's. With `cache_dir` (the results
    tree's .cache), through the curve cache (see curvecache)."""
    raw = load_raw(ref)
    record = None
    if raw.data is not None:
        try:
            record = RunRecord.from_json(raw.data)
        except (KeyError, TypeError, ValueError):
            record = None
    attempts = record.attempts if record else ()
    only = set(wanted)
    where = curvecache.path_of(cache_dir, ref, x, rank) if cache_dir is not None else None
    key = curvecache.key_of(ref, signature(attempts)) if where is not None else None
    stored = curvecache.load(where, key, only) if where is not None and key else None
    if stored is None:
        stored = _read(ref, attempts, x, only, rank)
        if where is not None and key is not None:
            curvecache.store(where, key, only, stored)
    curves = {k: Curve(xs, ys) for k, (xs, ys) in stored.curves.items()}
    return RunCurves(ref, info_of(raw), record, curves, stored.problem)


SHARED_FROM = 16  # runs to plot from which a second process reads half of them


def load_many(refs: Sequence[RunRef], x: str = "step", wanted: Sequence[str] = (),
              rank: int = 0, cache_dir: Path | None = None) -> list[RunCurves]:
    """load() of each run, in order. With SHARED_FROM runs or more, a second core and a
    curve cache that can be written, a forked process reads every second run into the
    cache while this one reads the others, then this one reads those from the cache: a
    cold plot of many runs (every metrics.jsonl parsed) takes about half the time, a warm
    one (every run cached) what it took. Whatever the helper did not leave in the cache
    is read here."""
    helper = 0
    if cache_dir is not None and len(refs) >= SHARED_FROM and (os.cpu_count() or 1) > 1 \
            and os.access(cache_dir if cache_dir.exists() else cache_dir.parent, os.W_OK):
        shared = [ref for ref in refs[1::2] if curvecache.path_of(cache_dir, ref, x, rank)]
        if shared:
            helper = os.fork()
            if helper == 0:  # the helper: it only writes the cache, and never returns
                try:
                    for ref in shared:
                        load(ref, x, wanted, rank, cache_dir)
                finally:
                    os._exit(0)
    try:
        mine = {index: load(refs[index], x, wanted, rank, cache_dir)
                for index in range(0, len(refs), 2 if helper else 1)}
    finally:
        if helper:
            os.waitpid(helper, 0)
    return [mine.get(index) or load(ref, x, wanted, rank, cache_dir)
            for index, ref in enumerate(refs)]


def _read(ref: RunRef, attempts: Sequence[Attempt], x: str, only: set[str], rank: int,
          columns: bool = True) -> curvecache.Stored:
    """The curves of a run's metrics.jsonl: each block of lines read as columns of only
    the metrics wanted (runs.columns), or, where that does not answer (or not
    `columns`), as rows, which every reader reads alike."""
    reader = Reader(ref.path, attempts, rank=rank)
    points = _Points(STEP if x == "step" else TIME, only)
    fast = _columns(x, only, reader.cutoffs, rank) if columns else None
    for body, first, count in reader.bodies():
        block = fast.read(body, count) if fast is not None else None
        if block is not None:
            points.add_columns(block.xs, block.metrics)
        else:
            points.add_rows(reader.rows_of(body, first, count))
    return curvecache.Stored(points.curves(), reader.problem(ref.id))


_COLUMNS: dict[tuple[str, frozenset[str], str, int], Columns] = {}


def _columns(x: str, only: set[str], limits: dict[int, float], rank: int) -> Columns:
    """A columns reader (runs.columns), one per axis, metrics, superseding and rank, so
    that what one learns of the metric names serves the next run."""
    from ..runs.columns import Columns  # msgspec, imported only by what plots

    key = (x, frozenset(only), repr(sorted(limits.items())), rank)
    made = _COLUMNS.get(key)
    if made is None:
        made = _COLUMNS[key] = Columns(STEP if x == "step" else TIME, sorted(only), limits,
                                       rank)
    return made


_BIGGEST = int(sys.float_info.max)  # an int larger is no float


def _plottable(value: Any) -> float | None:
    """A value as a plot can show it: a finite number as a float, else None (nan, inf, a
    boolean, a string, an int too large for a float)."""
    kind = type(value)
    if kind is float:
        return value if value - value == 0.0 else None
    if kind is int:
        return float(value) if -_BIGGEST <= value <= _BIGGEST else None
    return None


class _Points:
    """Each metric's points as the blocks come (finite values only; a line without a step
    is the next point of its metric, a line without a time none), in the order each
    metric was first logged."""

    def __init__(self, axis: str, only: set[str]) -> None:
        self.axis = axis
        self.only = only
        self.xs: dict[str, list[Any]] = {}
        self.ys: dict[str, list[Any]] = {}

    def add_columns(self, xcol: list[float | None], metrics: dict[str, list[float | None]]
                    ) -> None:
        """A block's x column and metric columns: a finite number (a float for a metric),
        or None where a line has none that a plot can show."""
        firsts = []
        for key, column in metrics.items():
            found = present(xcol, column)
            if found is not None:
                firsts.append((found[0], key, found[1], found[2]))
        for _, key, xcol_kept, column in sorted(firsts, key=itemgetter(0)):
            xs, ys = self.xs.setdefault(key, []), self.ys.setdefault(key, [])
            ys.extend(column)
            if None not in xcol_kept:
                xs.extend(xcol_kept)
                continue
            for at in xcol_kept:  # lines without an x
                if at is not None:
                    xs.append(at)
                elif self.axis == TIME:
                    del ys[len(xs)]  # no time: no point
                else:
                    xs.append(xs[-1] + 1 if xs else 0)  # no step: the next point

    def add_rows(self, block: list[dict[str, Any]]) -> None:
        """Rows (runs.metrics.Reader's) as the columns that add_columns takes."""
        keys = [key for key in dict.fromkeys(chain.from_iterable(block))
                if key not in RESERVED_NAMES and (not self.only or key in self.only)]
        if keys:
            axis = self.axis
            self.add_columns([_plottable(row.get(axis)) for row in block],
                             {key: [_plottable(row.get(key)) for row in block]
                              for key in keys})

    def curves(self) -> dict[str, tuple[list[float], list[float]]]:
        xs_of = self.xs
        if self.axis == TIME:
            start = min((xs[0] for xs in xs_of.values() if xs), default=0.0)
            xs_of = {k: [t - start for t in xs] for k, xs in xs_of.items()}
        curves = {}
        for key, xs in xs_of.items():
            ys = self.ys[key]
            if not xs:
                continue
            if not all(map(operator.le, xs, islice(xs, 1, None))):  # not in x order
                order = sorted(range(len(xs)), key=xs.__getitem__)
                xs, ys = [xs[i] for i in order], [ys[i] for i in order]
            curves[key] = (list(map(float, xs)), ys)  # ys: floats already
        return curves


def decimate(xs: list[float], ys: list[float], buckets: int
             ) -> tuple[list[float], list[float]]:
    """The curve (in x order) cut into `buckets` equal stretches of x, one per pixel
    column, each kept as its lowest and highest point (in their order), with the first
    and last points: what a plot `buckets` wide shows of it, spikes included, in a few
    points per column instead of thousands."""
    count = len(xs)
    if count <= 2 * buckets + 2 or buckets < 1:
        return xs, ys
    low, width = xs[0], (xs[-1] - xs[0]) / buckets
    if not width > 0:
        return xs, ys
    keep = [0]
    start = 1
    for bucket in range(1, buckets + 1):
        end = bisect_left(xs, low + bucket * width, start, count - 1) if bucket < buckets \
            else count - 1
        if end > start:
            stretch = ys[start:end]
            least = start + stretch.index(min(stretch))
            most = start + stretch.index(max(stretch))
            keep.extend((least,) if least == most else
                        (least, most) if least < most else (most, least))
            start = end
    keep.append(count - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def default_metrics(runs: Sequence[RunCurves]) -> list[str]:
    """The metrics every run logs (else those any run logs), loss-like ones first, then
    the others in the order first logged."""
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.curves))
    shared = [n for n in names if all(n in r.curves for r in runs)] or list(names)
    return sorted(shared, key=lambda n: (not _loss_like(n), shared.index(n)))


def _loss_like(name: str) -> bool:
    return direction(name) == "min"


def labels(runs: Sequence[RunCurves]) -> list[str]:
    """Each run's label: the config values that vary between the runs (as `xpm diff` finds
    them), else its id; the id is added where two labels would be alike."""
    from .compare import varying_config

    if len(runs) == 1:
        return [runs[0].id]
    keys, flats = varying_config([r.record for r in runs])
    out = [", ".join(f"{k}={as_text(flat[k])}" for k in keys if k in flat) or run.id
           for run, flat in zip(runs, flats, strict=True)]
    for i, label in enumerate(out):
        if out.count(label) > 1 and label != runs[i].id:
            out[i] = f"{label} ({runs[i].id})"
    return out


def smooth(ys: list[float], window: int) -> list[float]:
    """The trailing mean over `window` points (fewer at the start)."""
    if window <= 1:
        return ys
    out, total = [], 0.0
    for i, value in enumerate(ys):
        total += value
        if i >= window:
            total -= ys[i - window]
        out.append(total / min(i + 1, window))
    return out


def time_unit(largest: float) -> tuple[str, float]:
    """The unit to show seconds in: (name, seconds per unit)."""
    if largest >= 3 * 3600:
        return "h", 3600.0
    if largest >= 180:
        return "min", 60.0
    return "s", 1.0
