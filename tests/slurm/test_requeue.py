"""Requeue on the real cluster: Slurm's warning signal (`scancel --signal=USR2 --batch`,
what `--signal=B:USR2@90` sends before the time limit) and `scontrol requeue` both end an
attempt `requeued`; the requeued job resumes from the newest checkpoint and ends with the
model an uninterrupted run ends with. Past max_requeues the run fails, saying why."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_xpm, wait_for
from tests.slurm.conftest import demo_project, rec, slurm_out, wait_status

pytestmark = pytest.mark.slow

STEPS = ["-s", "train.steps=150", "-s", "train.checkpoint_every=40", "-s", "train.log_every=10",
         "--seed", "7"]


@pytest.fixture
def demo(cluster: None, tmp_path: Path) -> Path:
    return demo_project(tmp_path, launcher="slurm")


def final_model(root: Path, run_id: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (root / "results" / run_id / "checkpoints" / "step-00000150.json").read_text())
    return data


def submit(root: Path, name: str, *extra: str) -> tuple[str, str]:
    result = run_xpm("run", "-n", name, *STEPS, "-s", "train.step_delay=0.04", *extra,
                     cwd=root)
    assert result.code == 0, result
    run_id, job = result.out.split()
    return run_id, job


def a_checkpoint(root: Path, run_id: str) -> None:
    folder = root / "results" / run_id / "checkpoints"
    wait_for(lambda: folder.is_dir() and any(folder.iterdir()), timeout=120,
             what="a first checkpoint")


def check_resumed(root: Path, run_id: str, why: str) -> dict[str, object]:
    data = wait_status(root, run_id, "completed", timeout=150)
    first, second = data["attempts"]
    assert first["status"] == "requeued" and why in first["reason"]
    assert second["kind"] == "requeue" and second["checkpoint"]
    assert second["slurm_restart_count"] == 1 and second["status"] == "completed"
    log = (root / "results" / run_id / "output.log").read_text()
    assert "resuming from step-" in log and "attempt 2 (requeue)" in log
    out = slurm_out(root, run_id)
    assert out.count("xpm: run ") == 1 and "xpm: resuming" in out  # both attempts appended
    whole = run_xpm("run", "--local", "-n", "whole", *STEPS, "-s", "train.step_delay=0",
                    cwd=root)
    assert whole.code == 0, whole
    assert final_model(root, run_id) == final_model(root, "whole/1")
    return data


def test_the_warning_signal_requeues_and_resumes_from_the_newest_checkpoint(demo: Path
                                                                            ) -> None:
    run_id, job = submit(demo, "warned")
    a_checkpoint(demo, run_id)
    subprocess.run(["scancel", "--signal=USR2", "--batch", job], check=True)
    wait_for(lambda: rec(demo, run_id)["attempts"][0].get("status") == "requeued",
             timeout=60, what="the first attempt to end requeued")
    assert rec(demo, run_id)["status"] in ("queued", "running")
    check_resumed(demo, run_id, "SIGUSR2")


def test_scontrol_requeue_resumes_from_the_newest_checkpoint(demo: Path) -> None:
    run_id, job = submit(demo, "requeued")
    a_checkpoint(demo, run_id)
    subprocess.run(["scontrol", "requeue", job], check=True)
    check_resumed(demo, run_id, "scontrol requeue")


def test_past_max_requeues_the_run_fails_saying_why(demo: Path) -> None:
    run_id, job = submit(demo, "limited", "--slurm-opt", "max_requeues=0")
    a_checkpoint(demo, run_id)
    subprocess.run(["scancel", "--signal=USR2", "--batch", job], check=True)
    data = wait_status(demo, run_id, "failed", timeout=120)
    first, refused = data["attempts"]
    assert first["status"] == "requeued"
    assert refused["kind"] == "requeue" and refused["status"] == "failed"
    assert "max_requeues is 0" in refused["reason"]
    wait_for(lambda: "not started again" in slurm_out(demo, run_id), what="the refusal")
