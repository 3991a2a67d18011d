"""`xpm resume` and liveness: lost runs, the lock, checkpoints handed over, attempts."""

from __future__ import annotations

import json
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

import xpm
from tests.conftest import (
    child,
    git_commit,
    pid_alive,
    read_json,
    record,
    run_xpm,
    spawn_xpm,
    wait_for,
)
from xpm.runs.record import read_record, write_record


def start_and_kill_supervisor(project: Path, report: Path, *actions: str) -> int:
    """Start a run whose command waits forever; SIGKILL xpm; return the child's pid."""
    ready = report.with_name("ready")
    proc = spawn_xpm("run", "-n", "job", "--", *child(*actions, f"touch={ready}", "sleep=60"))
    wait_for(ready.exists, what="the child to be ready")
    child_pid: int = read_json(report)["pid"]
    proc.kill()
    proc.wait(timeout=10)
    wait_for(lambda: not pid_alive(child_pid), what="the child to die with xpm")
    report.unlink()
    return child_pid


def test_killed_supervisor_reads_lost_and_resume_completes(project: Path, report: Path) -> None:
    start_and_kill_supervisor(project, report, "checkpoint=100", "checkpoint=200")
    run_dir = project / "results" / "job" / "1"
    (run_dir / "checkpoints" / "step-00000300.ckpt").write_text("")  # torn: empty
    (run_dir / "checkpoints" / ".step-00000400.ckpt.99.tmp").write_text("half")
    assert record(project, "job/1")["status"] == "running"  # what was last written
    assert xpm.load_run(run_dir).status == "lost"  # what is true
    rec = record(project, "job/1")  # ...and the record was corrected on disk
    assert rec["status"] == "lost" and rec["attempts"][0]["status"] == "lost"
    # it ended at its newest sign of life: here the output written after the heartbeat
    output_written = (run_dir / "output.log").stat().st_mtime
    assert abs(datetime.fromisoformat(rec["ended"]).timestamp() - output_written) < 0.01
    assert rec["ended"] >= rec["heartbeat"]

    result = run_xpm("resume", "job/1", "--", *child("print=resumed"))
    assert result.code == 0, result
    seen = read_json(report)
    newest = str(run_dir / "checkpoints" / "step-00000200.ckpt")
    assert seen["env"]["XPM_CHECKPOINT"] == newest
    assert seen["env"]["XPM_RESUME"] == "1" and seen["env"]["XPM_ATTEMPT"] == "2"
    assert seen["env"]["XPM_CONFIG"] == str(run_dir / "config.yaml")
    rec = record(project, "job/1")
    assert rec["status"] == "completed" and len(rec["attempts"]) == 2
    second = rec["attempts"][1]
    assert second["kind"] == "resume" and second["checkpoint"] == newest
    assert second["status"] == "completed" and second["pid"] > 0
    log = (run_dir / "output.log").read_text()
    assert "===== xpm: attempt 2 (resume)" in log and log.endswith("resumed\n")


def test_resume_reruns_the_frozen_command_with_the_frozen_config(project: Path,
                                                                 report: Path) -> None:
    (project / "c.yaml").write_text("lr: 0.1\n")
    assert run_xpm("run", "-n", "f", "-c", "c.yaml", "--seed", "9", "--",
                   *child("exit=1")).code == 1
    (project / "c.yaml").write_text("lr: 0.5\n")  # today's config must not matter
    assert run_xpm("resume", "f").code == 1
    seen = read_json(report)
    assert seen["argv"][1:] == ["exit=1"]
    assert seen["env"]["XPM_SEED"] == "9"
    assert "lr: 0.1" in Path(seen["env"]["XPM_CONFIG"]).read_text()
    assert "XPM_CHECKPOINT" not in seen["env"]
    rec = record(project, "f/1")
    assert rec["status"] == "failed" and len(rec["attempts"]) == 2


def test_checkpoint_placeholder(project: Path, report: Path) -> None:
    assert run_xpm("run", "-n", "p", "--", *child("checkpoint=7", "exit=2")).code == 2
    result = run_xpm("resume", "p", "--", *child("{checkpoint}"))
    assert result.code == 0, result
    assert read_json(report)["argv"][1].endswith("checkpoints/step-00000007.ckpt")
    assert record(project, "p/1")["command"] == child("{checkpoint}")


def test_checkpoint_placeholder_without_a_checkpoint_is_an_error(project: Path) -> None:
    assert run_xpm("run", "-n", "p", "--", *child("exit=2")).code == 2
    result = run_xpm("resume", "p", "--", *child("{checkpoint}"))
    assert result.code == 1 and "no checkpoint was found" in result.err
    assert len(record(project, "p/1")["attempts"]) == 1
    assert run_xpm("resume", "p", "--", *child()).code == 0  # the lock was released


def test_completed_run_needs_force(project: Path) -> None:
    assert run_xpm("run", "-n", "done", "--", *child()).code == 0
    result = run_xpm("resume", "done")
    assert result.code == 1 and "--force" in result.err
    assert len(record(project, "done/1")["attempts"]) == 1
    assert run_xpm("resume", "done", "--force").code == 0
    assert len(record(project, "done/1")["attempts"]) == 2


@pytest.mark.parametrize("status", ["failed", "interrupted", "killed", "lost"])
def test_resumable_statuses(project: Path, status: str) -> None:
    assert run_xpm("run", "-n", "s", "--", *child("exit=1")).code == 1
    run_dir = project / "results" / "s" / "1"
    write_record(run_dir, replace(read_record(run_dir), status=status))
    assert run_xpm("resume", "s/1", "--", *child()).code == 0
    assert record(project, "s/1")["status"] == "completed"


def test_resume_of_a_running_run_fails_fast_naming_the_holder(project: Path, report: Path,
                                                               tmp_path: Path) -> None:
    go = tmp_path / "go"
    proc = spawn_xpm("run", "-n", "busy", "--", *child(f"wait={go}"))
    wait_for(report.exists, what="the child to start")
    result = run_xpm("resume", "busy", "--force")
    assert result.code == 1
    assert f"in use by xpm run (pid {proc.pid} on {os.uname().nodename} since" in result.err
    go.touch()
    assert proc.wait(timeout=20) == 0


def test_busy_message_names_the_resume_that_holds_the_run(project: Path, report: Path,
                                                          tmp_path: Path) -> None:
    assert run_xpm("run", "-n", "h", "--", *child("exit=1")).code == 1
    report.unlink()
    go = tmp_path / "go"
    holder = spawn_xpm("resume", "h", "--", *child(f"wait={go}"))
    wait_for(report.exists, what="the resumed command to start")
    result = run_xpm("resume", "h", "--", *child())
    assert result.code == 1
    assert f"in use by xpm resume (pid {holder.pid} on" in result.err
    go.touch()
    assert holder.wait(timeout=20) == 0


def test_concurrent_resumes_exactly_one_proceeds(project: Path, tmp_path: Path) -> None:
    assert run_xpm("run", "-n", "c", "--", *child("exit=1")).code == 1
    go = tmp_path / "go"
    (project / "xpm.yaml").write_text("results_dir: results\n")
    started = tmp_path / "started"

    def one(_: int) -> tuple[int, str]:
        result = run_xpm("resume", "c/1", "--", *child(f"touch={started}", f"wait={go}"))
        return result.code, result.err

    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(one, i) for i in range(20)]
        wait_for(started.exists, what="one resume to start its command", timeout=60)
        wait_for(lambda: sum(f.done() for f in futures) == 19, timeout=60,
                 what="the other resumes to fail")
        go.touch()
        results = [f.result() for f in futures]
    assert sorted(code for code, _ in results) == [0] + [1] * 19
    assert all("in use" in err for code, err in results if code == 1)
    attempts = record(project, "c/1")["attempts"]
    assert len(attempts) == 2
    # a message that names a holder names the live one, never the first attempt's pid
    winner = f"(pid {attempts[1]['pid']} on"
    assert all(winner in err for code, err in results if code == 1 and "(pid" in err)


def test_stale_heartbeat_from_another_host_is_lost(project: Path) -> None:
    assert run_xpm("run", "-n", "far", "--", *child()).code == 0
    run_dir = project / "results" / "far" / "1"
    rec = read_record(run_dir)
    other = replace(rec.attempts[0], host="gpu-node-7", ended=None, status=None)
    fresh = replace(rec, status="running", heartbeat=xpm_now(), heartbeat_interval=30,
                    attempts=(other,))
    write_record(run_dir, fresh)
    assert xpm.load_run(run_dir).status == "running"  # another host, recent heartbeat
    write_record(run_dir, replace(fresh, heartbeat="2020-01-01T00:00:00.000+00:00"))
    assert xpm.load_run(run_dir).status == "lost"
    rec = read_record(run_dir)
    # it ended at its newest sign of life: the heartbeat is old, the output newer
    output_written = (run_dir / "output.log").stat().st_mtime
    assert rec.status == "lost" and rec.ended is not None
    assert abs(datetime.fromisoformat(rec.ended).timestamp() - output_written) < 0.01


def xpm_now() -> str:
    from xpm.times import now_iso

    return now_iso()


def test_heartbeat_is_refreshed_while_running(project: Path, report: Path,
                                              tmp_path: Path) -> None:
    (project / "xpm.yaml").write_text("heartbeat_interval: 0.2\n")
    go = tmp_path / "go"
    proc = spawn_xpm("run", "-n", "hb", "--", *child(f"wait={go}"))
    wait_for(report.exists, what="the child to start")
    run_dir = project / "results" / "hb" / "1"
    written = (run_dir / "run.json").stat().st_mtime_ns

    def beat() -> str | None:
        try:
            return str(read_json(run_dir / ".heartbeat")["time"])
        except (OSError, ValueError):
            return None

    wait_for(lambda: beat() is not None, what="a heartbeat")
    first = beat()
    wait_for(lambda: beat() != first, what="a new heartbeat")
    assert record(project, "hb/1")["status"] == "running"
    assert (run_dir / "run.json").stat().st_mtime_ns == written  # run.json left alone
    assert xpm.load_run(project / "results" / "hb" / "1").status == "running"
    go.touch()
    assert proc.wait(timeout=20) == 0


def test_a_lock_file_alone_does_not_mean_running(project: Path) -> None:
    assert run_xpm("run", "-n", "l", "--", *child()).code == 0
    run_dir = project / "results" / "l" / "1"
    assert (run_dir / ".lock").exists()
    write_record(run_dir, replace(read_record(run_dir), status="running"))
    assert xpm.load_run(run_dir).status == "lost"


def test_code_change_warning(repo: Path) -> None:
    assert run_xpm("run", "-n", "w", "--", *child("exit=1")).code == 1
    result = run_xpm("resume", "w")
    assert "warning" not in result.err
    (repo / "train.py").write_text("print('edited')\n")
    result = run_xpm("resume", "w")
    assert "uncommitted changes differ" in result.err
    git_commit(repo, "second")
    result = run_xpm("resume", "w")
    assert "warning: the code differs from run w/1's record: the commit is" in result.err


def test_resume_without_run_takes_the_latest_started(project: Path) -> None:
    assert run_xpm("run", "-n", "a", "--", *child("exit=1")).code == 1
    assert run_xpm("run", "-n", "b", "--", *child("exit=1")).code == 1
    assert run_xpm("resume", "a").code == 1  # a: neither newest created nor last by name
    assert run_xpm("resume").code == 1
    assert len(record(project, "a/1")["attempts"]) == 3
    assert len(record(project, "b/1")["attempts"]) == 1


def test_latest_started_compares_times_across_timezones(project: Path) -> None:
    env = dict(os.environ, TZ="Asia/Tokyo")
    assert run_xpm("run", "-n", "east", "--", *child("exit=1"), env=env).code == 1
    env = dict(os.environ, TZ="America/New_York")
    assert run_xpm("run", "-n", "west", "--", *child("exit=1"), env=env).code == 1
    assert record(project, "east/1")["started"] > record(project, "west/1")["started"]  # text
    assert run_xpm("resume").code == 1
    assert len(record(project, "west/1")["attempts"]) == 2


def test_resume_by_path_from_outside_runs_in_the_project(project: Path, report: Path,
                                                        tmp_path: Path) -> None:
    assert run_xpm("run", "-n", "p", "--", *child("exit=1")).code == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_xpm("resume", str(project / "results" / "p" / "1"), "--", *child(),
                     cwd=elsewhere)
    assert result.code == 0, result
    assert read_json(report)["cwd"] == str(project)


def test_fresh_heartbeat_from_another_host_refuses_resume(project: Path) -> None:
    assert run_xpm("run", "-n", "far", "--", *child()).code == 0
    run_dir = project / "results" / "far" / "1"
    rec = read_record(run_dir)
    other = replace(rec.attempts[0], host="gpu-node-7", ended=None, status=None)
    write_record(run_dir, replace(rec, status="running", heartbeat=xpm_now(),
                                  attempts=(other,)))
    result = run_xpm("resume", "far", "--", *child())
    assert result.code == 1 and "running on another host" in result.err
    assert "gpu-node-7" in result.err
    assert len(record(project, "far/1")["attempts"]) == 1
    result = run_xpm("resume", "far", "--force", "--", *child())
    assert result.code == 0, result
    rec2 = record(project, "far/1")
    assert rec2["attempts"][0]["status"] == "lost" and rec2["status"] == "completed"


def test_missing_patch_is_a_warning_not_a_crash(repo: Path) -> None:
    (repo / "train.py").write_text("print('dirty')\n")
    assert run_xpm("run", "-n", "dp", "--", *child("exit=1")).code == 1
    (repo / "results" / "dp" / "1" / "git.patch").unlink()
    result = run_xpm("resume", "dp", "--", *child())
    assert result.code == 0, result
    assert "git.patch is missing" in result.err


def test_resume_bad_input(project: Path) -> None:
    result = run_xpm("resume")
    assert result.code == 1 and "no runs" in result.err
    result = run_xpm("resume", "nope/3")
    assert result.code == 1 and "no run named `nope`" in result.err
    assert "Traceback" not in result.err


def test_interrupt_during_resume(project: Path, report: Path, tmp_path: Path) -> None:
    assert run_xpm("run", "-n", "i", "--", *child("exit=1")).code == 1
    report.unlink()
    got = tmp_path / "got"
    proc = spawn_xpm("resume", "i", "--", *child(f"trap=SIGTERM:{got}", "sleep=60"))
    wait_for(report.exists, what="the resumed child")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    rec = record(project, "i/1")
    assert rec["status"] == "interrupted" and rec["attempts"][1]["status"] == "interrupted"


@pytest.mark.slow
def test_default_template_killed_and_resumed_matches_uninterrupted(tmp_path: Path) -> None:
    assert run_xpm("init", "demo", cwd=tmp_path).code == 0
    demo = tmp_path / "demo"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    settings = ["-s", "train.steps=120", "-s", "train.checkpoint_every=20", "--seed", "11"]
    whole = run_xpm("run", "-n", "whole", *settings, "-s", "train.step_delay=0", cwd=demo,
                    env=env)
    assert whole.code == 0, whole
    proc = spawn_xpm("run", "-n", "cut", *settings, "-s", "train.step_delay=0.02", cwd=demo,
                     env=env)
    ckpts = demo / "results" / "cut" / "1" / "checkpoints"
    wait_for(lambda: ckpts.is_dir() and len(list(ckpts.glob("step-*.json"))) >= 2,
             what="two checkpoints", timeout=60)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    cut = demo / "results" / "cut" / "1"
    assert xpm.load_run(cut).status == "lost"
    resumed = run_xpm("resume", "cut", cwd=demo, env=env)
    assert resumed.code == 0, resumed
    assert "resuming from step-" in resumed.out
    final = "checkpoints/step-00000120.json"
    a = json.loads((demo / "results" / "whole" / "1" / final).read_text())
    b = json.loads((cut / final).read_text())
    assert a["weights"] == b["weights"] and a["bias"] == b["bias"]
