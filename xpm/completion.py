"""Shell completion of run references: names, `NAME/N`, and folder paths.

click calls these while the shell asks for candidates (`_XPM_COMPLETE=bash_complete`),
so they read only folder names (plus, for a few candidates, each run's status for zsh's
and fish's descriptions), never change anything and never fail: a broken xpm.yaml or a
missing results folder gives no candidates rather than an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

    from .catalog import RawEntry
    from .store import RunRef

DESCRIBED = 40  # describe candidates with their status when there are at most this many


def _results_dir() -> Path:
    from .project import load_project

    return load_project().results_dir


def complete_names(incomplete: str) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    from .store import run_names

    try:
        names = run_names(_results_dir(), follow_links=True)
    except Exception:  # completion must never break the shell
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def complete_statuses(incomplete: str) -> list[CompletionItem]:
    """Statuses for `--status`, after any already typed (`failed,lo` → `failed,lost`)."""
    from click.shell_completion import CompletionItem

    from .catalog import CORRUPT
    from .record import STATUSES

    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [CompletionItem(prefix + s) for s in (*STATUSES, CORRUPT) if s.startswith(last)]


def complete_runs(incomplete: str) -> list[CompletionItem]:
    """Names (a name alone means its newest run), then `NAME/N` once a `/` is typed;
    paths when the text looks like one."""
    from click.shell_completion import CompletionItem

    if incomplete.startswith((".", "/", "~")) or incomplete.count("/") > 1:
        return [CompletionItem(incomplete, type="dir")]
    try:
        return _complete_runs(incomplete)
    except Exception:  # completion must never break the shell
        return []


def _complete_runs(incomplete: str) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    from .store import RunRef, run_names, run_numbers

    results = _results_dir()
    name, slash, number = incomplete.partition("/")
    if not slash:
        items = [CompletionItem(n) for n in run_names(results, follow_links=True)
                 if n.startswith(name)]
        if len(items) == 1:  # one name: offer its runs too, so that TAB goes on to NAME/N
            only = items[0].value
            refs = [RunRef(only, n, results / only / str(n))
                    for n in reversed(run_numbers(results, only))]
            return items + _described(refs)
        return items
    if name not in run_names(results, follow_links=True):
        return [CompletionItem(incomplete, type="dir")]
    refs = [RunRef(name, n, results / name / str(n))
            for n in reversed(run_numbers(results, name))
            if str(n).startswith(number)]
    return _described(refs)


def _described(refs: list[RunRef]) -> list[CompletionItem]:
    """`NAME/N` items, newest first, with status and start time when there are few."""
    from click.shell_completion import CompletionItem

    if len(refs) > DESCRIBED:
        return [CompletionItem(r.id) for r in refs]
    from .catalog import load_raw
    from .times import format_ago, parse_iso

    items = []
    for ref in refs:
        raw = load_raw(ref, live=False)
        when = raw.data.get("started") or raw.data.get("created") if raw.data else None
        help_text = _status(raw) + (f", {format_ago(parse_iso(when))}" if when else "")
        items.append(CompletionItem(ref.id, help=help_text))
    return items


def _status(raw: RawEntry) -> str:
    """The status with liveness applied, without correcting the record (completion only
    reads)."""
    from .record import LOST, RUNNING, RunRecord

    if raw.status != RUNNING or raw.data is None:
        return raw.status
    from .lock import looks_lost

    try:
        record = RunRecord.from_json(raw.data)
    except (KeyError, TypeError, ValueError):
        return raw.status
    return LOST if looks_lost(raw.ref.path, record) else raw.status
