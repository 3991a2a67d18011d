"""A run of several Slurm tasks on the real cluster (`--slurm-opt ntasks=2`): xpm starts
the command with `srun --kill-on-bad-exit=1`; the warning signal goes to xpm (the batch
shell), which forwards it to srun, which forwards it to both tasks; each saves its file of
one sharded checkpoint; the requeued job resumes both from the newest complete one."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import xpm
from tests.conftest import run_xpm, wait_for
from tests.slurm.conftest import rec, wait_status
from xpm.errors import UsageError
from xpm.launch import slurm

pytestmark = pytest.mark.slow

TASKS = Path(__file__).resolve().parent.parent / "srun_tasks.py"
STEPS = 60


def total(rank: int) -> int:
    return sum(range(1, STEPS + 1)) * (rank + 1)


def test_srun_starts_the_command_of_a_job_of_several_tasks_only() -> None:
    def launcher(*opts: str, command: tuple[str, ...] = ("python", "t.py")) -> tuple[str, ...]:
        return slurm.task_launcher(slurm.parse_options({}, opts), command)

    assert launcher() == launcher("ntasks=1") == launcher("nodes=1", "ntasks=1") == ()
    assert launcher("ntasks=2") == launcher("nodes=2") == ("srun", "--kill-on-bad-exit=1")
    assert launcher("ntasks=4", "cpus=2") == ("srun", "--kill-on-bad-exit=1",
                                              "--cpus-per-task=2")
    assert launcher("ntasks=2", command=("/usr/bin/srun", "python", "t.py")) == ()
    assert launcher("ntasks=2", "signal=USR1") == ("srun", "--kill-on-bad-exit=1")
    for name in ("TERM", "HUP", "XCPU", "URG", "INT"):
        with pytest.raises(UsageError, match="cannot warn a job of several tasks"):
            launcher("ntasks=2", f"signal={name}")
    assert launcher("signal=TERM") == ()


def test_two_tasks_are_requeued_together_and_both_resume(sproj: Path) -> None:
    result = run_xpm("run", "-n", "tasks", "--slurm-opt", "ntasks=2", "--seed", "1",
                     "-s", f"train.steps={STEPS}", "-s", "train.checkpoint_every=10",
                     "-s", "train.step_delay=0.1", "--", sys.executable, str(TASKS))
    assert result.code == 0, result
    run_id, job = result.out.split()
    run_dir = sproj / "results" / run_id
    script = (run_dir / "job.sbatch").read_text()
    assert "#SBATCH --ntasks=2" in script and "srun --kill-on-bad-exit=1" in script
    wait_for(lambda: (run_dir / "run.json").exists()
             and xpm.load_run(run_dir).checkpoints(), timeout=120,
             what="a first complete checkpoint (both ranks' files)")
    subprocess.run(["scancel", "--signal=USR2", "--batch", job], check=True)
    wait_for(lambda: rec(sproj, run_id)["attempts"][0].get("status") == "requeued",
             timeout=60, what="the first attempt to end requeued")
    data = wait_status(sproj, run_id, "completed", timeout=150)

    first, second = data["attempts"]
    assert "SIGUSR2" in first["reason"] and first["command"][:2] == [
        "srun", "--kill-on-bad-exit=1"]
    assert data["command"] == [sys.executable, str(TASKS)]  # the run's, without srun
    assert second["kind"] == "requeue" and second["status"] == "completed"
    assert second["slurm_restart_count"] == 1
    handed = Path(second["checkpoint"])
    step = int(handed.stem.split("-")[1])
    for rank in (0, 1):  # the checkpoint handed over is complete: every rank's file
        assert (handed.parent / f"{handed.stem}.rank-{rank}-of-2.json").is_file()

    log = (run_dir / "output.log").read_text()
    for rank in (0, 1):
        assert f"rank {rank} of 2 starts" in log
        assert f"rank {rank} saved step" in log and "on SIGUSR2" in log
        assert (f"rank {rank} of 2 resumes from step-{step:08d}.rank-{rank}-of-2.json "
                f"(step {step})") in log
        assert f"rank {rank} done at step {STEPS} total {total(rank)}" in log

    # metrics: rank 0 writes, once per step in each attempt, one curve for readers
    lines = [json.loads(line) for line in
             (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert not any("rank" in line for line in lines)
    for attempt in (1, 2):
        steps = Counter(line["step"] for line in lines if line.get("attempt") == attempt)
        assert steps and max(steps.values()) == 1, steps
    curve = xpm.load_run(run_dir).metrics()
    assert [row["step"] for row in curve] == list(range(1, STEPS + 1))
    assert curve[-1]["total"] == total(0)

    # checkpoints: one per step, each of both ranks' files
    found = xpm.load_run(run_dir).checkpoints()
    steps = [s for s, _ in found]
    assert len(steps) == len(set(steps)) and STEPS in steps and step in steps
    for s in steps:
        files = sorted(p.name for p in (run_dir / "checkpoints").glob(f"step-{s:08d}.*"))
        assert files == [f"step-{s:08d}.rank-{r}-of-2.json" for r in (0, 1)], files


def test_one_failing_task_ends_the_others_and_the_run_fails(sproj: Path) -> None:
    code = ("import os, sys, time\n"
            "if os.environ['SLURM_PROCID'] == '1': sys.exit(3)\n"
            "print('rank 0 waits', flush=True); time.sleep(120)")
    result = run_xpm("run", "-n", "bad", "--slurm-opt", "ntasks=2", "--",
                     sys.executable, "-c", code)
    assert result.code == 0, result
    run_id, _ = result.out.split()
    data = wait_status(sproj, run_id, "failed", timeout=90)
    assert data["exit_code"] != 0 and data["attempts"][0]["status"] == "failed"
    assert data["duration"] < 60  # rank 0 did not sleep its two minutes
