"""The default template's training script saves a checkpoint on SIGINT, SIGTERM and
SIGUSR2 and exits quietly: Ctrl-C then `xpm resume` ends with the model an uninterrupted
run ends with, having lost no step."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.conftest import run_xpm, spawn_xpm, wait_for

SETTINGS = ["-s", "train.steps=200", "-s", "train.checkpoint_every=1000", "-s",
            "train.log_every=10", "--seed", "3"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGUSR2])
def test_a_signal_saves_a_checkpoint_and_resume_loses_no_step(tmp_path: Path,
                                                              signum: int) -> None:
    assert run_xpm("init", "demo", cwd=tmp_path).code == 0
    demo = tmp_path / "demo"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    proc = spawn_xpm("run", "-n", "cut", *SETTINGS, "-s", "train.step_delay=0.02", cwd=demo,
                     env=env)
    metrics = demo / "results" / "cut" / "1" / "metrics.jsonl"
    wait_for(lambda: metrics.exists() and metrics.read_text().count("\n") >= 2, timeout=60,
             what="a few steps")
    os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=60)
    assert b"Traceback" not in out + err
    assert b"checkpoint saved at step" in out
    saved = sorted((demo / "results" / "cut" / "1" / "checkpoints").iterdir())
    assert len(saved) == 1 and "step-00000200" not in saved[0].name  # saved on the signal
    resumed = run_xpm("resume", "cut", cwd=demo, env=env, timeout=120)
    assert resumed.code == 0, resumed
    assert f"resuming from {saved[0].name}" in resumed.out
    whole = run_xpm("run", "-n", "whole", *SETTINGS, "-s", "train.step_delay=0", cwd=demo,
                    env=env)
    assert whole.code == 0, whole
    final = "checkpoints/step-00000200.json"
    assert json.loads((demo / "results" / "cut" / "1" / final).read_text()) == json.loads(
        (demo / "results" / "whole" / "1" / final).read_text())
