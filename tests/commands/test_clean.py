"""`xpm clean`: selection, the trash, purge, checkpoint thinning, and safety."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import (
    Result,
    child,
    read_json,
    record,
    run_in_pty,
    run_xpm,
    spawn_xpm,
    tree,
    wait_for,
    xpm_argv,
)
from xpm import times
from xpm.cli import main
from xpm.machine import hostname
from xpm.runs.disk import format_size, size_of
from xpm.runs.record import ACTIVE, Attempt, RunRecord, write_record
from xpm.runs.tree import HIGHEST_FILE, allocate

DAY = timedelta(days=1)


def make_run(project: Path, name: str, status: str = "failed", ago: timedelta = DAY * 0,
             files: dict[str, bytes | str] | None = None, attempt_host: str | None = None
             ) -> Path:
    """A run folder written with the real store and record modules (fast, for many runs)."""
    ref = allocate(project / "results", name)
    end = times.now() - ago
    attempts: tuple[Attempt, ...] = ()
    if attempt_host is not None:
        attempts = (Attempt(1, "start", times.iso(end), attempt_host, 999999, ("true",)),)
    rec = RunRecord(
        name=ref.name, number=ref.number, status=status, command=("true",), cwd=str(project),
        created=times.iso(end - timedelta(seconds=9)), seed=1, config={"lr": 0.1},
        host="h", user="u", platform="linux", python="3.11", python_executable=sys.executable,
        xpm_version="0", started=times.iso(end - timedelta(seconds=5)),
        ended=None if status in ACTIVE else times.iso(end), attempts=attempts,
        heartbeat=times.iso(end) if status == "running" else None,
    )
    write_record(ref.path, rec)
    for rel, data in (files or {}).items():
        path = ref.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)
    return ref.path


def selected(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    """The runs `xpm clean --dry-run ARGS` lists (in-process: a dry run changes nothing)."""
    capsys.readouterr()
    code = main(["clean", "--dry-run", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    if not lines:
        return []
    assert lines[0].split()[0] == "RUN"
    return [line.split()[0] for line in lines[1:]]


def results_of(project: Path) -> Path:
    return project / "results"


def in_trash(project: Path, run_id: str) -> Path:
    return project / "results" / ".trash" / run_id


# -- selection -------------------------------------------------------------------------


@pytest.fixture
def mixed(project: Path) -> Path:
    """a/1..7 and b/1..3 with every finished status and ages from 10 days to now."""
    for status, ago in [("completed", 10), ("failed", 9), ("lost", 8), ("completed", 5),
                        ("interrupted", 4), ("killed", 2), ("completed", 0)]:
        make_run(project, "a", status, DAY * ago)
    for status, ago in [("failed", 6), ("completed", 1), ("failed", 0)]:
        make_run(project, "b", status, DAY * ago)
    return project


def test_default_takes_failed_lost_interrupted_killed(
        mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert selected(capsys) == ["a/2", "a/3", "a/5", "a/6", "b/1", "b/3"]


def test_by_status(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert selected(capsys, "--status", "completed") == ["a/1", "a/4", "a/7", "b/2"]
    assert selected(capsys, "--status", "killed, lost") == ["a/3", "a/6"]


def test_keep_last_per_name(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # every status, completed included, but the newest K of each name
    assert selected(capsys, "--keep-last", "2") == ["a/1", "a/2", "a/3", "a/4", "a/5", "b/1"]
    assert selected(capsys, "--keep-last", "5", "b") == []
    # counted among the statuses asked for: keeps the newest failed run of each name
    assert selected(capsys, "--status", "failed", "--keep-last", "1") == ["b/1"]
    assert len(selected(capsys, "--keep-last", "0")) == 10


def test_keep_last_counts_a_running_run(project: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    make_run(project, "a", "completed", DAY)
    make_run(project, "a", "completed", DAY)
    make_run(project, "a", "running", attempt_host="other-host")  # fresh heartbeat elsewhere
    assert selected(capsys, "--keep-last", "2") == ["a/1"]


def test_older_than(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert selected(capsys, "--older-than", "7d") == ["a/1", "a/2", "a/3"]
    assert selected(capsys, "--older-than", "1w") == ["a/1", "a/2", "a/3"]
    assert selected(capsys, "--older-than", "30h") == ["a/1", "a/2", "a/3", "a/4", "a/5",
                                                       "a/6", "b/1"]


def test_criteria_combine(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert selected(capsys, "--status", "failed,completed", "--older-than", "3d",
                    "--keep-last", "1") == ["a/1", "a/2", "a/4", "b/1"]
    assert selected(capsys, "--status", "completed", "--older-than", "3d", "a") == ["a/1",
                                                                                    "a/4"]


def test_names_and_runs(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert selected(capsys, "b") == ["b/1", "b/3"]  # a bare NAME narrows the default
    assert selected(capsys, "a/7") == ["a/7"]  # a named run is taken, completed or not
    assert selected(capsys, "a/-1", "b/2", "b") == ["a/7", "b/1", "b/2", "b/3"]
    assert selected(capsys, str(results_of(mixed) / "a" / "4")) == ["a/4"]
    assert selected(capsys, "results/a/4/", "a/4") == ["a/4"]


def test_nothing_to_clean(project: Path) -> None:
    make_run(project, "a", "completed")
    result = run_xpm("clean", "-y")
    assert result.code == 0, result
    assert "nothing to clean" in result.err and result.out == ""
    assert (results_of(project) / "a" / "1").is_dir()


def test_corrupt_run_is_removed_only_when_named(project: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    make_run(project, "a", "failed")
    broken = make_run(project, "a", "failed")
    (broken / "run.json").write_text("{ torn")
    missing = make_run(project, "a", "failed")
    (missing / "run.json").unlink()
    for args in ([], ["a"], ["--keep-last", "0"], ["--older-than", "0s"],
                 ["--status", ",".join(("failed", "lost", "completed"))]):
        assert "a/2" not in selected(capsys, *args) and "a/3" not in selected(capsys, *args)
    assert selected(capsys, "a/2") == ["a/2"]
    result = run_xpm("clean", "-y", "a/2", "a/3")
    assert result.code == 0, result
    assert in_trash(project, "a/2").is_dir() and in_trash(project, "a/3").is_dir()
    assert (results_of(project) / "a" / "1").is_dir()


def test_real_statuses_and_a_lost_run(project: Path, report: Path) -> None:
    assert run_xpm("run", "-n", "r", "--", *child("exit=0")).code == 0
    assert run_xpm("run", "-n", "r", "--", *child("exit=3")).code == 3
    assert run_xpm("run", "-n", "r", "--", *child("signal=SIGKILL")).code == 137
    proc = spawn_xpm("run", "-n", "r", "--", *child("sleep=60"))
    wait_for(lambda: report.exists() and read_json(report)["env"]["XPM_RUN_NUMBER"] == "4",
             what="run 4 to start")
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=20)
    report.unlink()
    proc = spawn_xpm("run", "-n", "r", "--", *child("sleep=60"))
    wait_for(report.exists, what="run 5 to start")
    proc.kill()  # xpm dies: its child follows, the record still says running
    proc.wait(timeout=20)
    assert [record(project, f"r/{n}")["status"] for n in range(1, 6)] == [
        "completed", "failed", "killed", "interrupted", "running"]
    result = run_xpm("clean", "-y")
    assert result.code == 0, result
    assert sorted(os.listdir(results_of(project) / ".trash" / "r")) == ["2", "3", "4", "5"]
    assert sorted(os.listdir(results_of(project) / "r")) == [".highest", ".highest.lock", "1"]
    assert read_json(in_trash(project, "r/5") / "run.json")["status"] == "lost"
    assert "moved 4 runs" in result.err


# -- what is shown, and asking -------------------------------------------------------------


def test_table_shows_each_run_status_size_and_total(project: Path) -> None:
    one = make_run(project, "a", "failed", files={"checkpoints/m_1.pt": b"x" * 5000})
    two = make_run(project, "a", "killed", ago=DAY * 3, files={"big.bin": b"y" * 20000})
    result = run_xpm("clean", "--dry-run")
    assert result.code == 0, result
    rows = [line.split() for line in result.out.splitlines()]
    assert rows[0] == ["RUN", "STATUS", "ENDED", "SIZE"]
    # Ended moments ago: 0s, or a few seconds on a loaded machine.
    assert rows[1][:2] == ["a/1", "failed"] and rows[1][2] in ("0s", "1s", "2s", "3s", "4s")
    assert rows[1][3:] == ["ago", *format_size(size_of(one)).split()]
    assert rows[2] == ["a/2", "killed", "3d", "ago", *format_size(size_of(two)).split()]
    assert size_of(one) + size_of(two) >= 25000  # what the files take on disk
    total = format_size(size_of(one) + size_of(two))
    assert f"2 runs ({total}) would be moved to results/.trash;" in result.err
    assert "dry run: nothing changed" in result.err


def test_the_footer_says_what_will_happen_and_the_last_line_what_did(project: Path) -> None:
    """Before anything moves the table speaks of the future; after, the last line of the past."""
    def check(args: list[str], footer: str, last: str) -> None:
        shown = run_xpm("clean", "--dry-run", *args)
        assert shown.code == 0, shown
        assert footer.replace(" will ", " would ") in shown.err, (args, shown)
        done = run_xpm("clean", "-y", *args)
        assert done.code == 0, done
        lines = done.err.splitlines()
        assert footer in lines[0] and last in lines[-1], (args, done)
        assert ": moved to" not in lines[0] and "freed: deleted" not in lines[0], (args, done)

    make_run(project, "a", "failed", files={"big.bin": b"y" * 3000})
    make_run(project, "b", "completed", files={"checkpoints/m_1.pt": "1",
                                               "checkpoints/m_2.pt": "2"})
    size = format_size(size_of(results_of(project) / "a" / "1"))
    check([], f"1 run ({size}) will be moved to results/.trash;",
          f"moved 1 run ({size}) to results/.trash;")
    size = format_size(size_of(in_trash(project, "a/1")))
    check(["--empty-trash"], f"1 run in results/.trash will be deleted for good, freeing {size}",
          f"deleted 1 run from the trash for good, freeing {size}")
    size = format_size(size_of(results_of(project) / "b" / "1" / "checkpoints" / "m_1.pt"))
    check(["--checkpoints", "--keep", "1", "b"],
          f"1 checkpoint in 1 run will be deleted for good, freeing {size} (checkpoints skip",
          f"deleted 1 checkpoint in 1 run for good, freeing {size}")
    size = format_size(size_of(results_of(project) / "b" / "1"))
    check(["--purge", "b/1"], f"1 run will be deleted for good, freeing {size}",
          f"deleted 1 run for good, freeing {size}")


def test_dry_run_changes_nothing(project: Path, tmp_path: Path) -> None:
    make_run(project, "a", "failed", files={"checkpoints/m_1.pt": "1", "checkpoints/m_2.pt": "2"})
    make_run(project, "a", "completed", DAY * 9,
             files={"checkpoints/m_1.pt": "1", "checkpoints/m_2.pt": "2"})
    assert run_xpm("clean", "-y", "a/1").code == 0
    make_run(project, "a", "lost")
    before = tree(tmp_path)
    for args in ([], ["--purge"], ["--empty-trash"], ["--keep-last", "0", "--purge"],
                 ["--checkpoints", "--keep", "0"], ["a/2", "--older-than", "1d"]):
        result = run_xpm("clean", "--dry-run", *args)
        assert result.code == 0, result
        assert result.out.startswith("RUN"), result
        assert "dry run: nothing changed" in result.err
        assert tree(tmp_path) == before, args


def test_refuses_without_a_terminal_and_without_yes(project: Path, tmp_path: Path) -> None:
    make_run(project, "a", "failed")
    make_run(project, "b", "completed", files={"model_5.pt": "5"})
    make_run(project, "c", "failed")
    assert run_xpm("clean", "-y", "c").code == 0  # something in the trash
    before = tree(tmp_path)
    for args in ([], ["--purge"], ["--empty-trash"], ["--checkpoints", "--keep", "0"]):
        result = run_xpm("clean", *args)
        assert result.code == 1, result
        assert "without a terminal" in result.err and "-y" in result.err
        assert "Traceback" not in result.err
        assert tree(tmp_path) == before, args


def _with_terminal_stdin(args: list[str], cwd: Path, answer: bytes) -> Result:
    master, slave = pty.openpty()
    try:
        os.write(master, answer)
        proc = subprocess.run(xpm_argv(*args), cwd=cwd, stdin=slave, capture_output=True,
                              text=True, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    return Result(proc)


@pytest.mark.parametrize(("answer", "moved"), [(b"y\n", True), (b"yes\n", True),
                                               (b"n\n", False), (b"\n", False)])
def test_asks_on_a_terminal(project: Path, answer: bytes, moved: bool) -> None:
    make_run(project, "a", "failed", files={"x": "1"})
    result = _with_terminal_stdin(["clean"], project, answer)
    assert result.code == 0, result
    assert "Move 1 run (" in result.err and "[y/N]" in result.err
    assert in_trash(project, "a/1").is_dir() is moved
    assert (results_of(project) / "a" / "1").is_dir() is not moved
    if not moved:
        assert "nothing changed" in result.err


def test_on_a_terminal_everything_draws(project: Path) -> None:
    make_run(project, "a", "failed", files={"x": "1"})
    code, shown = run_in_pty(xpm_argv("clean", "--dry-run"), cwd=project)
    assert code == 0, shown
    assert b"a/1" in shown and b"failed" in shown and b"dry run" in shown
    assert (results_of(project) / "a" / "1").is_dir()


# -- trash, restore, purge, numbers ----------------------------------------------------------


def test_trash_and_restore_round_trip_byte_identical(project: Path, tmp_path: Path) -> None:
    assert run_xpm("run", "-n", "a", "--", *child("print=hello", "checkpoint=10",
                                                  "checkpoint=20", "exit=2")).code == 2
    run_dir = results_of(project) / "a" / "1"
    (run_dir / "nested" / "deep").mkdir(parents=True)
    (run_dir / "nested" / "deep" / "blob.bin").write_bytes(bytes(range(256)) * 64)
    (run_dir / "link").symlink_to("nested/deep/blob.bin")
    os.chmod(run_dir / "nested" / "deep" / "blob.bin", 0o600)
    before = tree(run_dir)
    modes = {p: os.lstat(p).st_mode for p in run_dir.rglob("*")}
    result = run_xpm("clean", "-y")
    assert result.code == 0, result
    assert not run_dir.exists()
    assert tree(in_trash(project, "a/1")) == before
    listing = run_xpm("restore")
    assert listing.code == 0 and listing.out.split()[4:6] == ["a/1", "failed"], listing
    result = run_xpm("restore", "a/1")
    assert result.code == 0, result
    assert "restored a/1 to results/a/1" in result.err
    assert tree(run_dir) == before
    assert os.readlink(run_dir / "link") == "nested/deep/blob.bin"
    assert {p: os.lstat(p).st_mode for p in run_dir.rglob("*")} == modes
    assert not (results_of(project) / ".trash" / "a").exists()
    assert record(project, "a/1")["status"] == "failed"


def test_restore_by_name_and_path(project: Path) -> None:
    for _ in range(3):
        make_run(project, "a", "failed")
    assert run_xpm("clean", "-y").code == 0
    assert run_xpm("restore", "a").code == 0  # the highest number in the trash
    assert (results_of(project) / "a" / "3").is_dir()
    assert run_xpm("restore", "results/.trash/a/1").code == 0
    assert (results_of(project) / "a" / "1").is_dir()
    assert run_xpm("restore", "a/-1").code == 0
    assert (results_of(project) / "a" / "2").is_dir()
    result = run_xpm("restore")
    assert result.code == 0 and "the trash (results/.trash) is empty" in result.err


def test_restore_refuses_when_the_run_is_back_or_missing(project: Path, tmp_path: Path) -> None:
    make_run(project, "a", "failed")
    make_run(project, "a", "failed")
    assert run_xpm("clean", "-y").code == 0
    (results_of(project) / "a" / "2").mkdir()  # something took its place meanwhile
    before = tree(tmp_path)
    result = run_xpm("restore", "a/1", "a/2")
    assert result.code == 1, result
    assert "results/a/2` already exists" in result.err and "nothing was restored" in result.err
    assert tree(tmp_path) == before
    for bad in ("a/3", "b/1", "a/x", "../a/1", "/"):
        result = run_xpm("restore", bad)
        assert result.code == 1, (bad, result)
        assert "Traceback" not in result.err
    assert tree(tmp_path) == before


def test_purge_deletes_for_good(project: Path) -> None:
    doomed = make_run(project, "a", "failed", files={"ckpt.pt": b"z" * 3000})
    make_run(project, "a", "completed")
    freed = format_size(size_of(doomed))
    result = run_xpm("clean", "--purge", "-y")
    assert result.code == 0, result
    assert not (results_of(project) / "a" / "1").exists()
    assert not in_trash(project, "a/1").exists()
    assert os.listdir(results_of(project) / ".trash") == []
    assert (results_of(project) / "a" / "2").is_dir()
    assert f"deleted 1 run for good, freeing {freed}" in result.err


@pytest.mark.slow
def test_numbers_are_not_reused_after_clean(project: Path) -> None:
    """Even for a tree copied in without NAME/.highest, every way out keeps numbers taken."""
    def highest_gone() -> None:
        (results_of(project) / "a" / HIGHEST_FILE).unlink(missing_ok=True)

    def next_number() -> str:
        result = run_xpm("run", "-n", "a", "--", *child("exit=1"))
        return result.err.split("run a/")[1].split()[0]

    make_run(project, "a", "failed")
    highest_gone()
    assert run_xpm("clean", "-y").code == 0  # to the trash
    assert next_number() == "2"
    highest_gone()
    assert run_xpm("clean", "--purge", "-y", "a/2").code == 0
    assert next_number() == "3"
    highest_gone()
    assert run_xpm("clean", "-y", "a/3").code == 0
    highest_gone()
    assert run_xpm("clean", "--empty-trash", "-y").code == 0
    assert not (results_of(project) / ".trash" / "a").exists()
    assert next_number() == "4"


def test_empty_trash(project: Path) -> None:
    for name in ("a", "a", "b"):
        make_run(project, name, "failed", files={"w.bin": b"w" * 1000})
    assert run_xpm("clean", "-y").code == 0
    leftover = results_of(project) / ".trash" / ".purging-a-9-123"
    (leftover / "sub").mkdir(parents=True)
    (leftover / "sub" / "f").write_text("half deleted")
    result = run_xpm("clean", "--empty-trash", "-y", "a/1")
    assert result.code == 0, result
    assert not in_trash(project, "a/1").exists() and in_trash(project, "a/2").exists()
    assert leftover.exists()  # only what was named
    result = run_xpm("clean", "--empty-trash", "-y", "b")
    assert result.code == 0, result
    assert not (results_of(project) / ".trash" / "b").exists()
    result = run_xpm("clean", "--empty-trash", "--dry-run")
    assert [r.split()[0] for r in result.out.splitlines()[1:]] == ["a/2", ".purging-a-9-123"]
    result = run_xpm("clean", "--empty-trash", "-y")
    assert result.code == 0, result
    assert os.listdir(results_of(project) / ".trash") == []
    result = run_xpm("clean", "--empty-trash", "-y")
    assert result.code == 0 and "holds no runs" in result.err


# -- checkpoints -------------------------------------------------------------------------


def _steps_run(project: Path, name: str, status: str = "completed",
               steps: range = range(100, 1100, 100), best_at: int = 420) -> Path:
    files: dict[str, bytes | str] = {f"checkpoints/model_{s}.pt": b"c" * s for s in steps}
    files["metrics.jsonl"] = "".join(
        json.dumps({"step": s, "time": 0, "loss": abs(s - best_at) / 100, "acc": s / 2000})
        + "\n" for s in range(50, 1050, 50))
    return make_run(project, name, status, files=files)


def _kept(run_dir: Path, folder: str = "checkpoints") -> list[str]:
    return sorted(os.listdir(run_dir / folder))


def test_thinning_keeps_exactly_newest_best_and_every(project: Path) -> None:
    run_dir = _steps_run(project, "a")
    (run_dir / "checkpoints" / "best.pt").write_text("no step: always kept")
    (run_dir / "checkpoints" / "model_1100.pt.tmp").write_text("unfinished: not a checkpoint")
    others = {p: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    assert len(others) == 2  # run.json and metrics.jsonl
    freed = format_size(sum(size_of(run_dir / "checkpoints" / f"model_{s}.pt")
                            for s in (100, 200, 500, 700, 800)))
    result = run_xpm("clean", "--checkpoints", "--keep", "2", "--keep-best", "loss",
                     "--keep-every", "300", "-y")
    assert result.code == 0, result
    assert _kept(run_dir) == ["best.pt", "model_1000.pt", "model_1100.pt.tmp", "model_300.pt",
                              "model_400.pt", "model_600.pt", "model_900.pt"]
    assert {p: p.read_bytes() for p in others} == others
    assert result.out.splitlines()[1] == (
        "a/1  completed  5 of 11  newest: 900, 1000; best loss: 400; every 300: 300, 600, 900; "
        f"1 without a step  {freed}")
    assert f"deleted 5 checkpoints in 1 run for good, freeing {freed}" in result.err


def test_thinning_best_by_max_and_keep_zero(project: Path) -> None:
    run_dir = _steps_run(project, "a", best_at=420)
    # acc grows with the step: the best is the last one logged (1000)
    assert run_xpm("clean", "--checkpoints", "--keep", "0", "--keep-best", "acc", "-y").code == 0
    assert _kept(run_dir) == ["model_1000.pt"]
    run_dir = _steps_run(project, "b", best_at=420)
    assert run_xpm("clean", "--checkpoints", "--keep", "0", "--keep-best", "loss:max",
                   "-y", "b").code == 0
    assert _kept(run_dir) == ["model_1000.pt"]
    run_dir = _steps_run(project, "c")
    assert run_xpm("clean", "--checkpoints", "--keep", "0", "-y", "c/1").code == 0
    assert _kept(run_dir) == []


def test_thinning_covers_the_tree_or_what_is_named(project: Path) -> None:
    done = _steps_run(project, "a", "completed", range(1, 4))
    failed = _steps_run(project, "a", "failed", range(1, 4))
    other = _steps_run(project, "b", "completed", range(1, 4))
    assert run_xpm("clean", "--checkpoints", "--keep", "1", "-y", "a/1").code == 0
    assert (_kept(done), _kept(failed), _kept(other)) == (
        ["model_3.pt"], ["model_1.pt", "model_2.pt", "model_3.pt"], ["model_1.pt", "model_2.pt",
                                                                    "model_3.pt"])
    assert run_xpm("clean", "--checkpoints", "--keep", "2", "-y", "b").code == 0
    assert _kept(other) == ["model_2.pt", "model_3.pt"]
    assert run_xpm("clean", "--checkpoints", "--keep", "1", "--status", "completed",
                   "-y").code == 0
    assert (_kept(failed), _kept(other)) == (["model_1.pt", "model_2.pt", "model_3.pt"],
                                             ["model_3.pt"])
    assert run_xpm("clean", "--checkpoints", "--keep", "1", "-y").code == 0
    assert _kept(failed) == ["model_3.pt"]
    result = run_xpm("clean", "--checkpoints", "--keep", "1", "-y")
    assert result.code == 0 and "keep all their checkpoints" in result.err


def test_thinning_tensorflow_checkpoints_and_step_groups(project: Path) -> None:
    files: dict[str, bytes | str] = {}
    for step in (100, 200, 300):
        files[f"model.ckpt-{step}.index"] = "i"
        files[f"model.ckpt-{step}.data-00000-of-00001"] = "d" * step
        files[f"model.ckpt-{step}.meta"] = "m"
        files[f"checkpoints/model_{step}.pt"] = "w"
        files[f"checkpoints/optim_{step}.pt"] = "o"
    files["checkpoint"] = 'model_checkpoint_path: "model.ckpt-300"\n'
    run_dir = make_run(project, "tf", "completed", files=files)
    assert run_xpm("clean", "--checkpoints", "--keep", "1", "-y").code == 0
    assert sorted(p.name for p in run_dir.iterdir() if "ckpt" in p.name) == [
        "model.ckpt-300.data-00000-of-00001", "model.ckpt-300.index", "model.ckpt-300.meta"]
    assert _kept(run_dir) == ["model_300.pt", "optim_300.pt"]
    assert (run_dir / "checkpoint").exists()


def test_thinning_uses_the_projects_checkpoint_patterns(project: Path) -> None:
    (project / "xpm.yaml").write_text("results_dir: results\ncheckpoints: ['weights/*.bin']\n")
    run_dir = make_run(project, "a", "completed", files={
        "weights/w_1.bin": "1", "weights/w_2.bin": "2", "checkpoints/model_1.pt": "1",
        "checkpoints/model_2.pt": "2"})
    assert run_xpm("clean", "--checkpoints", "--keep", "1", "-y").code == 0
    assert _kept(run_dir, "weights") == ["w_2.bin"]
    assert _kept(run_dir) == ["model_1.pt", "model_2.pt"]


def test_thinning_skips_runs_without_the_metric(project: Path) -> None:
    with_metric = _steps_run(project, "a", steps=range(1, 4))
    without = make_run(project, "b", "completed", files={
        "checkpoints/model_1.pt": "1", "checkpoints/model_2.pt": "2",
        "metrics.jsonl": '{"step": 1, "acc": 0.5}\n'})
    result = run_xpm("clean", "--checkpoints", "--keep", "1", "--keep-best", "loss", "-y")
    assert result.code == 0, result
    assert _kept(with_metric) == ["model_3.pt"]  # loss is best at 4.2: step 3 holds it
    assert _kept(without) == ["model_1.pt", "model_2.pt"]
    assert "left alone: `b/1` logs no `loss`" in result.err


# -- safety ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_running_run_is_never_touched(project: Path, report: Path, tmp_path: Path) -> None:
    go, ready = tmp_path / "go", tmp_path / "ready"
    proc = spawn_xpm("run", "-n", "live", "--", *child("checkpoint=1", "checkpoint=2",
                                                       f"touch={ready}", f"wait={go}", "exit=1"))
    wait_for(ready.exists, what="the run to save two checkpoints")
    run_dir = results_of(project) / "live" / "1"
    checkpoints = tree(run_dir / "checkpoints")
    assert len(checkpoints) == 2
    for args in (["live/1"], ["live/1", "--purge"], ["--status", "running"],
                 [str(run_dir)], ["live/1", "--checkpoints", "--keep", "0"]):
        result = run_xpm("clean", "-y", *args)
        assert result.code == 1, (args, result)
        assert "left alone: run `live/1` is in use by xpm run (pid" in result.err, args
        assert result.err.splitlines()[-1].endswith("the selected run is in use"), args
        assert tree(run_dir / "checkpoints") == checkpoints
        assert (run_dir / "run.json").exists()
    for args in ([], ["live"], ["--keep-last", "0"], ["--older-than", "0s"],
                 ["--checkpoints", "--keep", "0"]):
        result = run_xpm("clean", "-y", *args)
        assert result.code == 0, (args, result)
        assert tree(run_dir / "checkpoints") == checkpoints
    assert record(project, "live/1")["status"] == "running"
    go.touch()
    assert proc.wait(timeout=20) == 1
    result = run_xpm("clean", "-y")
    assert result.code == 0, result
    assert tree(in_trash(project, "live/1") / "checkpoints") == checkpoints


def test_a_run_alive_on_another_host_is_left_alone(project: Path) -> None:
    run_dir = make_run(project, "a", "running", attempt_host="gpu-node-7")
    for args in (["a/1"], ["--status", "running"], ["a/1", "--checkpoints", "--keep", "0"]):
        result = run_xpm("clean", "-y", *args)
        assert result.code == 1, result
        assert "in use by xpm (pid 999999 on gpu-node-7" in result.err
    assert run_dir.is_dir()


def test_when_the_runs_are_in_use_the_last_line_says_so(project: Path) -> None:
    for name in ("a", "b"):
        make_run(project, name, "running", attempt_host="gpu-node-7",
                 files={"checkpoints/m_1.pt": "1", "checkpoints/m_2.pt": "2"})
    make_run(project, "c", "completed")
    make_run(project, "d", "completed", files={"checkpoints/m_1.pt": "1"})
    cases = [
        (["a/1"], "nothing cleaned: the selected run is in use"),
        (["a/1", "b/1", "--purge"], "nothing cleaned: the 2 selected runs are in use"),
        (["a/1", "--checkpoints", "--keep", "0"], "nothing thinned: the selected run is in use"),
        (["a/1", "b/1", "--checkpoints", "--keep", "0"],
         "nothing thinned: the 2 selected runs are in use"),
        (["a/1", "c/1", "d/1", "--checkpoints", "--keep", "1"],
         "nothing thinned: of the 3 selected runs, 1 is in use, 1 has no checkpoints and 1 "
         "keeps all its checkpoints under these rules"),
    ]
    for args, last in cases:
        result = run_xpm("clean", "-y", *args)
        assert result.code == 1, (args, result)
        assert result.err.count("left alone: run `") == args.count("a/1") + args.count("b/1")
        assert result.err.splitlines()[-1] == f"xpm: {last}", (args, result)
    for args, last in [(["c/1", "--checkpoints", "--keep", "0"],
                        "nothing to thin: the selected run has no checkpoints"),
                       (["--checkpoints", "--keep", "1"], "nothing to thin: of the 2 selected "
                        "runs, 1 has no checkpoints and 1 keeps all its checkpoints under these "
                        "rules"),
                       (["--checkpoints", "--keep", "1", "--status", "lost"],
                        "nothing to thin: no run matches")]:
        result = run_xpm("clean", "-y", *args)
        assert result.code == 0, (args, result)
        assert result.err.splitlines()[-1] == f"xpm: {last}", (args, result)
    assert (results_of(project) / "a" / "1" / "checkpoints" / "m_1.pt").exists()


def test_a_lost_run_on_this_host_is_taken(project: Path) -> None:
    make_run(project, "a", "running", ago=DAY, attempt_host=hostname())
    result = run_xpm("clean", "-y")
    assert result.code == 0, result
    assert read_json(in_trash(project, "a/1") / "run.json")["status"] == "lost"


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "keep.txt").write_text("precious")
    (outside / "big.bin").write_bytes(b"b" * 4096)
    return outside


@pytest.mark.parametrize("how", [["--purge"], ["--empty-trash"]])
def test_links_out_of_results_are_unlinked_never_followed(project: Path, tmp_path: Path,
                                                          how: list[str]) -> None:
    outside = _outside(tmp_path)
    before = tree(outside)
    run_dir = make_run(project, "a", "failed")
    (run_dir / "file_link").symlink_to(outside / "big.bin")
    (run_dir / "dir_link").symlink_to(outside / "data")
    (run_dir / "deep").mkdir()
    (run_dir / "deep" / "up").symlink_to("../../../../../outside")
    assert (run_dir / "deep" / "up" / "big.bin").exists()
    if how == ["--empty-trash"]:
        assert run_xpm("clean", "-y").code == 0
        assert os.path.islink(in_trash(project, "a/1") / "dir_link")
    result = run_xpm("clean", "-y", *how)
    assert result.code == 0, result
    assert not os.path.lexists(run_dir) and not os.path.lexists(in_trash(project, "a/1"))
    assert tree(outside) == before


def test_linked_run_names_and_folders_are_left_alone(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    for name in ("x", "y"):
        (outside / name).mkdir(parents=True)
        ref_dir = outside / name / "1"
        os.replace(make_run(project, "tmp", "failed"), ref_dir)
        data = read_json(ref_dir / "run.json")
        data.update(name=name, id=f"{name}/1")
        (ref_dir / "run.json").write_text(json.dumps(data))
    (results_of(project) / "x").symlink_to(outside / "x")  # a whole name linked out
    (results_of(project) / "tmp" / "2").symlink_to(outside / "y" / "1")  # one run linked out
    before = tree(tmp_path)
    assert run_xpm("clean", "-y", "--keep-last", "0").code == 0
    for args in (["x"], ["x/1"], ["tmp/2"], ["results/tmp/2"], ["results/x/1"]):
        result = run_xpm("clean", "-y", *args)
        assert result.code == 1, (args, result)
        assert "Traceback" not in result.err
    assert tree(tmp_path) == before


def test_checkpoints_behind_links_are_never_touched(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "scratch"
    (outside / "ckpts").mkdir(parents=True)
    for step in (1, 2, 3):
        (outside / "ckpts" / f"model_{step}.pt").write_text(str(step))
    (outside / "model_7.pt").write_text("7")
    linked_folder = make_run(project, "a", "completed")
    (linked_folder / "checkpoints").symlink_to(outside / "ckpts")
    linked_file = make_run(project, "b", "completed", files={"checkpoints/model_9.pt": "9"})
    (linked_file / "checkpoints" / "model_7.pt").symlink_to(outside / "model_7.pt")
    before = tree(outside)
    result = run_xpm("clean", "--checkpoints", "--keep", "0", "-y")
    assert result.code == 0, result
    assert tree(outside) == before
    assert _kept(linked_folder) == ["model_1.pt", "model_2.pt", "model_3.pt"]
    assert _kept(linked_file) == []  # the link was unlinked, its target is still there


def test_a_kept_link_keeps_its_target(project: Path) -> None:
    run_dir = make_run(project, "a", "completed", files={
        "checkpoints/model_1.pt": "1", "checkpoints/model_2.pt": "2",
        "checkpoints/model_3.pt": "3"})
    (run_dir / "checkpoints" / "best.pt").symlink_to("model_1.pt")
    assert run_xpm("clean", "--checkpoints", "--keep", "1", "-y").code == 0
    assert _kept(run_dir) == ["best.pt", "model_1.pt", "model_3.pt"]


@pytest.mark.parametrize("arg", [
    "..", "../", "../outside", "/", "/tmp", ".trash", "results/.trash/a/1", ".trash/a/1",
    "results/a/1/../../..", "OUTSIDE/3", "OUTSIDE", "results", "results/a", "a/../../x",
    "a/1/..", "~",
])
def test_nothing_outside_results_is_ever_deleted(project: Path, tmp_path: Path, arg: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "outside"
    make_run(project, "a", "failed")
    make_run(project, "a", "completed")
    assert run_xpm("clean", "-y", "a/1").code == 0  # a/1 is in the trash now
    fake = outside / "a" / "3"  # looks like a run, but lives outside results
    fake.mkdir(parents=True)
    (fake / "run.json").write_text((results_of(project) / "a" / "2" / "run.json").read_text())
    arg = arg.replace("OUTSIDE", str(outside / "a"))
    before = tree(tmp_path)
    for how in ([], ["--purge"], ["--empty-trash"], ["--checkpoints", "--keep", "0"]):
        if how == ["--empty-trash"] and arg == "results/.trash/a/1":
            continue  # that one is in the trash: emptying it is what was asked
        code = main(["clean", "-y", *how, arg])  # in-process: quicker, just as real
        err = capsys.readouterr().err
        assert code == 1, (how, err)
        assert "error:" in err and "internal error" not in err
        assert tree(tmp_path) == before, (how, arg)


def test_a_linked_trash_is_refused(project: Path, tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    make_run(project, "a", "failed")
    (results_of(project) / ".trash").symlink_to(outside)
    before = tree(tmp_path)
    for args in (["clean", "-y"], ["clean", "--empty-trash", "-y"], ["clean", "-y", "--purge"],
                 ["restore"]):
        result = run_xpm(*args)
        assert result.code == 1, result
        assert ".trash` is a symbolic link" in result.err
    assert tree(tmp_path) == before


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--older-than", "3x"], "--older-than `3x` is not an age"),
    (["--older-than", "d3"], "is not an age"),
    (["--keep-last", "-1"], "--keep-last must be 0 or more"),
    (["--checkpoints", "--keep", "-1"], "--keep must be 0 or more"),
    (["--checkpoints"], "--checkpoints needs --keep K"),
    (["--keep", "2"], "goes with --checkpoints"),
    (["--keep-best", "loss"], "goes with --checkpoints"),
    (["--checkpoints", "--keep", "1", "--keep-every", "0"], "--keep-every must be 1 or more"),
    (["--checkpoints", "--keep", "1", "--keep-best", "nosuch:min"], "no selected run logs "
                                                                    "`nosuch`"),
    (["--checkpoints", "--keep", "1", "--keep-best", "lr"], "cannot tell whether lower"),
    (["--checkpoints", "--keep", "1", "--keep-best", "loss:best"], "is not min or max"),
    (["--status", "done"], "--status `done` is not a status"),
    (["--status", ","], "names no status"),
    (["--empty-trash", "--status", "failed"], "--empty-trash deletes what the trash holds"),
    (["--keep-last", "x"], "is not a valid integer"),
])
def test_bad_input_changes_nothing(project: Path, tmp_path: Path, args: list[str],
                                   message: str) -> None:
    _steps_run(project, "a", "failed", range(1, 4))
    before = tree(tmp_path)
    result = run_xpm("clean", "-y", *args)
    assert result.code == 2, result
    assert message in result.err, result
    assert "Traceback" not in result.err
    assert tree(tmp_path) == before


@pytest.mark.parametrize("pattern", ["/tmp/x/*", "../*", "ckpt**"])
def test_an_unusable_checkpoint_pattern_is_refused(project: Path, tmp_path: Path,
                                                   pattern: str) -> None:
    (project / "xpm.yaml").write_text(f"checkpoints: ['{pattern}']\n")
    make_run(project, "a", "failed", files={"checkpoints/m_1.pt": "1"})
    before = tree(tmp_path)
    for args in (["a/1", "--checkpoints", "--keep", "0"], ["a/1"]):
        result = run_xpm("clean", "-y", *args)
        assert result.code == 1, result
        assert result.err.count("\n") == 1 and "internal error" not in result.err, result
        assert f"xpm.yaml: `checkpoints` pattern `{pattern}` " in result.err
        assert tree(tmp_path) == before


def test_unknown_run_or_name(project: Path, tmp_path: Path) -> None:
    make_run(project, "a", "failed")
    before = tree(tmp_path)
    for arg, message in [("b", "no run named `b`"), ("a/7", "run `a/7` does not exist"),
                         ("a/-3", "has only 1 runs")]:
        result = run_xpm("clean", "-y", arg)
        assert result.code == 1, result
        assert message in result.err
    assert tree(tmp_path) == before


def test_a_queued_run_is_removed_only_when_named_and_forced(project: Path) -> None:
    queued = make_run(project, "q", "queued", ago=DAY * 30)
    for args in (["--status", "queued"], ["q"], ["--older-than", "1d"], ["--keep-last", "0"],
                 ["--status", "queued", "--force"], ["q", "--force"], ["q/1"],
                 ["q/1", "--checkpoints", "--keep", "0"]):
        result = run_xpm("clean", "-y", *args)
        assert queued.is_dir(), (args, result)
        if "q/1" in args or "--status" in args:
            assert "is queued: it waits to start" in result.err, (args, result)
    result = run_xpm("clean", "-y", "--force", "q/1")
    assert result.code == 0, result
    assert not queued.exists()
