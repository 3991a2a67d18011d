"""`xpm run`: the run folder, the child's environment, exit codes, numbering."""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from tests.conftest import child, read_json, record, run_xpm


def test_run_records_everything(project: Path, report: Path) -> None:
    result = run_xpm("run", "-n", "exp", "-t", "a", "-t", "b", "-m", "first try", "--",
                     *child("print=hello", "eprint=oops"))
    assert result.code == 0, result
    run_dir = project / "results" / "exp" / "1"
    rec = record(project, "exp/1")
    assert rec["schema_version"] == 2
    assert rec["id"] == "exp/1" and rec["name"] == "exp" and rec["number"] == 1
    assert rec["status"] == "completed" and rec["exit_code"] == 0 and rec["signal"] is None
    assert rec["command"] == child("print=hello", "eprint=oops")
    assert rec["cwd"] == str(project)
    assert rec["tags"] == ["a", "b"] and rec["note"] == "first try"
    assert rec["started"] and rec["ended"] and rec["duration"] >= 0
    assert len(rec["attempts"]) == 1 and rec["attempts"][0]["status"] == "completed"
    assert rec["attempts"][0]["pid"] > 0 and rec["host"]
    assert rec["git"] is None  # not a repository
    assert (run_dir / "output.log").read_text() == "hello\noops\n"
    assert result.out == "hello\noops\n"
    assert "xpm: run exp/1 in results/exp/1" in result.err
    assert "exp/1 completed" in result.err
    env = read_json(run_dir / "environment.json")
    assert "click" in {k.lower() for k in env["distributions"]}
    assert "distributions" not in rec  # the bulky part stays out of run.json


def test_child_environment_and_placeholders(project: Path, report: Path) -> None:
    (project / "sub").mkdir()
    result = run_xpm("run", "-n", "env", "--seed", "7", "--",
                     *child("{run_dir}", "x={config}", "{seed}"), cwd=project / "sub")
    assert result.code == 0, result
    seen = read_json(report)
    run_dir = project / "results" / "env" / "1"
    assert seen["cwd"] == str(project)  # the project root, not where xpm was started
    assert seen["argv"][1:] == [str(run_dir), f"x={run_dir / 'config.yaml'}", "7"]
    env = seen["env"]
    assert env["XPM_RUN_DIR"] == str(run_dir)
    assert env["XPM_RUN_NAME"] == "env" and env["XPM_RUN_NUMBER"] == "1"
    assert env["XPM_RUN_ID"] == "env/1"
    assert env["XPM_CONFIG"] == str(run_dir / "config.yaml")
    assert env["XPM_SEED"] == "7" and env["XPM_ATTEMPT"] == "1" and env["XPM_RESUME"] == "0"
    assert "XPM_CHECKPOINT" not in env
    assert seen["isatty"] is False


def test_exit_code_passes_through(project: Path) -> None:
    result = run_xpm("run", "-n", "bad", "--", *child("print=x", "exit=3"))
    assert result.code == 3
    rec = record(project, "bad/1")
    assert rec["status"] == "failed" and rec["exit_code"] == 3


def test_death_by_signal_is_killed(project: Path) -> None:
    result = run_xpm("run", "-n", "dies", "--", *child("signal=SIGKILL"))
    assert result.code == 128 + 9
    rec = record(project, "dies/1")
    assert rec["status"] == "killed" and rec["signal"] == 9 and rec["exit_code"] == 137


def test_command_not_found(project: Path) -> None:
    result = run_xpm("run", "-n", "nf", "--", "no-such-command-xyz", "arg")
    assert result.code == 127
    assert "command not found: `no-such-command-xyz`" in result.err
    assert "Traceback" not in result.err
    rec = record(project, "nf/1")
    assert rec["status"] == "failed" and rec["exit_code"] == 127


def test_numbers_increase_and_are_never_reused(project: Path) -> None:
    for _ in range(3):
        assert run_xpm("run", "-n", "n", "--", *child()).code == 0
    import shutil

    shutil.rmtree(project / "results" / "n" / "3")
    assert run_xpm("run", "-n", "n", "--", *child()).code == 0
    assert sorted(os.listdir(project / "results" / "n")) == [".highest", ".highest.lock", "1", "2",
                                                                "4"]


def test_concurrent_runs_get_distinct_folders(project: Path) -> None:
    def one(_: int) -> int:
        return run_xpm("run", "-n", "race", "--", sys.executable, "-c", "pass").code

    with ThreadPoolExecutor(max_workers=32) as pool:
        codes = list(pool.map(one, range(32)))
    assert codes == [0] * 32
    numbers = sorted(int(n) for n in os.listdir(project / "results" / "race") if n.isdigit())
    assert numbers == list(range(1, 33))
    for n in numbers:
        assert record(project, f"race/{n}")["number"] == n


def test_default_name_from_script(project: Path) -> None:
    script = project / "train_model.py"
    script.write_text("print('ok')\n")
    assert run_xpm("run", "--", sys.executable, "train_model.py").code == 0
    assert (project / "results" / "train_model" / "1" / "run.json").exists()


def test_command_and_name_from_project_file(project: Path) -> None:
    (project / "xpm.yaml").write_text(
        f"results_dir: out\nname: fromfile\ncommand: {sys.executable} {child()[1]} print=hi\n")
    result = run_xpm("run")
    assert result.code == 0, result
    assert result.out == "hi\n"
    assert (project / "out" / "fromfile" / "1" / "run.json").exists()


def test_command_as_list_in_project_file(project: Path) -> None:
    (project / "xpm.yaml").write_text(
        yaml.safe_dump({"command": [*child("print=list form")], "name": "lst"}))
    result = run_xpm("run")
    assert result.out == "list form\n", result


def test_interspersed_command_without_double_dash(project: Path) -> None:
    result = run_xpm("run", "-n", "nodash", *child("print=--flag-for-child"))
    assert result.code == 0, result
    assert result.out == "--flag-for-child\n"


def test_config_is_frozen_merged_and_overridden(project: Path, report: Path) -> None:
    (project / "a.yaml").write_text("model:\n  lr: 0.1\n  layers: [32, 32]\n  act: relu\n"
                                    "data: {path: /data}\n")
    (project / "b.json").write_text(json.dumps({"model": {"lr": 0.5, "dropout": 0.1}}))
    result = run_xpm("run", "-n", "cfg", "-c", "a.yaml", "-c", "b.json",
                     "-s", "model.lr=1e-3", "-s", "model.layers=[64,64]", "-s", "name=abc",
                     "-s", "model.layers[1]=128", "-s", "opt.beta.one=0.9", "--seed", "5",
                     "--", *child())
    assert result.code == 0, result
    run_dir = project / "results" / "cfg" / "1"
    frozen = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert frozen == {
        "model": {"lr": 0.001, "layers": [64, 128], "act": "relu", "dropout": 0.1},
        "data": {"path": "/data"}, "name": "abc", "opt": {"beta": {"one": 0.9}}, "seed": 5,
    }
    assert record(project, "cfg/1")["config"] == frozen
    assert (run_dir / "configs" / "a.yaml").read_text() == (project / "a.yaml").read_text()
    assert (run_dir / "configs" / "b.json").read_text() == (project / "b.json").read_text()
    assert record(project, "cfg/1")["config_files"] == ["configs/a.yaml", "configs/b.json"]


def test_default_configs_from_project_file(project: Path) -> None:
    (project / "configs").mkdir()
    (project / "configs" / "base.yaml").write_text("lr: 0.1\n")
    (project / "xpm.yaml").write_text("configs: [configs/base.yaml]\n")
    assert run_xpm("run", "-n", "d", "-s", "lr=0.2", "--", *child()).code == 0
    assert record(project, "d/1")["config"]["lr"] == 0.2


def test_python_config_is_copied_not_executed(project: Path) -> None:
    marker = project / "executed"
    (project / "model.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n\ndef load(config):\n    return config\n")
    assert run_xpm("run", "-n", "py", "-c", "model.py", "--", *child()).code == 0
    assert (project / "results" / "py" / "1" / "configs" / "model.py").exists()
    assert not marker.exists()


def test_seed_sources(project: Path, report: Path) -> None:
    (project / "s.yaml").write_text("seed: 42\n")
    assert run_xpm("run", "-n", "s", "-c", "s.yaml", "--", *child()).code == 0
    assert read_json(report)["env"]["XPM_SEED"] == "42"
    assert run_xpm("run", "-n", "s", "-c", "s.yaml", "--seed", "3", "--", *child()).code == 0
    assert read_json(report)["env"]["XPM_SEED"] == "3"
    assert record(project, "s/2")["config"]["seed"] == 3
    assert run_xpm("run", "-n", "s", "--", *child()).code == 0
    seed = record(project, "s/3")["seed"]
    assert isinstance(seed, int) and read_json(report)["env"]["XPM_SEED"] == str(seed)
    frozen = yaml.safe_load((project / "results" / "s" / "3" / "config.yaml").read_text())
    assert frozen["seed"] == seed
