"""`xpm run`: freeze the config, record the code and environment, run the command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError, stop_on_termination
from ..project import find_root
from ..vcs import state as gitinfo

if TYPE_CHECKING:
    from ..launch.slurm import SlurmOptions
    from ..project import Project
    from ..runs.lock import RunLock
    from ..runs.record import RunRecord
    from ..runs.tree import RunRef


def run(
    command: tuple[str, ...],
    name: str | None,
    configs: tuple[str, ...],
    assignments: tuple[str, ...],
    seed: int | None,
    tags: tuple[str, ...],
    note: str | None,
    detach: bool,
    require_clean: bool,
    slurm: bool | None = None,
    slurm_opts: tuple[str, ...] = (),
    capture_untracked: bool = False,
) -> int:
    stop_on_termination()
    # git runs while the rest of xpm is imported and the project file and configs are read
    git_capture = gitinfo.Capture(find_root(Path.cwd()) or Path.cwd())
    from ..launch.handover import handover as command_handover
    from ..launch.preparation import create_run, plan_run
    from ..project import load_project

    project = load_project()
    use_slurm = slurm if slurm is not None else project.settings.launcher == "slurm"
    options = None
    if use_slurm:
        from ..launch.slurm import parse_options

        if detach:
            raise UsageError("--detach and --slurm do not go together: a Slurm run is "
                             "detached already (drop --detach)")
        options = parse_options(project.settings.slurm, slurm_opts)
    elif slurm_opts:
        raise UsageError("--slurm-opt only applies to a Slurm run; add --slurm (or set "
                         "`launcher: slurm` in xpm.yaml)")
    plan = plan_run(project, command, name, configs, assignments, seed, require_clean,
                    git_capture, capture_untracked)
    if options is None and not detach:
        # the supervisor (not imported to submit a Slurm job), imported before the folder
        # is made: a signal during that import would leave a queued run nobody starts
        from ..launch import lifecycle
    # the diff runs while the run folder is made
    ref, record, lock = create_run(plan, tags, note, detach=detach,
                                   pending_patch=gitinfo.start_patch(plan.git))
    if options is not None:
        return _submit(project, ref, record, lock, options,
                       command_handover(plan.command, record.command))
    if detach:
        lock.release()  # the run is `queued` until the background supervisor takes it
        return _detach(project, ref, command_handover(plan.command, record.command))
    return lifecycle.start(project, ref.path, record, lock, argv=plan.command, echo=True)


def _submit(project: Project, ref: RunRef, record: RunRecord, lock: RunLock,
            options: SlurmOptions, handover: dict[str, str]) -> int:
    """Submit the prepared run to Slurm; print its id and the job id. `handover`: the
    command as given, when the record holds it masked (the job inherits it from sbatch's
    environment)."""
    from ..launch.slurm import submit_prepared

    submit_prepared(project, ref, record, lock, options, handover)
    return 0


def _detach(project: Project, ref: RunRef, handover: dict[str, str]) -> int:
    """Start `xpm _supervise` in a session of its own; return once it holds the run.
    `handover`: the command as given, when the record holds it masked."""
    from ..launch import background

    background.start_run(project.root, ref, handover)
    return 0


def supervise_detached(run_dir: Path) -> int:
    """The hidden `xpm _supervise RUN_DIR`: run a prepared run with output to files only."""
    stop_on_termination()
    from ..launch import background, lifecycle
    from ..launch.handover import handed_over_command

    return lifecycle.take_prepared(run_dir, purpose="xpm run --detach", echo=False,
                                   on_running=background.ready_signal(),
                                   argv=handed_over_command())
