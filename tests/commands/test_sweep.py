"""`xpm sweep` with real processes: trials as runs, -j, Ctrl-C and --resume, listing."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    read_json,
    record,
    run_in_pty,
    run_xpm,
    spawn_xpm,
    tree,
    wait_for,
    xpm_argv,
)

TRIAL = r'''
import json, os, sys, time
import yaml
config = yaml.safe_load(open(os.environ["XPM_CONFIG"]))
marks = os.environ.get("MARKS")
start = time.time()
if marks:
    open(os.path.join(marks, f"start-{os.environ['XPM_RUN_NUMBER']}"), "w").close()
print("config", json.dumps(config, sort_keys=True), flush=True)
if os.environ.get("XPM_RESUME") == "1":
    print("resumed", flush=True)
elif config.get("gate"):
    deadline = time.time() + 120
    while not os.path.exists(config["gate"]) and time.time() < deadline:
        time.sleep(0.02)
time.sleep(float(config.get("sleep", 0)))
with open(os.path.join(os.environ["XPM_RUN_DIR"], "times.json"), "w") as f:
    json.dump({"start": start, "end": time.time()}, f)
sys.exit(int(config.get("fail", 0)))
'''


@pytest.fixture
def trial(project: Path) -> list[str]:
    (project / "trial.py").write_text(TRIAL)
    return [sys.executable, "trial.py"]


def sweep(*args: str, **kwargs: Any) -> Any:
    return run_xpm("sweep", "-n", "s", *args, **kwargs)


def manifest(project: Path, k: int = 1) -> dict[str, Any]:
    data: dict[str, Any] = read_json(project / "results" / "s" / ".sweeps" / f"{k}.json")
    return data


def configs(project: Path, k: int = 1) -> list[dict[str, Any]]:
    return [record(project, t["run"])["config"] for t in manifest(project, k)["trials"]]


def strip_seed(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "seed"}


def test_grid_makes_one_run_per_trial(project: Path, trial: list[str]) -> None:
    result = sweep("-s", "lr=0.1,1e-3", "-s", "layers=[64,64],[128]", "-s", "depth=2",
                   "--", *trial)
    assert result.code == 0, result
    data = manifest(project)
    assert data["schema_version"] == 1 and data["id"] == "s@1" and data["mode"] == "grid"
    assert data["keys"] == ["lr", "layers"]
    assert [t["run"] for t in data["trials"]] == ["s/1", "s/2", "s/3", "s/4"]
    assert [strip_seed(c) for c in configs(project)] == [
        {"lr": 0.1, "layers": [64, 64], "depth": 2}, {"lr": 0.1, "layers": [128], "depth": 2},
        {"lr": 0.001, "layers": [64, 64], "depth": 2},
        {"lr": 0.001, "layers": [128], "depth": 2}]
    for i in range(4):
        rec = record(project, f"s/{i + 1}")
        assert rec["status"] == "completed"
        assert rec["sweep"] == "s@1" and rec["trial"] == i
        log = (project / "results" / "s" / str(i + 1) / "output.log").read_text()
        assert log.startswith("config ")
    assert "config" not in result.out  # the trials' output goes to their logs only
    assert result.err.count("completed after") == 4
    assert "all 4 trials completed" in result.err


def test_zip_trials_file_and_a_second_sweep_numbered_two(project: Path,
                                                         trial: list[str]) -> None:
    assert sweep("--zip", "-s", "a=1,2,3", "-s", "b=range(10,40,10)", "--", *trial).code == 0
    assert [strip_seed(c) for c in configs(project)] == [
        {"a": 1, "b": 10}, {"a": 2, "b": 20}, {"a": 3, "b": 30}]
    (project / "trials.yaml").write_text("- {a: 5}\n- {a: 6, model: {depth: 3}}\n")
    result = sweep("--trials", "trials.yaml", "-s", "b=0", "--seed", "4", "--", *trial)
    assert result.code == 0, result
    assert configs(project, 2) == [{"b": 0, "a": 5, "seed": 4},
                                   {"b": 0, "a": 6, "model": {"depth": 3}, "seed": 4}]
    assert manifest(project, 2)["mode"] == "trials"


def test_random_with_a_seed_draws_the_same_trials(project: Path, trial: list[str]) -> None:
    args = ("--random", "3", "--sweep-seed", "11", "-s", "lr=log_interval(1e-4,1)",
            "-s", "opt=choice(sgd,adam)")
    dry = sweep(*args, "--dry-run", "--", *trial)
    assert dry.code == 0 and not (project / "results").exists()
    assert sweep(*args, "--", *trial).code == 0
    assert sweep(*args, "--", *trial).code == 0
    first, second = configs(project, 1), configs(project, 2)
    assert [strip_seed(c) for c in first] == [strip_seed(c) for c in second]
    for config in first:
        assert 1e-4 <= config["lr"] < 1 and config["opt"] in ("sgd", "adam")
        assert repr(config["lr"]) in dry.out or f"{config['lr']}" in dry.out
    assert manifest(project, 1)["sweep_seed"] == 11


def test_dry_run_prints_the_table_and_makes_nothing(project: Path, trial: list[str]) -> None:
    result = sweep("-s", "lr=0.1,0.2", "-s", "b=[1,2],[3]", "--dry-run", "--", *trial)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[0].split() == ["trial", "lr", "b"]
    assert lines[1].split() == ["0", "0.1", "[1,", "2]"]
    assert len(lines) == 5
    assert not (project / "results").exists()


@pytest.mark.parametrize(("args", "part"), [
    (("-s", "lr=range(1,1)"), "is empty"),
    (("-s", "lr=range(1,x)"), "are numbers"),
    (("-s", "a=1,2,3", "-s", "b=1,2", "--zip"), "a has 3, b has 2"),
    (("--trials", "bad.yaml"), "not a list of mappings"),
    (("-s", "a=range(200)", "-s", "b=range(51)"), "more than 10,000"),
    (("-s", "a=1,2", "-j", "0"), "-j"),
    (("-s", "a=1,2", "--random", "2", "--zip"), "give one of them"),
    (("-s", "lr=interval(0,1)"), "--random N"),
    (("-s", "a=1"), "nothing to sweep"),
    (("-s", "a[x=1,2"), "a[x"),
    (("-s", "a=1,2", "--slurm", "--detach"), "detached already"),
    (("-s", "a=1,2", "--slurm-opt", "time=1"), "add --slurm"),
    (("-s", "a=1,2", "--slurm", "--slurm-opt", "tme=1"), "unknown slurm option `tme`"),
    (("-s", "a=1,2", "--slurm", "--slurm-opt", "time=soon"), "slurm `time`"),
])
def test_bad_input_is_one_line_exit_2_and_makes_nothing(project: Path, trial: list[str],
                                                        args: tuple[str, ...],
                                                        part: str) -> None:
    (project / "bad.yaml").write_text("a: 1\n")
    before = tree(project)
    result = sweep(*args, "--", *trial)
    assert result.code == 2, result
    assert part in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert tree(project) == before


def test_a_failing_trial_does_not_stop_the_others(project: Path, trial: list[str]) -> None:
    result = sweep("-s", "fail=0,3,0", "--", *trial)
    assert result.code == 1, result
    statuses = [record(project, f"s/{n}")["status"] for n in (1, 2, 3)]
    assert statuses == ["completed", "failed", "completed"]
    assert "1 of 3 trials did not complete (s/2)" in result.err
    assert "--retry-failed" in result.err
    # --resume leaves the failed alone unless asked
    again = run_xpm("sweep", "--resume", "s@1")
    assert again.code == 1 and "--retry-failed" in again.err
    retried = run_xpm("sweep", "--resume", "s@1", "--retry-failed")
    assert retried.code == 1  # it fails again, as a second attempt of the same run
    assert len(record(project, "s/2")["attempts"]) == 2
    assert len(record(project, "s/1")["attempts"]) == 1


def test_two_at_once_overlap(project: Path, trial: list[str]) -> None:
    result = sweep("-s", "sleep=1.0,1.0", "-j", "2", "--", *trial)
    assert result.code == 0, result
    a, b = (read_json(project / "results" / "s" / n / "times.json") for n in ("1", "2"))
    assert a["start"] < b["end"] and b["start"] < a["end"]
    one = sweep("-s", "sleep=0.5,0.5", "--", *trial)
    assert one.code == 0
    c, d = (read_json(project / "results" / "s" / n / "times.json") for n in ("3", "4"))
    assert c["end"] <= d["start"]


def test_ctrl_c_then_resume_finishes_exactly_the_rest(project: Path, trial: list[str],
                                                      tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    gate = tmp_path / "gate"
    import os

    env = dict(os.environ, MARKS=str(marks))
    # trials 0 and 1 finish at once; 2 and 3 wait at the gate; 4 and 5 never start
    proc = spawn_xpm("sweep", "-n", "s", "-j", "2", "-s", "gate=0,0,GATE,GATE,0,0".replace(
        "GATE", str(gate)), "--", *trial, env=env)
    wait_for(lambda: (marks / "start-3").exists() and (marks / "start-4").exists(),
             what="trials 2 and 3 to start", timeout=60)  # four Pythons start on a busy machine
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert b"2 of 6 trials completed, 2 not started" in err
    data = manifest(project)
    assert [t["run"] for t in data["trials"]] == ["s/1", "s/2", "s/3", "s/4", None, None]
    assert [record(project, f"s/{n}")["status"] for n in (1, 2, 3, 4)] == [
        "completed", "completed", "interrupted", "interrupted"]
    assert not (project / "results" / "s" / "5").exists()
    gate.touch()
    result = run_xpm("sweep", "--resume", "s@1", env=env)
    assert result.code == 0, result
    assert "4 trials to run of 6" in result.err
    data = manifest(project)
    assert [t["run"] for t in data["trials"]] == ["s/1", "s/2", "s/3", "s/4", "s/5", "s/6"]
    for n in (1, 2, 3, 4, 5, 6):
        rec = record(project, f"s/{n}")
        assert rec["status"] == "completed"
        assert len(rec["attempts"]) == (2 if n in (3, 4) else 1), n
    assert "resumed" in (project / "results" / "s" / "3" / "output.log").read_text()
    done = run_xpm("sweep", "--resume", "s@1")
    assert done.code == 0 and "nothing to resume" in done.err


def test_detach_prints_the_sweep_and_runs_it_in_the_background(project: Path,
                                                               trial: list[str]) -> None:
    result = sweep("-s", "a=1,2,3", "-j", "2", "--detach", "--", *trial)
    assert result.code == 0, result
    assert result.out.strip() == "s@1"

    def finished() -> bool:
        data = manifest(project)
        return data["runner"] is None and all(
            t["run"] and record(project, t["run"])["status"] == "completed"
            for t in data["trials"])

    wait_for(finished, timeout=60, what="the detached sweep to finish")
    log = project / "results" / "s" / ".sweeps" / "1.log"
    wait_for(lambda: "all 3 trials completed" in log.read_text(), what="its last message")


def test_ls_diff_and_clean_take_a_sweep(project: Path, trial: list[str]) -> None:
    (project / "metric.py").write_text(
        "import os, yaml, xpm\n"
        "c = yaml.safe_load(open(os.environ['XPM_CONFIG']))\n"
        "xpm.current_run().log(step=1, acc=c['lr'] * 10)\n")
    assert sweep("-s", "lr=0.1,0.3,0.2", "-s", "m=[1]", "--", sys.executable,
                 "metric.py").code == 0
    assert run_xpm("run", "-n", "s", "--", *trial).code == 0  # not in the sweep
    listed = run_xpm("ls", "s@1", "--sort", "metrics.acc", "-r")
    assert listed.code == 0, listed
    lines = listed.out.splitlines()
    assert lines[0].split()[:6] == ["id", "trial", "status", "started", "duration", "lr"]
    assert [line.split()[0] for line in lines[1:]] == ["s/2", "s/3", "s/1"]
    as_json = json.loads(run_xpm("ls", "s@1", "--json").out)
    assert [r["id"] for r in as_json] == ["s/1", "s/2", "s/3"]
    assert [(r["sweep"], r["trial"]) for r in as_json] == [("s@1", 0), ("s@1", 1), ("s@1", 2)]
    shown = run_xpm("show", "s@1")
    assert shown.code == 0, shown
    assert "3 completed" in shown.out and "3 (grid over lr)" in shown.out
    assert "runs on   this machine" in shown.out
    assert "s@1 (trial 2)" in run_xpm("show", "s/3").out
    assert run_xpm("show", "s@9").code == 1
    everything = run_xpm("ls", "s").out.splitlines()
    assert "sweep" in everything[0].split()
    assert everything[1].split()[0] == "s/4" and "s@1" not in everything[1]
    assert all("s@1" in line for line in everything[2:])
    where = json.loads(run_xpm("ls", "-w", "sweep=s@1", "-w", "trial>=1", "--json").out)
    assert sorted(r["id"] for r in where) == ["s/2", "s/3"]
    assert run_xpm("ls", "s@2").code == 1
    assert run_xpm("ls", "s@1", "s").code == 2
    diff = run_xpm("diff", "s@1")
    assert diff.code == 0, diff
    assert "lr" in diff.out and "s/3" in diff.out
    cleaned = run_xpm("clean", "s@1", "-y")
    assert cleaned.code == 0, cleaned
    assert sorted(p.name for p in (project / "results" / "s").iterdir()
                  if p.name.isdigit()) == ["4"]


def test_resume_finds_runs_the_manifest_missed(project: Path, trial: list[str]) -> None:
    assert sweep("-s", "a=1,2,3", "--", *trial).code == 0
    path = project / "results" / "s" / ".sweeps" / "1.json"
    data = read_json(path)
    data["trials"][1]["run"] = None  # as if the sweep died before writing it down
    path.write_text(json.dumps(data))
    result = run_xpm("sweep", "--resume", "s@1")
    assert result.code == 0 and "nothing to resume" in result.err, result
    assert manifest(project)["trials"][1]["run"] == "s/2"
    assert not (project / "results" / "s" / "4").exists()


def test_a_terminal_sees_a_line_per_trial_and_the_progress(project: Path,
                                                            trial: list[str]) -> None:
    code, shown = run_in_pty(xpm_argv("sweep", "-n", "s", "-s", "a=1,2", "-s", "sleep=0,1.5",
                                      "--", *trial))
    text = shown.decode()
    assert code == 0, text
    assert "s@1: 0 done, 1 running, 0 failed, 3 left" in text
    assert "trial 3  s/4  completed after" in text
    assert "config" not in text  # the trials' output is in their logs


def test_resume_takes_requeue_exhausted_trials_but_not_failed_ones(project: Path,
                                                                   trial: list[str]) -> None:
    assert sweep("-s", "fail=0,0", "--", *trial).code == 0
    path = project / "results" / "s" / "1" / "run.json"
    data = read_json(path)
    data["status"] = "failed"
    data["attempts"][-1].update(kind="requeue", status="failed",
                                reason="requeued 3 times already and max_requeues is 3")
    path.write_text(json.dumps(data))
    result = run_xpm("sweep", "--resume", "s@1")
    assert result.code == 0, result
    assert "1 trial to run of 2" in result.err
    assert record(project, "s/1")["status"] == "completed"
    assert record(project, "s/1")["attempts"][-1]["kind"] == "resume"


def test_a_secret_in_the_command_reaches_the_trials_but_no_file(project: Path,
                                                                trial: list[str]) -> None:
    (project / "echo.py").write_text("import sys\nprint('got', sys.argv[-1])\n")
    for args in ((), ("--detach",)):
        result = sweep("-s", "a=1,2", *args, "--", sys.executable, "echo.py", "--api-key",
                       "s3cr3t-value")
        assert result.code == 0, result
    wait_for(lambda: all((project / "results" / "s" / str(n) / "output.log").is_file()
                         and "got s3cr3t-value" in (project / "results" / "s" / str(n) /
                                                    "output.log").read_text()
                         for n in (1, 2, 3, 4)), what="the four trials")
    for n in (1, 2, 3, 4):
        assert "got s3cr3t-value" in (project / "results" / "s" / str(n) / "output.log"
                                      ).read_text()
    wait_for(lambda: manifest(project, 2)["runner"] is None, what="the detached sweep")
    for path in (project / "results").rglob("*"):
        if path.is_file() and path.name != "output.log":
            assert b"s3cr3t-value" not in path.read_bytes(), path
    again = run_xpm("sweep", "--resume", "s@1")
    assert again.code == 0  # nothing left: the masked command is not needed


def test_trials_share_the_patch_of_the_state_the_sweep_began_in(repo: Path) -> None:
    """A dirty tree: each trial records the same commit and one git.patch, asked of git
    once and hard-linked into each trial (as environment.json is)."""
    (repo / "train.py").write_text("print('changed')\n")
    result = sweep("-s", "x=1,2,3", "--", sys.executable, "train.py", cwd=repo)
    assert result.code == 0, result
    patches = [repo / "results" / "s" / str(n) / "git.patch" for n in (1, 2, 3)]
    assert "changed" in patches[0].read_text()
    assert len({p.stat().st_ino for p in patches}) == 1
    for n in (1, 2, 3):
        git_state = record(repo, f"s/{n}")["git"]
        assert git_state["dirty"] and git_state["patch"] == "git.patch"
