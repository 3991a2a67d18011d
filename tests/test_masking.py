"""Secrets never reach a run folder or a message; the command still gets them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import child, git, read_json, record, run_xpm, wait_for
from xpm.masking import mask_argv, mask_urls, mask_variables, secret_name, strip_userinfo

SECRETS = {
    "SLURM_JWT": "jwt-SECRET-1",
    "HF_ENDPOINT": "https://hfuser:hf-SECRET-2@hf.example/models",
    "DATABASE_URL": "postgres://u:db-SECRET-3@db.example/runs",
}
ARGS = ("--api-key=key-SECRET-5", "--token", "tok-SECRET-6", "--password=pw-SECRET-7",
        "--db", "mysql://root:url-SECRET-8@localhost/x", "--lr", "0.1")
PLANTED = ("jwt-SECRET-1", "hf-SECRET-2", "db-SECRET-3", "tok-SECRET-4", "key-SECRET-5",
           "tok-SECRET-6", "pw-SECRET-7", "url-SECRET-8")


@pytest.mark.parametrize("name, secret", [
    ("SLURM_JWT", True), ("HF_TOKEN", True), ("WANDB_API_KEY", True),
    ("AWS_SECRET_ACCESS_KEY", True), ("DB_PASSWORD", True), ("--api-key", True),
    ("--token", True), ("--hf-token", True), ("--password", True), ("--db-pass", True),
    ("SLURM_JOB_ID", False), ("CUDA_VISIBLE_DEVICES", False), ("--lr", False),
    ("--sort-key", False), ("--keep", False), ("HF_ENDPOINT", False),
])
def test_secret_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


def test_mask_argv() -> None:
    assert mask_argv(["python", "t.py", *ARGS, "HF_TOKEN=abc", "--token", "--verbose"]) == (
        "python", "t.py", "--api-key=***", "--token", "***", "--password=***", "--db",
        "mysql://***@localhost/x", "--lr", "0.1", "HF_TOKEN=***", "--token", "--verbose")


def test_urls_and_variables() -> None:
    assert mask_urls("see https://a:b@h/x and ftp://t@h2") == "see https://***@h/x and ftp://***@h2"
    assert strip_userinfo("git+https://tok@host/r.git") == "git+https://host/r.git"
    assert mask_variables({"SLURM_JWT": "x", "SLURM_JOB_ID": "7", **SECRETS}) == {
        "SLURM_JOB_ID": "7", "HF_ENDPOINT": "https://***@hf.example/models",
        "DATABASE_URL": "postgres://***@db.example/runs"}


def _everything_under(folder: Path) -> bytes:
    """Every byte of every file under `folder`, hidden ones included."""
    out = []
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            out.append((Path(dirpath) / name).read_bytes())
    return b"\n".join(out)


def _assert_no_secret(text: bytes | str, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in PLANTED:
        assert secret.encode() not in data, f"{secret} found in {where}"


@pytest.mark.slow
def test_no_planted_secret_reaches_a_run_folder(repo: Path, report: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    (repo / "xpm.yaml").write_text("results_dir: results\nenv: [DATABASE_URL]\n")
    git(repo, "remote", "add", "origin", "git+https://tok-SECRET-4@git.example/team/repo.git")
    command = child("exit=1", *ARGS)  # fails, so that it can be resumed

    result = run_xpm("run", "-n", "s", "--", *command)
    assert result.code == 1, result
    argv = read_json(report)["argv"]
    assert all(arg in argv for arg in ARGS)  # the command got the real values
    _assert_no_secret(result.out + result.err, "xpm run's messages")
    rec = record(repo, "s/1")
    assert rec["git"]["remote"] == "git+https://git.example/team/repo.git"
    assert "--api-key=***" in rec["command"] and "--token" in rec["command"]

    refused = run_xpm("resume", "s")  # the recorded command lacks the secrets
    assert refused.code == 1 and "give the command again" in refused.err
    report.unlink()
    resumed = run_xpm("resume", "s", "--", *child(*ARGS))
    assert resumed.code == 0, resumed
    assert all(arg in read_json(report)["argv"] for arg in ARGS)
    report.unlink()
    detached = run_xpm("run", "-n", "s", "--detach", "--", *child(*ARGS))
    assert detached.code == 0, detached
    wait_for(lambda: record(repo, "s/2")["status"] == "completed", what="the detached run")
    assert all(arg in read_json(report)["argv"] for arg in ARGS)

    for args in (["show", "s/1"], ["show", "s/1", "--json"], ["ls", "-a", "--json"],
                 ["show", "s/2", "--json"], ["log", "s/1"]):
        shown = run_xpm(*args)
        assert shown.code == 0, shown
        _assert_no_secret(shown.out + shown.err, f"xpm {' '.join(args)}")
    _assert_no_secret(_everything_under(repo / "results"), "the results tree")
