"""`xpm run` under signals: forwarding, the grace period, xpm's own death, a terminal."""

from __future__ import annotations

import hashlib
import os
import random
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    child,
    pid_alive,
    read_json,
    record,
    run_in_pty,
    run_xpm,
    spawn_xpm,
    wait_for,
)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_interrupt_is_forwarded(project: Path, report: Path, tmp_path: Path,
                                signame: str) -> None:
    got = tmp_path / "got"
    proc = spawn_xpm("run", "-n", "sig", "--", *child(f"trap={signame}:{got}", "sleep=60"))
    wait_for(report.exists, what="the child to start")
    proc.send_signal(getattr(signal, signame))
    assert proc.wait(timeout=20) == 0  # the child trapped it and exited 0
    assert got.read_text() == signame
    rec = record(project, "sig/1")
    assert rec["status"] == "interrupted"
    assert signame in rec["attempts"][0]["reason"]


def test_child_ignoring_sigterm_is_killed_after_grace(project: Path, report: Path) -> None:
    (project / "xpm.yaml").write_text("grace_period: 0.5\n")
    proc = spawn_xpm("run", "-n", "stubborn", "--", *child("ignore=SIGTERM", "sleep=60"))
    wait_for(report.exists, what="the child to start")
    child_pid = read_json(report)["pid"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGKILL
    assert not pid_alive(child_pid)
    rec = record(project, "stubborn/1")
    assert rec["status"] == "interrupted" and rec["signal"] == signal.SIGKILL
    assert "grace period" in rec["attempts"][0]["reason"]


def test_sigkill_of_xpm_takes_the_child_down(project: Path, report: Path) -> None:
    proc = spawn_xpm("run", "-n", "orphan", "--", *child("sleep=60"))
    wait_for(report.exists, what="the child to start")
    child_pid = read_json(report)["pid"]
    assert pid_alive(child_pid)
    proc.kill()
    proc.wait(timeout=10)
    wait_for(lambda: not pid_alive(child_pid), what="the child to die with xpm")
    assert record(project, "orphan/1")["status"] == "running"  # as written; liveness says lost


def test_sigkill_of_xpm_takes_down_what_the_command_started(project: Path,
                                                            report: Path) -> None:
    # bash runs the child as a grandchild of xpm (a command follows it, so no exec)
    script = f"{shlex.join(child('sleep=60'))}; echo after"
    proc = spawn_xpm("run", "-n", "tree", "--", "bash", "-c", script)
    wait_for(report.exists, what="the grandchild to start")
    grandchild = read_json(report)["pid"]
    with open(f"/proc/{grandchild}/stat") as f:
        assert int(f.read().split(") ", 1)[1].split()[1]) != proc.pid  # not xpm's child
    proc.kill()
    proc.wait(timeout=10)
    wait_for(lambda: not pid_alive(grandchild), what="the grandchild to die with xpm")


def test_leftovers_are_stopped_when_the_command_ends(project: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    script = f"sleep 60 & echo $! > {pid_file}; echo started"
    result = run_xpm("run", "-n", "bg", "--", "bash", "-c", script)
    assert result.code == 0, result
    wait_for(lambda: not pid_alive(int(pid_file.read_text())), what="the leftover to stop")


def test_burst_of_output_is_captured_byte_exact(project: Path, tmp_path: Path) -> None:
    size = 100 * 1024 * 1024
    out_file = tmp_path / "stdout"
    with open(out_file, "wb") as out:
        proc = spawn_xpm("run", "-n", "burst", "--", *child(f"burst={size}:7"), stdout=out)
        assert proc.wait(timeout=120) == 0
    rng = random.Random(7)
    expected = hashlib.sha256()
    left = size
    while left:
        n = min(left, 1 << 20)
        expected.update(rng.randbytes(n))
        left -= n
    log = project / "results" / "burst" / "1" / "output.log"
    assert log.stat().st_size == size
    for path in (log, out_file):
        with open(path, "rb") as f:
            assert hashlib.file_digest(f, "sha256").hexdigest() == expected.hexdigest()


def test_a_terminal_gets_a_pseudo_terminal(project: Path, report: Path) -> None:
    code, shown = run_in_pty(
        [sys.executable, "-m", "xpm", "run", "-n", "tty", "--", *child("print=a\rb")], project)
    assert code == 0, shown
    assert read_json(report)["isatty"] is True
    assert read_json(report)["ctty"] is True  # /dev/tty works: the pty controls the command
    log = (project / "results" / "tty" / "1" / "output.log").read_bytes()
    assert log == b"a\rb\n"  # exactly what the command wrote: no \r\n translation
    assert b"a\rb" in shown


def test_detach_returns_at_once_and_runs_in_background(project: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    proc = spawn_xpm("run", "-n", "bg", "--detach", "--", *child("wait=" + str(go),
                                                                  "print=done"))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.decode().strip() == "bg/1"
    assert record(project, "bg/1")["status"] == "running"
    go.touch()
    wait_for(lambda: record(project, "bg/1")["status"] == "completed", what="the run to end")
    assert (project / "results" / "bg" / "1" / "output.log").read_text() == "done\n"


def test_detach_of_a_command_that_cannot_start(project: Path) -> None:
    result = run_xpm("run", "-n", "bg", "--detach", "--", "no-such-command-xyz")
    assert result.code == 127, result
    assert "did not start: command not found: `no-such-command-xyz`" in result.err
    assert record(project, "bg/1")["status"] == "failed"


def test_detached_supervisor_is_in_a_session_of_its_own(project: Path, report: Path,
                                                        tmp_path: Path) -> None:
    go = tmp_path / "go"
    assert run_xpm("run", "-n", "bg", "--detach", "--", *child(f"wait={go}")).code == 0
    wait_for(report.exists, what="the command")
    supervisor = record(project, "bg/1")["attempts"][0]["pid"]
    assert os.getsid(supervisor) == supervisor != os.getsid(0)
    go.touch()
    wait_for(lambda: record(project, "bg/1")["status"] == "completed", what="the end")


def test_sigterm_while_preparing_leaves_no_half_made_run(project: Path, tmp_path: Path) -> None:
    # a slow nvidia-smi holds xpm in its preparations; SIGTERM arrives then
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    started = tmp_path / "smi-started"
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\ntouch {started}\nsleep 30\n")
    smi.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    proc = spawn_xpm("run", "-n", "early", "--", *child(), env=env)
    wait_for(started.exists, what="xpm to ask nvidia-smi")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert not (project / "results" / "early" / "1").exists()


def test_end_line_gives_the_exit_code(project: Path) -> None:
    result = run_xpm("run", "-n", "seg", "--", *child("signal=SIGSEGV"))
    assert result.code == 139
    assert "seg/1 killed after" in result.err and "(exit 139: killed by SIGSEGV)" in result.err
    result = run_xpm("run", "-n", "ok", "--", *child())
    assert "(exit 0)" in result.err


def test_a_script_without_interpreter_line(project: Path) -> None:
    script = project / "noshebang.sh"
    script.write_text("echo hi\n")
    script.chmod(0o755)
    result = run_xpm("run", "-n", "ns", "--", "./noshebang.sh")
    assert result.code == 126, result
    assert "not a program the system can start" in result.err and "Traceback" not in result.err
    assert record(project, "ns/1")["status"] == "failed"
    bad = project / "bad.sh"
    bad.write_text("#!/nonexistent/interpreter\necho hi\n")
    bad.chmod(0o755)
    result = run_xpm("run", "-n", "ns", "--", "./bad.sh")
    assert result.code == 126 and "interpreter on its #! line was not found" in result.err


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB file system (tmpfs; needs root), unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_does_not_end_the_run(project: Path, small_disk: Path) -> None:
    (project / "xpm.yaml").write_text(f"results_dir: {small_disk / 'results'}\n")
    code = "import sys; print('x' * 1_000_000); sys.exit(3)"
    result = run_xpm("run", "-n", "full", "--", sys.executable, "-c", code)
    assert result.code == 3, result  # the command ran to its end
    assert "cannot write" in result.err and "Traceback" not in result.err
    assert "internal error" not in result.err
    assert not list((small_disk / "results" / "full" / "1").glob(".*.tmp"))
