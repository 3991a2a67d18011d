"""What a command starts in sessions of its own (as torchrun starts its workers) ends with
the run: when xpm is SIGKILLed, and when the command ends. Nothing else is touched."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from tests.conftest import child, pid_alive, read_json, record, run_xpm, spawn_xpm, wait_for


def session_of(pid: int) -> int:
    return os.getsid(pid)


def test_sigkill_of_xpm_takes_down_a_worker_in_its_own_session(project: Path, report: Path,
                                                               tmp_path: Path) -> None:
    # another run's process, started by hand: never xpm's to kill
    bystander = subprocess.Popen(child("sleep=60"), start_new_session=True, env=dict(
        os.environ, CHILD_REPORT="", XPM_RUN_DIR=str(project / "results" / "other" / "1"),
        XPM_ATTEMPT="1"))
    # like torchrun: the worker gets a session of its own, so it is out of the group
    script = f"setsid {shlex.join(child('sleep=60'))} & wait"
    proc = spawn_xpm("run", "-n", "w", "--", "bash", "-c", script)
    wait_for(report.exists, what="the worker to start")
    worker = read_json(report)["pid"]
    assert session_of(worker) not in (session_of(proc.pid), os.getsid(0))
    proc.kill()
    proc.wait(timeout=10)
    wait_for(lambda: not pid_alive(worker), timeout=2, what="the worker to die with xpm")
    assert pid_alive(bystander.pid)
    bystander.kill()
    bystander.wait()


def test_a_worker_left_in_its_own_session_is_stopped_when_the_command_ends(
        project: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    script = f"setsid sleep 60 & echo $! > {pid_file}; echo started"
    result = run_xpm("run", "-n", "bg", "--", "bash", "-c", script)
    assert result.code == 0, result
    assert record(project, "bg/1")["status"] == "completed"
    wait_for(lambda: not pid_alive(int(pid_file.read_text())), timeout=2,
             what="the leftover to stop")


def _marked(pid: int, mark: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return mark in f.read().split(b"\0")
    except OSError:
        return False


def test_a_guardian_never_told_the_first_process_finds_the_command_by_its_marks(
        tmp_path: Path) -> None:
    """xpm forks the guardian before the command and tells it the command's first process
    after; killed in between, xpm leaves a guardian that knows only the command's marks."""
    from xpm.launch import processes, supervisor

    marks = {"XPM_RUN_DIR": str(tmp_path / "r" / "1"), "XPM_ATTEMPT": "1", "CHILD_REPORT": ""}
    env = dict(os.environ, **marks)
    guardian, told = supervisor._start_guardian(processes.to_start(env))
    command = subprocess.Popen(child("sleep=60"), env=env, start_new_session=True)
    other = subprocess.Popen(child("sleep=60"), env=dict(env, XPM_ATTEMPT="2"),
                             start_new_session=True)
    wait_for(lambda: _marked(command.pid, b"XPM_ATTEMPT=1"), what="the command's exec")
    os.close(told)  # as when xpm dies: the guardian stops what carries the marks
    assert os.waitpid(guardian, 0)[1] == 0
    assert command.wait(timeout=5) == -9
    assert other.poll() is None  # another attempt's process: not the guardian's
    other.kill()
    other.wait()


def test_a_process_with_no_environment_is_not_the_commands(tmp_path: Path) -> None:
    """An environment that reads empty is read again for a moment (as a process in the
    middle of an exec shows one); still empty, the process is left alone: it carries no
    marks. (The exec window itself is too short to catch in a test.)"""
    from xpm.launch import processes

    env = dict(os.environ, XPM_RUN_DIR=str(tmp_path / "r" / "1"), XPM_ATTEMPT="1",
               CHILD_REPORT="")
    cmd = processes.to_start(env)
    bare = subprocess.Popen(["env", "-i", "sleep", "60"], start_new_session=True)
    marked = subprocess.Popen(child("sleep=60"), env=env, start_new_session=True)
    try:
        wait_for(lambda: _marked(marked.pid, b"XPM_ATTEMPT=1"), what="the marked exec")
        wait_for(lambda: Path(f"/proc/{bare.pid}/exe").resolve().name == "sleep",
                 what="the bare exec")
        assert processes.members(cmd) == {marked.pid}
    finally:
        for proc in (bare, marked):
            proc.kill()
            proc.wait()


def test_sigkill_of_xpms_whole_process_group_takes_down_the_command(
        project: Path, report: Path) -> None:
    """`kill -9 %1` in a shell kills xpm's whole group: the guardian, in a session of its
    own, is not in it, and stops the command (which is in a session of its own too)."""
    proc = spawn_xpm("run", "-n", "g", "--", *child("sleep=60"), start_new_session=True)
    wait_for(report.exists, what="the command to start")
    command = read_json(report)["pid"]
    os.killpg(proc.pid, 9)
    proc.wait(timeout=10)
    wait_for(lambda: not pid_alive(command), timeout=5, what="the command to die with xpm")
