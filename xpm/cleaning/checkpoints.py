"""`xpm clean --checkpoints`: thin the checkpoints inside runs; the runs themselves stay.

cleaning/thinning.py decides which checkpoints to keep; this module finds them on disk, shows
the plan, and deletes the rest while holding each run's lock. The plan is made again under
the lock and only what both plans delete goes, so a checkpoint saved or a metric logged
meanwhile can only make xpm keep more. Deleted checkpoints skip the trash: the point is to
free the space. A checkpoint reached through a symbolic link (a `checkpoints/` folder
linked to scratch space) is never deleted, nor is its target; a checkpoint that is itself
a link is unlinked, and a link that is kept keeps the checkpoint it points to.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import console
from ..errors import UsageError
from ..project import Project
from ..runs import metrics
from ..runs.catalog import Entry
from ..runs.checkpoints import Checkpoint, files_of, find
from ..runs.disk import format_size, size_of
from . import thinning as pruning
from .batch import drop_busy, each, gather, go_ahead, will
from .removal import is_real_folder, remove, run_folder
from .selection import Criteria
from .thinning import Best, Decision, Rule, best_step, parse_best


@dataclass(frozen=True)
class Plan:
    entry: Entry
    decisions: tuple[Decision, ...]  # for every checkpoint found, oldest first
    doomed: tuple[Checkpoint, ...]


class _Clear:
    """Whether paths below one run folder are reached with no link on the way (the path
    itself may be a link); each folder is looked at once."""

    def __init__(self, run_dir: Path, real_run_dir: Path) -> None:
        self.run_dir = run_dir
        self.real = real_run_dir
        self.seen: dict[Path, bool] = {}

    def __call__(self, path: Path) -> bool:
        try:
            rel = path.relative_to(self.run_dir)
        except ValueError:
            return False
        if not rel.parts or any(part in ("..", ".") for part in rel.parts):
            return False
        folder = self.real
        for part in rel.parts[:-1]:
            folder = folder / part
            ok = self.seen.get(folder)
            if ok is None:
                ok = self.seen[folder] = is_real_folder(folder)
            if not ok:
                return False
        return True


def _found(results: Path, entry: Entry, patterns: Sequence[str]) -> list[Checkpoint]:
    """The run's checkpoints that may be deleted at all (no link on the way)."""
    real = run_folder(results, entry.ref)
    if real is None:
        return []
    clear = _Clear(entry.ref.path, real)
    out: list[Checkpoint] = []
    for checkpoint in find(entry.ref.path, patterns):
        files = files_of(checkpoint.path)
        if files and all(clear(f) for f in files):
            out.append(checkpoint)
    return out


def _plan(entry: Entry, found: list[Checkpoint], rule: Rule, best_at: int | None) -> Plan:
    decisions = tuple(pruning.thin(found, rule, best_at))
    kept_links = {os.path.realpath(c.path) for c, d in zip(found, decisions, strict=True)
                  if d.keep and os.path.islink(c.path)}
    doomed = tuple(c for c, d in zip(found, decisions, strict=True) if not d.keep
                   and not (kept_links and os.path.realpath(c.path) in kept_links))
    return Plan(entry, decisions, doomed)


def _best_at(entry: Entry, best: Best | None, logged: set[str]) -> tuple[bool, int | None]:
    """(whether the run can be thinned, the step where the metric was best)."""
    if best is None:
        return True, None
    rows = metrics.read(entry.ref.path, entry.record.attempts if entry.record else ())
    logged.update(k for row in rows for k in row if k not in metrics.RESERVED)
    at = best_step(rows, best)
    return at is not None, at


def _kept(plan: Plan) -> str:
    """`newest: 400, 500; best loss: 200; every 100: 100, 200; 1 without a step`."""
    labels: dict[str, set[int]] = {}
    no_step = 0
    for decision in plan.decisions:
        if decision.step is None:
            no_step += decision.keep
            continue
        for reason in decision.reasons:
            labels.setdefault(reason, set()).add(decision.step)
    order = {"newest": 0, "best": 1, "every": 2}
    parts = [f"{label}: {', '.join(str(s) for s in sorted(labels[label]))}"
             for label in sorted(labels, key=lambda lab: order.get(lab.split()[0], 3))]
    if no_step:
        parts.append(f"{no_step} without a step")
    return "; ".join(parts) or "none"


def _nothing(args: Sequence[str], criteria: Criteria, busy: int, bare: int, unknown: int,
             whole: int, metric: str) -> str:
    """Why no checkpoint goes, counting the selected runs by what keeps theirs: in use,
    no checkpoints, no best step known, or all kept by the rules."""
    why = [(n, one, many) for n, one, many in (
        (busy, "is in use", "are in use"),
        (bare, "has no checkpoints", "have no checkpoints"),
        (unknown, f"logs no `{metric}` with a step", f"log no `{metric}` with a step"),
        (whole, "keeps all its checkpoints under these rules",
         "keep all their checkpoints under these rules"),
    ) if n]
    if not why:
        if criteria.given:
            return "nothing to thin: no run matches"
        return "nothing to thin: no finished runs" + (" of those names" if args else "")
    head = "nothing thinned" if busy else "nothing to thin"
    if len(why) == 1:
        n, one, many = why[0]
        return f"{head}: the selected run {one}" if n == 1 else (
            f"{head}: the {n} selected runs {many}")
    parts = [f"{n} {one if n == 1 else many}" for n, one, many in why]
    total = busy + bare + unknown + whole
    return f"{head}: of the {total} selected runs, {', '.join(parts[:-1])} and {parts[-1]}"


def thin(project: Project, args: Sequence[str], criteria: Criteria, keep: int,
         keep_best: str | None, keep_every: int | None, dry_run: bool, yes: bool) -> int:
    best = parse_best(keep_best) if keep_best is not None else None
    rule = Rule(keep, best, keep_every)
    results = project.results_dir
    patterns = project.settings.checkpoints
    chosen, left = drop_busy(gather(results, args, criteria, every_finished=True))
    plans: list[Plan] = []
    logged: set[str] = set()
    unknown_best: list[Entry] = []
    with_checkpoints = 0
    for entry in chosen:
        found = _found(results, entry, patterns)
        if not found:
            continue
        with_checkpoints += 1
        ok, best_at = _best_at(entry, best, logged)
        if not ok:
            unknown_best.append(entry)
            continue
        plan = _plan(entry, found, rule, best_at)
        if plan.doomed:
            plans.append(plan)
    if best is not None and with_checkpoints and best.metric not in logged:
        metric_list = ", ".join(sorted(logged)) or "no metrics"
        raise UsageError(f"--keep-best: no selected run logs `{best.metric}` in metrics.jsonl "
                         f"(they log {metric_list}); check the metric's name")
    metric = best.metric if best is not None else ""
    for entry in unknown_best:
        console.info(f"left alone: `{entry.id}` logs no `{metric}` with a step in "
                     "metrics.jsonl, so its best checkpoint is unknown")
    if not plans:
        unknown = len(unknown_best)
        console.info(_nothing(args, criteria, left, len(chosen) - with_checkpoints, unknown,
                              with_checkpoints - unknown, metric))
        return 1 if left else 0

    size: dict[Path, int] = {}
    with console.progress("sizing", len(plans)) as advance:
        for plan in plans:
            for checkpoint in plan.doomed:
                size[checkpoint.path] = sum(size_of(f) for f in files_of(checkpoint.path))
            advance()
    count = sum(len(p.doomed) for p in plans)
    total = format_size(sum(size.values()))
    what = f"{console.plural(count, 'checkpoint')} in {console.plural(len(plans), 'run')}"
    rows = [[p.entry.id, p.entry.status, f"{len(p.doomed)} of {len(p.decisions)}", _kept(p),
             format_size(sum(size[c.path] for c in p.doomed))] for p in plans]
    console.table(["RUN", "STATUS", "DELETE", "KEEP", "FREES"], rows,
                  footer=f"{what} {will(dry_run)} be deleted for good, freeing {total} "
                         "(checkpoints skip the trash)")
    if not go_ahead(f"Delete {what} for good, freeing {total}?", dry_run, yes):
        return 1 if left else 0

    by_id = {p.entry.id: p for p in plans}
    deleted: list[Checkpoint] = []
    thinned: set[str] = set()
    problems = 0

    def act(entry: Entry, _: str) -> bool:
        nonlocal problems
        real = run_folder(results, entry.ref)
        ok, best_at = _best_at(entry, best, set())
        if real is None or not ok:
            console.warn(f"left alone: `{entry.id}` changed since it was listed")
            problems += 1
            return False
        again = _plan(entry, _found(results, entry, patterns), rule, best_at)
        still = {c.path for c in again.doomed}
        clear = _Clear(entry.ref.path, real)
        for checkpoint in by_id[entry.id].doomed:
            if checkpoint.path not in still:
                continue
            try:
                for path in files_of(checkpoint.path):
                    if clear(path):
                        remove(path)
            except OSError as exc:
                console.warn(f"could not delete `{checkpoint.path}` ({exc.strerror}); "
                             "check its permissions")
                problems += 1
                continue
            deleted.append(checkpoint)
            thinned.add(entry.id)
        return True

    _, more = each([p.entry for p in plans], act)
    freed = format_size(sum(size[c.path] for c in deleted))
    console.info(f"deleted {console.plural(len(deleted), 'checkpoint')} in "
                 f"{console.plural(len(thinned), 'run')} for good, freeing {freed}" if deleted else
                 "deleted no checkpoints")
    return 1 if left + more + problems else 0

