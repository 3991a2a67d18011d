"""A run's whole metric history as rows, for `xpm metrics`: one row per step (consecutive
lines of one step, such as a training line and a validation line, merged), superseded
lines left out, in the order logged; the lines of every rank, with a `rank` column where
some line carries one (`run.log(..., all_ranks=True)`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..runs.catalog import load_entry
from ..runs.metrics import ATTEMPT, RANK, RESERVED_NAMES, STEP, TIME, Reader, line_names
from ..runs.tree import RunRef

COLUMNS = (STEP, TIME, ATTEMPT)


def reader(ref: RunRef) -> Reader:
    record = load_entry(ref).record
    return Reader(ref.path, record.attempts if record else (), rank=None)


def names(source: Reader) -> tuple[list[str], bool]:
    """The metrics logged, in the order first seen, and whether a line carries a rank.

    A quick pass: a CSV's header comes before its rows, so the columns must be known
    before the rows are read. It parses only one line of each shape in each block (see
    runs.metrics.line_names); every line only where superseded lines must be told apart."""
    seen: dict[str, None] = {}
    for body, first, count in source.bodies():
        if source.cutoffs:
            for keys in dict.fromkeys(map(tuple, source.rows_of(body, first, count))):
                seen.update(dict.fromkeys(keys))
        else:
            seen.update(dict.fromkeys(line_names(body)))
    return [name for name in seen if name not in RESERVED_NAMES], RANK in seen


def rows(source: Reader, wanted: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """One dict per step (and rank): step, time, attempt, rank and the metrics (only
    `wanted` ones, when given; a row holding none of them is left out)."""
    only = set(wanted)
    pending: dict[str, Any] | None = None
    kept_columns = (*COLUMNS, RANK)
    for block in source.blocks():
        for row in block:
            if only:
                kept = {k: v for k, v in row.items() if k in only}
                if not kept:
                    continue
                row = {k: row[k] for k in kept_columns if k in row} | kept
            at = row.get(STEP)
            if pending is not None and at is not None and pending.get(STEP) == at \
                    and type(at) is int and pending.get(RANK) == row.get(RANK) \
                    and not (row.keys() & pending.keys() - RESERVED_NAMES):
                pending.update(row)
                continue
            if pending is not None:
                yield pending
            pending = dict(row)
    if pending is not None:
        yield pending
