"""Whether the code today is the code a run recorded (commit and git.patch)."""

from __future__ import annotations

from pathlib import Path

from ..runs.record import PATCH_FILE, RunRecord
from . import state as gitinfo


def code_change(root: Path, run_dir: Path, record: RunRecord) -> str | None:
    """Why the code in `root` today differs from the run's record, or None when it does
    not (or when either side has no git state)."""
    recorded = record.git
    try:
        now = gitinfo.capture(root)
    except gitinfo.GitUnreadable as exc:
        return f"{exc}, so the code cannot be compared"
    if recorded is None or now is None:
        return None
    if recorded.commit != now.commit:
        return f"the commit is {_short(now.commit)}, the run recorded {_short(recorded.commit)}"
    if recorded.patch and not (run_dir / PATCH_FILE).is_file():
        return "the run's git.patch is missing, so uncommitted changes cannot be compared"
    before = (run_dir / PATCH_FILE).read_bytes() if recorded.patch else b""
    after = gitinfo.current_patch(now) if now.dirty else b""
    if before != after:
        return "the uncommitted changes differ from the run's git.patch"
    return None


def _short(commit: str | None) -> str:
    return commit[:10] if commit else "no commit"
