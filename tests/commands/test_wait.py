"""`xpm wait RUN|NAME@K...`: blocks until the runs end; exit 0 when all completed, else the
first failure's code, in the order given."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import child, run_xpm, spawn_xpm, wait_for
from tests.records import write_run


def test_waits_for_a_detached_run_and_passes_its_failure_on(project: Path) -> None:
    go = project / "go"
    started = run_xpm("run", "--detach", "-n", "a", "--", *child(f"wait={go}", "exit=3"))
    assert started.code == 0, started
    run_id = started.out.strip()
    waiter = spawn_xpm("wait", run_id)
    try:
        waiter.wait(timeout=1.0)
        raise AssertionError("xpm wait returned while the run was running")
    except subprocess.TimeoutExpired:
        pass
    go.write_text("")
    assert waiter.wait(timeout=60) == 3
    _, err = waiter.communicate()
    assert b"first not completed: a/1 failed (exit 3)" in err


def test_all_completed_is_0_and_the_first_failure_in_order_decides(project: Path) -> None:
    write_run(project, "a")
    write_run(project, "b", status="failed")  # exit 1
    write_run(project, "c", status="killed")
    assert run_xpm("wait", "a/1").code == 0
    assert run_xpm("wait", "a", "b").code == 1
    assert run_xpm("wait", "-q", "a", "c", "b").code == 1
    result = run_xpm("wait", "-q", "a")
    assert result.code == 0 and result.err == ""


def test_a_run_whose_supervisor_died_ends_the_wait_as_lost(project: Path) -> None:
    write_run(project, "a", status="running", pid=2**22 + 1)  # nothing holds its lock
    result = run_xpm("wait", "a/1", timeout=30)
    assert result.code == 1 and "a/1 lost" in result.err, result


def test_waits_for_every_trial_of_a_sweep(project: Path) -> None:
    go = project / "go"
    started = run_xpm("sweep", "--detach", "-n", "sw", "-s", "x=1,2", "--",
                      *child(f"wait={go}"))
    assert started.code == 0, started
    waiter = spawn_xpm("wait", "sw@1")
    wait_for(lambda: (project / "results" / "sw").is_dir(), what="the sweep to start")
    go.write_text("")
    assert waiter.wait(timeout=120) == 0, waiter.communicate()
    _, err = waiter.communicate()
    assert b"2 runs ended: 2 completed" in err


def test_unknown_runs_are_one_line(project: Path) -> None:
    write_run(project, "a")
    for args in (["wait", "zzz"], ["wait", "a/9"], ["wait", "zzz@1"], ["wait", "a", "zzz"]):
        result = run_xpm(*args)
        assert result.code == 1 and result.err.count("\n") == 1, (args, result)
    assert run_xpm("wait").code == 2
