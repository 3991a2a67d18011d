"""The torch template, end to end (skipped where PyTorch is not installed)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

import xpm
from tests.conftest import run_xpm, spawn_xpm, wait_for

torch = pytest.importorskip("torch")


@pytest.mark.slow
def test_torch_template_killed_and_resumed_matches_uninterrupted(tmp_path: Path) -> None:
    assert run_xpm("init", "t", "--template", "torch", cwd=tmp_path).code == 0
    demo = tmp_path / "t"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    settings = ["-s", "train.steps=60", "-s", "train.checkpoint_every=20", "-s",
                "train.log_every=10", "--seed", "5"]
    whole = run_xpm("run", "-n", "whole", *settings, cwd=demo, env=env, timeout=120)
    assert whole.code == 0, whole
    assert "accuracy" in (demo / "results" / "whole" / "1" / "metrics.jsonl").read_text()

    proc = spawn_xpm("run", "-n", "cut", *settings, "-s", "train.step_delay=0.05", cwd=demo,
                     env=env)
    ckpts = demo / "results" / "cut" / "1" / "checkpoints"
    wait_for(lambda: ckpts.is_dir() and any(ckpts.glob("step-*.pt")), timeout=120,
             what="a checkpoint")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert xpm.load_run(demo / "results" / "cut" / "1").status == "lost"
    resumed = run_xpm("resume", "cut", cwd=demo, env=env, timeout=120)
    assert resumed.code == 0, resumed
    assert "resuming from step-" in resumed.out

    final = "checkpoints/step-00000060.pt"
    a = torch.load(demo / "results" / "whole" / "1" / final)["model"]
    b = torch.load(demo / "results" / "cut" / "1" / final)["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
