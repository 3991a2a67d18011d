"""One job array for many prepared run folders (what `xpm sweep --slurm` submits): each
task runs its own folder, and a task is requeued on its own (`scontrol requeue JOB_TASK`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.slurm.conftest import rec, wait_status
from xpm.launch import slurm
from xpm.launch.preparation import create_run, plan_run
from xpm.project import load_project


@pytest.mark.slow
def test_an_array_runs_each_folder_and_requeues_a_task_alone(sproj: Path) -> None:
    project = load_project(sproj)
    flag = sproj / "task-started"
    script = f'[ "$XPM_ATTEMPT" = 1 ] && [ "$XPM_SEED" = 2 ] && touch {flag} && sleep 120; echo ok'
    run_dirs = []
    for seed in (1, 2):
        plan = plan_run(project, ("bash", "-c", script), "arr", (), (), seed, False)
        ref, _, lock = create_run(plan, (), None)
        lock.release()
        run_dirs.append(ref.path)
    options = slurm.parse_options(project.settings.slurm, ["max_requeues=1"])
    path = slurm.write_array_script(sproj / "results" / "arr.sbatch", run_dirs, options,
                                    project.root, project.results_dir, parallel=2,
                                    job_name="arr-sweep")
    assert "#SBATCH --array=0-1%2" in path.read_text()
    job = slurm.submit_array(path, run_dirs, options)
    assert rec(sproj, "arr/2")["slurm"]["job_id"] == f"{job}_1"
    first = wait_status(sproj, "arr/1", "completed")
    assert first["attempts"][0]["slurm_job_id"] == f"{job}_0"
    assert first["attempts"][0]["slurm_array_task"] == 0
    wait_for(flag.exists, timeout=120, what="task 1 to start")
    subprocess.run(["scancel", "--signal=USR2", "--batch", f"{job}_1"], check=True)
    second = wait_status(sproj, "arr/2", "completed", timeout=120)
    assert [a["status"] for a in second["attempts"]] == ["requeued", "completed"]
    assert second["attempts"][1]["kind"] == "requeue"
    assert second["attempts"][1]["slurm_array_task"] == 1
    assert len(rec(sproj, "arr/1")["attempts"]) == 1
