"""The tree an exact run's command runs in: a temporary git worktree holding the run's
recorded code (commit, git.patch, captured untracked files), made for each start and
removed after it, or the one kept for the run (`xpm rerun --exact --keep-worktree`),
reused by its resumes while it is still there."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import console
from ..runs.record import RunRecord
from ..vcs import rebuild


@contextmanager
def exact_tree(record: RunRecord, run_dir: Path, here: Path) -> Iterator[Path]:
    """Yield the folder to run the command in (the project's folder inside the tree);
    XpmError, saying why, when the run's code cannot be rebuilt."""
    code = rebuild.locate(record, run_dir, here)
    if record.worktree and rebuild.is_worktree_at(Path(record.worktree), code.commit):
        yield Path(record.worktree) / code.project  # kept for this run: reuse it
        return
    if code.submodules:
        console.warn(f"{record.id} recorded git submodules; the exact tree holds them as "
                     "empty folders (they are not rebuilt)")
    top = rebuild.add_worktree(code)
    try:
        yield top / code.project
    finally:
        rebuild.remove_worktree(code.repository, top)


def keep_tree(record: RunRecord, run_dir: Path, here: Path) -> Path:
    """Make the run's tree to keep (`--keep-worktree`); returns its top level."""
    return rebuild.add_worktree(rebuild.locate(record, run_dir, here))
