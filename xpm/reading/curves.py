"""Runs' metrics as curves, for `xpm plot`: one curve per run and metric (superseded
stretches left out), labelled by the config keys that vary between the runs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any, NamedTuple

from ..runs.catalog import load_raw
from ..runs.metrics import NUMBER_TYPES, RESERVED_NAMES, STEP, TIME, Reader, direction, shapes
from ..runs.record import RunRecord
from ..runs.tree import RunRef
from .query import RunInfo, as_text, info_of

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


def load(ref: RunRef, x: str = "step", wanted: Sequence[str] = ()) -> RunCurves:
    """The curves of one run, against its steps (a line without a step counts as the next
    point of its metric) or the seconds since its first line (`x="time"`)."""
    raw = load_raw(ref)
    record = None
    if raw.data is not None:
        try:
            record = RunRecord.from_json(raw.data)
        except (KeyError, TypeError, ValueError):
            record = None
    reader = Reader(ref.path, record.attempts if record else ())
    xs_of: dict[str, list[Any]] = {}
    ys_of: dict[str, list[Any]] = {}
    only = set(wanted)
    axis = STEP if x == "step" else TIME
    for block in reader.blocks():
        groups = shapes(block)
        for keys, _group in sorted(groups, key=lambda g: block.index(g[1][0])):
            for key in keys:  # metrics in the order first logged
                if key not in RESERVED_NAMES and (not only or key in only):
                    xs_of.setdefault(key, [])
                    ys_of.setdefault(key, [])
        for keys, group in groups:
            xcol: list[Any] | None = None
            for key in keys:
                if key in RESERVED_NAMES or (only and key not in only):
                    continue
                if xcol is None:
                    xcol = [row.get(axis) for row in group]
                column = [row[key] for row in group]
                xs, ys = xs_of.setdefault(key, []), ys_of.setdefault(key, [])
                if (set(map(type, column)) in NUMBER_TYPES and math.isfinite(math.fsum(column))
                        and set(map(type, xcol)) in NUMBER_TYPES):
                    xs.extend(xcol)
                    ys.extend(column)
                    continue
                for at, value in zip(xcol, column, strict=True):
                    if type(value) not in (int, float) or not math.isfinite(value):
                        continue  # nan and inf have no place on a plot
                    if type(at) not in (int, float):
                        if axis == TIME:
                            continue
                        at = xs[-1] + 1 if xs else 0  # no step: the next point
                    xs.append(at)
                    ys.append(value)
    if axis == TIME:
        start = min((xs[0] for xs in xs_of.values() if xs), default=0.0)
        xs_of = {k: [t - start for t in xs] for k, xs in xs_of.items()}
    curves = {}
    for key, xs in xs_of.items():
        ys = ys_of[key]
        if not xs:
            continue
        if any(a > b for a, b in pairwise(xs)):
            order = sorted(range(len(xs)), key=xs.__getitem__)
            xs, ys = [xs[i] for i in order], [ys[i] for i in order]
        curves[key] = Curve([float(v) for v in xs], [float(v) for v in ys])
    return RunCurves(ref, info_of(raw), record, curves, reader.problem(ref.id))


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
