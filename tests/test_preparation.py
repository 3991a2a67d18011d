"""A run folder while it is prepared: it holds the lock from its first instant; a signal
during preparation prints one line and removes what it made; a folder whose preparation
died (SIGKILL) reads `abandoned`, and the default `xpm clean` takes it (issue 15)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_xpm, wait_for

# Runs `xpm run` and sends itself SIGNAL the moment preparation imports MODULE: after the
# run folder is made and locked, before its record is written.
SIGNALLED_WHILE_PREPARING = """
import importlib.abc, os, signal, sys
MODULE, SIGNAL = sys.argv[1], getattr(signal, sys.argv[2])
class Signal(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == MODULE:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), SIGNAL)
        return None
sys.meta_path.insert(0, Signal())
sys.argv = ["xpm", *sys.argv[3:]]
from xpm.__main__ import main
sys.exit(main())
"""
AT_ENVIRONMENT = "xpm.launch.environment"  # imported by preparation, folder made and locked


def signalled(project: Path, signame: str, *args: str, at: str = AT_ENVIRONMENT
              ) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", SIGNALLED_WHILE_PREPARING, at,
                             signame, "run", "-n", "a", *args, "--", "true"],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def leftovers(project: Path) -> list[str]:
    folder = project / "results" / "a"
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name not in (".highest",
                                                                      ".highest.lock"))


@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGINT", 130),
                                           ("SIGHUP", 129)])
def test_a_signal_during_preparation_removes_what_it_made(project: Path, signame: str,
                                                          code: int) -> None:
    proc = signalled(project, signame)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().splitlines() == [
        "xpm: interrupted while preparing run a/1; removed its folder"], err
    assert leftovers(project) == []
    assert run_xpm("run", "-n", "a", "--", "true").code == 0  # its number is not reused
    assert leftovers(project) == ["2"]


def test_a_folder_whose_preparation_died_is_abandoned_and_cleaned(project: Path) -> None:
    proc = signalled(project, "SIGKILL")
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert leftovers(project) == ["1"]
    listed = run_xpm("ls", "--json")
    assert listed.code == 0 and listed.err == "", listed  # no `corrupt` warning
    [run] = json.loads(listed.out)
    assert run["id"] == "a/1" and run["status"] == "abandoned"
    assert "abandoned" in run_xpm("ls").out
    dry = run_xpm("clean", "--dry-run")
    assert "a/1" in dry.out and "abandoned" in dry.out, dry
    result = run_xpm("clean", "-y")
    assert result.code == 0, result
    assert leftovers(project) == []
    assert (project / "results" / ".trash" / "a" / "1").is_dir()
    assert run_xpm("clean", "--status", "abandoned", "--dry-run").code == 0


def test_a_folder_being_prepared_holds_its_lock_from_the_first_instant(project: Path) -> None:
    proc = signalled(project, "SIGSTOP")  # stops itself in the middle of preparing
    try:
        wait_for(lambda: leftovers(project) == ["1"], what="the run folder")
        listed = run_xpm("ls", "--json")
        assert listed.err == "", listed
        assert json.loads(listed.out)[0]["status"] == "running"
        assert run_xpm("clean", "-y", "a/1").code != 0  # in use: never taken
        assert leftovers(project) == ["1"]
        assert (project / "results" / "a" / "1" / ".lock").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(run_xpm("ls", "--json").out)[0]["status"] == "completed"
    assert not (project / "results" / "a" / "1" / ".preparing").exists()


def _tmpfs(where: Path) -> bool:
    import os

    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def test_a_full_disk_at_start_leaves_nothing_and_names_the_folder(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _tmpfs(disk):
        pytest.skip("needs a small tmpfs (root)")
    try:
        (disk / "xpm.yaml").write_text("results_dir: results\n")
        (disk / "results" / "a").mkdir(parents=True)
        with contextlib.suppress(OSError), open(disk / "filler", "wb") as f:
            while True:
                f.write(b"x" * 4096)
        result = run_xpm("run", "-n", "a", "--", "true", cwd=disk)
        assert result.code == 1 and result.err.count("\n") == 1, result
        assert "results/a" in result.err and "No space left" in result.err, result
        assert sorted(p.name for p in (disk / "results" / "a").iterdir()
                      if not p.name.startswith(".highest.lock")) == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_signal_as_the_folder_is_first_locked_leaves_nothing(project: Path) -> None:
    """The run lock's first use imports filelock (20-30 ms): a Ctrl-C then, the staging
    folder just made, leaves no hidden `.new-*` folder behind."""
    proc = signalled(project, "SIGINT", at="filelock")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert leftovers(project) == [], leftovers(project)
