"""`xpm diff`: real runs made by `xpm run` in real git repositories, compared."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, git_commit, run_in_pty, run_xpm, tree, xpm_argv
from xpm.cli import main

# Writes `steps` metric rows; from step `split` on, the loss is 0.5 higher.
TRAIN = """\
import json, os, time
import yaml

config = yaml.safe_load(open(os.environ["XPM_CONFIG"]))
steps = config.get("steps", 10)
split = config.get("split", steps)
with open(os.path.join(os.environ["XPM_RUN_DIR"], "metrics.jsonl"), "a") as f:
    for step in range(steps):
        loss = 1.0 / (step + 1) + (0.5 if step >= split else 0.0)
        row = {"step": step, "time": time.time(), "loss": loss, "acc": 1 - loss / 4}
        f.write(json.dumps(row) + "\\n")
print("trained")
"""


@pytest.fixture
def trainer(repo: Path) -> Path:
    """A git repository whose train.py logs metrics; committed."""
    (repo / "train.py").write_text(TRAIN)
    git_commit(repo, "trainer")
    return repo


def make_run(name: str, *options: str, env: dict[str, str] | None = None) -> str:
    """`xpm run -n NAME OPTIONS -- python train.py`; returns the run id it printed."""
    result = run_xpm("run", "-n", name, *options, "--", sys.executable, "train.py", env=env)
    assert result.code == 0, result
    match = re.search(r"xpm: run (\S+/\d+) in", result.err)
    assert match, result
    return match.group(1)


def xdiff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`xpm diff ARGS` in this process (the runs themselves are real)."""
    code = main(["diff", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def xjson(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code, out, err = xdiff(capsys, *args, "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def fields(data: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    return {f["key"]: f for f in data["sections"][section]["fields"]}


def squash(text: str) -> str:
    """Runs of spaces as one: compare lines without caring for column widths."""
    return re.sub(r"[ \t]+", " ", text)


def test_config_changes_at_depth_in_lists_added_and_removed(
        trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (trainer / "a.yaml").write_text(
        "model:\n  layers: [64, 64]\n  opt: {lr: 0.1, betas: [0.9, 0.99]}\n"
        "data: {name: mnist, size: 28}\n")
    (trainer / "b.yaml").write_text(
        "model:\n  layers: [64, 32, 16]\n  opt: {lr: 0.01, betas: [0.9, 0.99]}\n"
        "data: {size: 28, augment: true}\n")
    git_commit(trainer, "configs")
    a = make_run("cfg", "-c", "a.yaml", "--seed", "1")
    b = make_run("cfg", "-c", "b.yaml", "--seed", "1")
    code, out, err = xdiff(capsys, a, b)
    assert code == 0, err
    text = squash(out)
    assert "cfg/1 → cfg/2" in text
    assert "model.layers[1] 64 → 32" in text
    assert "model.layers[2] 16 (only in cfg/2)" in text
    assert "model.opt.lr 0.1 → 0.01" in text
    assert "data.name mnist (only in cfg/1)" in text
    assert "data.augment true (only in cfg/2)" in text
    assert "config files configs/a.yaml → configs/b.yaml" in text
    assert "model.layers[0]" not in out and "betas" not in out and "data.size" not in out
    assert "seed" not in out  # same seed: not a difference
    config = fields(xjson(capsys, a, b), "config")
    assert config["model.layers[2]"]["values"] == [None, 16]
    assert config["model.layers[2]"]["present"] == [False, True]
    assert config["model.opt.lr"]["values"] == [0.1, 0.01]
    assert config["data.name"]["present"] == [True, False]
    assert set(config) == {"model.layers[1]", "model.layers[2]", "model.opt.lr", "data.name",
                           "data.augment"}


def test_same_command_config_seed_and_code_are_identical(
        trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run("same", "-s", "lr=0.1", "--seed", "5")
    b = make_run("same", "-s", "lr=0.1", "--seed", "5")
    code, out, err = xdiff(capsys, a, b, "--exit-code")
    assert code == 0, (out, err)
    assert out.startswith("same/1 and same/2 are identical")
    assert "--all shows them" in out  # ids, times and pids differ, by nature
    code, out, _ = xdiff(capsys, a, b, "--exit-code", "--all")
    assert code == 0  # what differs by nature never counts
    text = squash(out)
    assert "id same/1 → same/2" in text
    assert re.search(r"started \S+ → \S+", text)
    assert re.search(r"attempt 1 start on \S+ pid \d+", text)
    assert "lr 0.1" in text and "loss last" in text  # the same fields too
    data = xjson(capsys, a, b, "--all")
    assert data["differs"] is False
    outcome = fields(data, "outcome")
    assert outcome["duration"]["by_nature"] is True
    assert outcome["status"] == {"key": "status", "values": ["completed", "completed"],
                                 "present": [True, True], "differs": False,
                                 "by_nature": False}


def test_exit_code_when_runs_differ(trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run("ec", "--seed", "1")
    b = make_run("ec", "--seed", "2")
    assert xdiff(capsys, a, b)[0] == 0  # without --exit-code: 0 whatever differs
    code, out, _ = xdiff(capsys, a, b, "--exit-code")
    assert code == 1
    assert "seed 1 → 2" in squash(out)
    # only the shown sections count
    assert xdiff(capsys, a, b, "--exit-code", "--only", "config,packages")[0] == 0
    assert xdiff(capsys, a, b, "--exit-code", "--only", "run")[0] == 1


def test_dirty_against_clean(trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = make_run("d", "--seed", "1")
    with open(trainer / "train.py", "a") as f:
        f.write("# tuned\n")
    dirty = make_run("d", "--seed", "1")
    code, out, _ = xdiff(capsys, clean, dirty, "--exit-code")
    assert code == 1
    text = squash(out)
    assert "dirty no → yes" in text
    assert "patch none (clean) → 1 file, +1 -0" in text
    assert "commit" not in text  # same commit
    patch = fields(xjson(capsys, clean, dirty), "git")["patch"]
    assert patch["values"][0] is None
    assert patch["values"][1]["files"] == 1 and patch["values"][1]["insertions"] == 1
    assert len(patch["values"][1]["sha256"]) == 64


def test_same_commit_different_patches(trainer: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    (trainer / "train.py").write_text(TRAIN + "# one\n")
    a = make_run("p", "--seed", "1")
    (trainer / "train.py").write_text(TRAIN + "# two\n")
    b = make_run("p", "--seed", "1")
    code, out, _ = xdiff(capsys, a, b, "--exit-code")
    assert code == 1
    assert "patch 1 file, +1 -0 → 1 file, +1 -0 (different changes)" in squash(out)


def test_commits_apart(trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = make_run("c", "--seed", "1")
    first = git(trainer, "rev-parse", "HEAD")
    for i in range(2):
        (trainer / f"m{i}.py").write_text(f"X = {i}\n")
        git_commit(trainer, f"step {i}")
    new = make_run("c", "--seed", "1")
    last = git(trainer, "rev-parse", "HEAD")
    code, out, _ = xdiff(capsys, old, new)
    assert code == 0
    assert f"commit {first[:10]} → {last[:10]} (c/2 is 2 commits ahead)" in squash(out)
    code, out, _ = xdiff(capsys, new, old)
    assert code == 0 and "(c/1 is 2 commits behind)" in out
    commit = fields(xjson(capsys, old, new), "git")["commit"]
    assert commit["values"] == [first, last]
    assert commit["apart"] == [None, {"ahead": 2, "behind": 0}]
    assert commit["missing"] == [False, False]


def test_commits_on_diverged_branches(trainer: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    git(trainer, "checkout", "-q", "-b", "left")
    (trainer / "l.py").write_text("L = 1\n")
    git_commit(trainer, "left")
    left = make_run("br", "--seed", "1")
    git(trainer, "checkout", "-q", "main")
    git(trainer, "checkout", "-q", "-b", "right")
    for i in range(3):
        (trainer / f"r{i}.py").write_text("R = 1\n")
        git_commit(trainer, f"right {i}")
    right = make_run("br", "--seed", "1")
    text = squash(xdiff(capsys, left, right)[1])
    assert "(diverged: br/2 has 3 commits br/1 lacks, br/1 has 1 commit br/2 lacks)" in text
    assert "branch left → right" in text


@pytest.mark.slow
def test_commit_missing_from_repository(trainer: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    base = make_run("gone", "-s", "lr=0.1", "--seed", "1")
    git(trainer, "checkout", "-q", "-b", "experiment")
    (trainer / "exp.py").write_text("E = 1\n")
    lost = git_commit(trainer, "experiment")
    away = make_run("gone", "-s", "lr=0.2", "--seed", "1")
    git(trainer, "checkout", "-q", "main")
    git(trainer, "branch", "-q", "-D", "experiment")
    git(trainer, "reflog", "expire", "--expire=now", "--all")
    git(trainer, "gc", "-q", "--prune=now")
    assert subprocess.run(["git", "cat-file", "-e", lost], cwd=trainer).returncode != 0
    code, out, err = xdiff(capsys, base, away)
    assert code == 0, err
    text = squash(out)
    assert f"commit {lost[:10]} of gone/2 is not in the repository at {trainer}" in text
    assert "lr 0.1 → 0.2" in text  # the rest is still compared
    assert "branch main → experiment" in text
    commit = fields(xjson(capsys, base, away), "git")["commit"]
    assert commit["missing"] == [False, True] and commit["apart"] == [None, None]
    code, out, _ = xdiff(capsys, base, away, "--code")
    assert code == 0
    assert f"commit {lost[:10]} of gone/2 is not in the repository" in out.split("\ncode")[1]
    data = xjson(capsys, base, away, "--code")
    assert data["code"][0]["available"] is False and data["code"][0]["files"] == []


@pytest.mark.slow
def test_code_with_patches_on_both_sides_touches_nothing(
        trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (trainer / "lib.py").write_text("A = 1\nB = 2\nC = 3\n")
    git_commit(trainer, "lib")
    # run 1: lib.py edited, not staged
    (trainer / "lib.py").write_text("A = 1\nB = 20\nC = 3\n")
    a = make_run("code", "--seed", "1")
    # run 2: another edit of lib.py, a new file staged, train.py edited and staged
    (trainer / "lib.py").write_text("A = 1\nB = 2\nC = 30\n")
    (trainer / "extra.py").write_text("EXTRA = True\n")
    with open(trainer / "train.py", "a") as f:
        f.write("# staged\n")
    git(trainer, "add", "extra.py", "train.py")
    b = make_run("code", "--seed", "1")
    # leave the work tree and index in yet another state, with something staged
    (trainer / "lib.py").write_text("work in progress\n")
    (trainer / "notes.txt").write_text("untracked\n")
    git(trainer, "add", "lib.py")
    (trainer / "lib.py").write_text("more work in progress\n")
    before = tree(trainer)
    status = git(trainer, "status", "--porcelain")

    code, out, err = xdiff(capsys, a, b, "--code", "--exit-code")

    assert tree(trainer) == before  # work tree, index and object store: byte for byte
    assert git(trainer, "status", "--porcelain") == status
    assert code == 1, err
    listing, patch = out.split("\ndiff --git", 1)
    assert re.search(r"added +extra\.py +\+1 -0", listing)
    assert re.search(r"modified +lib\.py +\+2 -2", listing)
    assert re.search(r"modified +train\.py +\+1 -0", listing)
    assert " A = 1\n-B = 20\n-C = 3\n+B = 2\n+C = 30\n" in patch
    assert "+EXTRA = True" in patch and "+# staged" in patch
    assert "work in progress" not in out
    data = xjson(capsys, a, b, "--code")
    files = {f["path"]: f for f in data["code"][0]["files"]}
    assert files["extra.py"] == {"path": "extra.py", "old_path": None, "status": "added",
                                 "insertions": 1, "deletions": 0}
    assert files["lib.py"]["status"] == "modified"
    assert data["code"][0]["runs"] == [a, b] and data["code"][0]["differs"] is True
    assert tree(trainer) == before


def test_code_identical_and_untracked_note(trainer: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    a = make_run("ci", "--seed", "1")
    (trainer / "scratch.py").write_text("untracked = True\n")
    b = make_run("ci", "--seed", "1")
    code, out, _ = xdiff(capsys, a, b, "--code", "--exit-code")
    text = squash(out)
    assert "code ci/1 → ci/2 (commit + git.patch)" in text
    assert "identical (every tracked file)" in text
    assert "ci/2 had 1 untracked file(s), which git.patch does not hold" in text
    assert "untracked none → 1 file (+scratch.py)" in text
    assert code == 1  # the untracked file is a difference of the git state


def test_runs_without_git(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "train.py").write_text(TRAIN)
    a = make_run("nogit", "-s", "lr=1", "--seed", "1")
    b = make_run("nogit", "-s", "lr=2", "--seed", "1")
    code, out, _ = xdiff(capsys, a, b, "--code")
    assert code == 0
    assert "lr 1 → 2" in squash(out)
    assert "\ngit\n" not in out
    assert "nogit/1 was not run in a git repository; it has no code to compare" in out
    data = xjson(capsys, a, b)
    assert data["sections"]["git"] == {"differs": False, "fields": [], "notes": []}


def test_one_run_in_git_one_without(tmp_path: Path, trainer: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    inside = make_run("mixed", "--seed", "1")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "xpm.yaml").write_text(f"results_dir: {trainer / 'results'}\n")
    (outside / "train.py").write_text(TRAIN)
    result = run_xpm("run", "-n", "mixed", "--seed", "1", "--", sys.executable, "train.py",
                     cwd=outside)
    assert result.code == 0, result
    code, out, _ = xdiff(capsys, inside, "mixed/2", "--exit-code")
    assert code == 1
    text = squash(out)
    assert "mixed/2 was not run in a git repository" in text
    assert re.search(r"commit [0-9a-f]{10} \(only in mixed/1\)", text)
    assert f"project\n - {trainer}\n + {outside}\n" in text  # long values: a line each


def test_across_names_and_references(trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run("alpha", "-s", "lr=0.1", "--seed", "1")
    b = make_run("beta", "-s", "lr=0.3", "--seed", "1")
    assert (a, b) == ("alpha/1", "beta/1")
    for refs in (("alpha", "beta/-1"), ("alpha/1", str(trainer / "results" / "beta" / "1"))):
        code, out, _ = xdiff(capsys, *refs)
        assert code == 0
        assert out.startswith("alpha/1 → beta/1\n")
        assert "lr 0.1 → 0.3" in squash(out)
        assert "\nrun\n" not in out  # the ids differ by nature only


def test_packages_and_environment(trainer: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    def site(name: str, *dists: str) -> Path:
        folder = tmp_path / name
        for dist in dists:
            (folder / f"{dist}.dist-info").mkdir(parents=True)
        return folder

    def keep(first: Path) -> str:  # the path that finds xpm itself stays
        return os.pathsep.join(p for p in [str(first), os.environ.get("PYTHONPATH")] if p)

    env = dict(os.environ, CUDA_VISIBLE_DEVICES="0")
    a = make_run("env", "--seed", "1", env=dict(
        env, PYTHONPATH=keep(site("site-a", "fakepkg-1.0", "gonepkg-3.1")),
        CUDA_VISIBLE_DEVICES="0"))
    b = make_run("env", "--seed", "1", env=dict(
        env, PYTHONPATH=keep(site("site-b", "fakepkg-2.0", "newpkg-0.1")),
        CUDA_VISIBLE_DEVICES="1", OMP_NUM_THREADS="4"))
    code, out, _ = xdiff(capsys, a, b, "--exit-code")
    assert code == 1
    text = squash(out)
    assert "fakepkg 1.0 → 2.0" in text
    assert "gonepkg 3.1 (removed)" in text
    assert "newpkg 0.1 (added)" in text
    assert "$CUDA_VISIBLE_DEVICES 0 → 1" in text
    assert "$OMP_NUM_THREADS 4 (only in env/2)" in text
    assert (f"$PYTHONPATH\n - {keep(tmp_path / 'site-a')}\n + {keep(tmp_path / 'site-b')}\n"
            in text)
    assert "click" not in text  # the packages both have are not listed
    data = xjson(capsys, a, b)
    packages = fields(data, "packages")
    assert set(packages) == {"fakepkg", "gonepkg", "newpkg"}
    assert packages["gonepkg"]["present"] == [True, False]
    assert fields(data, "environment")["$CUDA_VISIBLE_DEVICES"]["values"] == ["0", "1"]
    assert xdiff(capsys, a, b, "--exit-code", "--only", "config,run,git,metrics,outcome"
                 )[0] == 0


def test_metrics_diverge_at_a_known_step(trainer: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    a = make_run("m", "-s", "split=20", "--seed", "1")
    b = make_run("m", "-s", "split=7", "--seed", "1")
    code, out, _ = xdiff(capsys, a, b)
    text = squash(out)
    # loss at step 9: 1/10 (+0.5 in m/2); best (min) of m/1 is its last, of m/2 step 6's 1/7
    assert "loss last 0.1 → 0.6 (+0.5) min 0.1 → 0.142857 (+0.0429) diverge at step 7" in text
    assert "acc last 0.975 → 0.85 (-0.125) max 0.975 → 0.964286 (-0.0107) diverge at step 7" \
        in text
    metrics = fields(xjson(capsys, a, b), "metrics")
    assert metrics["loss"]["diverges_at"] == [None, 7]
    assert metrics["loss"]["goal"] == "min" and metrics["acc"]["goal"] == "max"
    assert metrics["loss"]["values"][1] == {"last": 0.6, "best": pytest.approx(1 / 7),
                                            "samples": 10, "last_step": 9}
    assert metrics["loss"]["change"][1]["last"] == pytest.approx(0.5)
    # a tolerance wider than the gap hides it
    code, out, _ = xdiff(capsys, a, b, "--only", "metrics", "--tolerance", "0.9",
                         "--exit-code")
    assert code == 0 and "identical" in out


def test_metrics_of_different_lengths_and_names(trainer: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run("ml", "-s", "steps=10", "--seed", "1")
    b = make_run("ml", "-s", "steps=5", "--seed", "1")
    with open(trainer / "results" / "ml" / "2" / "metrics.jsonl", "a") as f:
        f.write('{"step": 4, "val_loss": 0.25}\n')
    text = squash(xdiff(capsys, a, b)[1])
    assert "last step 9 → 4" in text
    assert "diverge" not in text  # the common steps agree
    assert "val_loss last 0.25, min 0.25 (only in ml/2)" in text


def test_three_runs_one_table(trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run("t", "-s", "lr=0.1", "-s", "bs=32", "--seed", "1")
    b = make_run("t", "-s", "lr=0.2", "-s", "bs=32", "--seed", "1", "-t", "wide")
    (trainer / "more.py").write_text("M = 1\n")
    git_commit(trainer, "more")
    c = make_run("t", "-s", "lr=0.1", "-s", "bs=32", "--seed", "2")
    code, out, _ = xdiff(capsys, a, b, c, "--exit-code")
    assert code == 1
    lines = [squash(line).strip() for line in out.splitlines()]
    assert lines[0] == "section field t/1 t/2 t/3"
    assert "config lr 0.1 0.2 0.1" in lines
    assert "run seed 1 1 2" in lines
    assert "run tags none wide none" in lines
    commit = next(line for line in lines if line.startswith("git commit"))
    assert commit.endswith("(+1 -0)")
    assert not any(line.startswith(("config bs", "run command", "outcome")) for line in lines)
    data = xjson(capsys, a, b, c)
    assert [r["id"] for r in data["runs"]] == ["t/1", "t/2", "t/3"]
    assert fields(data, "config")["lr"]["values"] == [0.1, 0.2, 0.1]
    identical = make_run("t", "-s", "lr=0.1", "-s", "bs=32", "--seed", "2")
    code, out, _ = xdiff(capsys, c, identical, c, "--exit-code")
    assert code == 0 and out.startswith("t/3, t/4 and t/3 are identical")


def test_json_shape(trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run("j", "-s", "lr=0.1", "--seed", "1")
    b = make_run("j", "-s", "lr=0.2", "--seed", "1")
    data = xjson(capsys, a, b)
    assert set(data) == {"runs", "differs", "sections", "code"}
    assert data["runs"] == [{"id": "j/1", "path": str(trainer / "results" / "j" / "1")},
                            {"id": "j/2", "path": str(trainer / "results" / "j" / "2")}]
    assert data["differs"] is True and data["code"] is None
    assert list(data["sections"]) == ["config", "run", "git", "packages", "environment",
                                      "metrics", "outcome"]
    for section in data["sections"].values():
        assert set(section) == {"differs", "fields", "notes"}
        for f in section["fields"]:
            assert {"key", "values", "present", "differs", "by_nature"} <= set(f)
            assert len(f["values"]) == len(f["present"]) == 2
    assert data["sections"]["config"]["fields"] == [
        {"key": "lr", "values": [0.1, 0.2], "present": [True, True], "differs": True,
         "by_nature": False}]
    assert data["sections"]["outcome"] == {"differs": False, "fields": [], "notes": []}
    only = xjson(capsys, a, b, "--only", "config", "--only", "outcome")
    assert list(only["sections"]) == ["config", "outcome"]


def test_pipe_gets_plain_text(trainer: Path) -> None:
    a = make_run("plain", "-s", "lr=0.1", "--seed", "1")
    b = make_run("plain", "-s", "lr=0.2", "--seed", "1")
    result = run_xpm("diff", a, b, env=dict(os.environ, FORCE_COLOR="1"))
    assert result.code == 0, result
    assert "\x1b" not in result.out
    assert "lr 0.1 → 0.2" in squash(result.out)


def test_terminal_gets_colors(trainer: Path) -> None:
    a = make_run("tty", "-s", "lr=0.1", "--seed", "1")
    b = make_run("tty", "-s", "lr=0.2", "--seed", "1")
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    code, output = run_in_pty(xpm_argv("diff", a, b), env=env)
    assert code == 0
    shown = output.decode()
    assert "\x1b[" in shown
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert "lr  0.1 → 0.2" in plain


def test_one_run_is_a_usage_error(trainer: Path) -> None:
    a = make_run("one", "--seed", "1")
    for args in ((a,), ()):
        result = run_xpm("diff", *args)
        assert result.code == 2
        assert "xpm diff needs two runs or more" in result.err
        assert result.out == ""


def test_unknown_run(trainer: Path) -> None:
    a = make_run("known", "--seed", "1")
    for ref, message in (("known/7", "run `known/7` does not exist"),
                         ("nosuch", "no run named `nosuch`")):
        result = run_xpm("diff", a, ref)
        assert result.code == 1
        assert message in result.err
        assert "Traceback" not in result.err and result.out == ""


def test_corrupt_record(trainer: Path) -> None:
    a = make_run("bad", "--seed", "1")
    b = make_run("bad", "--seed", "1")
    (trainer / "results" / "bad" / "2" / "run.json").write_text("{ not json")
    before = tree(trainer)
    result = run_xpm("diff", a, b)
    assert result.code == 1
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("xpm: error: cannot read run `bad/2`:")
    assert "run.json` is not valid JSON" in lines[0]
    assert tree(trainer) == before


def test_bad_options(trainer: Path) -> None:
    a = make_run("opt", "--seed", "1")
    result = run_xpm("diff", a, a, "--only", "config,bogus")
    assert result.code == 2 and "--only `bogus` is not a section" in result.err
    result = run_xpm("diff", a, a, "--tolerance", "-1")
    assert result.code == 2 and "--tolerance -1.0 is not a number of 0 or more" in result.err


def test_outcome_differences(trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = make_run("out", "--seed", "1")
    result = run_xpm("run", "-n", "out", "--seed", "1", "--", sys.executable, "-c",
                     "import sys; sys.exit(3)")
    assert result.code == 3
    text = squash(xdiff(capsys, good, "out/2")[1])
    assert "status completed → failed" in text
    assert "exit code 0 → 3" in text
    assert "reason exit 0 → exit 3" in text
    assert "command" in text  # the two commands differ too
    assert "duration" not in text  # by nature


def test_commits_looked_up_in_the_runs_own_repository(
        trainer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run("own", "--seed", "1")
    (trainer / "more.py").write_text("M = 1\n")
    git_commit(trainer, "more")
    b = make_run("own", "--seed", "1")
    other = tmp_path / "other"  # another project, in a repository of its own
    other.mkdir()
    (other / "xpm.yaml").write_text("results_dir: results\n")
    git(other, "init", "-q")
    git_commit(other, "unrelated")
    monkeypatch.chdir(other)
    runs = [str(trainer / "results" / ref) for ref in (a, b)]
    code, out, _ = xdiff(capsys, *runs, "--code")
    assert code == 0
    text = squash(out)
    assert "(own/2 is 1 commit ahead)" in text
    assert "not in the repository" not in text
    assert re.search(r"added +more\.py +\+1 -0", out)


def test_code_when_a_patch_no_longer_applies(trainer: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    a = make_run("np", "--seed", "1")
    with open(trainer / "train.py", "a") as f:
        f.write("# tuned\n")
    b = make_run("np", "--seed", "1")
    patch = trainer / "results" / "np" / "2" / "git.patch"
    patch.write_text(patch.read_text().replace(' print("trained")', ' print("edited")'))
    code, out, _ = xdiff(capsys, a, b, "--code")
    assert code == 0
    block = squash(out.split("\ncode")[1])
    assert "note: the code of np/2 cannot be rebuilt from its commit and git.patch (error: " \
        in block
    assert f"check {patch}" in block
    assert "diff --git" not in block
    patch.unlink()
    code, out, _ = xdiff(capsys, a, b, "--code")
    assert "np/2 recorded a git.patch that is no longer in its run folder" in squash(out)
    assert "patch none (clean) → git.patch missing" in squash(out)
