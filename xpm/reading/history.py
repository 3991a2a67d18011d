"""A run's whole metric history as rows, for `xpm metrics`: one row per step (consecutive
lines of one step, such as a training line and a validation line, merged), superseded
lines left out, in the order logged."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..runs.catalog import load_entry
from ..runs.metrics import ATTEMPT, RESERVED_NAMES, STEP, TIME, Reader
from ..runs.tree import RunRef

COLUMNS = (STEP, TIME, ATTEMPT)


def reader(ref: RunRef) -> Reader:
    record = load_entry(ref).record
    return Reader(ref.path, record.attempts if record else ())


def names(source: Reader) -> list[str]:
    """The metrics logged, in the order first seen (one pass over the file)."""
    seen: dict[str, None] = {}
    for block in source.blocks():
        for keys in dict.fromkeys(map(tuple, block)):  # each shape of line once
            seen.update(dict.fromkeys(keys))
    return [name for name in seen if name not in RESERVED_NAMES]


def rows(source: Reader, wanted: Sequence[str] = ()) -> Iterator[dict[str, Any]]:
    """One dict per step: step, time, attempt and the metrics (only `wanted` ones, when
    given; a row holding none of them is left out)."""
    only = set(wanted)
    pending: dict[str, Any] | None = None
    for block in source.blocks():
        for row in block:
            if only:
                kept = {k: v for k, v in row.items() if k in only}
                if not kept:
                    continue
                row = {k: row[k] for k in COLUMNS if k in row} | kept
            at = row.get(STEP)
            if pending is not None and at is not None and pending.get(STEP) == at \
                    and type(at) is int and not (row.keys() & pending.keys() - RESERVED_NAMES):
                pending.update(row)
                continue
            if pending is not None:
                yield pending
            pending = dict(row)
    if pending is not None:
        yield pending
