"""Git state recorded by `xpm run`, in real repositories made with the git CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import child, git, git_commit, record, run_xpm, tree
from xpm.vcs.state import UNTRACKED_LIMIT, capture, strip_credentials


def run_git_state(project: Path, *args: str) -> dict:
    result = run_xpm("run", "-n", "g", *args, "--", *child())
    assert result.code == 0, result
    runs = sorted(int(p.name) for p in (project / "results" / "g").iterdir() if p.name.isdigit())
    return record(project, f"g/{runs[-1]}")


def test_not_a_repository(project: Path) -> None:
    assert run_git_state(project)["git"] is None


def test_clean_repository(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://user:s3cret@example.com/team/proj.git")
    state = run_git_state(repo)["git"]
    assert state["commit"] == git(repo, "rev-parse", "HEAD")
    assert state["branch"] == "main"
    assert state["dirty"] is False and state["patch"] is None
    assert state["remote"] == "https://example.com/team/proj.git"
    assert state["untracked"] == [] and state["untracked_count"] == 0
    assert not (repo / "results" / "g" / "1" / "git.patch").exists()


def test_dirty_repository_writes_the_patch(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")  # unstaged
    (repo / "staged.py").write_text("x = 1\n")
    git(repo, "add", "staged.py")  # staged
    state = run_git_state(repo)["git"]
    assert state["dirty"] is True and state["patch"] == "git.patch"
    patch = (repo / "results" / "g" / "1" / "git.patch").read_text()
    assert "+print('changed')" in patch and "+x = 1" in patch
    # the patch applies to the recorded commit and gives back the working tree
    check = repo.parent / "check"
    git(repo.parent, "clone", "-q", str(repo), str(check))
    git(check, "checkout", "-q", state["commit"])
    git(check, "apply", str(repo / "results" / "g" / "1" / "git.patch"))
    assert (check / "train.py").read_text() == "print('changed')\n"
    assert (check / "staged.py").read_text() == "x = 1\n"


def test_untracked_only_is_not_dirty(repo: Path) -> None:
    (repo / "notes.txt").write_text("hi\n")
    state = run_git_state(repo)["git"]
    assert state["dirty"] is False
    assert state["untracked"] == ["notes.txt"] and state["untracked_count"] == 1


def test_huge_untracked_tree_is_capped(repo: Path) -> None:
    for i in range(UNTRACKED_LIMIT + 50):
        (repo / f"u{i:04d}.txt").write_text("x")
    (repo / "data").mkdir()
    for i in range(2000):
        (repo / "data" / f"{i}.bin").write_text("x")
    state = capture(repo)
    assert state is not None
    assert len(state.untracked) == UNTRACKED_LIMIT
    assert state.untracked_count == UNTRACKED_LIMIT + 50 + 1  # data/ counts once


def test_no_commits_yet(project: Path) -> None:
    git(project, "init", "-q")
    (project / "a.py").write_text("a = 1\n")
    git(project, "add", "a.py")
    state = run_git_state(project)["git"]
    assert state["commit"] is None and state["branch"] == "main"
    assert state["dirty"] is True
    assert "+a = 1" in (project / "results" / "g" / "1" / "git.patch").read_text()


def test_detached_head(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    git_commit(repo, "second")
    git(repo, "checkout", "-q", first)
    state = run_git_state(repo)["git"]
    assert state["commit"] == first and state["branch"] is None


def test_submodule(repo: Path, tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    git(sub, "init", "-q")
    (sub / "lib.py").write_text("v = 1\n")
    sub_commit = git_commit(sub, "lib")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "lib")
    git_commit(repo, "add submodule")
    state = run_git_state(repo)["git"]
    assert state["submodules"] == {"lib": sub_commit}
    assert state["dirty"] is False


def test_require_clean_refuses_a_dirty_tree(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    before = tree(repo)
    result = run_xpm("run", "-n", "g", "--require-clean", "--", *child())
    assert result.code == 1 and "git tree is dirty" in result.err
    assert tree(repo) == before and not (repo / "results").exists()
    (repo / "xpm.yaml").write_text("git:\n  require_clean: true\n")
    result = run_xpm("run", "-n", "g", "--", *child())
    assert result.code == 1 and "git tree is dirty" in result.err


def test_require_clean_accepts_a_clean_tree(repo: Path) -> None:
    assert run_git_state(repo, "--require-clean")["git"]["dirty"] is False


@pytest.mark.parametrize("url, expected", [
    ("https://user:token@github.com/a/b.git", "https://github.com/a/b.git"),
    ("https://ghp_abcdef@github.com/a/b.git", "https://github.com/a/b.git"),
    ("ssh://git@host:22/a/b.git", "ssh://git@host:22/a/b.git"),
    ("ssh://git:pw@host/a/b.git", "ssh://host/a/b.git"),
    ("git@github.com:a/b.git", "git@github.com:a/b.git"),
    ("git+https://TOKEN@host/a/b.git", "git+https://host/a/b.git"),
    ("git+ssh://git:pw@host/a/b.git", "git+ssh://host/a/b.git"),
    ("ftp://u:p@host/b.git", "ftp://host/b.git"),
    ("http://tok@host/b.git", "http://host/b.git"),
    ("/srv/repos/b.git", "/srv/repos/b.git"),
])
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_git_missing_from_path(project: Path) -> None:
    env = {"PATH": "/nonexistent", "HOME": str(project)}
    if "PYTHONPATH" in os.environ:  # where xpm is found when it is not installed
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    import sys

    result = subprocess.run([sys.executable, "-m", "xpm", "run", "-n", "g", "--", *child()],
                            cwd=project, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert record(project, "g/1")["git"] is None


def test_undecodable_names_are_recorded(repo: Path) -> None:
    name = os.fsdecode(b"caf\xe9.txt")
    (repo / name).write_text("x")
    result = run_xpm("run", "-n", "u", "--", *child(), "caf\udce9")
    assert result.code == 0, result
    rec = record(repo, "u/1")
    assert "caf\\xe9.txt" in rec["git"]["untracked"]
    assert rec["command"][-1] == "caf\udce9"


# A `git` first on PATH that writes each call's arguments to $GIT_CALLS and runs the real git.
LOGGING_GIT = """#!/bin/sh
printf '%s\\n' "$*" >> "$GIT_CALLS"
exec {git} "$@"
"""


def git_calls(project: Path, tmp_path: Path, *args: str) -> tuple[dict, list[str]]:
    """The run's record and the git commands `xpm run` made to write it."""
    import shutil
    import sys

    real = shutil.which("git")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "git"
    shim.write_text(LOGGING_GIT.format(git=real))
    shim.chmod(0o755)
    log = tmp_path / "calls"
    log.write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "GIT_CALLS": str(log)}
    proc = subprocess.run([sys.executable, "-m", "xpm", "run", "-n", "g", *args, "--",
                           *child()], cwd=project, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    runs = sorted(int(p.name) for p in (project / "results" / "g").iterdir()
                  if p.name.isdigit())
    return record(project, f"g/{runs[-1]}"), [line.split()[0] for line in
                                              log.read_text().splitlines()]


def test_a_clean_tree_takes_three_git_calls_run_at_once(repo: Path, tmp_path: Path) -> None:
    git(repo, "remote", "add", "origin", "https://example.com/a.git")
    rec, calls = git_calls(repo, tmp_path)
    assert sorted(calls) == ["config", "rev-parse", "status"]
    state = rec["git"]
    assert state["commit"] == git(repo, "rev-parse", "HEAD") and state["branch"] == "main"
    assert state["dirty"] is False and state["patch"] is None
    assert state["remote"] == "https://example.com/a.git"
    assert state["root"] == str(repo.resolve())


def test_a_dirty_tree_adds_only_the_diff(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    (repo / "notes.txt").write_text("untracked\n")
    rec, calls = git_calls(repo, tmp_path)
    assert sorted(calls) == ["config", "diff", "rev-parse", "status"]
    assert calls[-1] == "diff"  # started once the status named its base
    state = rec["git"]
    assert state["dirty"] is True and state["patch"] == "git.patch"
    assert state["untracked"] == ["notes.txt"] and state["untracked_count"] == 1
    patch = (repo / "results" / "g" / "1" / "git.patch").read_bytes()
    assert patch == subprocess.run(["git", "diff", "--binary", "--no-color", "--no-ext-diff",
                                    state["commit"]], cwd=repo, capture_output=True,
                                   check=True).stdout


def test_a_detached_head_takes_three_git_calls(repo: Path, tmp_path: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    git_commit(repo, "second")
    git(repo, "checkout", "-q", first)
    rec, calls = git_calls(repo, tmp_path)
    assert sorted(calls) == ["config", "rev-parse", "status"]
    assert rec["git"]["commit"] == first and rec["git"]["branch"] is None
    assert rec["git"]["remote"] is None


def test_outside_a_repository_nothing_more_is_asked(project: Path, tmp_path: Path) -> None:
    rec, calls = git_calls(project, tmp_path)
    assert rec["git"] is None
    assert sorted(calls) == ["config", "rev-parse", "status"]


def test_a_large_patch_waits_in_the_pipe_until_the_folder_is_made(repo: Path,
                                                                  tmp_path: Path) -> None:
    """More than the pipe holds: git waits for xpm to read it, and the patch is whole."""
    import random

    blob = random.Random(0).randbytes(3 << 20)  # binary: --binary writes it all out
    (repo / "data.bin").write_bytes(blob)
    git(repo, "add", "data.bin")
    rec, _ = git_calls(repo, tmp_path)
    patch = repo / "results" / "g" / "1" / "git.patch"
    assert patch.stat().st_size > 3 << 20
    check = tmp_path / "check"
    git(tmp_path, "clone", "-q", str(repo), str(check))
    git(check, "checkout", "-q", rec["git"]["commit"])
    git(check, "apply", str(patch))
    assert (check / "data.bin").read_bytes() == blob


def test_a_pending_diff_is_stopped_when_the_run_is_not_made(repo: Path, tmp_path: Path
                                                            ) -> None:
    """The folder cannot be made: the started diff is stopped and reaped, nothing left."""
    from xpm.vcs.state import start_patch

    (repo / "train.py").write_text("print('changed')\n")
    state = capture(repo)
    pending = start_patch(state)
    assert pending is not None
    pending.cancel()
    assert pending._proc.returncode is not None
    assert start_patch(capture(repo.parent)) is None  # no repository: nothing to start
    git(repo, "checkout", "--", "train.py")
    assert start_patch(capture(repo)) is None  # clean: nothing to start
