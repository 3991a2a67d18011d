"""Untracked source files: the files git would show as untracked (not ignored), listed,
bounded, stored in one archive in the run folder and restored into a rebuilt tree.

git.patch holds the changes to tracked files only; a new `helper.py` nobody has added yet
is in no commit and no patch. With `git: capture_untracked: true` (or `xpm run
--capture-untracked`) its content goes into `untracked.tar.gz`, so that `xpm rerun --exact`
puts it back. Bounded: past the limits nothing is stored and a warning says so (never a
silent cut: half a helper package is worse than none, and the record says none was kept).
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import XpmError
from ..runs.record import UNTRACKED_FILE as ARCHIVE_FILE
from .state import _finish, _git

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 1000
SHOWN = 5  # files named in a message


@dataclass(frozen=True)
class Untracked:
    """The untracked, not ignored files of a repository (relative to its top level)."""

    root: Path  # the repository's top level
    files: tuple[str, ...]
    size: int  # bytes, summed over the files

    def first(self, count: int = SHOWN) -> str:
        """The first few names, for a message: `a.py, b.py and 3 more`."""
        shown = ", ".join(self.files[:count])
        rest = len(self.files) - count
        return f"{shown} and {rest} more" if rest > 0 else shown

    def over(self, max_bytes: int, max_files: int) -> str | None:
        """Why these files are too many or too big to store (the end of a sentence)."""
        if len(self.files) > max_files:
            return f"{len(self.files)} files are more than the limit of {max_files}"
        if self.size > max_bytes:
            return (f"{_megabytes(self.size)} is more than the limit of "
                    f"{_megabytes(max_bytes)}")
        return None


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def list_untracked(root: Path, exclude: tuple[Path, ...] = ()) -> Untracked:
    """The untracked, not ignored files of the repository at `root` (its top level), with
    what lies under any of `exclude` (the results folder) left out."""
    code, out = _finish(_git(["ls-files", "--others", "--exclude-standard", "-z"], root))
    if code != 0:
        raise XpmError(f"git cannot list the untracked files of {root}; "
                       "check the repository with `git status`")
    skip = []
    for folder in exclude:
        try:
            skip.append(folder.resolve().relative_to(root.resolve()).as_posix() + "/")
        except ValueError:
            continue  # outside the repository: nothing of it is listed
    files: list[str] = []
    size = 0
    for raw in out.split(b"\0"):
        if not raw:
            continue
        name = os.fsdecode(raw)
        if any(name.startswith(prefix) for prefix in skip):
            continue
        try:
            size += os.lstat(root / name).st_size
        except OSError:
            continue  # gone since git listed it
        files.append(name)
    return Untracked(root, tuple(files), size)


def store(untracked: Untracked, run_dir: Path) -> str:
    """Write the files into run_dir/untracked.tar.gz; returns the archive's name."""
    path = run_dir / ARCHIVE_FILE
    tmp = run_dir / f".{ARCHIVE_FILE}.{os.getpid()}.tmp"
    try:
        with tarfile.open(tmp, "w:gz") as archive:
            for name in untracked.files:
                try:
                    archive.add(untracked.root / name, arcname=name, recursive=False)
                except FileNotFoundError:
                    continue  # deleted while we archived: what was there is what ran
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ARCHIVE_FILE


def names(archive: Path) -> list[str]:
    with tarfile.open(archive, "r:gz") as tar:
        return [member.name for member in tar.getmembers()]


def restore(archive: Path, target: Path) -> list[str]:
    """Unpack an archive made by `store` into `target`; returns the names restored.

    Only ordinary files, links inside the target and folders are accepted (tarfile's
    `data` filter): a doctored archive cannot write outside the target."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            tar.extractall(target, members=members, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise XpmError(f"cannot restore the untracked files from {archive} ({exc}); "
                       "the archive is damaged") from None
    return [m.name for m in members]
