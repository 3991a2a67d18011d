"""`xpm tag RUN... +TAG -TAG` and `xpm note RUN TEXT`: change a run's tags and note after the
fact. Each change is a read-modify-write of run.json under the record's short lock, so a
run that is running keeps every other change its supervisor makes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .. import console
from ..errors import UsageError, XpmError
from ..project import load_project
from ..runs import sweeps
from ..runs.record import CorruptRecord, RunRecord
from ..runs.tree import RunRef, resolve
from ..runs.update import update_record


def parse_changes(args: tuple[str, ...]) -> tuple[list[str], list[str], list[str]]:
    """The runs, the tags to add (+TAG) and to remove (-TAG), in the order given. A word
    is a run unless it starts with + or - (NAME/-1 holds a `/`: a run)."""
    runs: list[str] = []
    add: list[str] = []
    remove: list[str] = []
    for arg in args:
        if arg[:1] in "+-" and "/" not in arg and len(arg) > 1:
            tag = arg[1:]
            if not tag.strip() or not tag.isprintable() or "," in tag:
                raise UsageError(f"tag `{tag}` is not valid; a tag is printable text without "
                                 "commas, e.g. +baseline")
            (add if arg[0] == "+" else remove).append(tag)
        elif arg[:1] in "+-" and len(arg) == 1:
            raise UsageError(f"`{arg}` names no tag; write +TAG to add one, -TAG to remove it")
        else:
            runs.append(arg)
    if not runs:
        raise UsageError("name the runs to tag, e.g. `xpm tag mnist/3 +best -draft`")
    if not add and not remove:
        raise UsageError("say what to change: +TAG adds a tag, -TAG removes one "
                         "(`xpm tag mnist/3 +best -draft`)")
    both = sorted(set(add) & set(remove))
    if both:
        raise UsageError(f"tag `{both[0]}` is both added and removed; give it once")
    return runs, add, remove


def tag(args: tuple[str, ...]) -> int:
    runs, add, remove = parse_changes(args)
    results = load_project().results_dir
    refs = [resolve(results, r) for r in sweeps.run_ids(results, runs)]  # all found first

    def change(record: RunRecord) -> RunRecord:
        tags = [t for t in record.tags if t not in remove]
        tags += [t for t in add if t not in tags]
        return record if tuple(tags) == record.tags else replace(record, tags=tuple(tags))

    for ref in refs:
        updated = _update(ref, change)
        shown = ", ".join(sorted(updated.tags)) if updated.tags else "no tags"
        console.info(f"{ref.id}: {shown}")
    return 0


def note(run: str, text: str) -> int:
    text_or_none = text if text.strip() else None  # an empty note removes it
    ref = resolve(load_project().results_dir, run)

    def change(record: RunRecord) -> RunRecord:
        return record if record.note == text_or_none else replace(record, note=text_or_none)

    _update(ref, change)
    console.info(f"{ref.id}: note {'set' if text_or_none else 'removed'}")
    return 0


def _update(ref: RunRef, change: Callable[[RunRecord], RunRecord]) -> RunRecord:
    try:
        return update_record(ref.path, change)
    except CorruptRecord as exc:
        raise XpmError(f"cannot change run `{ref.id}`: {exc}; restore its run.json from a "
                       "copy first") from None
    except OSError as exc:
        raise XpmError(f"cannot write the record of `{ref.id}` ({exc.strerror}); check the "
                       "permissions and the free space, then try again") from None
