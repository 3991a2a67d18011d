"""Metrics read as columns (runs.columns, msgspec) are what they are read as rows (the
reader every command shares), whatever the file holds: bad lines, old NaN, ranks, nulls,
non-numbers, lines without a step, superseded stretches, several blocks. For plots'
curves, and for `show`'s and `diff`'s summaries and curves of a large file."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from xpm.reading import curves
from xpm.reading.compare import read_metrics
from xpm.runs import metrics
from xpm.runs.columns import Block, Columns
from xpm.runs.metrics import MetricSummary, encode
from xpm.runs.record import Attempt
from xpm.runs.tree import RunRef


def line(rng: random.Random, step: int, attempt: int, odd: float) -> str:
    """One line of metrics.jsonl: what run.log writes, or with odds `odd` anything else."""
    value = round(rng.uniform(-2, 2), 4)
    kind = rng.randrange(14)
    if rng.random() >= odd:  # the common case
        return encode({"step": step, "time": 1000.0 + step / 4, "attempt": attempt,
                       "loss": value, "acc": rng.randrange(100)})
    return [
        encode({"step": step, "attempt": attempt, "val_acc": value}),
        encode({"time": 1000.0 + step, "loss": value}),  # no step: the next point
        encode({"step": step, "loss": rng.choice([float("nan"), float("inf")]),
                "acc": value}),  # a nonfinite marker
        f'{{"step": {step}, "loss": NaN, "acc": {value}}}',  # older files' bare NaN
        encode({"step": step, "loss": rng.choice([True, "x", [1], None, 10**30])}),
        encode({"step": rng.choice([True, "7", 2.5, None]), "loss": value}),
        encode({"step": step, "rank": rng.choice([0, 1, True]), "loss": value}),
        rng.choice(["garbage", "[1, 2]", '{"step": 5, "lo', "7", '{"loss": 1e400}']),
        encode({"step": step, "top1": value, "layer.0": value, "lo\u00dfs": value}),
        f'{{"step": {step}, "lo\\u0073s": {value}, "acc": 1, "acc": 2}}',
        encode({"step": step, "loss": value, "extra": {"deep": [[[[1]]]]}}),
        encode({"step": step, "loss": value, "name": "caf\u00e9"}),
        f'{{"step": {step}, "loss": {value}, "s": "\\ud800"}}',
        encode({"step": step, "attempt": rng.choice([True, "1", None]), "loss": value}),
    ][kind]


def write_run(tmp_path: Path, seed: int) -> tuple[RunRef, list[Attempt]]:
    rng = random.Random(seed)
    folder = tmp_path / f"r{seed}" / "1"
    folder.mkdir(parents=True)
    attempts = [Attempt(1, "start", "2024-01-01T00:00:00Z", "h", 1, ())]
    out = []
    step = 0
    odd = rng.choice([0.0, 0.02, 0.3])
    for _ in range(rng.randrange(1, 400)):
        if rng.random() < 0.01:  # a resume from a checkpoint (or none: started over)
            back = rng.choice([None, max(0, step - rng.randrange(1, 30))])
            attempts.append(Attempt(len(attempts) + 1, "resume", "2024-01-01T00:00:00Z", "h", 1, (),
                                    checkpoint=None if back is None else f"ckpt-{back}.pt"))
            step = 0 if back is None else back
        out.append(line(rng, step, len(attempts), odd))
        step += rng.choice([1, 1, 1, 0, 5])
    text = "\n".join(out) + "\n"
    # A blank line, two objects on one line (each a bad line for every reader), bytes that
    # are not UTF-8, a torn last line: never a blank line and two objects in one file (the
    # one case columns do not tell from a plain block; see runs.columns).
    anomaly = rng.randrange(6)
    if anomaly == 0:
        text = text.replace("\n", "\n\n", 1)
    elif anomaly == 1:
        text = text.replace("}\n", "}", 1)
    elif anomaly == 2:
        text = text.replace('"loss"', '"lo\udcffss"', 1)
    elif anomaly == 3:
        text += '{"step": 99, "loss": 0.'
    data = text.encode("utf-8", "surrogateescape")
    (folder / "metrics.jsonl").write_bytes(data)
    return RunRef(f"r{seed}", 1, folder), attempts


@pytest.mark.parametrize("block", [1 << 20, 700])
def test_columns_give_the_curves_rows_give(tmp_path: Path, block: int,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "BLOCK_BYTES", block)  # several blocks per file too
    answered = []
    plain = Columns.read

    def read_counted(self: Columns, body: bytes, count: int) -> Block | None:
        answered.append(found := plain(self, body, count))
        return found

    monkeypatch.setattr(Columns, "read", read_counted)
    for seed in range(60):
        ref, attempts = write_run(tmp_path, seed)
        for x, rank in (("step", 0), ("time", 0), ("step", 1)):
            for only in (set(), {"loss"}, {"val_acc", "acc"}):
                read = curves._read(ref, attempts, x, only, rank)
                rows = curves._read(ref, attempts, x, only, rank, columns=False)
                assert read == rows, (seed, x, rank, only)
                assert list(read.curves) == list(rows.curves), (seed, x, rank, only)
    assert answered.count(None) > 50 and len(answered) - answered.count(None) > 50


def test_a_plain_file_is_read_as_columns(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "1"
    folder.mkdir(parents=True)
    with open(folder / "metrics.jsonl", "w") as f:
        for step in range(100):
            f.write(json.dumps({"step": step, "time": 5.0 + step, "attempt": 1,
                                "loss": 1 / (step + 1), "acc": step}) + "\n")
    reader = curves._columns("step", set(), {}, 0)
    body = (folder / "metrics.jsonl").read_bytes()[:-1]
    block = reader.read(body, 100)
    assert block is not None and block.metrics["acc"][:3] == [0.0, 1.0, 2.0]
    assert reader.read(body.replace(b"\n", b"\n\n", 1), 101) is None  # a blank line
    assert reader.read(body.replace(b'"acc": 5}', b'"acc": true}'), 100) is None


def test_many_runs_are_read_by_two_processes_as_by_one(tmp_path: Path) -> None:
    results = tmp_path / "results"
    refs = []
    for seed in range(curves.SHARED_FROM + 3):
        ref, _ = write_run(results, seed)
        refs.append(ref)
    copied, _ = write_run(tmp_path / "elsewhere", 99)  # outside the tree: never cached
    refs.insert(1, copied)
    one = [curves.load(ref) for ref in refs]
    cache = results / ".cache"
    cold = curves.load_many(refs, cache_dir=cache)
    assert [run.curves for run in cold] == [run.curves for run in one]
    assert [run.problem for run in cold] == [run.problem for run in one]
    kept = sorted(p.parent.name for p in (cache / "curves").glob("*/1.step.r0.bin"))
    assert kept == sorted(ref.name for ref in refs if ref is not copied)  # both halves
    warm = curves.load_many(refs, cache_dir=cache)
    assert [run.curves for run in warm] == [run.curves for run in one]


def stepped_curves(rows: list[dict[str, Any]]) -> dict[str, dict[int, float]] | None:
    """Each metric's finite values by step, the last logged for a step, line by line;
    None when a line has no integer step (it would count by its place in the file)."""
    out: dict[str, dict[int, float]] = {}
    for row in rows:
        if type(row.get("step")) is not int:
            return None
        for key, value in row.items():
            if key not in metrics.RESERVED_NAMES and type(value) in (int, float) and \
                    math.isfinite(value):
                out.setdefault(key, {})[row["step"]] = float(value)
    return out


def summaries(rows: list[dict[str, Any]], non_finite: bool) -> dict[str, MetricSummary]:
    """Last, min, max, samples and last step of each metric, line by line."""
    out: dict[str, list[Any]] = {}
    for row in rows:
        at = row.get("step") if type(row.get("step")) is int else None
        for key, value in row.items():
            if key in metrics.RESERVED_NAMES or type(value) not in (int, float):
                continue
            value = float(value)
            if not non_finite and not math.isfinite(value):
                continue
            s = out.get(key)
            if s is None:
                out[key] = [value, value, value, 1, at]
                continue
            s[0], s[3], s[4] = value, s[3] + 1, at
            if value < s[1] or s[1] != s[1]:
                s[1] = value
            if value > s[2] or s[2] != s[2]:
                s[2] = value
    return {key: MetricSummary(*s) for key, s in out.items()}


def same(a: dict[str, MetricSummary], b: dict[str, MetricSummary]) -> bool:
    return a.keys() == b.keys() and all(
        str(a[k]) == str(b[k]) for k in a)  # nan == nan as text


@pytest.mark.parametrize("block", [1 << 20, 700])
def test_summaries_of_a_large_file_read_as_columns_are_those_of_rows(
        tmp_path: Path, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "BLOCK_BYTES", block)
    monkeypatch.setattr(metrics, "_large", lambda reader: True)  # every file, as columns
    for seed in range(40):
        ref, attempts = write_run(tmp_path, seed)
        rows = list(metrics.Reader(ref.path, attempts))
        for non_finite in (False, True):
            assert same(metrics.summarize(metrics.Reader(ref.path, attempts), non_finite),
                        summaries(rows, non_finite)), (seed, non_finite)
        read = read_metrics(metrics.Reader(ref.path, attempts))
        assert same(read.summaries, summaries(rows, False)), seed
        expected = stepped_curves(rows)
        if expected is not None:
            assert {k: c.as_dict() for k, c in read.curves.items()} == expected, seed
