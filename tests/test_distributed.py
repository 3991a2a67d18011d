"""One run, many processes: real torchrun with 2 CPU ranks (gloo) under xpm.

Each test starts torchrun (a few seconds of CPU on 2 cores): keep them few and small.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

import xpm
from tests.conftest import pid_alive, record, run_xpm, spawn_xpm, wait_for
from xpm.runs.checkpoints import files_of

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow

TRAIN = Path(__file__).resolve().parent / "ddp_train.py"
CONFIG = """\
train:
  steps: 6
  checkpoint_every: 2
  step_delay: 0.0
  sharded: false
  crash_rank: -1
  crash_step: -1
"""
TORCHRUN = Path(sys.executable).parent / "torchrun"
LAUNCH = ([str(TORCHRUN)] if TORCHRUN.exists() else [sys.executable, "-m", "torch.distributed.run"]
          ) + ["--standalone", "--nproc-per-node", "2", "train.py"]


@pytest.fixture
def ddp(project: Path) -> Path:
    shutil.copy(TRAIN, project / "train.py")
    (project / "xpm.yaml").write_text(f"results_dir: results\nconfigs: [train.yaml]\n"
                                      f"command: {json.dumps(LAUNCH)}\n")
    (project / "train.yaml").write_text(CONFIG)
    return project


def rank_pids(run_dir: Path) -> list[int]:
    files = sorted((run_dir / "pids").glob("rank-*")) if (run_dir / "pids").is_dir() else []
    return [int(f.read_text()) for f in files if f.read_text()]


def wait_for_ranks(run_dir: Path) -> list[int]:
    return wait_for(lambda: len(rank_pids(run_dir)) == 2 and rank_pids(run_dir), timeout=90,
                    what="both ranks to start")


def all_gone(pids: list[int], within: float) -> None:
    deadline = time.monotonic() + within
    while any(pid_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"ranks still alive {within}s on: " + ", ".join(
            str(p) for p in pids if pid_alive(p))
        time.sleep(0.02)


def final_weights(run_dir: Path, step: int) -> dict[str, object]:
    folder = run_dir / "checkpoints"
    shard = folder / f"step-{step:08d}.rank-0-of-2.pt"
    data = torch.load(shard if shard.exists() else folder / f"step-{step:08d}.pt")
    return data["model"]  # type: ignore[no-any-return]


def test_two_ranks_one_run_one_line_per_step_one_checkpoint_per_step(ddp: Path) -> None:
    result = run_xpm("run", "-n", "d", "--seed", "3", timeout=180)
    assert result.code == 0, result
    run_dir = ddp / "results" / "d" / "1"
    log = (run_dir / "output.log").read_text()
    for rank in (0, 1):
        assert f"rank {rank} of 2 (local {rank}) in d/1" in log  # current_run() in each rank
        assert f"rank {rank} step 6" in log and f"rank {rank} done" in log
    steps = [row["step"] for row in xpm.load_run(run_dir).metrics()]
    assert steps == [1, 2, 3, 4, 5, 6]  # written once per step, by rank 0
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "step-00000002.pt", "step-00000004.pt", "step-00000006.pt"]  # rank 1's discarded
    assert record(ddp, "d/1")["status"] == "completed"


def test_kill_9_of_xpm_takes_every_rank_down_and_resume_matches_uninterrupted(
        ddp: Path) -> None:
    sharded = ["-s", "train.sharded=true", "-s", "train.steps=8", "--seed", "11"]
    whole = run_xpm("run", "-n", "whole", *sharded, timeout=180)
    assert whole.code == 0, whole

    proc = spawn_xpm("run", "-n", "cut", *sharded, "-s", "train.step_delay=0.3")
    run_dir = ddp / "results" / "cut" / "1"
    pids = wait_for_ranks(run_dir)
    wait_for(lambda: any(c[0] == 4 for c in xpm.load_run(run_dir).checkpoints()),
             timeout=90, what="the checkpoint of step 4")
    os.kill(proc.pid, signal.SIGKILL)
    all_gone(pids, within=2.0)
    proc.wait(timeout=10)
    assert xpm.load_run(run_dir).status == "lost"

    handed = xpm.load_run(run_dir).checkpoint  # a complete set, named without the rank
    assert handed is not None and not handed.exists()
    assert [f.name for f in files_of(handed)] == [
        handed.name.replace(".pt", f".rank-{r}-of-2.pt") for r in (0, 1)]
    resumed = run_xpm("resume", "cut", timeout=180)
    assert resumed.code == 0, resumed
    assert "rank 0 resumes from step-" in resumed.out and "rank 1 resumes from" in resumed.out
    a, b = final_weights(ddp / "results" / "whole" / "1", 8), final_weights(run_dir, 8)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # type: ignore


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGUSR2])
def test_a_signal_to_xpm_reaches_every_rank(ddp: Path, signum: int) -> None:
    """torchrun forwards it to each rank (SIGUSR2, Slurm's requeue signal, too: xpm asks
    torchrun to), and no rank outlives xpm's grace period."""
    (ddp / "xpm.yaml").write_text((ddp / "xpm.yaml").read_text() + "grace_period: 1\n")
    proc = spawn_xpm("run", "-n", "i", "-s", "train.steps=1000", "-s", "train.step_delay=0.1")
    run_dir = ddp / "results" / "i" / "1"
    pids = wait_for_ranks(run_dir)
    proc.send_signal(signum)
    all_gone(pids, within=2.0)
    proc.wait(timeout=30)
    name = signal.Signals(signum).name
    assert [(run_dir / "signals" / f"rank-{r}").read_text() for r in (0, 1)] == [name, name]
    status = record(ddp, "i/1")["status"]
    assert status == ("failed" if signum == signal.SIGUSR2 else "interrupted")


def test_one_rank_crashing_fails_the_run_with_torchruns_exit_code(ddp: Path) -> None:
    result = run_xpm("run", "-n", "c", "-s", "train.crash_rank=1", "-s", "train.crash_step=2",
                     "-s", "train.steps=1000", "-s", "train.step_delay=0.05", timeout=180)
    run_dir = ddp / "results" / "c" / "1"
    assert "rank 1 crashes at step 2" in (run_dir / "output.log").read_text()
    assert result.code == 1, result  # torchrun's code when a worker fails
    meta = record(ddp, "c/1")
    assert (meta["status"], meta["exit_code"]) == ("failed", 1)
    assert not any(pid_alive(p) for p in rank_pids(run_dir))


def test_the_distributed_page_script_runs_as_one_process(project: Path) -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "distributed.md").read_text()
    start = page.index("```python\n") + len("```python\n")
    (project / "train.py").write_text(page[start:page.index("\n```", start)])
    result = run_xpm("run", "-n", "page", "-s", "train.steps=20", "--", sys.executable,
                     "train.py", timeout=120)
    assert result.code == 0, result
    run = xpm.load_run(project / "results" / "page" / "1")
    assert [row["step"] for row in run.metrics()] == list(range(1, 21))
    assert [step for step, _ in run.checkpoints()] == [10, 20]
