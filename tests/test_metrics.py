"""metrics.tail_values: the last value of each metric from the end of metrics.jsonl."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from xpm.runs.metrics import MetricSummary, read, summarize, tail_values


def write(run_dir: Path, rows: list[dict[str, Any]], tail: str = "") -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows) + tail
    (run_dir / "metrics.jsonl").write_text(text)


def expected(run_dir: Path, window: int) -> dict[str, Any]:
    """Last values over the complete lines that lie wholly in the final `window` bytes."""
    data = (run_dir / "metrics.jsonl").read_bytes()
    start = max(0, len(data) - window)
    chunk = data[start:]
    if start:
        chunk = chunk[chunk.index(b"\n") + 1:] if b"\n" in chunk else b""
    last: dict[str, Any] = {}
    for line in chunk.split(b"\n"):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        last.update(row)
    last.pop("step", None)
    last.pop("time", None)
    return last


def test_small_file_gives_the_same_as_reading_it_all(tmp_path: Path) -> None:
    write(tmp_path, [{"step": 1, "time": 1.0, "loss": 0.9, "lr": 0.1},
                     {"step": 1, "time": 1.0, "val_acc": 0.5},
                     {"step": 2, "time": 2.0, "loss": 0.7, "lr": 1e-05},
                     {"step": 3, "time": 3.0, "loss": 0.5, "lr": 0.05}])
    assert tail_values(tmp_path) == expected(tmp_path, 1 << 30) == {
        "loss": 0.5, "lr": 0.05, "val_acc": 0.5}


def test_metric_names_with_digits_are_told_apart(tmp_path: Path) -> None:
    rows = []
    for step in range(20):
        rows.append({"step": step, "time": 1.0, f"layer{step % 3}": step, "top1": step / 10})
    rows.append({"step": 20, "time": 1.0, "loss1": 3.0})
    rows.append({"step": 21, "time": 1.0, "loss2": 4.0})
    write(tmp_path, rows)
    assert tail_values(tmp_path) == {"layer0": 18, "layer1": 19, "layer2": 17, "top1": 1.9,
                                     "loss1": 3.0, "loss2": 4.0}


def test_a_torn_last_line_counts_the_line_before_it(tmp_path: Path) -> None:
    write(tmp_path, [{"step": 1, "loss": 0.9, "acc": 0.1}, {"step": 2, "loss": 0.8, "acc": 0.2}],
          tail='{"step": 3, "loss": 0.7, "ac')
    assert tail_values(tmp_path) == {"loss": 0.8, "acc": 0.2}


def test_only_the_final_block_is_read(tmp_path: Path) -> None:
    rows = [{"step": 0, "rare": 1.0}] + [{"step": s, "loss": 1 / s} for s in range(1, 2000)]
    write(tmp_path, rows)
    assert any("rare" in row for row in read(tmp_path))  # in the file, not in its tail
    assert tail_values(tmp_path) == {"loss": 1 / 1999}
    assert tail_values(tmp_path, window=10) == {}  # no whole line in 10 bytes


def test_no_file_or_empty_file(tmp_path: Path) -> None:
    assert tail_values(tmp_path) == {}
    (tmp_path / "metrics.jsonl").write_text("")
    assert tail_values(tmp_path) == {}
    (tmp_path / "metrics.jsonl").write_text("not json\n[1, 2]\n\n")
    assert tail_values(tmp_path) == {}


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_a_full_parse_of_the_block(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    for trial in range(60):
        rows = []
        for step in range(rng.randint(0, 150)):
            row: dict[str, Any] = {"step": step, "time": 1.7e9 + step * 0.37}
            kind = rng.random()
            if kind < 0.6:
                row.update(loss=rng.random() * 10 ** rng.randint(-8, 3),
                           lr=rng.choice([1e-3, 0.1, 3e-05, -1.5]))
            elif kind < 0.75:
                row.update(val_acc=rng.random(), phase=rng.choice(["a", "b1", "c.2"]))
            elif kind < 0.9:
                row[f"layer{rng.randint(0, 3)}"] = rng.random()
            else:
                row.update(top1=rng.randint(-5, 5), flag=rng.random() < 0.5, note=None)
            rows.append(row)
        tail = rng.choice(["", "", '{"step": 9, "lo', "garbage\n"])
        write(tmp_path, rows, tail)
        window = rng.choice([40, 300, 1000, 4096, 100_000])
        assert tail_values(tmp_path, window) == expected(tmp_path, window), (trial, window)


def test_summaries_of_non_finite_values() -> None:
    nan, inf = float("nan"), float("inf")
    rows = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": nan}, {"step": 3, "loss": -inf},
            {"step": 4, "loss": 1.0}, {"step": 5, "loss": nan}]
    assert summarize(rows) == {"loss": MetricSummary(1.0, 1.0, 2.0, 2, 4)}  # finite only
    [(last, least, most, samples, step)] = summarize(rows, non_finite=True).values()
    assert last != last and (least, most, samples, step) == (-inf, 2.0, 5, 5)
    [summary] = summarize([{"g": nan}, {"g": nan}], non_finite=True).values()
    assert all(v != v for v in summary[:3]) and summary.samples == 2


def last_of_every_metric(run_dir: Path) -> dict[str, Any]:
    """The oracle: the whole file read line by line, the last value of each metric."""
    last: dict[str, Any] = {}
    for row in read(run_dir):
        last.update({k: v for k, v in row.items() if k not in ("step", "time", "attempt")})
    return last


@pytest.mark.parametrize("seed", range(20))
def test_tail_values_agree_with_reading_the_whole_file(tmp_path: Path, seed: int) -> None:
    """Random logs (dense and sparse metrics, names with digits, torn lines) whose every
    metric is logged again near the end: the tail must give what the whole file gives,
    judged by reading the whole file, not by parsing the same final block."""
    rng = random.Random(seed)
    names = ["loss", "acc", "val_loss", "lr", "top1", "layer.0", "grad_norm"]
    rows: list[dict[str, Any]] = []
    for step in range(rng.randint(1, 3000)):
        row: dict[str, Any] = {"step": step, "time": step / 10}
        for name in rng.sample(names, rng.randint(1, 3)):
            row[name] = rng.choice([rng.random(), rng.randint(-5, 5), 1e-9 * rng.random()])
        rows.append(row)
    for name in names:  # each metric once more near the end, in a random order
        rows.insert(len(rows) - rng.randint(0, 3), {"step": len(rows), name: rng.random()})
    tail = rng.choice(["", '{"step": 9999, "loss": 0.', "not json\n"])
    write(tmp_path, rows, tail=tail)
    assert tail_values(tmp_path) == last_of_every_metric(tmp_path)


@pytest.mark.xfail(strict=True, reason="a metric last logged before the final block is not "
                   "seen (the sparse-metric bug; the listing's tally fixes it)")
def test_a_sparse_metric_logged_only_early_is_seen(tmp_path: Path) -> None:
    rows = [{"step": 0, "val_acc": 0.5}] + [{"step": s, "loss": 1 / s} for s in range(1, 3000)]
    write(tmp_path, rows)
    assert tail_values(tmp_path) == last_of_every_metric(tmp_path)
