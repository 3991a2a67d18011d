"""The steps every mode of `xpm clean` (and `xpm restore`) shares: gather the selected
runs, leave alone those in use, size and tabulate them, confirm, then act on each under
its lock."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

from .. import console, times
from ..errors import XpmError
from ..runs.catalog import Entry, entries, load_entry
from ..runs.disk import format_size, size_of
from ..runs.lock import busy_message
from ..runs.record import QUEUED, RUNNING
from . import trash
from .removal import claimed
from .selection import Criteria, select, targets


def named_runs(results: Path, args: Sequence[str]) -> set[str]:
    """The ids of the runs named as NAME/N (or by their folder) among `args`."""
    return {ref.id for ref in targets(results, args)[1]}


def gather(results: Path, args: Sequence[str], criteria: Criteria | None,
           every_finished: bool = False) -> list[Entry]:
    """The runs taken by the criteria among the names given (or the whole tree), plus the
    runs named as NAME/N, in name and number order. Without criteria: the runs in the
    trash (every one of the names given, or all), as they are (no liveness there)."""
    in_trash = criteria is None
    names, named = targets(results, args, in_trash=in_trash)
    chosen: dict[str, Entry] = {}
    if names or not named:
        root = trash.folder(results) if in_trash else results
        found: Iterable[Entry] = entries(root, names or None, live=not in_trash)
        if criteria is not None:
            found = select(found, criteria, times.now(), every_finished)
        for entry in found:
            chosen[entry.id] = entry
    for ref in named:
        chosen.setdefault(ref.id, load_entry(ref, live=not in_trash))
    return sorted(chosen.values(), key=lambda e: (e.ref.name, e.ref.number))


def in_use(count: int) -> str:
    """Why nothing was done when every selected run is in use."""
    return ("the selected run is in use" if count == 1 else
            f"the {count} selected runs are in use")


def will(dry_run: bool) -> str:
    """The tense of a table's footer: what will happen, or on a dry run what would."""
    return "would" if dry_run else "will"


def drop_busy(chosen: list[Entry], queued_allowed: Collection[str] = ()
              ) -> tuple[list[Entry], int]:
    """The runs not in use, and how many were left alone because they are. A `queued` run
    (waiting for Slurm or for its background supervisor) counts as in use unless its id is
    in `queued_allowed` (named, with --force)."""
    free: list[Entry] = []
    for entry in chosen:
        if entry.status == RUNNING:
            console.warn(f"left alone: {busy_message(entry.ref.path, entry.id)}")
        elif entry.status == QUEUED and entry.id not in queued_allowed:
            console.warn(f"left alone: run `{entry.id}` is queued: it waits to start; name "
                         f"it ({entry.id}) and add --force to remove it anyway")
        else:
            free.append(entry)
    return free, len(chosen) - len(free)


def sizes(paths: Sequence[Path]) -> list[int]:
    out: list[int] = []
    with console.progress("sizing", len(paths)) as advance:
        for path in paths:
            out.append(size_of(path))
            advance()
    return out


def go_ahead(question: str, dry_run: bool, yes: bool) -> bool:
    """Whether to act: never on a dry run, at once with -y, else as the terminal answers."""
    if dry_run:
        console.info("dry run: nothing changed")
        return False
    if yes:
        return True
    if not console.stdin_is_terminal():
        raise XpmError("not asking for confirmation without a terminal, so nothing changed; "
                       "add -y to go ahead, or --dry-run to only show what would happen")
    if console.confirm(question):
        return True
    console.info("nothing changed")
    return False


def each(chosen: Sequence[Entry], action: Callable[[Entry, str], bool],
         same_status: bool = True) -> tuple[list[Entry], int]:
    """Run `action(entry, status)` on each run while holding its lock; a run in use, or whose
    status changed since it was listed, is left alone. Returns the runs acted on and how many
    were left alone."""
    done: list[Entry] = []
    left = 0
    for entry in chosen:
        try:
            with claimed(entry.ref.path, entry.id) as now:
                if same_status and now != entry.status:
                    console.warn(f"left alone: `{entry.id}` is {now} now, not {entry.status} "
                                 "as listed; run the command again to see it as it is")
                    left += 1
                    continue
                if action(entry, now):
                    done.append(entry)
        except XpmError as exc:
            console.warn(f"left alone: {exc}")
            left += 1
    return done, left


def _ended(entry: Entry) -> str:
    record = entry.record
    if record is None or not record.ended:
        return ""
    return times.format_ago(times.parse_iso(record.ended))


def run_table(chosen: Sequence[Entry], sized: Sequence[int], footer: str,
              more: Sequence[list[str]] = ()) -> None:
    """RUN, STATUS, ENDED and SIZE of each run (then the `more` rows), and a footer."""
    rows = [[e.id, e.status, _ended(e), format_size(s)]
            for e, s in zip(chosen, sized, strict=True)]
    console.table(["RUN", "STATUS", "ENDED", "SIZE"], [*rows, *more], footer=footer)
