"""What a rerun needs, recorded as given; the settings that decide resume, frozen; a queued
run whose supervisor never took it reads `lost`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import xpm
from tests.conftest import child, read_json, record, run_xpm, wait_for
from xpm.runs.record import read_record, write_record


def test_the_inputs_of_a_run_are_recorded_as_given(project: Path, report: Path) -> None:
    (project / "a").mkdir()
    (project / "b").mkdir()
    (project / "a" / "model.yaml").write_text("lr: 0.1\nlayers: [1]\n")
    (project / "b" / "model.yaml").write_text("depth: 3\n")
    (project / "xpm.yaml").write_text("results_dir: results\ngrace_period: 4\n"
                                      "checkpoints: ['ckpt/*']\nenv: ['MY_*']\n"
                                      "heartbeat_interval: 7\n")
    result = run_xpm("run", "-n", "in", "-c", "a/model.yaml", "-c", "b/model.yaml",
                     "-s", "lr=1e-3", "-s", "layers=[64,64]", "-t", "x", "-t", "y",
                     "-m", "first try", "--", *child())
    assert result.code == 0, result
    rec = record(project, "in/1")
    assert rec["assignments"] == ["lr=1e-3", "layers=[64,64]"]
    assert rec["config_files"] == ["configs/model.yaml", "configs/2-model.yaml"]
    assert rec["config_sources"] == ["a/model.yaml", "b/model.yaml"]
    assert rec["launch"] == {"name": "in", "tags": ["x", "y"], "note": "first try",
                             "detach": False, "require_clean": False}
    assert rec["grace_period"] == 4 and rec["heartbeat_interval"] == 7
    assert rec["checkpoint_patterns"] == ["ckpt/*"] and rec["env_patterns"] == ["MY_*"]
    assert read_json(report)["env"]["XPM_RUN_ID"] == "in/1"


def test_a_config_outside_the_project_is_recorded_by_its_absolute_path(
        project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "shared.yaml"
    outside.write_text("x: 1\n")
    assert run_xpm("run", "-n", "o", "--detach", "-c", str(outside), "--", *child()).code == 0
    wait_for(lambda: record(project, "o/1")["status"] == "completed", what="the run")
    rec = record(project, "o/1")
    assert rec["config_sources"] == [str(outside)]
    assert rec["launch"]["detach"] is True and rec["launch"]["name"] == "o"


def test_resume_uses_the_recorded_settings(project: Path, report: Path) -> None:
    (project / "xpm.yaml").write_text("results_dir: results\ncheckpoints: ['ckpt/*']\n")
    assert run_xpm("run", "-n", "r", "--", *child("exit=1")).code == 1
    run_dir = project / "results" / "r" / "1"
    (run_dir / "ckpt").mkdir()
    (run_dir / "ckpt" / "step-5.bin").write_text("5")
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "step-9.pt").write_text("9")
    # the project's settings change afterwards: the run keeps its own
    (project / "xpm.yaml").write_text("results_dir: results\ncheckpoints: ['checkpoints/*']\n")
    assert run_xpm("resume", "r", "--", *child()).code == 0
    assert read_json(report)["env"]["XPM_CHECKPOINT"] == str(run_dir / "ckpt" / "step-5.bin")


def _prepared(project: Path, name: str) -> Path:
    from xpm.launch.preparation import create_run, plan_run
    from xpm.project import load_project

    plan = plan_run(load_project(project), tuple(child()), name, (), (), 1, False)
    ref, _, lock = create_run(plan, (), None, detach=True)
    lock.release()  # as if the background supervisor had died before taking it
    return ref.path


def test_a_queued_run_whose_supervisor_never_took_it_reads_lost(project: Path) -> None:
    (project / "xpm.yaml").write_text("results_dir: results\nheartbeat_interval: 0.2\n")
    abandoned = _prepared(project, "q")
    scheduled = _prepared(project, "s")
    write_record(scheduled, replace(read_record(scheduled), slurm={"job_id": "7"}))
    wait_for(lambda: xpm.load_run(abandoned).status == "lost", what="the run to read lost")
    rec = record(project, "q/1")  # corrected on disk, with the reason
    assert rec["status"] == "lost" and "never started" in rec["reason"]
    assert xpm.load_run(scheduled).status == "queued"  # Slurm's queue is not ours to judge
    listed = run_xpm("ls", "-a", "--json")
    assert listed.code == 0, listed
    assert {r["id"]: r["status"] for r in json.loads(listed.out)} == {
        "q/1": "lost", "s/1": "queued"}
    result = run_xpm("resume", "q/1", "--", *child())
    assert result.code == 0, result
    assert record(project, "q/1")["status"] == "completed"


def test_a_fresh_queued_run_stays_queued(project: Path) -> None:
    fresh = _prepared(project, "f")  # heartbeat_interval 30: made moments ago
    assert xpm.load_run(fresh).status == "queued"
