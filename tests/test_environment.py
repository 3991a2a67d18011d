"""environment.json: distributions, variables (never secrets)."""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

import pytest

from tests.conftest import child, read_json, run_xpm
from xpm.launch.environment import distributions, gpus, recorded_variables


def test_distributions_match_importlib_metadata() -> None:
    found = {name.lower().replace("_", "-"): v for name, v in distributions().items()}
    for name in ("click", "pyyaml", "filelock", "pytest"):
        assert found[name] == importlib.metadata.version(name)


def test_recorded_variables_skip_secrets() -> None:
    environ = {"CUDA_VISIBLE_DEVICES": "0,1", "SLURM_JOB_ID": "42", "HOME": "/root",
               "SLURM_AUTH_TOKEN": "x", "HF_TOKEN": "y", "WANDB_API_KEY": "z",
               "MY_VAR": "1", "AWS_SECRET_ACCESS_KEY": "s", "DB_PASSWORD": "p"}
    assert recorded_variables(("MY_*", "WANDB_*"), environ) == {
        "CUDA_VISIBLE_DEVICES": "0,1", "MY_VAR": "1", "SLURM_JOB_ID": "42"}


def test_run_records_environment(project: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("MY_SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("EXTRA_THING", "kept")
    (project / "xpm.yaml").write_text("env: [EXTRA_*]\n")
    assert run_xpm("run", "-n", "e", "--", *child()).code == 0
    env = read_json(project / "results" / "e" / "1" / "environment.json")
    assert env["variables"]["CUDA_VISIBLE_DEVICES"] == "3"
    assert env["variables"]["OMP_NUM_THREADS"] == "2"
    assert env["variables"]["EXTRA_THING"] == "kept"
    assert "hunter2" not in (project / "results" / "e" / "1" / "environment.json").read_text()
    assert "hunter2" not in (project / "results" / "e" / "1" / "run.json").read_text()
    assert env["python"] and env["host"] and isinstance(env["gpus"], list)


NVIDIA_SMI = """#!/bin/sh
# What nvidia-smi prints for --query-gpu=index,name,uuid,memory.total,driver_version
# --format=csv,noheader on a two-GPU node (or, with NVIDIA_SMI_FAIL, how it fails).
[ -n "$NVIDIA_SMI_FAIL" ] && { echo "NVIDIA-SMI has failed" >&2; exit 9; }
echo "0, NVIDIA A100-SXM4-80GB, GPU-1111, 81920 MiB, 535.104.05"
echo "1, NVIDIA A100-SXM4-80GB, GPU-2222, 81920 MiB, 535.104.05"
"""


def test_gpus_are_read_from_nvidia_smi(project: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(NVIDIA_SMI)
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    first = {"index": "0", "name": "NVIDIA A100-SXM4-80GB", "uuid": "GPU-1111",
             "memory.total": "81920 MiB", "driver_version": "535.104.05"}
    assert gpus()[0] == first and [g["uuid"] for g in gpus()] == ["GPU-1111", "GPU-2222"]
    assert run_xpm("run", "-n", "g", "--", *child()).code == 0
    assert read_json(project / "results" / "g" / "1" / "environment.json")["gpus"][0] == first
    shown = run_xpm("show", "g/1").out
    assert "NVIDIA A100-SXM4-80GB; NVIDIA A100-SXM4-80GB" in shown, shown
    monkeypatch.setenv("NVIDIA_SMI_FAIL", "1")
    assert gpus() == []  # a failing nvidia-smi means no GPUs, not an error


def test_no_nvidia_smi_means_no_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpus() == []
