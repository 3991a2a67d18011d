"""`xpm log RUN [-f] [-n LINES]`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import child, run_xpm, spawn_xpm, tree, wait_for
from tests.records import write_run
from xpm import times
from xpm.cli import main
from xpm.runs.record import read_record, write_record

LOG = b"one\ntwo\r\nthree\n\xff binary \x1b[31mred\x1b[0m\nfour"


def log(capsysbinary: pytest.CaptureFixture[bytes], *args: str) -> tuple[int, bytes, str]:
    code = main(["log", *args])
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


def test_prints_the_log_byte_for_byte(project: Path,
                                      capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    write_run(project, "l", output=LOG)
    assert log(capsysbinary, "l") == (0, LOG, "")
    assert log(capsysbinary, "l/1", "-n", "2")[1] == b"\xff binary \x1b[31mred\x1b[0m\nfour"
    assert log(capsysbinary, "l", "-n", "4")[1] == b"two\r\nthree\n\xff binary \x1b[31mred" \
                                                  b"\x1b[0m\nfour"
    assert log(capsysbinary, "l", "-n", "99")[1] == LOG
    assert log(capsysbinary, "l", "-n", "0")[1] == b""


def test_last_lines_of_a_long_log(project: Path,
                                  capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    lines = [f"line {i} ".encode() + b"x" * (i % 700) + b"\n" for i in range(3000)]
    write_run(project, "big", output=b"".join(lines))
    assert log(capsysbinary, "big", "-n", "250")[1] == b"".join(lines[-250:])
    assert log(capsysbinary, "big", "-n", "1")[1] == lines[-1]


def test_a_run_without_output(project: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    write_run(project, "q", status="queued")
    code, out, err = log(capsysbinary, "q")
    assert code == 0 and out == b"" and "q/1 has no output yet (queued)" in err


def test_missing_run(project: Path) -> None:
    write_run(project, "l")
    before = tree(project)
    result = run_xpm("log", "l/4")
    assert result.code == 1 and "run `l/4` does not exist" in result.err
    assert result.err.count("\n") == 1 and result.out == ""
    result = run_xpm("log", "l", "-n", "-3")
    assert result.code == 2 and "-3 is not in the range" in result.err
    assert tree(project) == before


def follow(run: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    with open(out, "wb") as sink:
        return spawn_xpm("log", "-f", run, *extra, stdout=sink)


def test_follow_ends_when_the_run_ends(project: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    run = spawn_xpm("run", "-n", "f", "--", *child("print=first", f"wait={go}", "print=second"))
    output = project / "results" / "f" / "1" / "output.log"
    wait_for(lambda: output.exists() and b"first" in output.read_bytes(), what="first line")
    followed = tmp_path / "followed"
    proc = follow("f", followed)
    wait_for(lambda: b"first\n" in followed.read_bytes(), what="log -f to print")
    assert proc.poll() is None  # the run waits for `go`: log -f goes on
    go.touch()
    assert run.wait(timeout=30) == 0
    assert proc.wait(timeout=30) == 0
    assert followed.read_bytes() == b"first\nsecond\n"
    assert proc.stderr is not None
    assert "xpm: f/1 completed (exit 0, after" in proc.stderr.read().decode()


def test_follow_from_the_last_lines(project: Path, tmp_path: Path) -> None:
    write_run(project, "n", output=b"a\nb\nc\n")
    followed = tmp_path / "followed"
    proc = follow("n", followed, "-n", "1")
    assert proc.wait(timeout=30) == 0  # already ended: prints and returns
    assert followed.read_bytes() == b"c\n"


@pytest.mark.slow
def test_follow_ends_when_the_supervisor_dies(project: Path, tmp_path: Path) -> None:
    run = spawn_xpm("run", "-n", "k", "--", *child("print=up", "sleep=60"))
    output = project / "results" / "k" / "1" / "output.log"
    wait_for(lambda: output.exists() and b"up" in output.read_bytes(), what="output")
    followed = tmp_path / "followed"
    proc = follow("k/1", followed)
    wait_for(lambda: followed.read_bytes() == b"up\n", what="log -f to print")
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    assert proc.wait(timeout=30) == 0
    assert proc.stderr is not None
    assert "xpm: k/1 lost" in proc.stderr.read().decode()
    assert json.loads((output.parent / "run.json").read_text())["status"] == "lost"


def test_follow_a_run_on_another_host(project: Path, tmp_path: Path) -> None:
    run_dir = write_run(project, "h", status="running", host="gpu-node-7",
                        heartbeat=times.now(), output=b"hello\n")
    followed = tmp_path / "followed"
    proc = follow("h", followed)
    wait_for(lambda: followed.read_bytes() == b"hello\n", what="log -f to print")
    with open(run_dir / "output.log", "ab") as f:
        f.write(b"more\n")
    wait_for(lambda: followed.read_bytes() == b"hello\nmore\n", what="the new line")
    assert proc.poll() is None  # its heartbeat is fresh: still running
    record = read_record(run_dir)
    with open(run_dir / "output.log", "ab") as f:
        f.write(b"done\n")
    write_record(run_dir, replace(record, status="completed", exit_code=0,
                                  ended=times.now_iso(), duration=5.0))
    assert proc.wait(timeout=30) == 0
    assert followed.read_bytes() == b"hello\nmore\ndone\n"
    assert proc.stderr is not None
    assert "h/1 completed (exit 0, after 5.0s)" in proc.stderr.read().decode()


def test_follow_a_run_whose_heartbeat_stopped(project: Path, tmp_path: Path) -> None:
    write_run(project, "s", status="running", host="gpu-node-7",
              heartbeat=times.now() - timedelta(minutes=10), output=b"last words\n")
    followed = tmp_path / "followed"
    proc = follow("s", followed)
    assert proc.wait(timeout=30) == 0
    assert followed.read_bytes() == b"last words\n"
    assert proc.stderr is not None and "s/1 lost" in proc.stderr.read().decode()
