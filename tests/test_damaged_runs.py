"""Run folders damaged by hand or by accident: every reader gives a line or lists the run
`corrupt`, never blocks, never crashes (issue 15)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_xpm, xpm_argv
from tests.records import write_run
from xpm.reading.listing import infos
from xpm.runs.lock import reconcile
from xpm.runs.record import read_record


def test_a_fifo_named_run_json_is_corrupt_and_never_opened(project: Path) -> None:
    write_run(project, "a")
    bad = write_run(project, "a")
    (bad / "run.json").unlink()
    os.mkfifo(bad / "run.json")
    for args in (["ls", "-a"], ["show", "a/2"]):
        result = run_xpm(*args, timeout=20)  # a reader blocked on the FIFO times out
        assert result.code == 0, result
        assert "a/2 is corrupt" in result.err and "not a regular file" in result.err
    result = run_xpm("clean", "--dry-run", "--status", "completed", timeout=20)
    assert result.code == 0 and "a/1" in result.out and "a/2" not in result.out, result
    result = run_xpm("diff", "a/1", "a/2", timeout=20)
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert "not a regular file" in result.err


@pytest.mark.parametrize("name", ["git.patch", "metrics.jsonl", "environment.json",
                                  "output.log"])
def test_other_fifos_in_a_run_folder_are_never_opened(project: Path, name: str) -> None:
    first = write_run(project, "a")
    second = write_run(project, "a", metrics=[{"step": 1, "loss": 0.5}])
    for folder in (first, second):
        (folder / name).unlink(missing_ok=True)
        os.mkfifo(folder / name)
    for args in (["ls"], ["show", "a/1"], ["show", "a/1", "--json"], ["diff", "a/1", "a/2"],
                 ["log", "a/1", "-n", "3"]):
        result = run_xpm(*args, timeout=20)
        assert result.code in (0, 1) and "Traceback" not in result.err, (args, result)
        assert result.err.count("\n") <= 1, (args, result)


def test_output_log_and_metrics_that_are_folders(project: Path) -> None:
    write_run(project, "a", output=b"hello\n")
    bad = write_run(project, "a")
    (bad / "output.log").mkdir()
    (bad / "metrics.jsonl").mkdir()
    result = run_xpm("log", "a/2")
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert "output.log` is not a file" in result.err
    for args in (["show", "a/2"], ["show", "a/2", "--json"], ["diff", "a/1", "a/2"], ["ls"],
                 ["log", "a/1"]):
        result = run_xpm(*args)
        assert result.code == 0 and result.err == "", (args, result)


@pytest.mark.parametrize("field, value", [
    ("distributions", [1, 2]), ("gpus", {"a": 1}), ("variables", ["x"]), ("gpus", [1, "x"]),
])
def test_environment_json_of_the_wrong_shape(project: Path, field: str, value: object) -> None:
    first = write_run(project, "a")
    second = write_run(project, "a")
    for folder in (first, second):
        (folder / "environment.json").write_text(json.dumps({
            "python": "3.11", "distributions": {"numpy": "2.0"}, "gpus": [],
            "variables": {}, field: value}))
    for args in (["show", "a/1"], ["show", "a/1", "--json"], ["diff", "a/1", "a/2"],
                 ["diff", "a/1", "a/2", "--all", "--json"]):
        result = run_xpm(*args)
        assert result.code == 0 and "Traceback" not in result.err, (args, result)


def test_run_json_nested_deeply_is_corrupt(project: Path) -> None:
    bad = write_run(project, "a")
    (bad / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    result = run_xpm("ls")
    assert result.code == 0 and "a/1 is corrupt" in result.err, result
    assert "nested too deeply" in result.err


def test_unreadable_run_json_is_called_unreadable(project: Path) -> None:
    bad = write_run(project, "a")
    (bad / "run.json").chmod(0)
    argv = xpm_argv("ls")
    if os.geteuid() == 0:  # root reads every file: take that power away from this xpm
        if shutil.which("setpriv") is None:
            pytest.skip("as root, this needs setpriv (util-linux) to drop CAP_DAC_OVERRIDE")
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc
    assert "cannot be read (Permission denied)" in proc.stderr, proc
    assert "not valid JSON" not in proc.stderr


def test_a_run_whose_record_vanishes_while_liveness_is_checked(project: Path) -> None:
    """A running run is purged between reading its record and correcting it (lost)."""
    folder = write_run(project, "a", status="running", pid=2**22 + 1)
    record = read_record(folder)
    (folder / "run.json").unlink()
    assert reconcile(folder, record).status == "lost"
    shutil.rmtree(folder)
    assert reconcile(folder, record).status == "lost"


def test_a_folder_purged_during_a_listing_is_left_out(project: Path) -> None:
    for _ in range(3):
        write_run(project, "a")
    listing = infos(project / "results")
    first = next(listing)
    shutil.rmtree(project / "results" / "a" / "2")
    rest = list(listing)
    assert [first.number, *(i.number for i in rest)] == [1, 3]


@pytest.mark.parametrize("name", ["output.log", "metrics.jsonl"])
@pytest.mark.parametrize("kind", ["a FIFO", "a folder"])
def test_resume_refuses_a_run_whose_appended_files_are_not_files(project: Path, name: str,
                                                                 kind: str) -> None:
    run_dir = write_run(project, "a", status="failed")
    (run_dir / name).unlink(missing_ok=True)
    if kind == "a FIFO":
        os.mkfifo(run_dir / name)
    else:
        (run_dir / name).mkdir()
    (run_dir / ".lock").touch()  # as every run folder xpm makes has it
    before = sorted((p.name, p.stat().st_mtime_ns) for p in run_dir.iterdir())
    result = run_xpm("resume", "a/1", timeout=20)
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert f"its {name} is {kind}, not a file; move it out of" in result.err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in run_dir.iterdir()) == before
    assert read_record(run_dir).status == "failed"
