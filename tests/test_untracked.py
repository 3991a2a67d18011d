"""Capturing untracked source files: one bounded archive in the run folder, and
--require-clean refusing untracked files that are not captured."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

from tests.conftest import record, run_xpm

PASS = ["--", sys.executable, "-c", "pass"]


def _members(run_dir: Path) -> list[str]:
    with tarfile.open(run_dir / "untracked.tar.gz") as tar:
        return sorted(m.name for m in tar.getmembers())


def test_capture_untracked_keeps_untracked_not_ignored_files(repo: Path) -> None:
    (repo / "helper.py").write_text("X = 1\n")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "util.py").write_text("Y = 2\n")
    (repo / ".gitignore").write_text("results/\n*.log\n")  # a change to a tracked file
    (repo / "debug.log").write_text("ignored\n")
    result = run_xpm("run", "-n", "u", "--capture-untracked", *PASS)
    assert result.code == 0, result
    run_dir = repo / "results" / "u" / "1"
    assert _members(run_dir) == ["helper.py", "pkg/util.py"]
    git = record(repo, "u/1")["git"]
    assert git["untracked_archive"] == "untracked.tar.gz"
    assert git["dirty"] and git["patch"] == "git.patch"


def test_capture_from_xpm_yaml_and_off_by_default(repo: Path) -> None:
    (repo / "helper.py").write_text("X = 1\n")
    assert run_xpm("run", "-n", "off", *PASS).code == 0
    assert not (repo / "results" / "off" / "1" / "untracked.tar.gz").exists()
    assert record(repo, "off/1")["git"]["untracked"] == ["helper.py"]  # names only
    (repo / "xpm.yaml").write_text("git:\n  capture_untracked: true\n")
    assert run_xpm("run", "-n", "on", *PASS).code == 0
    assert _members(repo / "results" / "on" / "1") == ["helper.py"]


def test_over_the_limit_nothing_is_stored_and_a_warning_says_so(repo: Path) -> None:
    (repo / "xpm.yaml").write_text("git:\n  capture_untracked: true\n  untracked_max_files: 3\n")
    for i in range(5):
        (repo / f"h{i}.py").write_text("pass\n")
    result = run_xpm("run", "-n", "big", *PASS)
    assert result.code == 0, result
    assert "the untracked files are not captured: 5 files are more than the limit of 3" in (
        result.err)
    assert not (repo / "results" / "big" / "1" / "untracked.tar.gz").exists()
    assert record(repo, "big/1")["git"]["untracked_archive"] is None
    (repo / "xpm.yaml").write_text("git:\n  capture_untracked: true\n  untracked_max_mb: 0.001\n")
    (repo / "blob.bin").write_bytes(b"x" * 5000)
    result = run_xpm("run", "-n", "big", *PASS)
    assert "MB is more than the limit of 0.0 MB" in result.err


def test_require_clean_refuses_untracked_files_unless_captured(repo: Path) -> None:
    for name in ("a.py", "b.py", "c.py", "d.py", "e.py", "f.py", "g.py"):
        (repo / name).write_text("pass\n")
    refused = run_xpm("run", "-n", "rc", "--require-clean", *PASS)
    assert refused.code == 1
    assert ("a clean tree is required but 7 untracked file(s) are not in git (a.py, b.py, "
            "c.py, d.py, e.py and 2 more) and they are not captured") in refused.err
    assert not (repo / "results" / "rc").exists()
    kept = run_xpm("run", "-n", "rc", "--require-clean", "--capture-untracked", *PASS)
    assert kept.code == 0, kept
    assert len(_members(repo / "results" / "rc" / "1")) == 7


def test_require_clean_ignores_an_unignored_results_folder(project: Path) -> None:
    from tests.conftest import git, git_commit

    git(project, "init", "-q")
    git_commit(project, "xpm.yaml only")  # results/ is not ignored
    assert run_xpm("run", "-n", "one", *PASS).code == 0
    result = run_xpm("run", "-n", "two", "--require-clean", *PASS)
    assert result.code == 0, result


def test_diff_code_compares_captured_untracked_files(repo: Path) -> None:
    import json

    (repo / "helper.py").write_text("X = 1\n")
    assert run_xpm("run", "-n", "d", "--capture-untracked", *PASS).code == 0
    assert run_xpm("run", "-n", "d", "--capture-untracked", *PASS).code == 0
    (repo / "helper.py").write_text("X = 2\n")
    assert run_xpm("run", "-n", "d", "--capture-untracked", *PASS).code == 0
    same = json.loads(run_xpm("diff", "d/1", "d/2", "--code", "--json").out)["code"][0]
    assert same["available"] and not same["differs"] and not same["notes"]
    moved = json.loads(run_xpm("diff", "d/1", "d/3", "--code", "--json").out)["code"][0]
    assert [(f["path"], f["status"]) for f in moved["files"]] == [("helper.py", "modified")]
    assert "-X = 1\n+X = 2" in moved["patch"]
