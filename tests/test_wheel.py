"""The built wheel, installed into a fresh virtual environment, gives a working xpm."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_runs_the_example(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = dist.glob("xpm_runs-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "xpm/templates/default/train.py" in names
    assert "xpm/templates/default/gitignore" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"  # an activated environment
    init = subprocess.run(["xpm", "init", "demo"], cwd=tmp_path, env=env, capture_output=True,
                          text=True)
    assert init.returncode == 0, init.stderr
    run = subprocess.run(["xpm", "run", "-s", "train.step_delay=0"], cwd=tmp_path / "demo",
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "done: loss" in run.stdout
    located = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import xpm; print(xpm.__file__)"], capture_output=True, text=True,
                             env=env, cwd=tmp_path)
    assert located.stdout.startswith(str(venv))
