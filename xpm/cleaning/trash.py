"""The trash: runs `xpm clean` moved aside, kept as `results_dir/.trash/NAME/N`.

A trashed run keeps its name and number, so that number stays taken (store.allocate
counts the trash) and `xpm restore` can put the folder back byte for byte. Deleting for
good first raises NAME/.highest, then renames the folder to a hidden `.trash/.purging-*`
name (so the run leaves the tree at once, whole) and only then deletes it; a deletion cut
short leaves such a folder, which `xpm clean --empty-trash` finishes.

Callers hold the run's lock (removal.claimed) around each of these moves.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ..errors import XpmError
from ..runs.tree import TRASH_DIR, RunRef, record_highest
from .removal import is_real_folder, remove, run_folder

PURGING_PREFIX = ".purging-"


def folder(results_dir: Path) -> Path:
    return results_dir / TRASH_DIR


def check_folder(results_dir: Path) -> None:
    """The trash, when it exists, must be a real folder inside results_dir."""
    trash = folder(results_dir)
    if os.path.lexists(trash) and not is_real_folder(trash):
        raise XpmError(f"`{trash}` is a symbolic link or a file, not a folder; xpm keeps its "
                       "trash inside results_dir and never follows a link out of it — "
                       "move it aside and try again")


def _ensure_folder(results_dir: Path, *parts: str) -> Path:
    """Make results_dir/PART/... as real folders; refuse to go through a link."""
    current = results_dir
    for part in parts:
        current = current / part
        if not os.path.lexists(current):
            try:
                current.mkdir()
            except FileExistsError:
                pass
            except OSError as exc:
                raise XpmError(f"cannot create `{current}` ({exc.strerror}); check the "
                               "permissions of the results folder") from None
        if not is_real_folder(current):
            raise XpmError(f"`{current}` is a symbolic link or a file, not a folder; xpm never "
                           "follows a link out of results_dir — move it aside and try again")
    return current


def _rename(source: Path, target: Path, what: str) -> None:
    if os.path.lexists(target):  # rename would silently replace an empty folder
        raise XpmError(f"cannot {what}: `{target}` already exists; move it aside first")
    try:
        os.rename(source, target)
    except OSError as exc:
        raise XpmError(f"cannot {what} ({exc.strerror}); check that `{source.parent}` and "
                       f"`{target.parent}` are on one file system and writable") from None


def _checked(results_dir: Path, ref: RunRef, in_trash: bool) -> Path:
    """The run's folder, spelled from the real results_dir, when it is exactly
    results_dir/NAME/N (or .trash/NAME/N) with no link anywhere on the way."""
    path = run_folder(results_dir, ref, in_trash)
    if path is None:
        raise XpmError(f"`{ref.path}` is not a run folder inside `{results_dir}` (a symbolic "
                       "link, or outside it); xpm leaves it alone")
    return path


def move_in(results_dir: Path, ref: RunRef) -> Path:
    """results_dir/NAME/N → results_dir/.trash/NAME/N."""
    source = _checked(results_dir, ref, in_trash=False)
    target = _ensure_folder(results_dir, TRASH_DIR, ref.name) / str(ref.number)
    _rename(source, target, f"move `{ref.id}` to the trash")
    return target


def restore(results_dir: Path, ref: RunRef) -> Path:
    """results_dir/.trash/NAME/N → results_dir/NAME/N (refused when that exists)."""
    source = _checked(results_dir, ref, in_trash=True)
    target = _ensure_folder(results_dir, ref.name) / str(ref.number)
    _rename(source, target, f"restore `{ref.id}`")
    _drop_if_empty(source.parent)
    return target


def delete(results_dir: Path, ref: RunRef, in_trash: bool) -> None:
    """Delete the run folder `ref` (in results_dir or in the trash) for good, its number
    kept taken."""
    source = _checked(results_dir, ref, in_trash)
    name_dir = _ensure_folder(results_dir, ref.name)
    try:
        record_highest(name_dir, ref.number)
    except OSError as exc:
        raise XpmError(f"cannot record that `{ref.id}` stays taken in `{name_dir}` "
                       f"({exc.strerror}); nothing was deleted") from None
    doomed = _ensure_folder(results_dir, TRASH_DIR) / (
        f"{PURGING_PREFIX}{ref.name}-{ref.number}-{os.getpid()}")
    _rename(source, doomed, f"delete `{ref.id}`")
    if in_trash:
        _drop_if_empty(source.parent)
    finish(doomed)


def finish(doomed: Path) -> None:
    try:
        remove(doomed)
    except OSError as exc:
        raise XpmError(f"could not delete all of `{doomed}` ({exc.strerror}); fix its "
                       "permissions, then `xpm clean --empty-trash` finishes it") from None


def unfinished(results_dir: Path) -> list[Path]:
    """Folders whose deletion was cut short."""
    trash = folder(results_dir)
    try:
        with os.scandir(trash) as entries:
            return sorted(trash / e.name for e in entries if e.name.startswith(PURGING_PREFIX))
    except (FileNotFoundError, NotADirectoryError):
        return []


def _drop_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()
