"""`xpm run --slurm` on the real local cluster: submit, run on the node, record; options;
refusals; several submits at once; a removed run folder; listing without Slurm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child, run_xpm, spawn_xpm, tree, wait_for
from tests.slurm.conftest import rec, slurm_out, wait_status


def submitted(result: object) -> tuple[str, str]:
    out = getattr(result, "out", "").split()
    assert len(out) == 2, result
    return out[0], out[1]


def test_submit_runs_on_the_node_and_completes(sproj: Path) -> None:
    result = run_xpm("run", "-n", "hello", "--", *child("print=hello from the job"))
    assert result.code == 0, result
    run_id, job = submitted(result)
    assert run_id == "hello/1" and job.isdigit()
    assert f"submitted to Slurm as job {job}" in result.err
    queued = rec(sproj, run_id)
    assert queued["slurm"]["job_id"] == job
    data = wait_status(sproj, run_id, "completed")
    attempt = data["attempts"][0]
    assert attempt["kind"] == "start" and attempt["slurm_job_id"] == job
    assert attempt["slurm_restart_count"] == 0 and attempt["host"]
    run_dir = sproj / "results" / "hello" / "1"
    assert "hello from the job" in (run_dir / "output.log").read_text()
    wait_for(lambda: "completed" in slurm_out(sproj, run_id), what="the job's last line")
    script = (run_dir / "job.sbatch").read_text()
    for line in ("#SBATCH --signal=B:USR2@6", "#SBATCH --requeue", "#SBATCH --open-mode=append",
                 "#SBATCH --time=00:10:00", "exec "):
        assert line in script
    assert data["exit_code"] == 0 and data["slurm"]["options"]["grace"] == 6


def test_a_failing_command_records_its_exit_code(sproj: Path) -> None:
    result = run_xpm("run", "-n", "bad", "--", *child("exit=3"))
    run_id, _ = submitted(result)
    data = wait_status(sproj, run_id, "failed")
    assert data["exit_code"] == 3 and data["attempts"][0]["exit_code"] == 3


def test_slurm_opt_overrides_and_local_runs_here(sproj: Path) -> None:
    result = run_xpm("run", "-n", "opts", "--slurm-opt", "time=5", "--slurm-opt", "cpus=1",
                     "--slurm-opt", "extra=--hold", "--", *child())
    run_id, _ = submitted(result)
    script = (sproj / "results" / "opts" / "1" / "job.sbatch").read_text()
    assert "#SBATCH --time=5" in script and "#SBATCH --cpus-per-task=1" in script
    assert "#SBATCH --hold" in script
    assert run_xpm("cancel", run_id).code == 0
    local = run_xpm("run", "--local", "-n", "here", "--", *child("print=local"))
    assert local.code == 0 and "local" in local.out
    assert rec(sproj, "here/1")["slurm"] is None


@pytest.mark.parametrize(("opt", "says"), [
    ("tme=5", "unknown slurm option `tme`"),
    ("time=5 hours", "must be a Slurm time"),
    ("grace=-3", "grace"),
    ("grace=soon", "grace"),
    ("cpus=0", "cpus"),
    ("ntasks=0", "ntasks"),
    ("nodes=two", "nodes"),
    ("signal=KILL", "signal"),
    ("novalue", "KEY=VALUE"),
])
def test_bad_options_are_refused_before_anything_is_made(sproj: Path, opt: str,
                                                         says: str) -> None:
    result = run_xpm("run", "--slurm-opt", opt, "--", *child())
    assert result.code == 2, result
    assert says in result.err and len(result.err.strip().splitlines()) == 1
    assert not (sproj / "results").exists()


def test_bad_yaml_options_are_refused(sproj: Path) -> None:
    (sproj / "xpm.yaml").write_text("launcher: slurm\nslurm:\n  time: soon\n")
    result = run_xpm("run", "--", *child())
    assert result.code == 2 and "xpm.yaml's `slurm:` section" in result.err
    assert not (sproj / "results").exists()


def test_sbatch_refusal_is_one_line_and_the_run_failed(sproj: Path) -> None:
    result = run_xpm("run", "-n", "nope", "--slurm-opt", "partition=nosuchpartition", "--",
                     *child())
    assert result.code == 1, result
    line, = result.err.strip().splitlines()
    assert "sbatch refused the job" in line and "partition" in line.lower()
    data = rec(sproj, "nope/1")
    assert data["status"] == "failed" and "partition" in data["slurm"]["error"].lower()


def test_missing_sbatch_is_one_line_and_the_run_failed(sproj: Path) -> None:
    env = dict(os.environ, PATH=str(sproj))  # no Slurm (nor anything else) on PATH
    result = run_xpm("run", "-n", "nosb", "--", sys.executable, "-c", "pass", env=env)
    assert result.code == 1, result
    assert "`sbatch` is not on PATH" in result.err
    assert rec(sproj, "nosb/1")["status"] == "failed"


def test_several_submits_at_once_get_distinct_folders(sproj: Path) -> None:
    procs = [spawn_xpm("run", "-n", "many", "--", *child("print=x")) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0].decode().split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o[0] for o in outs) == [f"many/{n}" for n in range(1, 5)]
    assert len({o[1] for o in outs}) == 4
    for n in range(1, 5):
        wait_status(sproj, f"many/{n}", "completed")


def test_a_removed_run_folder_fails_clearly_in_the_jobs_output(sproj: Path) -> None:
    result = run_xpm("run", "-n", "gone", "--slurm-opt", "extra=--hold", "--", *child())
    _, job = submitted(result)
    shutil.rmtree(sproj / "results" / "gone" / "1")
    subprocess.run(["scontrol", "release", job], check=True)
    out = sproj / "results" / ".slurm" / f"{job}.out"
    text = wait_for(lambda: out.exists() and out.read_text(), timeout=120,
                    what="the job's output")
    assert "was removed after the job was submitted" in text and job in text


def test_listing_never_calls_slurm(sproj: Path) -> None:
    result = run_xpm("run", "-n", "ls", "--slurm-opt", "extra=--hold", "--", *child())
    run_id, _ = submitted(result)
    env = dict(os.environ, PATH=str(sproj / "nowhere"))  # no squeue, no sacct
    listed = run_xpm("ls", env=env)
    assert listed.code == 0 and "queued" in listed.out, listed
    shown = run_xpm("show", run_id, env=env)
    assert shown.code == 0 and "xpm sync" in shown.out, shown
    before = tree(sproj / "results")
    assert run_xpm("ls", "--json", env=env).code == 0
    assert tree(sproj / "results") == before
    assert run_xpm("cancel", run_id).code == 0


def test_a_masked_secret_reaches_the_job_but_not_the_record(sproj: Path) -> None:
    result = run_xpm("run", "-n", "secret", "--", sys.executable, "-c",
                     "import sys; print('got', sys.argv[2])", "--token", "s3cr3t")
    run_id, _ = submitted(result)
    data = wait_status(sproj, run_id, "completed")
    assert "s3cr3t" not in json.dumps(data) and "s3cr3t" not in result.err
    assert "got s3cr3t" in (sproj / "results" / run_id / "output.log").read_text()
