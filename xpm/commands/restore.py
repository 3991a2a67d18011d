"""`xpm restore [RUN...]`: put trashed runs back where they were; with no RUN, list the
trash."""

from __future__ import annotations

import os
from pathlib import Path

from .. import console
from ..cleaning import trash
from ..cleaning.batch import run_table, sizes
from ..cleaning.removal import claimed, is_real_folder
from ..cleaning.selection import target
from ..errors import XpmError
from ..project import load_project
from ..runs.catalog import entries
from ..runs.disk import format_size
from ..runs.tree import RunRef


def restore(*, runs: tuple[str, ...]) -> int:
    results = load_project().results_dir
    trash.check_folder(results)
    if not runs:
        return _list(results)
    refs: dict[str, RunRef] = {}
    for arg in runs:
        found = target(results, arg, in_trash=True, names=False)
        assert isinstance(found, RunRef)
        refs.setdefault(found.id, found)
    for ref in refs.values():  # refuse before moving anything
        _check_free(results, ref)
    failed = 0
    for ref in refs.values():
        try:
            with claimed(ref.path, ref.id):
                back = trash.restore(results, ref)
        except XpmError as exc:
            console.error(str(exc))
            failed += 1
            continue
        console.info(f"restored {ref.id} to {console.path(results / ref.name / back.name)}")
    return 1 if failed else 0


def _check_free(results: Path, ref: RunRef) -> None:
    name_dir = results / ref.name
    if os.path.lexists(name_dir) and not is_real_folder(name_dir):
        raise XpmError(f"cannot restore `{ref.id}`: `{console.path(name_dir)}` is a symbolic "
                       "link or a file, not a folder of runs; move it aside first (nothing was "
                       "restored)")
    place = name_dir / str(ref.number)
    if os.path.lexists(place):
        raise XpmError(f"cannot restore `{ref.id}`: `{console.path(place)}` already exists; "
                       "move it aside first (nothing was restored)")


def _list(results: Path) -> int:
    bin_ = trash.folder(results)
    trashed = list(entries(bin_, live=False))
    if not trashed:
        console.info(f"the trash ({console.path(bin_)}) is empty")
        return 0
    sized = sizes([e.ref.path for e in trashed])
    run_table(trashed, sized,
              footer=(f"{console.plural(len(trashed), 'run')}, {format_size(sum(sized))} in "
                      f"{console.path(bin_)}; `xpm restore {trashed[-1].id}` puts one back, "
                      "`xpm clean --empty-trash` deletes them for good"))
    return 0

