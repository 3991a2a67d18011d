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
