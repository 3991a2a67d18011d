"""`xpm metrics RUN... [-m METRIC]... [--csv | --json]`: the whole history of runs' metrics,
one row per step, for pandas and spreadsheets."""

from __future__ import annotations

import json
import sys
from typing import Any

from .. import console
from ..project import load_project
from ..reading import history
from ..reading.picking import pick
from ..runs.metrics import RANK


def metrics(runs: tuple[str, ...], wanted: tuple[str, ...], as_json: bool) -> int:
    project = load_project()
    refs = pick(project.results_dir, runs, whole_names=False)
    several = len(refs) > 1
    readers = [history.reader(ref) for ref in refs]
    if as_json:
        encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                                  allow_nan=False).encode
        write = sys.stdout.write
        for ref, source in zip(refs, readers, strict=True):
            for row in history.rows(source, wanted):
                if several:
                    row = {"run": ref.id, **row}
                try:
                    write(encode(row) + "\n")
                except ValueError:  # a non-finite number: the names --json uses elsewhere
                    write(encode(console.standard(row)) + "\n")
    else:
        names, ranked = list(wanted), False
        seen: dict[str, None] = {}
        for ref in refs:  # a quick pass for the columns (the header comes first)
            found, has_rank = history.names(history.reader(ref))
            seen.update(dict.fromkeys(found))
            ranked = ranked or has_rank
        names = names or list(seen)
        columns = [*history.COLUMNS, *([RANK] if ranked else []), *names]
        header = (["run"] if several else []) + columns
        console.csv_rows(header, (
            ([ref.id] if several else []) + _cells(row, columns)
            for ref, source in zip(refs, readers, strict=True)
            for row in history.rows(source, wanted)))
    for ref, source in zip(refs, readers, strict=True):
        if (problem := source.problem(ref.id)) is not None:
            console.warn(problem)
    return 0


def _cells(row: dict[str, Any], columns: list[str]) -> list[Any]:
    """A row's CSV cells: none as empty, nan, inf and -inf as such (what csv writes for a
    float), a list or mapping as JSON."""
    cells = list(map(row.get, columns))
    kinds = set(map(type, cells))
    if dict in kinds or list in kinds:
        cells = [json.dumps(c, ensure_ascii=False) if isinstance(c, dict | list) else c
                 for c in cells]
    return cells
