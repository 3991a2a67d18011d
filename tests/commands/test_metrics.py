"""Metrics people can trust: real runs that log NaN, log sparsely, crash and resume; what
`xpm metrics`, `show`, `diff` and the API read back."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import xpm
from benchmarks.common import MEASURED
from tests.conftest import run_xpm

TRAIN = """\
import sys
import xpm

run = xpm.current_run()
start = int(run.checkpoint.read_text()) if run.checkpoint else 0
for step in range(start + 10, 70, 10):
    run.log(step=step, loss=1.0 / step, acc=float("nan") if step == 30 else step / 100)
    if step == 30:
        run.log(step=step, val_acc=0.6)  # sparse: once in the whole run
    if step % 20 == 0:
        with run.saving(step) as path:
            path.write_text(str(step))
    if step == 50 and not run.resumed:
        sys.exit(3)  # crashes after logging step 50; the newest checkpoint is step 40
"""


def _not_json(name: str) -> None:
    pytest.fail(f"{name} is not JSON")


@pytest.fixture
def resumed(project: Path) -> Path:
    """A run that crashed after step 50 and was resumed from its checkpoint of step 40."""
    (project / "train.py").write_text(TRAIN)
    assert run_xpm("run", "-n", "fit", "--", "python3", "train.py").code == 3
    result = run_xpm("resume", "fit")
    assert result.code == 0, result
    return project / "results" / "fit" / "1"


def test_resumed_run_has_one_curve_for_every_reader(resumed: Path) -> None:
    lines = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    # the file is append only: attempt 1's step 50 is still there, marked as attempt 1
    assert [(r["step"], r["attempt"]) for r in lines if "loss" in r] == [
        (10, 1), (20, 1), (30, 1), (40, 1), (50, 1), (50, 2), (60, 2)]

    run = xpm.load_run(resumed)
    assert [r["step"] for r in run.metrics() if "loss" in r] == [10, 20, 30, 40, 50, 60]
    assert [r["attempt"] for r in run.metrics() if "loss" in r] == [1, 1, 1, 1, 2, 2]

    result = run_xpm("metrics", "fit/1")
    assert result.code == 0, result
    table = list(csv.DictReader(io.StringIO(result.out)))
    assert [(r["step"], r["attempt"]) for r in table] == [
        ("10", "1"), ("20", "1"), ("30", "1"), ("40", "1"), ("50", "2"), ("60", "2")]
    assert list(table[0]) == ["step", "time", "attempt", "loss", "acc", "val_acc"]
    assert table[2]["acc"] == "nan" and table[2]["val_acc"] == "0.6"  # one row per step
    assert table[0]["val_acc"] == ""

    shown = json.loads(run_xpm("show", "fit/1", "--json").out)["metrics"]
    assert shown["loss"]["samples"] == 6 and shown["loss"]["last_step"] == 60
    assert shown["val_acc"] == {"last": 0.6, "min": 0.6, "max": 0.6, "samples": 1,
                                "last_step": 30}
    assert shown["acc"]["samples"] == 6  # nan counts in show, as what it is

    diff = json.loads(run_xpm("diff", "fit/1", "fit/1", "--json", "--all", "--only",
                                 "metrics").out)
    fields = {f["key"]: f["values"][0] for f in diff["sections"]["metrics"]["fields"]}
    assert (fields["loss"]["samples"], fields["loss"]["last_step"]) == (6, 60)
    assert fields["acc"]["samples"] == 5  # diff compares finite values


def test_nan_is_written_as_standard_json(resumed: Path) -> None:
    text = (resumed / "metrics.jsonl").read_text()
    assert "NaN" not in text
    for line in text.splitlines():
        json.loads(line, parse_constant=_not_json)
    [row] = [json.loads(line) for line in text.splitlines() if '"nonfinite"' in line]
    assert row["acc"] is None and row["nonfinite"] == {"acc": "nan"}
    out = run_xpm("metrics", "fit/1", "-m", "acc", "--json").out.splitlines()
    assert [json.loads(line)["acc"] for line in out] == [0.1, 0.2, "nan", 0.4, 0.5, 0.6]


def _listed_metrics(project: Path, run: str) -> dict[str, object]:
    """`xpm ls --json`'s metrics of one run, with no listing cache (a cold listing)."""
    import shutil

    shutil.rmtree(project / "results" / ".cache", ignore_errors=True)
    result = run_xpm("ls", "-a", "--json")
    assert result.code == 0, result
    [listed] = [r for r in json.loads(result.out) if r["id"] == run]
    metrics: dict[str, object] = listed["metrics"]
    return metrics


def test_an_ended_run_keeps_its_tally_and_a_cold_listing_reads_no_metrics(
        resumed: Path) -> None:
    project = resumed.parents[2]
    path = resumed / "metrics.jsonl"
    kept = json.loads((resumed / "run.json").read_text())["metrics_tally"]
    st = path.stat()
    assert (kept["inode"], kept["size"], kept["mtime_ns"]) == (st.st_ino, st.st_size,
                                                                 st.st_mtime_ns)
    assert kept["attempts"] == "1:40.0"  # attempt 1's lines past step 40 are superseded
    assert kept["last"] == {"loss": 1 / 60, "acc": 0.6, "val_acc": 0.6}  # the sparse one too
    assert _listed_metrics(project, "fit/1") == kept["last"]

    # The file changed in place but looks unchanged (inode, size, modification time):
    # the listing takes the kept values, so it read no byte of the file.
    text = path.read_bytes()
    assert text.endswith(b'"acc": 0.6}\n')
    with open(path, "r+b") as f:
        f.seek(len(text) - len(b'0.6}\n'))
        f.write(b"0.9}\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _listed_metrics(project, "fit/1")["acc"] == 0.6
    os.utime(path)  # now it looks changed too: read again
    assert _listed_metrics(project, "fit/1")["acc"] == 0.9

    # A line appended after the end (a user's tool): read from where the tally stopped.
    with open(path, "a") as f:
        f.write('{"step": 70, "attempt": 2, "test_acc": 0.7}\n')
    assert _listed_metrics(project, "fit/1") == {"loss": 1 / 60, "acc": 0.9, "val_acc": 0.6,
                                                 "test_acc": 0.7}


def test_a_kept_non_finite_last_value_is_standard_json(project: Path) -> None:
    (project / "train.py").write_text(
        "import xpm\nrun = xpm.current_run()\n"
        "run.log(step=1, loss=0.5, gap=1.0)\nrun.log(step=2, loss=float('nan'))\n")
    assert run_xpm("run", "-n", "nan", "--", "python3", "train.py").code == 0
    record = (project / "results" / "nan" / "1" / "run.json").read_text()
    kept = json.loads(record, parse_constant=_not_json)["metrics_tally"]
    assert kept["last"] == {"loss": None, "gap": 1.0, "nonfinite": {"loss": "nan"}}
    assert _listed_metrics(project, "nan/1") == {"loss": "nan", "gap": 1.0}


def test_several_runs_get_a_run_column(project: Path) -> None:
    (project / "train.py").write_text(
        "import xpm\nrun = xpm.current_run()\n"
        "for s in range(3):\n    run.log(step=s, loss=run.config['lr'] * s)\n")
    for lr in ("0.1", "0.2"):
        assert run_xpm("run", "-n", "lr", "-s", f"lr={lr}", "--", "python3",
                       "train.py").code == 0
    result = run_xpm("metrics", "lr/1", "lr/2", "-m", "loss")
    assert result.code == 0, result
    rows = list(csv.reader(io.StringIO(result.out)))
    assert rows[0] == ["run", "step", "time", "attempt", "loss"]
    assert [(r[0], r[1], r[4]) for r in rows[1:]] == [
        ("lr/1", "0", "0.0"), ("lr/1", "1", "0.1"), ("lr/1", "2", "0.2"),
        ("lr/2", "0", "0.0"), ("lr/2", "1", "0.2"), ("lr/2", "2", "0.4")]
    assert run_xpm("metrics", "lr/1", "--csv", "--json").code == 2
    assert run_xpm("metrics", "nope").code == 1


def test_corrupt_line_is_reported_once_with_its_number(resumed: Path) -> None:
    path = resumed / "metrics.jsonl"
    lines = path.read_text().splitlines()
    lines.insert(2, '{"step": 15, "loss": 0.')
    path.write_text("\n".join(lines) + "\n")
    for args in (["show", "fit/1"], ["metrics", "fit/1"], ["diff", "fit/1", "fit/1"],
                 ["plot", "fit/1"]):
        result = run_xpm(*args)
        assert result.code == 0, result
        problems = [line for line in result.err.splitlines() if "metrics.jsonl" in line]
        assert problems == ["xpm: warning: fit/1: metrics.jsonl line 3 is not a JSON object; "
                            "skipped it"] * (2 if args[0] == "diff" else 1), args


@pytest.mark.slow
def test_huge_file_streams_in_bounded_memory(project: Path) -> None:
    from tests.records import write_run

    run_dir = write_run(project, "big")
    with open(run_dir / "metrics.jsonl", "w") as f:
        for step in range(1_500_000):
            if step == 700_000:
                f.write('{"step": 700000, "loss": garbage}\n')
                continue
            f.write(f'{{"step": {step}, "time": {1.7e9 + step * 0.01:.3f}, "attempt": 1, '
                    f'"loss": {1 / (step + 1):.9f}}}\n')
    assert os.path.getsize(run_dir / "metrics.jsonl") > 100e6
    for args in (["show", "big", "--json"], ["diff", "big", "big", "--only", "metrics"]):
        out, err, peak = _run_measured(project, args)
        assert err.count("line 700001 is not a JSON object") == (2 if args[0] == "diff" else 1)
        assert peak < 200, f"xpm {args[0]} used {peak:.0f} MB"
        if args[0] == "show":
            assert json.loads(out)["metrics"]["loss"]["samples"] == 1_499_999


def _run_measured(project: Path, args: list[str]) -> tuple[str, str, float]:
    """stdout, stderr and peak memory (MB) of `xpm ARGS`."""
    peak = project / "peak.txt"
    proc = subprocess.run([sys.executable, "-c", MEASURED, *args], capture_output=True,
                          text=True, env={**os.environ, "PEAK_FILE": str(peak)}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr, int(peak.read_text()) / 1024


def test_a_sweeps_trials_by_name_at_k(project: Path) -> None:
    (project / "train.py").write_text(
        "import xpm\nrun = xpm.current_run()\nrun.log(step=1, loss=run.config['lr'])\n")
    result = run_xpm("sweep", "-n", "sw", "-s", "lr=0.1,0.2", "--", "python3", "train.py")
    assert result.code == 0, result
    rows = list(csv.reader(io.StringIO(run_xpm("metrics", "sw@1", "-m", "loss").out)))
    assert [(r[0], r[4]) for r in rows] == [("run", "loss"), ("sw/1", "0.1"), ("sw/2", "0.2")]
    assert run_xpm("plot", "sw@1").code == 0
