"""Reading metrics.jsonl: one JSON object per line, {"step": ..., "time": ..., name: value}."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from .record import METRICS_FILE

RESERVED = ("step", "time", "rank")

# What listing reads of each metrics.jsonl: its final block, whatever the file's size.
TAIL_BYTES = 4096
# Deleted from a line to get its shape: two lines of one shape log the same metrics.
_NUMERIC = b"0123456789.+-"


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
        fd = os.open(os.path.join(run_dir, METRICS_FILE), os.O_RDONLY)
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
    lines = chunk.split(b"\n")
    shapes: list[Any] = chunk.translate(None, _NUMERIC).split(b"\n")
    rows = _newest_of_each_shape(lines, shapes)
    if any(row is None or any(map(_has_numeric, row)) for row in rows.values()):
        # A torn or malformed line (the one before it of its shape counts), or metric
        # names with digits: tell the lines apart by their strings (names) instead.
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
        last.update(rows[index] or {})
    for key in RESERVED:
        last.pop(key, None)
    return last


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
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) else None


def summarize(rows: list[dict[str, Any]], non_finite: bool = False
              ) -> dict[str, MetricSummary]:
    """Last, min, max and number of samples of each numeric metric (finite values only).

    With `non_finite`, inf, -inf and nan count too (a loss that diverged): the last value
    may be one of them, min and max pass over nan (nan when every value is nan)."""
    out: dict[str, MetricSummary] = {}
    for row in rows:
        at = step(row)
        for key, raw in row.items():
            value = number(raw, non_finite)
            if key in RESERVED or value is None:
                continue
            seen = out.get(key)
            if seen is None:
                out[key] = MetricSummary(value, value, value, 1, at)
            else:
                least = value if seen.min != seen.min or value < seen.min else seen.min
                most = value if seen.max != seen.max or value > seen.max else seen.max
                out[key] = MetricSummary(value, least, most, seen.samples + 1, at)
    return out
