"""`xpm resume`: continue a run in its own folder from its newest checkpoint."""

from __future__ import annotations

from .. import times
from ..errors import XpmError, stop_on_termination
from ..launch import lifecycle
from ..project import Project, load_project
from ..runs.catalog import entries
from ..runs.tree import RunRef, resolve


def latest_started(project: Project) -> RunRef:
    """The most recently started run of the project (times compared as times, whatever
    their timezone offsets)."""
    best: tuple[float, RunRef] | None = None
    for entry in entries(project.results_dir, live=False):
        if entry.record is None:
            continue
        last = entry.record.last_attempt
        try:
            started = times.parse_iso(last.started if last else entry.record.created)
        except ValueError:
            continue
        if best is None or started.timestamp() > best[0]:
            best = (started.timestamp(), entry.ref)
    if best is None:
        raise XpmError(f"there are no runs in {project.results_dir} to resume; "
                       "start one with `xpm run`")
    return best[1]


def resume(run: str | None, force: bool, command: tuple[str, ...]) -> int:
    stop_on_termination()
    current = load_project()
    ref = resolve(current.results_dir, run) if run is not None else latest_started(current)
    return lifecycle.resume(current, ref, force=force, command=command)
