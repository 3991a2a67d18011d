"""Shell completion of run references: names, `NAME/N`, and folder paths; of the runs in
the trash for `xpm restore`; and of statuses.

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

    from .runs.catalog import RawEntry
    from .runs.tree import RunRef

DESCRIBED = 40  # describe candidates with their status when there are at most this many


def _results_dir() -> Path:
    from .project import load_project

    return load_project().results_dir


def complete_names(incomplete: str) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    from .runs.tree import run_names

    try:
        names = run_names(_results_dir(), follow_links=True)
    except Exception:  # completion must never break the shell
        return []
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def complete_statuses(incomplete: str, corrupt: bool = True) -> list[CompletionItem]:
    """Statuses for `--status`, after any already typed (`failed,lo` → `failed,lost`);
    `corrupt` among them when the command takes it (`ls` does, `clean` does not)."""
    from click.shell_completion import CompletionItem

    from .runs.catalog import ABANDONED, LISTED_STATUSES
    from .runs.record import STATUSES

    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    typed = {s.strip().lower() for s in done.split(",")}
    offered = LISTED_STATUSES if corrupt else (*STATUSES, ABANDONED)
    return [CompletionItem(prefix + s) for s in offered
            if s.startswith(last.lower()) and s not in typed]


def complete_runs(incomplete: str, trash: bool = False, follow_links: bool = True
                  ) -> list[CompletionItem]:
    """Names (a name alone means its newest run), then `NAME/N` once a `/` is typed;
    paths when the text looks like one. With `trash`, the runs in results/.trash (what
    `xpm restore` and `xpm clean --empty-trash` take). Without `follow_links`, names that
    are symbolic links are left out (`xpm clean` leaves their runs alone)."""
    from click.shell_completion import CompletionItem

    if incomplete.startswith((".", "/", "~")) or incomplete.count("/") > 1:
        return [CompletionItem(incomplete, type="dir")]
    try:
        root = _results_dir()
        if trash:
            from .runs.tree import TRASH_DIR

            root, follow_links = root / TRASH_DIR, False
        return _complete_runs(incomplete, root, follow_links)
    except Exception:  # completion must never break the shell
        return []


def _complete_runs(incomplete: str, root: Path, follow_links: bool) -> list[CompletionItem]:
    from click.shell_completion import CompletionItem

    from .runs.tree import RunRef, run_names, run_numbers

    def refs(name: str, prefix: str = "") -> list[RunRef]:
        """NAME's runs, newest first, whose number starts with `prefix`."""
        return [RunRef(name, n, root / name / str(n))
                for n in reversed(run_numbers(root, name)) if str(n).startswith(prefix)]

    names = run_names(root, follow_links)
    name, slash, number = incomplete.partition("/")
    if not slash:
        items = [CompletionItem(n) for n in names if n.startswith(name)]
        if len(items) == 1:  # one name: offer its runs too, so that TAB goes on to NAME/N
            return items + _described(refs(items[0].value))
        return items
    if name not in names:
        return [CompletionItem(incomplete, type="dir")]
    return _described(refs(name, number))


def _described(refs: list[RunRef]) -> list[CompletionItem]:
    """`NAME/N` items, newest first, with status and start time when there are few."""
    from click.shell_completion import CompletionItem

    if len(refs) > DESCRIBED:
        return [CompletionItem(r.id) for r in refs]
    from .runs.catalog import load_raw
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
    from .runs.record import ACTIVE, LOST, RunRecord

    if raw.status not in ACTIVE or raw.data is None:
        return raw.status
    from .runs.lock import looks_lost

    try:
        record = RunRecord.from_json(raw.data)
    except (KeyError, TypeError, ValueError):
        return raw.status
    return LOST if looks_lost(raw.ref.path, record) else raw.status


def metric_names(names: list[str] | None = None) -> list[str]:
    """Every metric name the runs (of `names`, else all) have logged, sorted: what the
    listing's summary holds (cached by each metrics file's identity)."""
    from .reading.listing import infos

    found: set[str] = set()
    for info in infos(_results_dir(), names):
        found.update(info.metrics or {})
    return sorted(found)


def complete_metrics(incomplete: str, prefix: str = "", names: list[str] | None = None,
                     suffixes: tuple[str, ...] = ()) -> list[CompletionItem]:
    """Metric names after `prefix` (`metrics.` for --sort): `--keep-best val_l` →
    `val_loss`; with `suffixes` (`:min`, `:max`) once a name is typed whole."""
    from click.shell_completion import CompletionItem

    if not incomplete.startswith(prefix) and not prefix.startswith(incomplete):
        return []
    try:
        known = metric_names(names)
    except Exception:  # completion must never break the shell
        return []
    typed = incomplete[len(prefix):] if incomplete.startswith(prefix) else ""
    base, colon, _ = typed.partition(":")
    if colon and suffixes:
        return [CompletionItem(prefix + base + s) for s in suffixes
                if (prefix + base + s).startswith(incomplete) and base in known]
    return [CompletionItem(prefix + m) for m in known if m.startswith(typed)]


def complete_fields(incomplete: str) -> list[CompletionItem]:
    """Fields `--sort` takes: the plain ones, then `metrics.NAME` once `metrics.` (or a
    start of it) is typed."""
    from click.shell_completion import CompletionItem

    from .reading.query import COLUMNS, PLAIN_FIELDS

    plain = [*PLAIN_FIELDS, *(c.key for c in COLUMNS if c.parent), "config.", "metrics."]
    if incomplete.startswith("metrics."):
        return complete_metrics(incomplete, "metrics.")
    return [CompletionItem(f) for f in plain if f.startswith(incomplete)]
