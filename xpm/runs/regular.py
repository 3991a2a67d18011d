"""Opening the files of a run folder only when they are regular files.

A run folder is anyone's to damage: a FIFO named run.json would block a reader for ever,
an output.log that is a folder makes `read` fail half way. Readers open through
`open_regular`, which never blocks (O_NONBLOCK) and refuses anything but a regular file
with NotRegularFile, an OSError each reader already treats as "cannot be read".
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class NotRegularFile(OSError):
    """The path is a folder, a FIFO, a socket or a device, not a regular file."""

    def __init__(self, path: str | Path, mode: int) -> None:
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        super().__init__(errno.EINVAL, kind, str(path))


def open_regular(path: str | Path) -> int:
    """A read-only descriptor of the regular file at `path` (the caller closes it)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFile(path, mode)
    return fd


def read_regular(path: str | Path) -> bytes:
    """The whole content of the regular file at `path`."""
    fd = open_regular(path)
    try:
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def irregular(path: Path) -> str | None:
    """What the path is when it exists but is not a regular file (`a FIFO`, `a folder`...),
    else None: the files a command appends to must not block it or fail half way."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a device")


def describe(exc: OSError) -> str:
    """What went wrong, for a message: `a folder`, `Permission denied`..."""
    return exc.strerror or exc.__class__.__name__
