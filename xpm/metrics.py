"""Reading metrics.jsonl: one JSON object per line, {"step": ..., "time": ..., name: value}."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

from .record import METRICS_FILE

RESERVED = ("step", "time")


class MetricSummary(NamedTuple):
    last: float
    min: float
    max: float
    samples: int
    last_step: int | None


def read(run_dir: Path) -> list[dict[str, Any]]:
    """Every well-formed line, in order; a torn or malformed line is skipped."""
    rows: list[dict[str, Any]] = []
    try:
        with open(run_dir / METRICS_FILE, "rb") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    except (FileNotFoundError, NotADirectoryError):
        pass
    return rows


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def last_values(run_dir: Path) -> dict[str, Any]:
    """The last value logged for each metric."""
    last: dict[str, Any] = {}
    for row in read(run_dir):
        for key, value in row.items():
            if key not in RESERVED:
                last[key] = value
    return last


def summarize(rows: list[dict[str, Any]]) -> dict[str, MetricSummary]:
    """Last, min, max and number of samples of each numeric metric."""
    out: dict[str, MetricSummary] = {}
    for row in rows:
        step = row.get("step") if isinstance(row.get("step"), int) else None
        for key, value in row.items():
            number = _number(value)
            if key in RESERVED or number is None:
                continue
            seen = out.get(key)
            if seen is None:
                out[key] = MetricSummary(number, number, number, 1, step)
            else:
                out[key] = MetricSummary(number, min(seen.min, number), max(seen.max, number),
                                         seen.samples + 1, step)
    return out
