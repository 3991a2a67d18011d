"""Disk usage of files and folders, never following symbolic links.

Usage is what the files take on disk (allocated blocks, like `du`), so that the space a
clean frees is reported truly for many small files and for sparse ones.
"""

from __future__ import annotations

import os
from pathlib import Path


def size_of(path: Path) -> int:
    """Bytes used by `path` and everything under it; links count as themselves."""
    try:
        st = path.lstat()
    except OSError:
        return 0
    if not path.is_dir() or path.is_symlink():
        return _usage(st)
    total = 0
    stack = [str(path)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += _usage(entry.stat(follow_symlinks=False))
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def _usage(st: os.stat_result) -> int:
    blocks = getattr(st, "st_blocks", None)
    return blocks * 512 if blocks is not None else st.st_size


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
