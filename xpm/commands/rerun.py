"""`xpm rerun RUN`: a new run with RUN's command, config and seed (plus overrides); with
--exact, in RUN's own recorded code rebuilt in a temporary git worktree; here, in the
background (--detach) or on Slurm (--slurm, with RUN's recorded Slurm options).

The config is rebuilt the way RUN built it: its frozen copies of the config files (in
configs/) merged in order, then its recorded `-s` assignments, then the new ones; the new
run records all of them, so a rerun of the rerun does the same. A record that cannot
rebuild its own frozen config that way (written before assignments were recorded) gives
its frozen config.yaml instead, with the new assignments on top."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .. import console
from ..errors import UsageError, XpmError, stop_on_termination
from ..launch import lifecycle
from ..launch.preparation import Plan, configure, create_run, merged_files, plan_run
from ..project import Project, load_project
from ..runs.record import (
    CONFIG_FILE,
    GitState,
    RunRecord,
    read_environment,
    read_record,
)
from ..runs.tree import RunRef, resolve
from ..runs.update import update_record
from ..vcs import rebuild

if TYPE_CHECKING:
    from ..launch.slurm import SlurmOptions

SHOWN_PACKAGES = 5


def rerun(run: str, exact: bool, assignments: tuple[str, ...], seed: int | None,
          name: str | None, tags: tuple[str, ...], note: str | None, keep_worktree: bool,
          require_same_env: bool, detach: bool = False, slurm: bool | None = None,
          slurm_opts: tuple[str, ...] = ()) -> int:
    stop_on_termination()
    project = load_project()
    ref = resolve(project.results_dir, run)
    old = read_record(ref.path)
    if keep_worktree and not exact:
        raise XpmError("--keep-worktree keeps the tree of an exact rerun; add --exact")
    options = _slurm_options(project, old, detach, slurm, slurm_opts)
    if exact:
        code = rebuild.locate(old, ref.path, project.root)
        rebuild.check(code)
    _compare_packages(ref.path, old, require_same_env, project.root)
    plan = _plan(project, ref, old, assignments, seed, name)
    if exact:
        plan = plan._replace(git=None, untracked=None)  # the run's code is RUN's, below
    new, record, lock = create_run(plan, tags, note, detach=detach)
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
            return replace(current, rerun_of=ref.id, exact=exact, git=git, worktree=kept)

        record = update_record(new.path, mark)
    except BaseException:
        shutil.rmtree(new.path, ignore_errors=True)
        lock.release()
        raise
    how = " exactly, in its recorded code" if exact else ""
    console.info(f"{new.id} reruns {ref.id}{how}")
    if options is not None:
        from ..launch.slurm import submit_prepared

        submit_prepared(project, new, record, lock, options)
        return 0
    if detach:
        from ..launch.background import start_run

        lock.release()  # the run is `queued` until the background supervisor takes it
        start_run(project.root, new)
        return 0
    return lifecycle.start(project, new.path, record, lock, echo=True)


def _slurm_options(project: Project, old: RunRecord, detach: bool, slurm: bool | None,
                   overrides: tuple[str, ...]) -> SlurmOptions | None:
    """The Slurm options of a rerun that goes to Slurm (RUN's recorded ones, else
    xpm.yaml's, with --slurm-opt on top), None for one that runs here. By default a rerun
    goes where RUN went."""
    use_slurm = slurm if slurm is not None else old.slurm is not None
    if not use_slurm:
        if overrides:
            raise UsageError("--slurm-opt only applies to a Slurm rerun; add --slurm")
        return None
    if detach:
        raise UsageError("--detach and --slurm do not go together: a Slurm run is detached "
                         "already (drop --detach, or --local to run here in the background)")
    from ..launch.slurm import parse_options

    recorded = (old.slurm or {}).get("options")
    if isinstance(recorded, dict):
        base = {k: v for k, v in recorded.items() if v is not None and v != []}
        return parse_options(base, overrides, where=f"{old.id}'s recorded Slurm options")
    return parse_options(project.settings.slurm, overrides)


def _plan(project: Project, ref: RunRef, old: RunRecord, assignments: tuple[str, ...],
          seed: int | None, name: str | None) -> Plan:
    """The new run's plan: RUN's command, seed and config rebuilt as RUN built it (see the
    module docstring), recording RUN's config sources and every assignment."""
    copies = tuple(ref.path / c for c in old.config_files)
    frozen = ref.path / CONFIG_FILE
    plan = plan_run(project, old.command, name or ref.name, (str(frozen),), (),
                    seed if seed is not None else old.seed, require_clean=False)
    rebuilt = None
    if all(c.is_file() for c in copies):
        try:
            base = merged_files(copies)
            if configure(base, old.assignments, old.seed)[0] == old.config:
                rebuilt = base
        except XpmError:  # a copy that no longer reads: the frozen config instead
            rebuilt = None
    if rebuilt is not None:
        given = (*old.assignments, *assignments)
        config, seed_used = configure(rebuilt, given, seed if seed is not None else old.seed)
        return plan._replace(config=config, seed=seed_used, config_files=copies,
                             assignments=given, sources=old.config_sources)
    config, seed_used = configure(merged_files((frozen,)), assignments,
                                  seed if seed is not None else old.seed)
    kept = tuple(c for c in copies if c.is_file())  # a copy removed by hand is not copied
    return plan._replace(config=config, seed=seed_used, config_files=kept,
                         assignments=tuple(assignments), sources=old.config_sources)


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
