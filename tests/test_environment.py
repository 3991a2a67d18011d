"""environment.json: distributions, variables (never secrets)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from tests.conftest import child, read_json, run_xpm
from xpm.launch.environment import distributions, recorded_variables


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
