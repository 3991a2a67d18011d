"""`xpm cancel`, `xpm sync`, `xpm resume` and `xpm clean` of Slurm runs, on the real cluster."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import child, run_xpm, wait_for
from tests.slurm.conftest import job_state, rec, wait_status

HOLD = ("--slurm-opt", "extra=--hold")  # a held job stays queued until released


def submit(*args: str) -> tuple[str, str]:
    result = run_xpm("run", *args)
    assert result.code == 0, result
    run_id, job = result.out.split()
    return run_id, job


def test_cancel_a_queued_run(sproj: Path) -> None:
    run_id, job = submit("-n", "held", *HOLD, "--", *child())
    result = run_xpm("cancel", run_id)
    assert result.code == 0, result
    assert "cancelled before it started" in result.err
    assert rec(sproj, run_id)["status"] == "cancelled"
    assert job_state(job) == "CANCELLED"
    again = run_xpm("cancel", run_id)
    assert again.code == 1 and "cancelled already" in again.err


def test_cancel_a_running_run(sproj: Path) -> None:
    flag = sproj / "started"
    run_id, _ = submit("-n", "long", "--", *child(f"touch={flag}", "sleep=120"))
    wait_for(flag.exists, timeout=120, what="the job to start")
    assert rec(sproj, run_id)["status"] == "running"
    assert run_xpm("cancel", run_id).code == 0
    data = wait_status(sproj, run_id, "cancelled", timeout=60)
    assert "xpm cancel" in data["attempts"][0]["reason"]
    assert data["attempts"][0]["status"] == "cancelled"


def test_a_plain_scancel_of_a_running_run_is_interrupted(sproj: Path) -> None:
    flag = sproj / "started"
    run_id, job = submit("-n", "plain", "--", *child(f"touch={flag}", "sleep=120"))
    wait_for(flag.exists, timeout=120, what="the job to start")
    subprocess.run(["scancel", job], check=True)
    data = wait_status(sproj, run_id, "interrupted", timeout=60)
    assert "scancel" in data["attempts"][0]["reason"]


def test_cancel_refuses_a_local_run(sproj: Path) -> None:
    assert run_xpm("run", "--local", "-n", "here", "--", *child()).code == 0
    result = run_xpm("cancel", "here/1")
    assert result.code == 1 and "local run" in result.err and "Ctrl-C" in result.err


def test_sync_after_a_plain_scancel_of_a_queued_job(sproj: Path) -> None:
    run_id, job = submit("-n", "scancelled", *HOLD, "--", *child())
    other, _ = submit("-n", "waiting", *HOLD, "--", *child())
    subprocess.run(["scancel", job], check=True)
    wait_for(lambda: job_state(job) == "CANCELLED", timeout=60, what="Slurm to cancel")
    result = run_xpm("sync")
    assert result.code == 0, result
    data = rec(sproj, run_id)
    assert data["status"] == "lost" and "CANCELLED" in data["slurm"]["lost_reason"]
    assert rec(sproj, other)["status"] == "queued"
    assert "PENDING" in result.out
    assert run_xpm("cancel", other).code == 0
    assert "nothing to ask Slurm" in run_xpm("sync").err


def test_resume_resubmits_a_slurm_run(sproj: Path) -> None:
    flag = sproj / "started"
    script = f'[ "$XPM_ATTEMPT" = 1 ] && touch {flag} && sleep 120; echo attempt $XPM_ATTEMPT'
    run_id, job = submit("-n", "again", "--", "bash", "-c", script)
    wait_for(flag.exists, timeout=120, what="the job to start")
    assert run_xpm("cancel", run_id).code == 0
    wait_status(sproj, run_id, "cancelled", timeout=60)
    result = run_xpm("resume", run_id)
    assert result.code == 0, result
    assert "resubmitted" in result.err
    data = wait_status(sproj, run_id, "completed", timeout=120)
    assert data["slurm"]["job_id"] != job and data["slurm"]["jobs"][0] == job
    assert [a["kind"] for a in data["attempts"]] == ["start", "resume"]
    assert "attempt 2" in (sproj / "results" / run_id / "output.log").read_text()


def test_clean_never_removes_a_queued_slurm_run(sproj: Path) -> None:
    run_id, _ = submit("-n", "kept", *HOLD, "--", *child())
    result = run_xpm("clean", "--status", "queued", "-y")
    assert (sproj / "results" / run_id / "run.json").exists(), result
    named = run_xpm("clean", run_id, "-y", "--purge")
    assert (sproj / "results" / run_id / "run.json").exists(), named
    assert "xpm cancel" in named.err
    assert run_xpm("cancel", run_id).code == 0
