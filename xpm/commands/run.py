"""`xpm run`: freeze the config, record the code and environment, run the command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .. import console
from ..errors import XpmError, stop_on_termination
from ..launch import lifecycle
from ..launch.preparation import create_run, plan_run
from ..project import Project, find_root, load_project
from ..runs.tree import RunRef
from ..vcs import state as gitinfo


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
    capture_untracked: bool = False,
) -> int:
    stop_on_termination()
    # git runs while the project file and configs are read
    git_capture = gitinfo.Capture(find_root(Path.cwd()) or Path.cwd())
    project = load_project()
    plan = plan_run(project, command, name, configs, assignments, seed, require_clean,
                    git_capture, capture_untracked)
    ref, record, lock = create_run(plan, tags, note)
    if detach:
        lock.release()  # the run is `queued` until the background supervisor takes it
        return _detach(project, ref, lifecycle.handover(plan.command, record.command))
    return lifecycle.start(project, ref.path, record, lock, argv=plan.command, echo=True)


def _detach(project: Project, ref: RunRef, handover: dict[str, str]) -> int:
    """Start `xpm _supervise` in a session of its own; return once it holds the run.
    `handover`: the command as given, when the record holds it masked."""
    read_fd, write_fd = os.pipe()
    env = dict(os.environ, XPM_READY_FD=str(write_fd), **handover)
    with open(os.devnull, "rb") as devnull_in, open(os.devnull, "wb") as devnull_out:
        subprocess.Popen(
            [sys.executable, "-m", "xpm", "_supervise", str(ref.path)],
            cwd=project.root, env=env, stdin=devnull_in, stdout=devnull_out,
            stderr=devnull_out, start_new_session=True, pass_fds=(write_fd,),
        )
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as ready:
        answer = ready.read()
    if answer != b"ok":
        from ..runs.record import CorruptRecord, read_record

        try:
            record = read_record(ref.path)
        except CorruptRecord:
            record = None
        last = record.last_attempt if record else None
        if record is not None and last is not None and last.reason:
            raise XpmError(f"run {ref.id} did not start: {last.reason}", record.exit_code)
        raise XpmError(f"the background supervisor of {ref.id} did not start; "
                       f"see `xpm show {ref.id}` and {ref.path / 'output.log'}")
    console.info(f"run {ref.id} started in the background in {ref.path}; "
                 f"`xpm log -f {ref.id}` follows it")
    console.out(ref.id)
    return 0


def supervise_detached(run_dir: Path) -> int:
    """The hidden `xpm _supervise RUN_DIR`: run a prepared run with output to files only."""
    stop_on_termination()
    ready_fd = int(os.environ.pop("XPM_READY_FD", "-1"))

    def ready() -> None:
        if ready_fd >= 0:
            os.write(ready_fd, b"ok")
            os.close(ready_fd)

    return lifecycle.take_prepared(run_dir, purpose="xpm run --detach", echo=False,
                                   on_running=ready, argv=lifecycle.handed_over_command())
