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


def test_a_sparse_metric_logged_only_early_is_in_the_tally(tmp_path: Path) -> None:
    """What listing shows (the tally), judged by the whole file: a metric logged once,
    long before the final block, is seen."""
    from xpm.runs.metrics import tally

    rows = [{"step": 0, "val_acc": 0.5}] + [{"step": s, "loss": 1 / s} for s in range(1, 3000)]
    write(tmp_path, rows)
    counted = tally(tmp_path)
    assert counted is not None and counted.last == last_of_every_metric(tmp_path)


# ---- the format: standard JSON, attempts, superseding, streaming ----------------------

from xpm.runs import metrics as metrics_module  # noqa: E402
from xpm.runs.metrics import Reader, cutoffs, decode, encode  # noqa: E402
from xpm.runs.record import Attempt  # noqa: E402


def attempt(number: int, kind: str, checkpoint: str | None = None) -> Attempt:
    return Attempt(number, kind, "2024-01-01T00:00:00.000+00:00", "h", 1, ("x",),
                   checkpoint=checkpoint)


def test_non_finite_values_are_standard_json_and_read_back() -> None:
    nan, inf = float("nan"), float("inf")
    line = encode({"step": 3, "loss": nan, "gain": inf, "drop": -inf, "ok": 1.5,
                   "hist": [1.0, nan]})
    data = json.loads(line, parse_constant=lambda name: pytest.fail(f"not JSON: {name}"))
    assert data["loss"] is None and data["nonfinite"] == {
        "loss": "nan", "gain": "inf", "drop": "-inf"}
    row = decode(data)
    assert row["loss"] != row["loss"] and row["gain"] == inf and row["drop"] == -inf
    assert row["ok"] == 1.5 and row["hist"] == [1.0, None] and "nonfinite" not in row
    assert encode({"step": 1, "loss": 0.5}) == '{"step": 1, "loss": 0.5}'  # no marker


def test_old_files_with_bare_nan_still_read(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 1, "loss": NaN}\n{"step": 2, "loss": Infinity}\n{"step": 3, "loss": 1}\n')
    rows = read(tmp_path)
    assert rows[0]["loss"] != rows[0]["loss"] and rows[1]["loss"] == float("inf")
    assert summarize(Reader(tmp_path)) == {"loss": MetricSummary(1.0, 1.0, 1.0, 1, 3)}


def test_cutoffs_from_the_attempts() -> None:
    first = attempt(1, "start")
    assert cutoffs([first]) == {}
    resumed = attempt(2, "resume", "/r/checkpoints/step-00000020.ckpt")
    assert cutoffs([first, resumed]) == {1: 20}
    again = attempt(3, "requeue", "/r/checkpoints/model.ckpt-10")  # went back further
    assert cutoffs([first, resumed, again]) == {1: 10, 2: 10}
    over = attempt(3, "resume")  # no checkpoint: it started over
    assert cutoffs([first, resumed, over]) == {1: float("-inf"), 2: float("-inf")}
    unknown = attempt(2, "resume", "/r/checkpoints/best.pt")  # no step in its name
    assert cutoffs([first, unknown]) == {}


def test_superseded_lines_are_left_out_and_unmarked_lines_kept(tmp_path: Path) -> None:
    rows = [{"step": s, "attempt": 1, "loss": s} for s in (10, 20, 30, 40)]
    rows += [{"step": 50}]  # no attempt (a line the program wrote itself): kept
    rows += [{"step": s, "attempt": 2, "loss": s + 0.5} for s in (30, 40, 60)]
    write(tmp_path, rows)
    attempts = [attempt(1, "start"), attempt(2, "resume", "checkpoints/step-20.ckpt")]
    reader = Reader(tmp_path, attempts)
    assert [(r["step"], r.get("attempt")) for r in reader] == [
        (10, 1), (20, 1), (50, None), (30, 2), (40, 2), (60, 2)]
    assert reader.superseded == 2 and reader.bad == 0
    assert len(read(tmp_path)) == 8  # without the attempts, nothing is superseded


def test_bad_lines_are_counted_once_with_their_numbers(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "BLOCK_BYTES", 64)  # lines cross block boundaries
    lines = [json.dumps({"step": s, "loss": s / 10}) for s in range(40)]
    lines[7] = '{"step": 7, "lo'
    lines[20] = "[1, 2]"
    lines[21] = ""
    lines[30] = '{"a": 1}, {"b": 2}'
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 40, "lo')
    reader = Reader(tmp_path)
    steps = [r["step"] for r in reader]
    assert steps == [s for s in range(40) if s not in (7, 20, 21, 30)]
    assert (reader.bad, reader.bad_lines) == (3, [8, 21, 31])  # the torn last line is not bad
    assert reader.problem("r/1") == ("r/1: metrics.jsonl lines 8, 21, 31 are not JSON "
                                     "objects; skipped them")


def test_block_parsing_agrees_with_line_by_line(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(5)
    rows = [{"step": s, "time": 1.0 * s, **({"loss": rng.random()} if s % 3 else
                                           {"val_acc": rng.random(), "flag": True})}
            for s in range(500)]
    write(tmp_path, rows)
    for block in (50, 333, 1 << 20):
        monkeypatch.setattr(metrics_module, "BLOCK_BYTES", block)
        assert read(tmp_path) == rows
        assert summarize(Reader(tmp_path)) == summarize(rows)


def test_tally_keeps_sparse_metrics_and_extends_by_what_was_added(tmp_path: Path) -> None:
    from xpm.runs.metrics import Tally, tally

    rows = [{"step": 0, "test_score": 0.25}] + [{"step": s, "loss": 1 / s}
                                                for s in range(1, 3000)]
    write(tmp_path, rows)
    first = tally(tmp_path)
    assert first is not None and first.last == {"test_score": 0.25, "loss": 1 / 2999}
    assert first.lines == 3000 and first.offset == (tmp_path / "metrics.jsonl").stat().st_size
    assert Tally.at(json.loads(json.dumps(first.position())), first.last) == first
    assert Tally.at("garbage", {}) is None
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write(encode({"step": 3000, "loss": float("nan"), "val": 2}) + "\n")
        f.write('{"step": 3001, "lo')  # being written
    more = tally(tmp_path, previous=first)
    assert more is not None and more.lines == 3001 and more.last["val"] == 2
    assert more.last["loss"] != more.last["loss"] and more.last["test_score"] == 0.25
    # only the added lines were read: a previous tally's values carry over as they are
    fake = first._replace(last={**first.last, "test_score": 9})
    assert tally(tmp_path, previous=fake).last["test_score"] == 9  # type: ignore[union-attr]
    # a file rewritten in place, or read with other superseding, is read anew
    write(tmp_path, [{"step": 1, "acc": 0.5}] * 3001)
    assert tally(tmp_path, previous=more).last == {"acc": 0.5}  # type: ignore[union-attr]
    resumed = [attempt(1, "start"), attempt(2, "resume", "step-1.ckpt")]
    write(tmp_path, [{"step": 1, "attempt": 1, "a": 1}, {"step": 2, "attempt": 1, "b": 2},
                     {"step": 2, "attempt": 2, "a": 3}])
    plain = tally(tmp_path)
    assert plain is not None and plain.last == {"a": 3, "b": 2}
    assert tally(tmp_path, resumed, previous=plain).last == {"a": 3}  # type: ignore[union-attr]
    assert tally(tmp_path / "nowhere") is None


def test_a_runs_curve_is_rank_0s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines that `run.log(..., all_ranks=True)` wrote carry their rank: every reader takes
    rank 0's (and the lines without a rank) as the run's curve, unless asked for another."""
    from xpm.runs.metrics import tally

    rows: list[dict[str, Any]] = []
    for s in range(300):
        rows.append({"step": s, "attempt": 1, "loss": 1 / (s + 1)})
        rows += [{"step": s, "attempt": 1, "rank": r, "grad": 10.0 * r + s} for r in range(3)]
    rows.append({"step": 300, "attempt": 1, "rank": 2, "only_rank_2": 1.0})
    write(tmp_path, rows)
    for block in (40, 1000, 1 << 20):
        monkeypatch.setattr(metrics_module, "BLOCK_BYTES", block)
        ours = [r for r in rows if r.get("rank", 0) == 0]
        assert read(tmp_path) == ours
        reader = Reader(tmp_path)
        assert list(reader) == ours and reader.other_ranks == 601
        assert [r for r in Reader(tmp_path, rank=2)] == [r for r in rows if r.get("rank") == 2]
        assert list(Reader(tmp_path, rank=None)) == rows
        assert summarize(Reader(tmp_path))["grad"].last == 299.0
        counted = tally(tmp_path)
        assert counted is not None and counted.last == {"loss": 1 / 300, "grad": 299.0}


def test_deeply_nested_lines_are_reported_not_a_crash(tmp_path: Path) -> None:
    """orjson 3.8 overflows the stack on objects nested 100,000 deep: such a line (and a
    block of many nested ones) is parsed by json, which says it is not a metrics line."""
    import subprocess
    import sys

    deep = '{"a": ' * 100_000 + "1" + "}" * 100_000
    nested = [{"step": s, "hist": [[s, 1], {"b": [2]}]} for s in range(400)]
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps({"step": 0, "loss": 1.0}) + "\n" + deep + "\n"
        + "".join(json.dumps(r) + "\n" for r in nested))
    code = ("import sys; from xpm.runs.metrics import Reader, tally; r = Reader(sys.argv[1]); "
            "rows = list(r); print(len(rows), r.bad_lines, rows[-1]['hist'], "
            "tally(sys.argv[1]).last['hist'])")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("[", 1)[0] == "401 "
    assert "[2]" in result.stdout and "[[399, 1], {'b': [2]}]" in result.stdout


def test_line_names_finds_every_name_in_first_seen_order() -> None:
    from xpm.runs.metrics import line_names

    def body(rows: list[Any]) -> bytes:
        return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()

    plain = [{"step": s, "loss": 0.5} for s in range(50)] + [{"step": 50, "val": 1}]
    assert line_names(body(plain)) == ["step", "loss", "val"]
    digits = [{"step": s, f"top{1 + 4 * (s % 2)}": 0.5} for s in range(10)]  # one shape
    assert line_names(body(digits)) == ["step", "top1", "top5"]
    torn = [{"step": 1, "a": 1}, '{"step": 2, "b', {"step": 3, "c": 2}]
    assert line_names(body(torn)) == ["step", "a", "c"]


@pytest.mark.parametrize("text", [
    b'{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.25}\n{"step": 3, "loss": 0.125}',
    b'{"step": 1, "loss": 0.5}',
    b'{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.25}\n{"step": 3, "loss": 0.1',
    b'{"step": 1, "loss": 0.5}\n{"step": 2, "loss": 0.25}\n{"step": 3, "lo',
    b'{"step": 1, "l1": 0.5}\n{"step": 2, "l1": 0.25}\n{"step": 3, "l1": 0.125}',
    b'{"step": 1, "acc": 0.5}\n{"step": 2, "loss": 0.25}\n{"step": 3, "loss": 0.125}',
    b'{"step": 1, "loss": null, "nonfinite": {"loss": "nan"}}\n'
    b'{"step": 2, "loss": null, "nonfinite": {"loss": "inf"}}',
])
def test_block_values_of_one_shape_agree_with_every_line_read(text: bytes) -> None:
    """Lines of one shape take a shortcut (only the last is parsed): the values are those
    of every line read in turn, the torn or malformed ones left out."""
    expected: dict[str, Any] = {}
    for line in text.split(b"\n"):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        expected.update(metrics_module.decode(row))
    for key in metrics_module.RESERVED:
        expected.pop(key, None)
    got = metrics_module.block_values(text)
    assert json.dumps(got) == json.dumps(expected)


def test_a_metrics_last_value_is_its_newest_whatever_the_kind_of_line() -> None:
    rows = [{"step": 1, "loss": 1.0, "acc": 0.1}, {"step": 2, "time": 5.0, "loss": 2.0},
            {"step": 3, "loss": float("nan"), "acc": 0.3}]
    assert summarize(rows)["loss"] == MetricSummary(2.0, 1.0, 2.0, 2, 2)  # nan not counted
    assert str(summarize(rows, non_finite=True)["loss"]) == str(
        MetricSummary(float("nan"), 1.0, 2.0, 3, 3))
