"""Messages a new user meets in the first hour: one clear line each, and a refused command
changes nothing (issue 15)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import child, record, run_xpm, spawn_xpm, tree, wait_for
from tests.records import write_run


@pytest.mark.parametrize("args, said", [
    (["run", "-x"], "No such option '-x'; see `xpm run --help`"),
    (["run", "--seed", "abc"], "'abc' is not a valid integer; see `xpm run --help`"),
    (["frob"], "No such command 'frob'; see `xpm --help`"),
    (["init", "--template", "jax"], "'default', 'torch'; see `xpm init --help`"),
])
def test_click_usage_errors_have_no_doubled_punctuation(project: Path, args: list[str],
                                                        said: str) -> None:
    result = run_xpm(*args)
    assert result.code == 2 and result.err.count("\n") == 1, result
    assert said in result.err and ".;" not in result.err


def test_results_dir_that_is_a_file(project: Path) -> None:
    (project / "results").write_text("not a folder\n")
    for args in (["ls"], ["clean", "--dry-run"], ["show", "a"], ["run", "--", "true"]):
        result = run_xpm(*args)
        assert result.code == 1 and result.err.count("\n") == 1, (args, result)
        assert "results" in result.err and ("is a file" in result.err
                                            or "cannot create" in result.err), result
    assert (project / "results").read_text() == "not a folder\n"


def test_xpm_yaml_that_is_a_folder_is_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "outer").mkdir()
    (tmp_path / "outer" / "xpm.yaml").write_text("results_dir: elsewhere\n")
    inner = tmp_path / "outer" / "inner"
    (inner / "xpm.yaml").mkdir(parents=True)
    result = run_xpm("ls", cwd=inner)
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert "xpm.yaml` is a folder" in result.err


def test_a_run_name_with_a_newline_is_refused_in_one_line(project: Path) -> None:
    result = run_xpm("run", "-n", "a\nb", "--", "true")
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert "a\\nb" in result.err
    result = run_xpm("run", "-n", "a\n", "--", "true")
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert not (project / "results").exists() or not any((project / "results").iterdir())


def test_ls_sort_empty_is_refused(project: Path) -> None:
    write_run(project, "a")
    result = run_xpm("ls", "--sort", "")
    assert result.code == 2 and result.err.count("\n") == 1, result


def test_a_refused_resume_leaves_the_lock_file_alone(project: Path) -> None:
    result = run_xpm("run", "-n", "a", "--", *child("exit=0"))
    assert result.code == 0, result
    before = tree(project / "results")
    result = run_xpm("resume", "a/1")
    assert result.code == 1 and "use --force" in result.err
    assert tree(project / "results") == before


def test_integer_config_keys_are_refused_by_name(project: Path) -> None:
    (project / "c.yaml").write_text("names:\n  1: one\n")
    result = run_xpm("run", "-c", "c.yaml", "--", "true")
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert "key 1 under `names` is a int, not text" in result.err
    (project / "c.yaml").write_text("names:\n  '1': one\n")
    result = run_xpm("run", "-n", "a", "-c", "c.yaml", "--", "true")
    assert result.code == 0, result
    assert record(project, "a/1")["config"]["names"] == {"1": "one"}
    assert "'1': one" in (project / "results" / "a" / "1" / "config.yaml").read_text()


def test_a_self_referencing_anchor_is_one_line(project: Path) -> None:
    (project / "c.yaml").write_text("a: &a [*a]\n")
    result = run_xpm("run", "-c", "c.yaml", "--", "true")
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert "nested more than 100 levels" in result.err


def test_json_config_nested_100000_deep_is_one_line(project: Path) -> None:
    (project / "c.json").write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = run_xpm("run", "-c", "c.json", "--", "true")
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert "nested too deeply" in result.err


@pytest.mark.parametrize("key", ["heartbeat_interval", "grace_period"])
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "-1", "0", "1e9", "'5'", "true"])
def test_every_number_in_xpm_yaml_is_checked_when_read(project: Path, key: str,
                                                        value: str) -> None:
    (project / "xpm.yaml").write_text(f"results_dir: results\n{key}: {value}\n")
    result = run_xpm("run", "-n", "a", "--", "true")
    assert result.code == 1 and result.err.count("\n") == 1, result
    assert f"`{key}` must be a number of seconds" in result.err
    assert not (project / "results").exists()


@pytest.mark.parametrize("option", [["ls", "--since"], ["clean", "--older-than"]])
def test_huge_ages_are_one_line(project: Path, option: list[str]) -> None:
    write_run(project, "a")
    result = run_xpm(*option, "99999999999w")
    assert result.code == 2 and result.err.count("\n") == 1, result
    assert "99999999999w` is more than 100 years" in result.err


def _can_mount_tmpfs(where: Path) -> bool:
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


@pytest.mark.slow
def test_a_full_disk_is_said_once_and_once_again_when_it_is_over(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if not _can_mount_tmpfs(disk):
        pytest.skip("needs a small tmpfs (root)")
    try:
        (disk / "xpm.yaml").write_text("results_dir: results\nheartbeat_interval: 0.1\n")
        go, filled, log = disk / "go", disk / "filled", tmp_path / "stderr"
        with open(log, "wb") as err:
            proc = spawn_xpm("run", "-n", "a", "--",
                             *child(f"touch={go}", f"wait={filled}", "sleep=0.6"),
                             cwd=disk, stderr=err)
        wait_for(go.exists, what="the run to start")
        filler = disk / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as f:
            while True:
                f.write(b"x" * 65536)
        wait_for(lambda: b"cannot write the heartbeat" in log.read_bytes(),
                 what="the warning")
        full_since = time.monotonic()  # let several more heartbeats fail
        wait_for(lambda: time.monotonic() - full_since > 0.6, what="six heartbeats")
        filler.unlink()
        filled.write_text("")
        proc.wait(timeout=60)
        text = log.read_text()
        assert text.count("cannot write the heartbeat") == 1, text
        assert text.count("is written again") == 1, text
        assert proc.returncode == 0, text
        assert json.loads((disk / "results/a/1/run.json").read_text())["status"] == "completed"
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_ctrl_c_hint_in_help_points_to_shipped_docs() -> None:
    result = run_xpm("--help")
    assert "pypi.org" not in result.out
    assert "README.md" in result.out and "docs/" in result.out


def test_python_dash_m_help_matches(project: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "xpm", "ls", "--help"], capture_output=True,
                          text=True)
    assert proc.returncode == 0
