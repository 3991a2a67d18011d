"""xpm/compare.py: the pure comparison of run records, environments and metrics."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from xpm.reading.compare import (
    Curve,
    Side,
    compare,
    diverges_at,
    goal,
    read_metrics,
    same,
    series,
    summarize_patch,
)
from xpm.runs.record import Attempt, GitState, RunRecord
from xpm.vcs.state import CommitFacts


def record(number: int, **changes: Any) -> RunRecord:
    base: dict[str, Any] = dict(
        name="r", number=number, status="completed", command=("python", "train.py"),
        cwd="/proj", created=f"2024-01-0{number}T10:00:00.000+00:00", seed=1,
        config={"lr": 0.1, "seed": 1}, host="h", user="u", platform="Linux", python="3.11.7",
        python_executable="/venv/bin/python", xpm_version="0.1.0",
        started=f"2024-01-0{number}T10:00:01.000+00:00",
        ended=f"2024-01-0{number}T10:05:00.000+00:00", duration=299.0 + number, exit_code=0,
        attempts=(Attempt(1, "start", f"2024-01-0{number}T10:00:01.000+00:00", "h",
                          1000 + number, ("python", "train.py"), status="completed",
                          exit_code=0, reason="exit 0"),),
        heartbeat=f"2024-01-0{number}T10:05:00.000+00:00",
    )
    base.update(changes)
    return RunRecord(**base)


def side(number: int, environment: dict[str, Any] | None = None,
         metrics: tuple[dict[str, Any], ...] = (), **changes: Any) -> Side:
    rec = record(number, **changes)
    env = {"distributions": {"numpy": "1.26.0"}, "variables": {}, "gpus": [],
           "implementation": "CPython", "cpu_count": 8}
    env.update(environment or {})
    return Side(rec.id, Path(f"/proj/results/{rec.id}"), rec, env, read_metrics(metrics))


def shown(sides: list[Side], section: str, facts: CommitFacts | None = None
          ) -> dict[str, Any]:
    diff = compare(sides, facts or CommitFacts(None, frozenset(), {}))
    return {f.key: f for f in diff.section(section).shown(everything=False)}


def test_two_records_apart_only_by_nature_are_identical() -> None:
    diff = compare([side(1), side(2)])
    assert not diff.differs
    hidden = {f.key for s in diff.sections for f in s.fields if f.differs}
    assert hidden == {"id", "created", "started", "ended", "duration", "heartbeat",
                      "attempt 1"}


def test_config_types_matter_and_seed_is_compared_once() -> None:
    a = side(1, config={"lr": 1, "flag": True, "seed": 1})
    b = side(2, config={"lr": 1.0, "flag": 1, "seed": 2}, seed=2)
    config = shown([a, b], "config")
    assert set(config) == {"lr", "flag"}  # 1 vs 1.0, True vs 1; the seed is not here
    assert set(shown([a, b], "run")) == {"seed"}
    assert same(float("nan"), float("nan")) and not same(1, True) and same((1, 2), (1, 2))


def test_empty_config_and_empty_containers() -> None:
    a = side(1, config={})
    b = side(2, config={"layers": [], "opts": {}})
    config = shown([a, b], "config")
    assert config["layers"].values == (None, []) and config["layers"].present == (False, True)
    assert config["opts"].values == (None, {})


def test_packages_compare_canonical_names() -> None:
    a = side(1, {"distributions": {"PyYAML": "6.0", "typing_extensions": "4.0",
                                   "torch": "2.1.0"}})
    b = side(2, {"distributions": {"pyyaml": "6.0", "typing-extensions": "4.1"}})
    packages = shown([a, b], "packages")
    assert set(packages) == {"typing_extensions", "torch"}
    assert packages["typing_extensions"].values == ("4.0", "4.1")
    assert packages["torch"].present == (True, False)


def test_missing_environment_is_a_note_not_a_difference() -> None:
    a = side(1)
    b = side(2)._replace(environment=None)
    diff = compare([a, b])
    assert diff.section("packages").notes == (
        "r/2 has no readable environment.json: its packages are unknown",)
    assert not diff.section("packages").differs


def test_variables_that_differ_by_nature() -> None:
    a = side(1, {"variables": {"SLURM_JOB_ID": "11", "SLURM_PARTITION": "gpu"}})
    b = side(2, {"variables": {"SLURM_JOB_ID": "12", "SLURM_PARTITION": "cpu"}})
    diff = compare([a, b])
    env = {f.key: f for f in diff.section("environment").fields}
    assert env["$SLURM_JOB_ID"].differs and env["$SLURM_JOB_ID"].by_nature
    assert env["$SLURM_PARTITION"].counts
    assert set(shown([a, b], "environment")) == {"$SLURM_PARTITION"}


def test_gpus_summarised() -> None:
    gpu = {"index": "0", "name": "A100", "uuid": "GPU-1", "memory.total": "40960 MiB",
           "driver_version": "535"}
    a = side(1, {"gpus": [gpu, {**gpu, "index": "1", "uuid": "GPU-2"}]})
    b = side(2, {"gpus": [{**gpu, "uuid": "GPU-3"}]})
    env = shown([a, b], "environment")
    assert env["gpus"].values == ("2 x A100 (40960 MiB), driver 535",
                                  "A100 (40960 MiB), driver 535")


def test_git_apart_missing_and_notes() -> None:
    a = side(1, git=GitState("a" * 40, "main", False))
    b = side(2, git=GitState("b" * 40, "main", False))
    c = side(3, git=None)
    facts = CommitFacts(Path("/repo"), frozenset({"a" * 40}), {})
    git = compare([a, b, c], facts).section("git")
    commit = git.fields[0]
    assert commit.key == "commit" and commit.present == (True, True, False)
    assert commit.detail["missing"] == [False, True, False]
    assert git.notes == (
        "r/3 was not run in a git repository",
        "commit bbbbbbbbbb of r/2 is not in the repository at /repo; the rest is compared "
        "as recorded",
    )
    facts = CommitFacts(Path("/repo"), frozenset({"a" * 40, "b" * 40}),
                        {("a" * 40, "b" * 40): (1, 4)})
    commit = compare([a, b], facts).section("git").fields[0]
    assert commit.detail["apart"] == [None, {"ahead": 4, "behind": 1}]
    nowhere = compare([a, b]).section("git").notes
    assert nowhere and nowhere[0].startswith("no git repository here holds these commits")


@pytest.mark.parametrize(("name", "aim"), [
    ("loss", "min"), ("val_loss", "min"), ("error", "min"), ("perplexity", "min"),
    ("acc", "max"), ("val/accuracy", "max"), ("top5", "max"), ("hits@10", "max"),
    ("f1", "max"), ("reward", "max"), ("mAP", "max"), ("lr", "min"), ("map_loss", "min"),
    ("top1_error", "min"), ("success_rate", "max"), ("hit_rate", "max"),
])
def test_goal_of_a_metric(name: str, aim: str) -> None:
    assert goal(name) == aim


def test_series_and_divergence() -> None:
    rows = [{"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5, "time": 3.0},
            {"step": 1, "loss": 0.4}, {"loss": "n/a", "step": 2}, {"acc": 0.1},
            {"acc": 0.2}, {"step": True, "bad": float("nan")}]
    curves = series(rows)
    assert curves == {"loss": {0: 1.0, 1: 0.4}, "acc": {0: 0.1, 1: 0.2}}
    assert diverges_at({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 2.0000001, 2: 4.0}, 1e-6) == 2
    assert diverges_at({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0000001}, 0.0) == 1
    assert diverges_at({0: 1.0, 5: 2.0}, {1: 9.0, 5: 2.0}, 0.0) is None  # common steps only
    assert diverges_at({0: 0.0}, {0: 0.0}, 0.0) is None


def test_metrics_within_tolerance_are_the_same() -> None:
    a = side(1, metrics=({"step": 0, "loss": 1.0}, {"step": 1, "loss": 0.5}))
    b = side(2, metrics=({"step": 0, "loss": 1.0 + 1e-9}, {"step": 1, "loss": 0.5}))
    assert not compare([a, b]).differs
    assert compare([a, b], tolerance=0.0).differs


def test_outcome_and_attempts() -> None:
    resumed = record(2).with_attempt(Attempt(2, "resume", "2024-01-02T11:00:00.000+00:00",
                                             "h2", 77, ("python", "train.py"),
                                             ended="2024-01-02T12:00:00.000+00:00",
                                             status="completed", exit_code=0,
                                             reason="exit 0",
                                             checkpoint="/x/checkpoints/model-100.pt"))
    b = side(2)._replace(record=resumed)
    outcome = compare([side(1), b]).section("outcome")
    assert {f.key for f in outcome.shown(False)} == {"attempts"}
    attempt = {f.key: f for f in outcome.fields}["attempt 2"]
    assert attempt.by_nature and attempt.present == (False, True)
    assert attempt.values[1] == ("resume on h2 pid 77, 2024-01-02T11:00:00.000+00:00 → "
                                 "2024-01-02T12:00:00.000+00:00, from model-100.pt")


def test_patch_summary() -> None:
    patch = (b"diff --git a/x.py b/x.py\nindex 1..2 100644\n--- a/x.py\n+++ b/x.py\n"
             b"@@ -1,2 +1,2 @@\n--- a comment line that was deleted\n+++ added\n same\n"
             b"diff --git a/y.bin b/y.bin\nGIT binary patch\nliteral 3\nKcmZ>A\n\n")
    summary = summarize_patch(patch)
    assert (summary.files, summary.insertions, summary.deletions) == (2, 1, 1)
    assert summary.to_json()["bytes"] == len(patch)
    assert summary != summarize_patch(patch + b"\n") and summary == summarize_patch(patch)


def test_divergence_of_curves_is_that_of_their_steps() -> None:
    rng = random.Random(5)
    for _ in range(300):
        steps = sorted(rng.sample(range(60), rng.randrange(0, 40)))
        if rng.random() < 0.3:  # a step logged twice, or out of order
            steps.insert(rng.randrange(len(steps) + 1), rng.randrange(60))
        curves = []
        for _side in range(2):
            curve = Curve()
            values = [float(rng.choice([1, 1, 1, 2])) + rng.choice([0.0, 1e-9]) for _ in steps]
            kept = steps if rng.random() < 0.7 else [s for s in steps if rng.random() < 0.8]
            curve.extend(kept, values[:len(kept)])
            curves.append(curve)
        for tolerance in (0.0, 1e-6):
            assert diverges_at(curves[0], curves[1], tolerance) == diverges_at(
                curves[0].as_dict(), curves[1].as_dict(), tolerance)
