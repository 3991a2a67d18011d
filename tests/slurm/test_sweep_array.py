"""`xpm sweep --slurm` on the real cluster: one job array, a task per trial; a task's
requeue resumes its trial from its checkpoint; `xpm cancel NAME@K`; `xpm sweep --resume`
resubmits only the trials that did not complete (issue 12)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_json, run_xpm, wait_for
from tests.slurm.conftest import demo_project, job_state, rec, slurm_out, wait_status
from tests.slurm.test_requeue import STEPS, a_checkpoint, final_model


def manifest(root: Path, name: str = "s", k: int = 1) -> dict[str, Any]:
    data: dict[str, Any] = read_json(root / "results" / name / ".sweeps" / f"{k}.json")
    return data


def submitted(result: Any, sweep: str = "s@1") -> str:
    """The array job id `xpm sweep --slurm` printed after the sweep's id."""
    assert result.code == 0, result
    given, job = result.out.split()
    assert given == sweep
    return str(job)


def test_an_array_sweep_is_recorded_then_cancelled_and_resubmitted(sproj: Path) -> None:
    """Held in the queue (nothing runs): what is written, --resume leaving queued trials
    alone, `xpm cancel NAME@K` in one go, then --resume submitting them all again."""
    job = submitted(run_xpm("sweep", "-n", "s", "-s", "x=1,2,3", "-j", "2", "--slurm-opt",
                            "extra=--hold", "--", "true", cwd=sproj))
    data = manifest(sproj)
    assert data["launcher"] == "slurm" and data["jobs"] == 2
    assert data["slurm"]["job_id"] == job and data["slurm"]["trials"] == [0, 1, 2]
    assert [t["run"] for t in data["trials"]] == ["s/1", "s/2", "s/3"]
    script = Path(data["slurm"]["script"])
    assert script == sproj / "results" / "s" / ".sweeps" / "1.sbatch"
    assert "#SBATCH --array=0-2%2" in script.read_text()
    assert "#SBATCH --hold" in script.read_text()
    for index in range(3):
        run = rec(sproj, f"s/{index + 1}")
        assert run["status"] == "queued" and run["attempts"] == []
        assert (run["sweep"], run["trial"]) == ("s@1", index)
        assert run["slurm"]["job_id"] == f"{job}_{index}"
        assert run["config"]["x"] == index + 1
    assert (sproj / "results" / "s" / ".highest").read_text().strip() == "3"  # raised once
    shown = run_xpm("show", "s@1", cwd=sproj)
    assert shown.code == 0, shown
    assert "3 queued" in shown.out and f"job array {job}, at most 2 at once" in shown.out
    facts = json.loads(run_xpm("show", "s@1", "--json", cwd=sproj).out)
    assert facts["counts"] == {"queued": 3} and facts["statuses"]["s/2"] == "queued"
    assert "s@1 (trial 1)" in run_xpm("show", "s/2", cwd=sproj).out

    again = run_xpm("sweep", "--resume", "s@1", cwd=sproj)
    assert again.code == 0, again
    assert "nothing to resume" in again.err and "running or queued" in again.err
    assert len(manifest(sproj)["slurm"]["submissions"]) == 1

    cancelled = run_xpm("cancel", "s@1", cwd=sproj)
    assert cancelled.code == 0, cancelled
    assert cancelled.err.count("cancelled before it started") == 3
    assert {rec(sproj, f"s/{n}")["status"] for n in (1, 2, 3)} == {"cancelled"}
    assert "3 cancelled" in run_xpm("show", "s@1", cwd=sproj).out
    wait_for(lambda: job_state(f"{job}_1") in ("CANCELLED", "UNKNOWN"), timeout=30,
             what="Slurm to cancel the array's tasks")
    nothing = run_xpm("cancel", "s@1", cwd=sproj)
    assert nothing.code == 1 and "no queued or running trials" in nothing.err

    resubmitted = run_xpm("sweep", "--resume", "s@1", "-j", "3", cwd=sproj)
    second = submitted(resubmitted)
    assert second != job and "3 trials resubmitted" in resubmitted.err
    data = manifest(sproj)
    assert data["jobs"] == 3 and data["slurm"]["job_id"] == second
    assert [s["job_id"] for s in data["slurm"]["submissions"]] == [job, second]
    assert "#SBATCH --array=0-2%3" in Path(data["slurm"]["script"]).read_text()
    run = rec(sproj, "s/2")
    assert run["status"] == "queued" and run["slurm"]["jobs"] == [f"{job}_1", f"{second}_1"]
    assert [t["run"] for t in data["trials"]] == ["s/1", "s/2", "s/3"]  # the same folders
    assert run_xpm("cancel", "s@1", cwd=sproj).code == 0


def test_cancel_of_a_local_sweep_says_how_to_stop_it(project: Path) -> None:
    assert run_xpm("sweep", "-n", "s", "-s", "x=1,2", "--", "true", cwd=project).code == 0
    result = run_xpm("cancel", "s@1", cwd=project)
    assert result.code == 1 and "runs on this machine, not in Slurm" in result.err


@pytest.fixture
def demo(cluster: None, tmp_path: Path) -> Path:
    return demo_project(tmp_path, launcher="local")


@pytest.mark.slow
def test_a_requeued_task_resumes_its_trial_from_its_checkpoint(demo: Path) -> None:
    job = submitted(run_xpm("sweep", "--slurm", "-n", "s", "-s", "model.lr=0.05,0.02",
                            *STEPS, "-s", "train.step_delay=0.04", cwd=demo))
    a_checkpoint(demo, "s/2")
    subprocess.run(["scancel", "--signal=USR2", "--batch", f"{job}_1"], check=True)
    requeued = wait_status(demo, "s/2", "completed", timeout=150)
    first, second = requeued["attempts"]
    assert first["status"] == "requeued" and "SIGUSR2" in first["reason"]
    assert second["kind"] == "requeue" and second["checkpoint"]
    assert second["slurm_job_id"] == f"{job}_1" and second["slurm_array_task"] == 1
    assert "resuming from step-" in (demo / "results" / "s" / "2" / "output.log").read_text()
    assert "xpm: resuming" in slurm_out(demo, "s/2")
    alone = wait_status(demo, "s/1", "completed", timeout=60)
    assert [a["status"] for a in alone["attempts"]] == ["completed"]
    assert alone["attempts"][0]["slurm_job_id"] == f"{job}_0"
    for index, run in enumerate((alone, requeued)):
        assert (run["sweep"], run["trial"]) == ("s@1", index)
    data = manifest(demo)
    assert [t["run"] for t in data["trials"]] == ["s/1", "s/2"]
    assert data["slurm"]["job_id"] == job and data["jobs"] == 0  # no -j: no limit
    # the requeued trial ends with the model of an uninterrupted run of its config
    whole = run_xpm("run", "--local", "-n", "whole", *STEPS, "-s", "model.lr=0.02",
                    "-s", "train.step_delay=0", cwd=demo)
    assert whole.code == 0, whole
    assert final_model(demo, "s/2") == final_model(demo, "whole/1")
    listing = run_xpm("sweep", "--resume", "s@1", cwd=demo)
    assert listing.code == 0 and "all 2 trials completed" in listing.err


def test_resume_resubmits_only_the_cancelled_trial(sproj: Path) -> None:
    """Trial 0 completes; trial 1 waits until cancelled; --resume runs trial 1 alone, as a
    resume of its run (XPM_RESUME=1), in a new array of one task."""
    script = '[ "$XPM_RESUME" = 1 ] || [ "$XPM_RUN_NUMBER" = 1 ] || sleep 120'
    job = submitted(run_xpm("sweep", "-n", "s", "-s", "x=0,1", "--", "bash", "-c", script,
                            cwd=sproj))
    wait_status(sproj, "s/1", "completed")
    wait_status(sproj, "s/2", "running")
    assert run_xpm("cancel", "s@1", cwd=sproj).code == 0  # only s/2 is left to cancel
    wait_status(sproj, "s/2", "cancelled")
    result = run_xpm("sweep", "--resume", "s@1", cwd=sproj)
    second = submitted(result)
    assert "1 trial to run of 2" in result.err
    data = manifest(sproj)
    assert data["slurm"]["trials"] == [1] and data["slurm"]["job_id"] == second
    assert "#SBATCH --array=0-0\n" in Path(data["slurm"]["script"]).read_text()
    resumed = wait_status(sproj, "s/2", "completed")
    assert [(a["kind"], a["status"]) for a in resumed["attempts"]] == [
        ("start", "cancelled"), ("resume", "completed")]
    assert resumed["attempts"][1]["slurm_job_id"] == f"{second}_0"
    assert len(rec(sproj, "s/1")["attempts"]) == 1
    assert rec(sproj, "s/1")["slurm"]["job_id"] == f"{job}_0"
