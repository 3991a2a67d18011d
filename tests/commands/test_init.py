"""`xpm init`: the example projects."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import git, git_commit, read_json, record, run_xpm, tree

DEFAULT_FILES = {"xpm.yaml", "configs/data.yaml", "configs/model.yaml", "train.py",
                 ".gitignore", "README.md"}


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_init_creates_the_default_project(tmp_path: Path) -> None:
    result = run_xpm("init", "demo", cwd=tmp_path)
    assert result.code == 0, result
    assert files_in(tmp_path / "demo") == DEFAULT_FILES
    assert "results/" in (tmp_path / "demo" / ".gitignore").read_text()
    assert "next: cd demo && xpm run" in result.err


def test_init_torch_template(tmp_path: Path) -> None:
    assert run_xpm("init", "t", "--template", "torch", cwd=tmp_path).code == 0
    assert files_in(tmp_path / "t") == DEFAULT_FILES
    assert "import torch" in (tmp_path / "t" / "train.py").read_text()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "p"
    target.mkdir()
    (target / "train.py").write_text("mine\n")
    (target / "xpm.yaml").write_text("name: mine\n")
    before = tree(target)
    result = run_xpm("init", str(target))
    assert result.code == 1
    assert "train.py" in result.err and "xpm.yaml" in result.err and "--force" in result.err
    assert tree(target) == before
    assert run_xpm("init", str(target), "--force").code == 0
    assert (target / "train.py").read_text() != "mine\n"


def test_init_in_a_non_empty_git_repository(tmp_path: Path) -> None:
    target = tmp_path / "repo"
    target.mkdir()
    git(target, "init", "-q")
    (target / "other.py").write_text("x = 1\n")
    (target / ".gitignore").write_text("*.pyc\n")
    git_commit(target)
    result = run_xpm("init", cwd=target)
    assert result.code == 0, result
    assert (target / "other.py").read_text() == "x = 1\n"
    assert (target / ".gitignore").read_text() == "*.pyc\n# xpm run folders\nresults/\n" \
        "__pycache__/\n"
    assert "xpm.yaml" in git(target, "status", "--porcelain")


def test_force_keeps_the_projects_gitignore_and_readme(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("data/\n*.ckpt\n")
    (tmp_path / "README.md").write_text("# My project\n")
    (tmp_path / "train.py").write_text("mine\n")
    result = run_xpm("init", "--force", cwd=tmp_path)
    assert result.code == 0, result
    assert (tmp_path / ".gitignore").read_text() == "data/\n*.ckpt\n# xpm run folders\n" \
        "results/\n__pycache__/\n"
    assert (tmp_path / "README.md").read_text() == "# My project\n"
    assert (tmp_path / "train.py").read_text() != "mine\n"
    assert "kept your README.md" in result.err


def test_an_existing_readme_is_no_clash(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# Mine\n")
    assert run_xpm("init", cwd=tmp_path).code == 0
    assert (tmp_path / "README.md").read_text() == "# Mine\n"
    assert (tmp_path / "train.py").exists()


def test_init_into_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = run_xpm("init", "f", cwd=tmp_path)
    assert result.code in (1, 2) and "Traceback" not in result.err


@pytest.mark.slow
def test_default_template_trains(tmp_path: Path) -> None:
    assert run_xpm("init", "demo", cwd=tmp_path).code == 0
    demo = tmp_path / "demo"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = run_xpm("run", "-s", "train.step_delay=0", "--seed", "1", cwd=demo, env=env)
    assert result.code == 0, result
    assert "done: loss" in result.out
    run_dir = demo / "results" / "linear" / "1"
    assert record(demo, "linear/1")["status"] == "completed"
    metrics = [line for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    assert len(metrics) == 30
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints[-1] == "step-00000300.json" and len(checkpoints) == 6
    assert read_json(run_dir / "checkpoints" / checkpoints[-1])["step"] == 300


def test_init_git_makes_a_repository_of_its_own(tmp_path: Path) -> None:
    result = run_xpm("init", "demo", "--git", cwd=tmp_path)
    assert result.code == 0, result
    demo = tmp_path / "demo"
    assert git(demo, "rev-parse", "--show-toplevel") == str(demo.resolve())
    assert git(demo, "status", "--porcelain") == ""
    assert "xpm init (default template)" in git(demo, "log", "--format=%s")
    run = run_xpm("run", cwd=demo, timeout=120)
    assert run.code == 0, run
    assert record(demo, "linear/1")["git"]["dirty"] is False


def test_init_without_a_terminal_only_says_how(tmp_path: Path) -> None:
    result = run_xpm("init", "demo", cwd=tmp_path)
    assert result.code == 0 and "`xpm init --git`" in result.err, result
    assert not (tmp_path / "demo" / ".git").exists()
    result = run_xpm("init", "quiet", "--no-git", cwd=tmp_path)
    assert result.code == 0 and "--git" not in result.err, result


def test_init_git_inside_a_repository_leaves_git_alone(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    git_commit(tmp_path, "outer")
    result = run_xpm("init", "sub", "--git", cwd=tmp_path)
    assert result.code == 0 and "already in the git repository" in result.err, result
    assert not (tmp_path / "sub" / ".git").exists()
    assert len(git(tmp_path, "log", "--format=%s").splitlines()) == 1


def test_init_asks_on_a_terminal(tmp_path: Path) -> None:
    # A real pseudo-terminal answering "y" to the question.
    import pty
    import subprocess

    from tests.conftest import xpm_argv

    master, slave = pty.openpty()
    proc = subprocess.Popen(xpm_argv("init", "demo"), cwd=tmp_path, stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    seen = b""
    while b"[y/N]" not in seen:
        seen += os.read(master, 4096)
    os.write(master, b"y\n")
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        seen += data
    os.close(master)
    assert proc.wait(timeout=60) == 0, seen
    assert (tmp_path / "demo" / ".git").is_dir(), seen


def test_a_failing_commit_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "empty.gitconfig"))
    monkeypatch.setenv("EMAIL", "")
    result = run_xpm("init", "demo", "--git", cwd=tmp_path)
    assert result.code == 0, result
    assert (tmp_path / "demo" / "xpm.yaml").is_file()
    if "warning: `git commit` failed" not in result.err:  # git guessed an identity
        assert "made demo a git repository" in result.err, result
