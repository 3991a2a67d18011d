"""`xpm rerun RUN`: a new run with RUN's command, frozen config and seed (plus overrides);
with --exact, in RUN's own recorded code rebuilt in a temporary git worktree."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from .. import console
from ..errors import XpmError, stop_on_termination
from ..launch import lifecycle
from ..launch.preparation import create_run, plan_run
from ..project import load_project
from ..runs.record import (
    CONFIG_FILE,
    GitState,
    RunRecord,
    read_environment,
    read_record,
)
from ..runs.tree import resolve
from ..runs.update import update_record
from ..vcs import rebuild

SHOWN_PACKAGES = 5


def rerun(run: str, exact: bool, assignments: tuple[str, ...], seed: int | None,
          name: str | None, tags: tuple[str, ...], note: str | None, keep_worktree: bool,
          require_same_env: bool) -> int:
    stop_on_termination()
    project = load_project()
    ref = resolve(project.results_dir, run)
    old = read_record(ref.path)
    if keep_worktree and not exact:
        raise XpmError("--keep-worktree keeps the tree of an exact rerun; add --exact")
    if exact:
        code = rebuild.locate(old, ref.path, project.root)
        rebuild.check(code)
    _compare_packages(ref.path, old, require_same_env, project.root)
    plan = plan_run(project, old.command, name or old.name, (str(ref.path / CONFIG_FILE),),
                    assignments, seed, require_clean=False)
    plan = replace(plan, config_files=tuple(ref.path / c for c in old.config_files))
    if exact:
        plan = replace(plan, git=None, untracked=None)  # the run's code is RUN's, below
    new, record, lock = create_run(plan, tags, note)
    try:
        git = _copy_code(old, ref.path, new.path) if exact else record.git
        kept: str | None = None
        if keep_worktree:
            from ..launch.exact import keep_tree

            kept = str(keep_tree(replace(record, git=git, exact=True), new.path,
                                 project.root))
            console.info(f"the exact tree of {new.id} is kept at {kept}; its resumes run "
                         f"there (`git worktree remove {kept}` when done)")

        def mark(current: RunRecord) -> RunRecord:
            return replace(current, rerun_of=old.id, exact=exact, git=git, worktree=kept)

        record = update_record(new.path, mark)
    except BaseException:
        shutil.rmtree(new.path, ignore_errors=True)
        lock.release()
        raise
    how = " exactly, in its recorded code" if exact else ""
    console.info(f"{new.id} reruns {old.id}{how}")
    return lifecycle.start(project, new.path, record, lock, echo=True)


def _copy_code(old: RunRecord, old_dir: Path, new_dir: Path) -> GitState | None:
    """RUN's recorded code (git state, git.patch, untracked archive), as the new run's."""
    git = old.git
    if git is None:
        return None
    for name in (git.patch, git.untracked_archive):
        if name:
            shutil.copy2(old_dir / name, new_dir / name)
    return git


def _installed(command: tuple[str, ...], cwd: Path) -> dict[str, str]:
    """The distributions installed for the Python the command runs (xpm's own: read here;
    another: asked, as environment.json's are)."""
    import os

    from ..launch.environment import distributions
    from ..launch.interpreter import probe, resolve

    python = resolve(command, cwd)
    if python is None or python.is_xpms_own:
        return distributions()
    found = probe(python.executable, dict(os.environ), cwd).get("distributions")
    return found if isinstance(found, dict) else {}


def _compare_packages(run_dir: Path, old: RunRecord, required: bool, cwd: Path) -> None:
    """Warn (or, when required, refuse) when installed packages differ from RUN's."""
    from ..launch.environment import package_differences

    recorded = (read_environment(run_dir) or {}).get("distributions")
    if not isinstance(recorded, dict) or not recorded:
        if required:
            raise XpmError(f"{old.id} recorded no packages (its environment.json is missing "
                           "or unreadable), so they cannot be compared; drop "
                           "--require-same-env")
        return
    differences = package_differences(recorded, _installed(old.command, cwd))
    if not differences:
        return
    shown = "; ".join(differences[:SHOWN_PACKAGES])
    if len(differences) > SHOWN_PACKAGES:
        shown += f" and {len(differences) - SHOWN_PACKAGES} more"
    what = (f"installed packages differ from {old.id}'s "
            f"({console.plural(len(differences), 'package')}): {shown}")
    if required:
        raise XpmError(f"{what}; install those versions, or drop --require-same-env")
    console.warn(f"{what}; `xpm diff` of the two runs lists them all")
