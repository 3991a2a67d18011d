"""The torch template, end to end (skipped where PyTorch is not installed)."""

from __future__ import annotations

import json
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


@pytest.mark.slow
def test_torch_template_run_reproduced_bit_for_bit_by_an_exact_rerun(tmp_path: Path) -> None:
    from tests.conftest import git, git_commit

    assert run_xpm("init", "t", "--template", "torch", cwd=tmp_path).code == 0
    demo = tmp_path / "t"
    git(demo, "init", "-q")
    git_commit(demo, "template")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    settings = ["-s", "train.steps=40", "-s", "train.checkpoint_every=20", "-s",
                "train.log_every=10", "-s", "train.step_delay=0", "--seed", "9"]
    first = run_xpm("run", "-n", "spiral", *settings, cwd=demo, env=env, timeout=120)
    assert first.code == 0, first
    # the code moves on: another initialisation, committed, and an uncommitted edit
    train = demo / "train.py"
    train.write_text(train.read_text().replace("xpm.seed_everything(run.seed)",
                                               "xpm.seed_everything(run.seed + 1)"))
    git_commit(demo, "another seed")
    train.write_text(train.read_text().replace("width = h", "width = h  # edited"))
    today = run_xpm("rerun", "spiral/1", cwd=demo, env=env, timeout=120)
    exact = run_xpm("rerun", "spiral/1", "--exact", cwd=demo, env=env, timeout=120)
    assert today.code == 0 and exact.code == 0, exact

    final = "checkpoints/step-00000040.pt"
    runs = demo / "results" / "spiral"
    states = [torch.load(runs / n / final, weights_only=True) for n in ("1", "2", "3")]
    original, moved, again = (s["model"] for s in states)
    assert all(torch.equal(original[k], again[k]) for k in original)  # bit for bit
    assert not all(torch.equal(original[k], moved[k]) for k in original)

    def curve(number: str) -> list[dict[str, float]]:
        lines = (runs / number / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in lines]

    assert curve("1") == curve("3") and len(curve("1")) == 4
    assert curve("1") != curve("2")
