"""Which runs `xpm clean` takes from the tree (or from the named run names).

A run is taken when it meets every criterion given:
  - its status is one of --status; without --status: failed, lost, interrupted and killed
    when no other criterion is given, else every finished status (completed included);
  - --keep-last K: it is not among the K newest runs (highest numbers) of its name, counted
    among the runs the status criterion covers (without --status: all runs, running and
    queued included);
  - --older-than AGE: it ended (else started, else was created) at least AGE ago.
Runs named as NAME/N are taken as named and never pass through here; a run whose record
is corrupt is only ever taken that way. `target` turns each RUN|NAME argument into a run
name or a run, refusing anything that is not a run folder inside results_dir.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from pathlib import Path

from .. import console, times
from ..errors import XpmError
from ..runs.catalog import ABANDONED, Entry
from ..runs.record import ACTIVE, COMPLETED, FAILED, INTERRUPTED, KILLED, LOST, RECORD_FILE
from ..runs.tree import TRASH_DIR, RunRef, resolve
from .removal import is_real_folder, run_folder

DEFAULT_STATUSES = (FAILED, LOST, INTERRUPTED, KILLED, ABANDONED)
FINISHED = (COMPLETED, FAILED, INTERRUPTED, KILLED, LOST)


@dataclass(frozen=True)
class Criteria:
    statuses: tuple[str, ...] | None = None
    keep_last: int | None = None
    older_than: timedelta | None = None

    @property
    def given(self) -> bool:
        return (self.statuses is not None or self.keep_last is not None
                or self.older_than is not None)

    def status_set(self, every_finished: bool = False) -> tuple[str, ...]:
        """The statuses taken; `every_finished` widens the default (checkpoint thinning)."""
        if self.statuses is not None:
            return self.statuses
        if every_finished or self.keep_last is not None or self.older_than is not None:
            return FINISHED
        return DEFAULT_STATUSES


def moment(entry: Entry) -> datetime | None:
    """When the run ended, else started, else was created."""
    record = entry.record
    if record is None:
        return None
    return times.parse_iso(record.ended or record.started or record.created)


def select(entries: Iterable[Entry], criteria: Criteria, now: datetime,
           every_finished: bool = False) -> list[Entry]:
    """The entries (in name, number order) taken by the criteria."""
    statuses = set(criteria.status_set(every_finished))
    ranked = statuses | (set(ACTIVE) if criteria.statuses is None else set())
    taken: list[Entry] = []
    ordered = sorted(entries, key=lambda e: (e.ref.name, e.ref.number))
    for _, group in groupby(ordered, key=lambda e: e.ref.name):
        runs = list(group)
        spared: set[str] = set()
        if criteria.keep_last is not None and criteria.keep_last > 0:
            counted = [e for e in runs if e.status in ranked]
            spared = {e.id for e in counted[-criteria.keep_last:]}
        for entry in runs:
            if entry.status not in statuses or entry.id in spared:
                continue
            if criteria.older_than is not None:
                when = moment(entry)
                if when is None or now - when < criteria.older_than:
                    continue
            taken.append(entry)
    return taken


def target(results_dir: Path, arg: str, in_trash: bool = False, names: bool = True
           ) -> str | RunRef:
    """A RUN or NAME argument as a run name (when `names`) or a run in results_dir (or in
    its trash). Anything else — a path outside results_dir, through a symbolic link, into
    the trash when not asked for — is refused before anything changes."""
    root = results_dir / TRASH_DIR if in_trash else results_dir
    place = (f"the trash (`{console.path(root)}`)" if in_trash
             else f"`{console.path(results_dir)}`")
    listing = "`xpm restore` lists the trash" if in_trash else "`xpm ls` lists the runs"
    text = arg.strip().rstrip("/")
    bare = bool(text) and "/" not in text and not text.startswith(".")
    if bare and names:
        name_dir = root / text
        if is_real_folder(name_dir):
            return text
        if os.path.lexists(name_dir):
            raise XpmError(f"`{name_dir}` is a symbolic link, not a folder of runs; xpm never "
                           "follows a link out of results_dir, so it leaves those runs alone")
        if not (Path(text) / RECORD_FILE).is_file():
            raise XpmError(f"no run named `{text}` in {place}; {listing}")
    try:
        ref = resolve(root, text)
    except XpmError as exc:
        if in_trash:
            raise XpmError(f"`{arg}` is not a run in {place}; {listing}") from None
        raise exc from None
    if run_folder(results_dir, ref, in_trash) is not None:
        return RunRef(ref.name, ref.number, root / ref.name / str(ref.number))
    if not in_trash and run_folder(results_dir, ref, in_trash=True) is not None:
        raise XpmError(f"`{arg}` is in the trash already; `xpm restore {ref.id}` puts it back "
                       f"and `xpm clean --empty-trash {ref.id}` deletes it for good")
    raise XpmError(f"`{arg}` is not a run folder in {place} (it is outside it, or reached "
                   "through a symbolic link); xpm only ever touches runs inside results_dir")


def targets(results_dir: Path, args: Iterable[str], in_trash: bool = False
            ) -> tuple[list[str], list[RunRef]]:
    """The run names and the runs named, each once, in the order given."""
    names: list[str] = []
    runs: dict[str, RunRef] = {}
    for arg in args:
        found = target(results_dir, arg, in_trash)
        if isinstance(found, str):
            if found not in names:
                names.append(found)
        else:
            runs.setdefault(found.id, found)
    return names, list(runs.values())
