"""Shared fixtures: an isolated environment, projects in temporary folders, real git
repositories made with the git CLI, and helpers to run xpm as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
CHILD = str(TESTS / "child.py")


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real home, git config or terminal settings."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for key, value in {
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
    }.items():
        monkeypatch.setenv(key, value)
    for key in list(os.environ):
        if key.startswith("XPM_"):
            monkeypatch.delenv(key)
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder with a minimal xpm.yaml, as the current folder."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "xpm.yaml").write_text("results_dir: results\n")
    monkeypatch.chdir(root)
    return root


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def git_commit(cwd: Path, message: str = "commit") -> str:
    git(cwd, "add", "-A")
    git(cwd, "commit", "-q", "--allow-empty", "-m", message)
    return git(cwd, "rev-parse", "HEAD")


@pytest.fixture
def repo(project: Path) -> Path:
    """The project folder as a git repository with one commit."""
    git(project, "init", "-q")
    (project / ".gitignore").write_text("results/\n")
    (project / "train.py").write_text("print('hello')\n")
    git_commit(project, "initial")
    return project


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout: {self.out}\nstderr: {self.err}>"


def xpm_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "xpm", *args]


def run_xpm(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 60, input: str | None = None) -> Result:
    """Run xpm as a real process and wait for it."""
    proc = subprocess.run(xpm_argv(*args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, input=input, stdin=None if input else subprocess.DEVNULL)
    return Result(proc)


def spawn_xpm(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
              **kwargs: Any) -> subprocess.Popen[bytes]:
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(xpm_argv(*args), cwd=cwd, env=env, **kwargs)


def run_in_pty(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
               stderr: int | None = None, answer: bytes | None = None) -> tuple[int, bytes]:
    """Run a command whose stdin and stdout (and stderr, unless given) are a terminal: a
    real pseudo-terminal. Returns its exit code and everything it showed. With `answer`,
    it is typed after each `[y/N]` question the command asks."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=slave, stdout=slave,
                            stderr=slave if stderr is None else stderr, start_new_session=True)
    os.close(slave)
    chunks = []
    answered = 0
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not data:
            break
        chunks.append(data)
        if answer is not None and b"".join(chunks).count(b"[y/N]") > answered:
            answered += 1
            os.write(master, answer)
    code = proc.wait(timeout=60)  # before closing the terminal, whose close hangs it up
    os.close(master)
    return code, b"".join(chunks)


def child(*actions: str) -> list[str]:
    """The argv of the test command (see tests/child.py)."""
    return [sys.executable, CHILD, *actions]


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    """Poll until predicate() is truthy; fail after `timeout` seconds. Never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def record(project: Path, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = read_json(project / "results" / run_id / "run.json")
    return data


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False
    return True


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its content (None for folders): to compare before/after."""
    out: dict[str, bytes | None] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = None if path.is_dir() or path.is_symlink() else path.read_bytes()
    return out


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Where the test command writes what it saw (CHILD_REPORT)."""
    path = tmp_path / "report.json"
    monkeypatch.setenv("CHILD_REPORT", str(path))
    yield path
