"""Bad input to `xpm run`: one clear line, the right exit code, no run folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import child, run_xpm, tree


def assert_refused(project: Path, args: list[str], code: int, words: str,
                   cwd: Path | None = None) -> None:
    before = tree(project)
    result = run_xpm(*args, cwd=cwd)
    assert result.code == code, result
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert words in lines[0], lines[0]
    assert tree(project) == before
    assert not (project / "results").exists()


def test_unknown_option(project: Path) -> None:
    assert_refused(project, ["run", "--bogus", "--", "true"], 2, "No such option")


def test_no_command_anywhere(project: Path) -> None:
    assert_refused(project, ["run"], 2, "no command to run")


def test_missing_config(project: Path) -> None:
    assert_refused(project, ["run", "-c", "nope.yaml", "--", *child()], 1,
                   "config file `nope.yaml` does not exist")


def test_unreadable_config(project: Path) -> None:
    if os.geteuid() == 0:
        (project / "dir.yaml").mkdir()
        assert_refused(project, ["run", "-c", "dir.yaml", "--", *child()], 1, "is a folder")
    else:
        path = project / "secret.yaml"
        path.write_text("a: 1\n")
        path.chmod(0)
        assert_refused(project, ["run", "-c", "secret.yaml", "--", *child()], 1,
                       "cannot be read")


def test_malformed_yaml_names_file_and_line(project: Path) -> None:
    (project / "bad.yaml").write_text("a: 1\nb: [1, 2\nc: 3\n")
    assert_refused(project, ["run", "-c", "bad.yaml", "--", *child()], 1, "bad.yaml:3:")


def test_malformed_set_value_is_a_usage_error(project: Path) -> None:
    assert_refused(project, ["run", "-s", "a=[1,2", "--", *child()], 2,
                   "-s `a=[1,2`: the value is not a YAML value")


def test_binary_config_value(project: Path) -> None:
    (project / "b.yaml").write_text("blob: !!binary aGVsbG8=\n")
    assert_refused(project, ["run", "-c", "b.yaml", "--", *child()], 1, "`blob` is a bytes")


def test_empty_command(project: Path) -> None:
    assert_refused(project, ["run", "--", ""], 2, "the command is empty")


def test_malformed_json(project: Path) -> None:
    (project / "bad.json").write_text('{"a": 1,\n "b": }\n')
    assert_refused(project, ["run", "-c", "bad.json", "--", *child()], 1, "bad.json:2")


def test_config_that_is_not_a_mapping(project: Path) -> None:
    (project / "list.yaml").write_text("- 1\n- 2\n")
    assert_refused(project, ["run", "-c", "list.yaml", "--", *child()], 1, "not a mapping")


def test_set_without_equals(project: Path) -> None:
    assert_refused(project, ["run", "-s", "lr", "--", *child()], 2, "is not KEY=VALUE")


def test_set_indexing_into_a_scalar(project: Path) -> None:
    (project / "c.yaml").write_text("lr: 0.1\n")
    assert_refused(project, ["run", "-c", "c.yaml", "-s", "lr.x=1", "--", *child()], 2,
                   "indexes into `lr`, which is a float")


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "a b"])
def test_invalid_run_name(project: Path, name: str) -> None:
    assert_refused(project, ["run", "-n", name, "--", *child()], 1, "is not valid")


def test_results_dir_that_cannot_be_created(project: Path) -> None:
    (project / "blocker").write_text("a file where a folder should be\n")
    (project / "xpm.yaml").write_text("results_dir: blocker/results\n")
    before = tree(project)
    result = run_xpm("run", "-n", "x", "--", *child())
    assert result.code == 1, result
    assert "cannot create the results folder" in result.err
    assert "Traceback" not in result.err
    assert tree(project) == before


@pytest.mark.parametrize("content, words", [
    ("results_dir: [\n", "xpm.yaml:2:"),
    ("- a\n- b\n", "must be a mapping"),
    ("resuls_dir: out\n", "unknown setting `resuls_dir`"),
    ("grace_period: soon\n", "`grace_period` must be a number of seconds"),
    ("command: {a: 1}\n", "`command` must be a string"),
])
def test_malformed_project_file(project: Path, content: str, words: str) -> None:
    (project / "xpm.yaml").write_text(content)
    assert_refused(project, ["run", "-n", "x", "--", *child()], 1, words)


def test_checkpoint_placeholder_on_a_first_run(project: Path) -> None:
    assert_refused(project, ["run", "-n", "x", "--", *child("{checkpoint}")], 1,
                   "only known when resuming")


def test_bad_seed_in_config(project: Path) -> None:
    (project / "c.yaml").write_text("seed: abc\n")
    assert_refused(project, ["run", "-c", "c.yaml", "--", *child()], 1, "not an integer")
