"""`xpm metrics RUN... [-m METRIC]... [--csv | --json]`: the whole history of runs' metrics,
one row per step, for pandas and spreadsheets."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from .. import console
from ..project import load_project
from ..reading import history
from ..reading.picking import pick
from ..runs.metrics import non_finite_name


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
        names = list(wanted)
        if not names:  # one pass to learn the metrics, one to write them
            seen: dict[str, None] = {}
            for ref in refs:
                seen.update(dict.fromkeys(history.names(history.reader(ref))))
            names = list(seen)
        header = (["run"] if several else []) + [*history.COLUMNS, *names]
        console.csv_rows(header, (
            ([ref.id] if several else []) + [_cell(row.get(k)) for k in header[several:]]
            for ref, source in zip(refs, readers, strict=True)
            for row in history.rows(source, wanted)))
    for ref, source in zip(refs, readers, strict=True):
        if (problem := source.problem(ref.id)) is not None:
            console.warn(problem)
    return 0


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return non_finite_name(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value
