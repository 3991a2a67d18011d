"""`xpm rerun` in real git repositories: at HEAD, --exact after the code moved on, the
user's repository left byte for byte as it was, refusals, packages, Ctrl-C, resume."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import (
    git,
    git_commit,
    read_json,
    record,
    run_xpm,
    spawn_xpm,
    tree,
    wait_for,
)

TRAIN = textwrap.dedent("""
    import json, os, random, sys
    import xpm
    from helper import HELPER

    VERSION = "v1"
    run = xpm.current_run()
    rng = random.Random(run.seed)
    for step in range(1, 4):
        run.log(step=step, loss=rng.random() * run.config.lr)
    print(f"train {VERSION} helper {HELPER} lr {run.config.lr} seed {run.seed}")
    json.dump({"cwd": os.getcwd(), "version": VERSION, "helper": HELPER},
              open(os.path.join(os.environ["XPM_RUN_DIR"], "seen.json"), "w"))
    wait = os.environ.get("TRAIN_WAIT")
    if wait:
        open(wait + ".started", "w").close()
        while not os.path.exists(wait):
            pass
    sys.exit(int(os.environ.get("TRAIN_EXIT", "0")))
""")


@pytest.fixture
def trainer(repo: Path) -> Path:
    """A repository whose train.py imports a helper module that is not in git."""
    (repo / "train.py").write_text(TRAIN)
    (repo / "config.yaml").write_text("lr: 0.5\n")
    (repo / "xpm.yaml").write_text("results_dir: results\nconfigs: [config.yaml]\n"
                                   "command: [python3, train.py]\n")
    git_commit(repo, "trainer")
    (repo / "helper.py").write_text("HELPER = 'h1'\n")
    return repo


def env_with_python() -> dict[str, str]:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def seen(repo: Path, run_id: str) -> dict[str, str]:
    data: dict[str, str] = read_json(repo / "results" / run_id / "seen.json")
    return data


def user_state(repo: Path) -> dict[str, object]:
    """Everything of the user's repository a rerun must leave alone."""
    return {
        "files": {k: v for k, v in tree(repo).items() if not k.startswith(("results", ".git"))},
        "index": (repo / ".git" / "index").read_bytes(),
        "head": (repo / ".git" / "HEAD").read_bytes(),
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        "stash": git(repo, "stash", "list"),
        "status": git(repo, "status", "--porcelain=v2", "--branch"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
    }


def test_rerun_at_head_takes_the_command_config_and_seed(trainer: Path) -> None:
    env = env_with_python()
    first = run_xpm("run", "-n", "m", "--seed", "11", "-s", "lr=0.25", cwd=trainer, env=env)
    assert first.code == 0, first
    again = run_xpm("rerun", "m/1", cwd=trainer, env=env)
    assert again.code == 0, again
    assert "m/2 reruns m/1" in again.err
    assert "lr 0.25 seed 11" in again.out
    rec = record(trainer, "m/2")
    assert rec["rerun_of"] == "m/1" and rec["exact"] is False
    assert rec["seed"] == 11 and rec["config"] == {"lr": 0.25, "seed": 11}
    assert rec["command"] == ["python3", "train.py"]
    assert rec["config_files"] == ["configs/config.yaml"]
    assert (trainer / "results" / "m" / "2" / "configs" / "config.yaml").read_text() == (
        "lr: 0.5\n")  # the frozen copies, as RUN had them
    over = run_xpm("rerun", "m/1", "-s", "lr=2", "--seed", "3", "-n", "other", "-t", "again",
                   "-m", "why", cwd=trainer, env=env)
    assert over.code == 0, over
    rec = record(trainer, "other/1")
    assert rec["config"] == {"lr": 2, "seed": 3} and rec["rerun_of"] == "m/1"
    assert rec["tags"] == ["again"] and rec["note"] == "why"
    shown = run_xpm("show", "other/1", cwd=trainer).out
    assert re.search(r"\n  rerun of +m/1\n", shown), shown
    listed = run_xpm("ls", "-a", "--columns", "id,rerun_of", "--csv", cwd=trainer).out
    assert listed.splitlines() == ["id,rerun_of", "other/1,m/1", "m/2,m/1", "m/1,"]
    as_json = json.loads(run_xpm("ls", "--json", "-a", cwd=trainer).out)
    assert {r["id"]: r["rerun_of"] for r in as_json} == {"m/1": None, "m/2": "m/1",
                                                          "other/1": "m/1"}


def test_exact_rerun_restores_the_code_and_leaves_the_repository_alone(trainer: Path) -> None:
    env = env_with_python()
    # the original: a dirty tree (an uncommitted edit) and an untracked helper, captured
    (trainer / "train.py").write_text(TRAIN.replace('"v1"', '"v1-dirty"'))
    first = run_xpm("run", "-n", "m", "--seed", "5", "--capture-untracked", cwd=trainer,
                    env=env)
    assert first.code == 0, first
    assert "train v1-dirty helper h1" in first.out
    # the code moves on two commits, and the tree is dirty again, with a stash
    (trainer / "train.py").write_text(TRAIN.replace('"v1"', '"v2"'))
    (trainer / "helper.py").write_text("HELPER = 'h2'\n")
    git_commit(trainer, "v2")
    (trainer / "train.py").write_text(TRAIN.replace('"v1"', '"v3"'))
    git_commit(trainer, "v3")
    (trainer / "train.py").write_text(TRAIN.replace('"v1"', '"stashed"'))
    git(trainer, "stash")
    (trainer / "train.py").write_text(TRAIN.replace('"v1"', '"v4-dirty"'))
    (trainer / "notes.txt").write_text("mine\n")
    git(trainer, "add", "notes.txt")
    before = user_state(trainer)

    today = run_xpm("rerun", "m/1", cwd=trainer, env=env)
    assert today.code == 0 and "train v4-dirty helper h2" in today.out, today
    exact = run_xpm("rerun", "m/1", "--exact", cwd=trainer, env=env)
    assert exact.code == 0, exact
    assert "train v1-dirty helper h1 lr 0.5 seed 5" in exact.out
    assert "m/3 reruns m/1 exactly" in exact.err
    assert user_state(trainer) == before  # tree, index, HEAD, refs, stash, worktrees
    where = Path(seen(trainer, "m/3")["cwd"])
    assert where != trainer and not where.exists()  # a temporary worktree, removed
    rec = record(trainer, "m/3")
    assert rec["exact"] is True and rec["rerun_of"] == "m/1"
    assert rec["git"]["commit"] == record(trainer, "m/1")["git"]["commit"]
    assert (trainer / "results" / "m" / "3" / "git.patch").read_bytes() == (
        trainer / "results" / "m" / "1" / "git.patch").read_bytes()

    diff = run_xpm("diff", "m/1", "m/3", "--code", "--json", cwd=trainer)
    data = json.loads(diff.out)
    assert data["code"][0]["available"] and not data["code"][0]["differs"], data["code"]
    old_metrics = [{k: v for k, v in json.loads(line).items() if k != "time"} for line in
                   (trainer / "results" / "m" / "1" / "metrics.jsonl").read_text().splitlines()]
    new_metrics = [{k: v for k, v in json.loads(line).items() if k != "time"} for line in
                   (trainer / "results" / "m" / "3" / "metrics.jsonl").read_text().splitlines()]
    assert old_metrics == new_metrics and len(old_metrics) == 3
    text = run_xpm("diff", "m/1", "m/3", "--code", cwd=trainer).out
    assert "identical" in text


def _only_run(repo: Path, name: str) -> list[str]:
    return sorted(p.name for p in (repo / "results" / name).iterdir()
                  if not p.name.startswith("."))


def test_refusals_change_nothing(trainer: Path, tmp_path: Path) -> None:
    env = env_with_python()
    git_commit(trainer, "helper in git")
    # a commit that is gone from the repository
    git(trainer, "checkout", "-q", "-b", "gone")
    (trainer / "train.py").write_text(TRAIN.replace('"v1"', '"gone"'))
    git_commit(trainer, "soon gone")
    assert run_xpm("run", "-n", "g", cwd=trainer, env=env).code == 0
    git(trainer, "checkout", "-q", "main")
    git(trainer, "branch", "-q", "-D", "gone")
    git(trainer, "reflog", "expire", "--expire=now", "--all")
    git(trainer, "gc", "-q", "--prune=now")
    refused = run_xpm("rerun", "g/1", "--exact", cwd=trainer, env=env)
    assert refused.code == 1
    commit = record(trainer, "g/1")["git"]["commit"]
    assert f"commit {commit[:10]} of g/1 is not in the repository" in refused.err
    assert "fetch it (`git fetch --all`)" in refused.err
    assert _only_run(trainer, "g") == ["1"]

    # a git.patch that no longer applies to its commit
    (trainer / "train.py").write_text(TRAIN.replace('"v1"', '"patched"'))
    assert run_xpm("run", "-n", "p", cwd=trainer, env=env).code == 0
    patch = trainer / "results" / "p" / "1" / "git.patch"
    patch.write_text(patch.read_text().replace('VERSION = "v1"', 'VERSION = "other"'))
    refused = run_xpm("rerun", "p/1", "--exact", cwd=trainer, env=env)
    assert refused.code == 1
    assert "the git.patch of p/1 does not apply to its commit" in refused.err
    assert "rerun it without --exact" in refused.err
    assert _only_run(trainer, "p") == ["1"]
    assert git(trainer, "worktree", "list", "--porcelain").count("worktree ") == 1

    # no git state at all
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "xpm.yaml").write_text("results_dir: results\n")
    assert run_xpm("run", "-n", "n", "--", sys.executable, "-c", "pass", cwd=plain).code == 0
    refused = run_xpm("rerun", "n/1", "--exact", cwd=plain)
    assert refused.code == 1
    assert "n/1 recorded no git state" in refused.err
    assert _only_run(plain, "n") == ["1"]
    assert run_xpm("rerun", "n/1", cwd=plain).code == 0  # without --exact it reruns


def test_packages_that_differ_are_named(trainer: Path) -> None:
    env = env_with_python()
    assert run_xpm("run", "-n", "e", cwd=trainer, env=env).code == 0
    env_file = trainer / "results" / "e" / "1" / "environment.json"
    data = read_json(env_file)
    data["distributions"]["pyyaml"] = "0.0.1"
    data["distributions"]["made-up-package"] = "1.2"
    env_file.write_text(json.dumps(data))
    warned = run_xpm("rerun", "e/1", cwd=trainer, env=env)
    assert warned.code == 0
    assert "installed packages differ from e/1's (2 packages)" in warned.err
    assert "made-up-package 1.2 → (none)" in warned.err
    assert re.search(r"pyyaml 0\.0\.1 → \d", warned.err, re.I)
    refused = run_xpm("rerun", "e/1", "--require-same-env", cwd=trainer, env=env)
    assert refused.code == 1 and "drop --require-same-env" in refused.err
    assert _only_run(trainer, "e") == ["1", "2"]


def test_exact_worktree_is_removed_after_ctrl_c(trainer: Path, tmp_path: Path) -> None:
    env = env_with_python()
    git_commit(trainer, "helper in git")
    assert run_xpm("run", "-n", "c", cwd=trainer, env=env).code == 0
    marker = tmp_path / "go"
    proc = spawn_xpm("rerun", "c/1", "--exact", cwd=trainer,
                     env=dict(env, TRAIN_WAIT=str(marker)), start_new_session=True)
    wait_for(lambda: (tmp_path / "go.started").exists(), timeout=60, what="the rerun")
    where = Path(seen(trainer, "c/2")["cwd"])
    assert where.is_dir()
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert not where.exists()
    assert git(trainer, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert record(trainer, "c/2")["status"] == "interrupted"


def test_keep_worktree_and_resume_reuses_it(trainer: Path) -> None:
    env = env_with_python()
    assert run_xpm("run", "-n", "k", "--capture-untracked", cwd=trainer, env=env).code == 0
    kept = run_xpm("rerun", "k/1", "--exact", "--keep-worktree", cwd=trainer,
                   env=dict(env, TRAIN_EXIT="3"))
    assert kept.code == 3, kept
    rec = record(trainer, "k/2")
    where = Path(rec["worktree"])
    assert where.is_dir() and Path(seen(trainer, "k/2")["cwd"]) == where
    assert (where / "helper.py").read_text() == "HELPER = 'h1'\n"
    (trainer / "train.py").write_text("raise SystemExit('today is not used')\n")
    resumed = run_xpm("resume", "k/2", cwd=trainer, env=env)
    assert resumed.code == 0, resumed
    assert "differs from run" not in resumed.err
    assert Path(seen(trainer, "k/2")["cwd"]) == where  # the same tree, reused
    assert where.is_dir()
    subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=trainer,
                   check=True)
    again = run_xpm("resume", "k/2", "--force", cwd=trainer, env=env)
    assert again.code == 0, again  # rebuilt, then removed
    rebuilt = Path(seen(trainer, "k/2")["cwd"])
    assert rebuilt != where and not rebuilt.exists()
