"""`xpm clean`: move finished runs to the trash (or delete them), empty the trash, thin
checkpoints — showing what it will do first, and never touching a run in use or anything
outside results_dir."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .. import console, times
from ..cleaning import trash
from ..cleaning.batch import (
    drop_busy,
    each,
    gather,
    go_ahead,
    in_use,
    named_runs,
    run_table,
    sizes,
    will,
)
from ..cleaning.selection import DEFAULT_STATUSES, Criteria
from ..errors import UsageError, XpmError
from ..project import load_project
from ..runs import sweeps
from ..runs.catalog import Entry, parse_statuses
from ..runs.disk import format_size


def clean(
    *,
    runs: tuple[str, ...],
    status: str | None,
    keep_last: int | None,
    older_than: str | None,
    checkpoints: bool,
    keep: int | None,
    keep_best: str | None,
    keep_every: int | None,
    dry_run: bool,
    yes: bool,
    purge: bool,
    empty_trash: bool,
    force: bool = False,
) -> int:
    _check_options(keep_last, checkpoints, keep, keep_best, keep_every, empty_trash,
                   status is not None or keep_last is not None or older_than is not None)
    criteria = Criteria(
        statuses=parse_statuses(status) if status is not None else None,
        keep_last=keep_last,
        older_than=times.parse_age(older_than, "--older-than") if older_than else None,
    )
    project = load_project()
    results = project.results_dir
    trash.check_folder(results)
    if empty_trash:
        return _empty_trash(results, runs, dry_run, yes)
    runs = tuple(sweeps.run_ids(results, runs))  # NAME@K: the sweep's runs still there
    if checkpoints:
        from ..cleaning.checkpoints import thin

        assert keep is not None
        return thin(project, runs, criteria, keep, keep_best, keep_every, dry_run, yes)
    return _remove(results, runs, criteria, purge, dry_run, yes, force)


def _check_options(keep_last: int | None, checkpoints: bool, keep: int | None,
                   keep_best: str | None, keep_every: int | None, empty_trash: bool,
                   selecting: bool) -> None:
    if keep_last is not None and keep_last < 0:
        raise UsageError(f"--keep-last must be 0 or more, not {keep_last}; e.g. --keep-last 3 "
                         "keeps the three newest runs of each name")
    if empty_trash and (selecting or checkpoints):
        raise UsageError("--empty-trash deletes what the trash holds and takes no other "
                         "selection; name trashed runs or names to delete only those")
    if not checkpoints:
        given = [o for o, v in (("--keep", keep), ("--keep-best", keep_best),
                                ("--keep-every", keep_every)) if v is not None]
        if given:
            raise UsageError(f"{given[0]} thins checkpoints and goes with --checkpoints, e.g. "
                             "--checkpoints --keep 2; to keep each name's newest runs use "
                             "--keep-last K")
        return
    if keep is None:
        raise UsageError("--checkpoints needs --keep K, the number of newest checkpoints to "
                         "keep in each run, e.g. --checkpoints --keep 2")
    if keep < 0:
        raise UsageError(f"--keep must be 0 or more, not {keep}; e.g. --keep 2 keeps the two "
                         "newest checkpoints of each run")
    if keep_every is not None and keep_every < 1:
        raise UsageError(f"--keep-every must be 1 or more, not {keep_every}; e.g. "
                         "--keep-every 1000 keeps the checkpoints of steps 1000, 2000, ...")


# -- removing runs ---------------------------------------------------------------------


def _nothing(criteria: Criteria) -> str:
    if criteria.given:
        return "nothing to clean: no run matches"
    return (f"nothing to clean: no {', '.join(DEFAULT_STATUSES[:-1])} or "
            f"{DEFAULT_STATUSES[-1]} runs; name a run (NAME/N) or use --status, --keep-last "
            "or --older-than to take others")


def _remove(results: Path, args: Sequence[str], criteria: Criteria, purge: bool,
            dry_run: bool, yes: bool, force: bool) -> int:
    allowed = named_runs(results, args) if force else set()
    chosen, left = drop_busy(gather(results, args, criteria), queued_allowed=allowed)
    if not chosen:
        console.info(f"nothing cleaned: {in_use(left)}" if left else _nothing(criteria))
        return 1 if left else 0
    sized = sizes([e.ref.path for e in chosen])
    total = format_size(sum(sized))
    runs = console.plural(len(chosen), "run")
    bin_ = console.path(trash.folder(results))
    if purge:
        footer = f"{runs} {will(dry_run)} be deleted for good, freeing {total}"
        question = f"Delete {runs} for good, freeing {total}?"
    else:
        footer = (f"{runs} ({total}) {will(dry_run)} be moved to {bin_}; `xpm restore RUN` "
                  "puts one back, `xpm clean --empty-trash` frees the space")
        question = f"Move {runs} ({total}) to {bin_}?"
    run_table(chosen, sized, footer)
    if not go_ahead(question, dry_run, yes):
        return 1 if left else 0
    size_of_run = {e.id: s for e, s in zip(chosen, sized, strict=True)}

    def act(entry: Entry, _: str) -> bool:
        if purge:
            trash.delete(results, entry.ref, in_trash=False)
        else:
            trash.move_in(results, entry.ref)
        return True

    done, more = each(chosen, act)
    freed = format_size(sum(size_of_run[e.id] for e in done))
    if purge and done:
        console.info(f"deleted {console.plural(len(done), 'run')} for good, freeing {freed}")
    elif purge:
        console.info("deleted no runs")
    elif done:
        console.info(f"moved {console.plural(len(done), 'run')} ({freed}) to {bin_}; "
                     f"`xpm restore {done[0].id}` puts one back, `xpm clean --empty-trash` "
                     "frees the space")
    else:
        console.info("moved no runs to the trash")
    return 1 if left + more else 0


# -- emptying the trash ----------------------------------------------------------------


def _empty_trash(results: Path, args: Sequence[str], dry_run: bool, yes: bool) -> int:
    bin_ = trash.folder(results)
    trashed = gather(results, args, None)
    leftovers = trash.unfinished(results) if not args else []
    if not trashed and not leftovers:
        console.info(f"nothing to delete: the trash ({console.path(bin_)}) holds no runs"
                     + (" of those names" if args else ""))
        return 0
    sized = sizes([e.ref.path for e in trashed] + leftovers)
    total = format_size(sum(sized))
    count = console.plural(len(trashed), "run") + (
        f" and {console.plural(len(leftovers), 'unfinished deletion')}" if leftovers else "")
    run_sizes, leftover_sizes = sized[:len(trashed)], sized[len(trashed):]
    run_table(trashed, run_sizes,
              f"{count} in {console.path(bin_)} {will(dry_run)} be deleted for good, freeing "
              f"{total}",
              more=[[path.name, "deleting", "", format_size(s)]
                    for path, s in zip(leftovers, leftover_sizes, strict=True)])
    if not go_ahead(f"Delete {count} in the trash for good, freeing {total}?", dry_run, yes):
        return 0
    size_of_run = {e.id: s for e, s in zip(trashed, run_sizes, strict=True)}

    def act(entry: Entry, _: str) -> bool:
        trash.delete(results, entry.ref, in_trash=True)
        return True

    done, left = each(trashed, act, same_status=False)
    freed = sum(size_of_run[e.id] for e in done)
    for path, size in zip(leftovers, leftover_sizes, strict=True):
        try:
            trash.finish(path)
            freed += size
        except XpmError as exc:
            console.warn(str(exc))
            left += 1
    console.info(f"deleted {console.plural(len(done), 'run')} from the trash for good, "
                 f"freeing {format_size(freed)}")
    return 1 if left else 0
