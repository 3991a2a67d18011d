"""One way to write every file xpm writes: whole or not at all, no temporary file left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_xpm
from xpm.runs.atomic import temporary_name, write_atomic
from xpm.runs.record import write_json_atomic


def test_a_write_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    target.write_text("old")
    write_atomic(target, b"new content", durable=True)
    assert target.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["run.json"]


def test_temporary_names_are_unique_across_hosts_and_processes(tmp_path: Path) -> None:
    name = temporary_name(tmp_path / "run.json")
    assert os.path.dirname(name) == str(tmp_path)
    assert os.path.basename(name).startswith(".run.json.") and name.endswith(".tmp")
    assert os.uname().nodename in name and f".{os.getpid()}." in name
    assert len({temporary_name(tmp_path / "run.json") for _ in range(100)}) == 100


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "run.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(target, {"a": object()})  # cannot be encoded
    with pytest.raises(OSError):
        write_atomic(tmp_path / "missing" / "x", b"1")  # no such folder
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["run.json"]


def test_a_killed_writer_never_leaves_a_partial_file(tmp_path: Path) -> None:
    """A writer killed in the middle of a large write leaves the old content whole."""
    target = tmp_path / "big.json"
    write_atomic(target, b"old")
    code = ("import sys; from xpm.runs.atomic import atomic_file\n"
            "with atomic_file(sys.argv[1]) as f:\n"
            "    f.write(b'x' * 1000); f.flush(); print('writing', flush=True)\n"
            "    import time; time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"writing\n"
    proc.kill()
    proc.wait()
    assert target.read_bytes() == b"old"  # the temporary file is left by SIGKILL, not used
    assert next(p for p in os.listdir(tmp_path) if p != "big.json").endswith(".tmp")


def test_runs_and_listing_leave_no_temporary_files(project: Path) -> None:
    assert run_xpm("run", "-n", "a", "--", sys.executable, "-c", "pass").code == 0
    assert run_xpm("ls").code == 0
    left = [p for p in (project / "results").rglob("*") if p.name.endswith(".tmp")]
    assert left == []
    assert (project / "results" / ".cache" / "ls" / "a.jsonl").exists()
