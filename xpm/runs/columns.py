"""Some metrics of metrics.jsonl read as columns straight from its bytes, for plots.

Plotting a hundred runs parses every line of a hundred files, and most of what a line
holds is not drawn. Here a block of lines is decoded by msgspec into small objects that
hold only the fields asked for (the x axis, the metrics plotted, and the attempt and step
where superseded lines must be told apart): the others are skipped unconverted, a metric
is converted to a float (or None) in C, and each field comes back as a column. That is
about twice as fast as parsing every line into a dict.

It answers only for a plain block: every line one JSON object, in valid UTF-8, every
value plotted a number, null or absent (a boolean, a string, a list, a number too large
for a float, Python's bare NaN are not). For any other block it answers None and the
caller reads the block's rows as every reader does (runs.metrics.Reader), so a bad line is
counted and reported there, and the curves are the same whichever way a block was read
(tests/test_curve_reading.py compares them). Superseded lines and those of other ranks
are left out here too; the `nonfinite` marker is not applied (its values are null, which
a plot leaves out as it does nan and inf). The one case this misses: a block holding both
a blank line and a line of two objects (`{...}{...}`), which each count as one line, so
the block reads as plain and the two objects are plotted instead of reported as a bad
line (telling that apart would cost a second scan of every block).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import msgspec

from .metrics import (
    _NON_FINITE,
    ATTEMPT,
    NONFINITE,
    RANK,
    RESERVED,
    RESERVED_NAMES,
    STEP,
    block_columns,
    line_names,
    present,
)

if TYPE_CHECKING:
    from .metrics import Reader

_Number = int | float | None  # an x: a step stays an int (superseding compares ints)
_Value = float | None  # a metric: an int read as a float, a boolean refused
# Decoders made so far, by (axis, metrics, superseding, strict): made once per process.
_DECODERS: dict[tuple[Any, ...], tuple[msgspec.json.Decoder[Any], list[str]]] = {}


class Block:
    """One block's columns: x (None where a line has none), and each metric's values (None
    where a line has none or null), all in line order, superseded lines left out."""

    __slots__ = ("marks", "metrics", "xs")

    def __init__(self, xs: list[Any], metrics: dict[str, list[float | None]],
                 marks: list[Any] | None = None) -> None:
        self.xs = xs
        self.metrics = metrics
        self.marks = marks  # each line's `nonfinite` marker, when asked for and some has one


class Columns:
    """Reads blocks of one run's lines (or of several runs that log alike: what it learns
    of the metric names carries over) as columns of `axis` ("step" or "time") and the
    `wanted` metrics, or of every metric when none is wanted."""

    def __init__(self, axis: str, wanted: Collection[str] = (),
                 cutoffs: dict[int, float] | None = None, rank: int = 0,
                 marked: bool = False) -> None:
        self.axis = axis
        self.marked = marked  # the `nonfinite` markers too (Block.marks)
        self.rank = rank  # the rank whose lines stand (those without a rank are rank 0's)
        self.learn = not wanted  # every metric: names found as the blocks go
        self.names = [name for name in wanted if name not in RESERVED_NAMES]
        self.cutoffs = cutoffs or {}

    def read(self, body: bytes, count: int) -> Block | None:
        """The columns of `count` complete lines `body` (without the last newline); None
        when the block is not plain (see the module's docstring)."""
        if not count:
            return None
        if not body.isascii():
            try:
                body.decode()
            except UnicodeDecodeError:  # msgspec passes over bad bytes in skipped strings
                return None
        rows = self._decode(body)
        if rows is None and self.learn:
            new = [name for name in line_names(body)
                   if name not in RESERVED_NAMES and name not in self.names]
            if new:  # metrics not seen before: a decoder that knows them too
                self.names.extend(new)
                rows = self._decode(body)
        if rows is None or len(rows) != count:  # a blank line, or two objects on one line
            return None
        return self._columns(rows)

    def _decode(self, body: bytes) -> list[Any] | None:
        decoder, _ = self._decoder()
        try:
            return decoder.decode_lines(body)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None

    def _decoder(self) -> tuple[msgspec.json.Decoder[Any], list[str]]:
        """The decoder of the current names, and its fields' attribute names."""
        key = (self.axis, tuple(self.names), bool(self.cutoffs), self.learn, self.marked)
        made = _DECODERS.get(key)
        if made is None:
            # fields: x, then (with superseding) attempt and step, then the metrics; when
            # learning names, every reserved name too and no other key allowed (so that
            # a line with a metric not yet known is refused, and the names learnt)
            fields: list[tuple[str, Any, Any]] = [("x", _Number, None), ("k", Any, None)]
            rename = {"x": self.axis, "k": RANK}
            if self.marked:
                fields.append(("n", Any, None))
                rename["n"] = NONFINITE
            if self.cutoffs:
                fields.append(("a", Any, None))
                rename["a"] = ATTEMPT
                if self.axis != STEP:
                    fields.append(("s", Any, None))
                    rename["s"] = STEP
            if self.learn:
                for index, name in enumerate(n for n in RESERVED if n not in rename.values()):
                    fields.append((f"r{index}", Any, None))
                    rename[f"r{index}"] = name
            attributes = []
            for index, name in enumerate(self.names):
                fields.append((f"m{index}", _Value, None))
                rename[f"m{index}"] = name
                attributes.append(f"m{index}")
            row = msgspec.defstruct("Row", fields, rename=rename, gc=False,
                                    forbid_unknown_fields=self.learn)
            made = (msgspec.json.Decoder(row), attributes)
            _DECODERS[key] = made
        return made

    def _columns(self, rows: list[Any]) -> Block:
        _, attributes = self._decoder()
        ranks = list(map(attrgetter("k"), rows))
        if ranks.count(None) != len(ranks) or self.rank:  # as Reader keeps a rank's lines
            wanted = self.rank
            rows = [row for row, rank in zip(rows, ranks, strict=True)
                    if (rank if type(rank) is int else 0) == wanted]
        if self.cutoffs:
            limits = self.cutoffs
            steps = list(map(attrgetter("x" if self.axis == STEP else "s"), rows))
            attempts = list(map(attrgetter("a"), rows))
            rows = [row for row, attempt, at in zip(rows, attempts, steps, strict=True)
                    if not (type(attempt) is int and attempt in limits and type(at) is int
                            and at > limits[attempt])]
        xs = list(map(attrgetter("x"), rows))
        metrics = {name: list(map(attrgetter(attribute), rows))
                   for name, attribute in zip(self.names, attributes, strict=True)}
        marks = list(map(attrgetter("n"), rows)) if self.marked else None
        return Block(xs, metrics, marks if marks and marks.count(None) != len(marks) else None)


# ---- summaries: metrics.columns of a large file ----------------------------------------

def metric_columns(reader: Reader, rank: int) -> Iterator[tuple[str, list[Any], list[Any]]]:
    """What runs.metrics.columns yields of a Reader, (metric, values, steps), every plain
    block read as columns of every metric (the `nonfinite` markers applied; values that
    are None, no value on a line or null, left out), the others as rows."""
    source = Columns(STEP, (), reader.cutoffs, rank, marked=True)
    for body, first, count in reader.bodies():
        block = source.read(body, count)
        if block is None:
            yield from block_columns(reader.rows_of(body, first, count))
            continue
        if block.marks is not None:
            _mark(block)
        for key, column in block.metrics.items():
            found = present(block.xs, column)
            if found is not None:
                yield key, found[2], found[1]


def _mark(block: Block) -> None:
    """The non-finite values that the lines' `nonfinite` markers name, put back."""
    for index, marker in enumerate(block.marks or ()):
        if isinstance(marker, dict):
            for key, name in marker.items():
                column = block.metrics.get(key)
                if column is not None and column[index] is None and name in _NON_FINITE:
                    column[index] = _NON_FINITE[name]
