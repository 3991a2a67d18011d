"""Loading a trained run without today's code: run.load of the frozen Python config, with
its helper modules from today's tree or from the run's own recorded code, and
run.checkpoint_at."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

import xpm
from tests.conftest import git, git_commit, run_xpm, tree

MODEL = textwrap.dedent("""
    from helper import width

    def load(config, scale=1, extra=0):
        return {"hidden": config.model.hidden * scale + extra, "width": width(),
                "seed": config.seed}
""")


@pytest.fixture
def trained(repo: Path) -> Path:
    """A run of a project whose Python config imports a helper module beside it."""
    (repo / "configs").mkdir()
    (repo / "configs" / "model.py").write_text(MODEL)
    (repo / "configs" / "helper.py").write_text("def width():\n    return 'v1'\n")
    (repo / "configs" / "model.yaml").write_text("model:\n  hidden: 8\n")
    git_commit(repo, "model v1")
    result = run_xpm("run", "-n", "m", "-c", "configs/model.yaml", "-c", "configs/model.py",
                     "--seed", "3", "--", sys.executable, "-c", "pass", cwd=repo)
    assert result.code == 0, result
    return repo / "results" / "m" / "1"


def _change_code(repo: Path) -> None:
    (repo / "configs" / "model.py").write_text("def load(config):\n    raise SystemExit(9)\n")
    (repo / "configs" / "helper.py").write_text("def width():\n    return 'v2'\n")
    git_commit(repo, "model v2")


def test_load_calls_the_frozen_copy_after_the_original_changed(trained: Path) -> None:
    repo = trained.parents[2]
    _change_code(repo)
    run = xpm.load_run(trained)
    # the frozen model.py, today's helper (it lives beside the original, still there)
    assert run.load("configs/model.py", 2, extra=1) == {"hidden": 17, "width": "v2",
                                                         "seed": 3}
    # the run's own code, helper included, rebuilt read-only under results/.cache
    before = tree(repo / ".git"), git(repo, "status", "--porcelain")
    assert run.load("model.py", exact=True) == {"hidden": 8, "width": "v1", "seed": 3}
    assert (tree(repo / ".git"), git(repo, "status", "--porcelain")) == before
    cached = list((repo / "results" / ".cache" / "code").iterdir())
    assert len(cached) == 1
    helper = cached[0] / "configs" / "helper.py"
    assert helper.read_text() == "def width():\n    return 'v1'\n"
    assert not os.stat(helper).st_mode & stat.S_IWUSR
    # loading again reuses the cache and today's helper did not leak into it
    assert run.load("model.py", exact=True)["width"] == "v1"
    assert run.load("configs/model.py")["width"] == "v2"


def test_load_after_the_original_was_deleted(trained: Path) -> None:
    repo = trained.parents[2]
    (repo / "configs" / "model.py").unlink()
    (repo / "configs" / "helper.py").unlink()
    git_commit(repo, "models gone")
    run = xpm.load_run(trained)
    assert run.load("model.py", exact=True) == {"hidden": 8, "width": "v1", "seed": 3}


def test_load_names_the_frozen_configs_when_asked_for_another(trained: Path) -> None:
    with pytest.raises(xpm.XpmError, match=r"no frozen copy of `net.py` \(its configs: "
                       r"configs/model.yaml, configs/model.py\)"):
        xpm.load_run(trained).load("net.py")


def test_load_exact_refuses_a_run_without_git(project: Path) -> None:
    (project / "model.py").write_text("def load(config):\n    return config.seed\n")
    assert run_xpm("run", "-n", "p", "-c", "model.py", "--seed", "2", "--", sys.executable,
                   "-c", "pass").code == 0
    run = xpm.load_run(project / "results" / "p" / "1")
    assert run.load("model.py") == 2
    with pytest.raises(xpm.XpmError, match="recorded no git state"):
        run.load("model.py", exact=True)


def test_checkpoint_at_picks_the_step_or_the_nearest_before(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_xpm("run", "-n", "c", "--", sys.executable, "-c", "pass").code == 0
    run = xpm.load_run(project / "results" / "c" / "1")
    assert run.checkpoint_at(100) is None
    for step in (10, 20, 30):
        with run.saving(step) as path:
            path.write_text(str(step))
    assert run.checkpoint_at(20) == run.checkpoint_path(20)
    assert capsys.readouterr().err == ""
    assert run.checkpoint_at(25) == run.checkpoint_path(20)
    assert "no checkpoint of step 25; using the nearest before it, step 20" in (
        capsys.readouterr().err)
    assert run.checkpoint_at(5) is None
    assert run.checkpoint_at(1000) == run.checkpoint_path(30)
