"""The life cycle: the record as a second writer sees it, lost runs' ends, the final
statuses (requeue included, through a real scheduler-like job), the run lock's holder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import xpm
from tests.conftest import (
    TESTS,
    child,
    pid_alive,
    read_json,
    record,
    run_xpm,
    spawn_xpm,
    wait_for,
)
from xpm.launch.lifecycle import REQUEUED, Scheduler, ending
from xpm.launch.supervisor import Outcome
from xpm.runs.lock import HOLDER_FILE, RunLock, busy_message
from xpm.runs.record import LOCK_FILE, RECORD_FILE
from xpm.runs.update import update_record


def test_fields_written_by_another_process_survive_the_end_of_the_run(
        project: Path, report: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    proc = spawn_xpm("run", "-n", "w", "-t", "first", "--", *child(f"wait={go}"))
    wait_for(report.exists, what="the child to start")
    run_dir = project / "results" / "w" / "1"
    # a second writer: a tag through the record update, a field this xpm does not know
    update_record(run_dir, lambda r: replace(r, tags=(*r.tags, "added")))
    data = read_json(run_dir / RECORD_FILE)
    data["written_by_a_newer_xpm"] = {"job": "123"}
    (run_dir / RECORD_FILE).write_text(json.dumps(data))
    update_record(run_dir, lambda r: replace(r, note="a note"))
    go.touch()
    assert proc.wait(timeout=20) == 0
    rec = record(project, "w/1")
    assert rec["status"] == "completed"
    assert rec["tags"] == ["first", "added"] and rec["note"] == "a note"
    assert rec["written_by_a_newer_xpm"] == {"job": "123"}


def test_a_lost_run_ends_at_its_newest_sign_of_life(project: Path, report: Path) -> None:
    """SIGKILLed 1.5 s in, with a heartbeat every 30 s: not `lost after 0.0s`."""
    ready = report.with_name("ready")
    proc = spawn_xpm("run", "-n", "k", "--",
                     *child("sleep=1.5", "print=late words", f"touch={ready}", "sleep=60"))
    log = project / "results" / "k" / "1" / "output.log"
    wait_for(lambda: ready.exists() and b"late words" in log.read_bytes(),
             what="the child's late output in output.log")
    child_pid = read_json(report)["pid"]
    proc.kill()
    proc.wait(timeout=10)
    wait_for(lambda: not pid_alive(child_pid), what="the child to die with xpm")
    run = xpm.load_run(project / "results" / "k" / "1")
    assert run.status == "lost"
    meta = run.meta
    assert meta["duration"] >= 1.4
    attempt = meta["attempts"][0]
    assert attempt["status"] == "lost" and attempt["ended"] == meta["ended"]
    assert "no process holds the run's lock" in attempt["reason"]


def _outcome(returncode: int, forwarded: int | None = None) -> Outcome:
    return Outcome(returncode, forwarded)


def test_how_an_attempt_ends() -> None:
    usr2 = Scheduler(signal.SIGUSR2, lambda: None)
    cases = [
        (ending(_outcome(0)), ("completed", "completed", 0)),
        (ending(_outcome(3)), ("failed", "failed", 3)),
        (ending(_outcome(-9)), ("killed", "killed", 137)),
        (ending(_outcome(-15, signal.SIGTERM)), ("interrupted", "interrupted", 143)),
        (ending(_outcome(0, signal.SIGUSR2), usr2), (REQUEUED, "queued", 0)),
        (ending(_outcome(-9, signal.SIGUSR2), usr2), (REQUEUED, "queued", 137)),
        (ending(_outcome(0, signal.SIGUSR2), usr2, "scontrol said no"),
         ("interrupted", "interrupted", 0)),
        # without a scheduler, SIGTERM after nothing else is an interruption
        (ending(_outcome(-15, signal.SIGTERM), usr2), ("interrupted", "interrupted", 143)),
    ]
    for end, (attempt_status, run_status, code) in cases:
        assert (end.attempt_status, end.run_status, end.exit_code) == (
            attempt_status, run_status, code), end
    assert "not requeued: scontrol said no" in ending(
        _outcome(0, signal.SIGUSR2), usr2, "scontrol said no").reason


def _prepared_run(project: Path, *command: str) -> Path:
    """A run made as a scheduler's submitting host makes it: folder, record `queued`."""
    from xpm.launch.preparation import create_run, plan_run
    from xpm.project import load_project

    plan = plan_run(load_project(project), tuple(command), "job", (), (), 1, False)
    ref, _, lock = create_run(plan, (), None)
    lock.release()
    return ref.path


def _job(run_dir: Path, marker: Path, max_requeues: int = 3) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(TESTS / "scheduled_job.py"), str(run_dir), str(marker),
         str(max_requeues)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)


@pytest.mark.slow
def test_a_scheduler_signal_then_a_requeue_is_not_an_interruption(
        project: Path, report: Path, tmp_path: Path) -> None:
    saved, ready, marker = tmp_path / "saved", tmp_path / "ready", tmp_path / "requeued"
    run_dir = _prepared_run(project, *child(f"trap=SIGUSR2:{saved}", "checkpoint=5",
                                            f"touch={ready}", "sleep=60"))
    for attempt in (1, 2):
        ready.unlink(missing_ok=True)
        job = _job(run_dir, marker, max_requeues=1)
        wait_for(lambda j=job: ready.exists() or j.poll() is not None, what=f"attempt {attempt}")
        assert job.poll() is None, job.communicate()
        seen = read_json(report)
        assert seen["env"]["XPM_ATTEMPT"] == str(attempt)
        if attempt == 2:
            assert seen["env"]["XPM_RESUME"] == "1"
            assert seen["env"]["XPM_CHECKPOINT"].endswith("step-00000005.ckpt")
        job.send_signal(signal.SIGUSR2)  # the time limit is near
        assert job.wait(timeout=20) == 0  # the command saved and exited 0
        assert saved.read_text() == "SIGUSR2"
        rec = record(project, "job/1")
        assert rec["status"] == "queued" and rec["ended"] is None
        last = rec["attempts"][-1]
        assert last["status"] == "requeued" and last["slurm_job_id"] == "4242"
        assert last["kind"] == ("start" if attempt == 1 else "requeue")
        assert "job requeued" in last["reason"]
    assert marker.read_text() == "requeued\n" * 2
    job = _job(run_dir, marker, max_requeues=1)  # requeued once already: no more
    assert job.wait(timeout=20) == 1
    assert b"max_requeues is 1" in job.communicate()[1]
    rec = record(project, "job/1")
    assert rec["status"] == "failed" and len(rec["attempts"]) == 3
    assert "max_requeues is 1" in rec["attempts"][-1]["reason"]


def test_a_prepared_run_with_attempts_is_not_restarted_without_a_scheduler(
        project: Path) -> None:
    assert run_xpm("run", "-n", "p", "--", *child("exit=1")).code == 1
    result = run_xpm("_supervise", str(project / "results" / "p" / "1"))
    assert result.code == 1 and "xpm resume p/1" in result.err
    assert len(record(project, "p/1")["attempts"]) == 1


# ------------------------------------------------------------------ the run lock

def test_the_filelock_under_test() -> None:
    """CI runs these tests a second time at filelock's declared floor (.ci/run)."""
    import filelock

    wanted = os.environ.get("FILELOCK_UNDER_TEST")
    if wanted is not None:
        assert filelock.__version__ == wanted



def test_the_holder_is_said_beside_the_lock_never_in_it(project: Path, report: Path,
                                                         tmp_path: Path) -> None:
    go = tmp_path / "go"
    proc = spawn_xpm("run", "-n", "h", "--", *child(f"wait={go}"))
    wait_for(report.exists, what="the child to start")
    run_dir = project / "results" / "h" / "1"
    assert (run_dir / LOCK_FILE).read_bytes() == b""
    said = read_json(run_dir / HOLDER_FILE)
    assert said["pid"] == proc.pid and said["by"] == "xpm run"
    assert not RunLock(run_dir).try_acquire()  # a probe changes nothing
    assert read_json(run_dir / HOLDER_FILE) == said
    go.touch()
    assert proc.wait(timeout=20) == 0
    assert not (run_dir / HOLDER_FILE).exists()  # removed before the lock was let go


def test_a_dead_holder_is_never_named(project: Path) -> None:
    """A holder that died (SIGKILL) left its file; whoever holds the lock now is named,
    or nobody when it has not said who it is."""
    assert run_xpm("run", "-n", "d", "--", *child()).code == 0
    run_dir = project / "results" / "d" / "1"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run_dir / HOLDER_FILE).write_text(json.dumps(
        {"pid": dead.pid, "host": os.uname().nodename, "since": "2026-01-01T00:00:00+00:00",
         "by": "xpm resume"}))
    lock = RunLock(run_dir)
    assert lock.try_acquire()  # a holder that has not said who it is (yet)
    try:
        message = busy_message(run_dir, "d/1")
        assert str(dead.pid) not in message and "is in use;" in message
        lock.say("xpm test")
        assert f"in use by xpm test (pid {os.getpid()} on" in busy_message(run_dir, "d/1")
    finally:
        lock.release()
