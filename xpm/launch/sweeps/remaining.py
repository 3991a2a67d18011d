"""Which trials of a sweep are left to do, and how: start the never-started, resume the
interrupted and lost, leave the completed alone, retry the failed only when asked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ...runs.catalog import CORRUPT, load_entry
from ...runs.record import COMPLETED, FAILED, RUNNING, RunRecord
from ...runs.sweeps import Manifest
from ...runs.tree import RunRef

START, RESUME = "start", "resume"
RETRIED = ("failed", "killed")  # ended by the command itself: only with --retry-failed


class Step(NamedTuple):
    trial: int
    action: str  # START or RESUME


@dataclass(frozen=True)
class Remaining:
    steps: list[Step]
    completed: int
    running: list[str]  # trials' runs some other process is running
    failed: list[str]  # failed trials left alone (no --retry-failed)
    missing: list[str]  # runs gone from the tree (cleaned): started again


def remaining(results_dir: Path, manifest: Manifest, retry_failed: bool) -> Remaining:
    steps: list[Step] = []
    completed = 0
    running: list[str] = []
    failed: list[str] = []
    missing: list[str] = []
    for trial in manifest.trials:
        if trial.run is None:
            steps.append(Step(trial.index, START))
            continue
        name, _, number = trial.run.partition("/")
        path = results_dir / name / number
        if not path.is_dir():
            missing.append(trial.run)
            steps.append(Step(trial.index, START))
            continue
        entry = load_entry(RunRef(name, int(number), path))
        record = entry.record
        if entry.status == COMPLETED:
            completed += 1
        elif entry.status == RUNNING:
            running.append(trial.run)
        elif record is not None and not record.attempts:  # its command never started
            steps.append(Step(trial.index, START))  # (queued; or sbatch refused, cancelled)
        elif record is not None and _requeues_exhausted(record):
            steps.append(Step(trial.index, RESUME))  # a scheduler's limit, not the code's
        elif entry.status in RETRIED or entry.status == CORRUPT:
            if retry_failed and entry.status != CORRUPT:
                steps.append(Step(trial.index, RESUME))
            else:
                failed.append(trial.run)
        else:  # interrupted, lost, cancelled, or queued after attempts (a requeue)
            steps.append(Step(trial.index, RESUME))
    return Remaining(steps, completed, running, failed, missing)


def _requeues_exhausted(record: RunRecord) -> bool:
    """A run a scheduler requeued more often than max_requeues: failed, by no fault of its
    command, so resumed like an interrupted one."""
    last = record.last_attempt
    return (record.status == FAILED and last is not None and last.kind == "requeue"
            and "max_requeues" in (last.reason or ""))
