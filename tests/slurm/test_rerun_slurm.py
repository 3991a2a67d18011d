"""`xpm rerun` of a Slurm run on the real cluster: by default on Slurm again, with the
options the run recorded and `--slurm-opt` on top; `--local` reruns it here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import child, run_xpm
from tests.slurm.conftest import rec, wait_status

pytestmark = pytest.mark.slow


def test_a_slurm_run_reruns_on_slurm_with_its_recorded_options(sproj: Path) -> None:
    first = run_xpm("run", "-n", "r", "--slurm-opt", "time=7", "-s", "lr=1", "--",
                    *child("print=hello"))
    assert first.code == 0, first
    wait_status(sproj, "r/1", "completed")
    (sproj / "xpm.yaml").write_text("results_dir: results\nlauncher: local\n")  # changed
    again = run_xpm("rerun", "r/1", "--slurm-opt", "cpus=1", "-s", "lr=2")
    assert again.code == 0, again
    run_id, job = again.out.split()
    assert run_id == "r/2" and job.isdigit()
    data = wait_status(sproj, "r/2", "completed")
    options = data["slurm"]["options"]
    assert options["time"] == "7" and options["cpus"] == 1 and options["grace"] == 6
    assert data["rerun_of"] == "r/1" and data["config"]["lr"] == 2
    assert data["assignments"] == ["lr=1", "lr=2"]
    script = (sproj / "results" / "r" / "2" / "job.sbatch").read_text()
    assert "#SBATCH --time=7" in script and "#SBATCH --cpus-per-task=1" in script
    here = run_xpm("rerun", "r/1", "--local")
    assert here.code == 0 and "hello" in here.out, here
    assert rec(sproj, "r/3")["slurm"] is None and rec(sproj, "r/3")["status"] == "completed"
