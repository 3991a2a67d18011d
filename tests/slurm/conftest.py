"""The real single-node Slurm cluster that tests/slurm/start.sh starts (.ci/run does).

Slurm tests are skipped only where `sbatch` is absent and CI is unset; in CI a missing or
stopped cluster fails them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_json, run_xpm, wait_for


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "sbatch is not on PATH (no Slurm here); tests/slurm/start.sh starts a cluster"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo did not answer ({exc}); start the cluster with tests/slurm/start.sh"
    states = proc.stdout.split()
    if proc.returncode != 0 or not states:
        return (f"Slurm does not answer ({proc.stderr.strip()}); start the cluster with "
                "tests/slurm/start.sh")
    if not any(s.rstrip("*") in ("idle", "mix", "alloc") for s in states):
        return f"the Slurm node is {states[0]}, not up; restart it with tests/slurm/start.sh"
    return None


@pytest.fixture(scope="session")
def cluster() -> None:
    problem = _cluster_problem()
    if problem is None:
        return
    if shutil.which("sbatch") is None and not os.environ.get("CI"):
        pytest.skip(problem)
    pytest.fail(problem)


def demo_project(tmp_path: Path, *, launcher: str) -> Path:
    """The example project of `xpm init`, its runs sent to Slurm with a short grace and two
    requeues at most (`launcher: slurm`), or run here unless --slurm says otherwise."""
    assert run_xpm("init", "demo", cwd=tmp_path).code == 0
    root = tmp_path / "demo"
    with open(root / "xpm.yaml", "a") as f:
        f.write(f"command: [{sys.executable!r}, train.py]\nlauncher: {launcher}\n"
                "slurm:\n  grace: 9\n  max_requeues: 2\n")
    return root


@pytest.fixture
def sproj(cluster: None, project: Path) -> Path:
    """A project whose runs go to Slurm (`launcher: slurm`), with a short grace."""
    (project / "xpm.yaml").write_text(
        "results_dir: results\nlauncher: slurm\nheartbeat_interval: 2\n"
        "slurm:\n  grace: 6\n  time: '00:10:00'\n")
    return project


def rec(project: Path, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = read_json(project / "results" / run_id / "run.json")
    return data


def wait_status(project: Path, run_id: str, *statuses: str, timeout: float = 90) -> Any:
    """Poll the run's record until its status is one of `statuses`; on time-out, fail
    saying what the record and the job's output say."""
    def check() -> dict[str, Any] | None:
        try:
            data = rec(project, run_id)
        except (OSError, ValueError):
            return None
        return data if data["status"] in statuses else None

    try:
        return wait_for(check, timeout=timeout, what=f"{run_id} to be {'/'.join(statuses)}")
    except AssertionError as exc:
        try:
            data = rec(project, run_id)
            seen = f"status {data['status']}, attempts {data.get('attempts')}"
        except (OSError, ValueError) as err:
            seen = str(err)
        raise AssertionError(f"{exc}; {seen}; slurm.out: {slurm_out(project, run_id)[-800:]}"
                             ) from None


def job_state(job: str) -> str:
    out = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True,
                         text=True).stdout
    for word in out.split():
        if word.startswith("JobState="):
            return word.split("=", 1)[1]
    return "UNKNOWN"


def slurm_out(project: Path, run_id: str) -> str:
    path = project / "results" / run_id / "slurm.out"
    return path.read_text() if path.exists() else ""
