"""The command's Python, not xpm's own: resolved as the command finds it, and asked about
its version and distributions while the command runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CHILD, read_json, record, run_xpm
from xpm.launch.interpreter import resolve


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another Python environment (a venv without pip), holding one distribution xpm's own
    environment does not have."""
    root = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = next(root.glob("lib/python*/site-packages"))
    (site / "only_in_the_venv-1.2.3.dist-info").mkdir()
    return root


def test_resolve_names_the_python_the_command_runs(tmp_path: Path, venv: Path) -> None:
    bin_ = venv / "bin"
    env = {"PATH": f"{bin_}{os.pathsep}{os.environ['PATH']}"}
    found = resolve(("python", "train.py"), tmp_path, env)
    assert found is not None and found.executable == str(bin_ / "python")
    assert not found.is_xpms_own
    script = tmp_path / "train"
    script.write_text(f"#!{bin_ / 'python'} -u\nprint(1)\n")
    script.chmod(0o755)
    found = resolve(("./train", "--lr", "1"), tmp_path, env)
    assert found is not None and found.executable == str(bin_ / "python")
    assert "#! line of train" in found.how
    script.write_text("#!/usr/bin/env python3\n")
    found = resolve(("env", "A=1", "./train"), tmp_path, env)
    assert found is not None and found.executable == str(bin_ / "python3")
    found = resolve(("bash", "run.sh"), tmp_path, env)  # names no Python: python3 on PATH
    assert found is not None and found.executable == str(bin_ / "python3")
    own = resolve((sys.executable, "-c", "pass"), tmp_path, env)
    assert own is not None and own.is_xpms_own


def test_the_commands_python_is_recorded_not_xpms(project: Path, venv: Path) -> None:
    python = str(venv / "bin" / "python")
    result = run_xpm("run", "-n", "v", "--", python, CHILD)
    assert result.code == 0, result
    env = read_json(project / "results" / "v" / "1" / "environment.json")
    version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert env["interpreter"]["executable"] == python
    assert env["interpreter"]["captured"] is True and not env["interpreter"]["xpms_own"]
    assert env["interpreter"]["prefix"] == str(venv)
    assert env["distributions"] == {"only_in_the_venv": "1.2.3"}  # not click, rich, ...
    assert env["python"] == version and env["python_executable"] == python
    assert env["xpm_python"]["executable"] == sys.executable
    rec = record(project, "v/1")
    assert rec["python_executable"] == python and rec["python"] == version


def test_xpms_own_python_is_read_in_process(project: Path) -> None:
    result = run_xpm("run", "-n", "o", "--", sys.executable, CHILD)
    assert result.code == 0, result
    env = read_json(project / "results" / "o" / "1" / "environment.json")
    assert env["interpreter"]["xpms_own"] is True and env["interpreter"]["captured"] is True
    assert "click" in {name.lower() for name in env["distributions"]}
