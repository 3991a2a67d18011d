"""Writing a file so that readers see the old content or the new, never a part of either.

Every file xpm writes in the results tree goes through this module: run records, the
high-water mark of run numbers, the listing cache, sweep manifests, metrics rewrites. The
content goes to a temporary file in the same folder, named after the host, the process
and random bytes (unique across hosts sharing one file system, where process ids are
not), which is then renamed over the target: a rename is atomic within a folder, on a
local disk and on NFS alike. On any failure (a full disk, a signal) the temporary file is
removed and the old file is left whole.

`durable=True` (run records) also flushes the file's content to the disk before the
rename, and the folder's entry after it, so that a crash of the machine a moment later
leaves the new record or the old one, never an empty file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_HOST = os.uname().nodename.replace("/", "_")  # no socket import: start-up stays fast


def temporary_name(path: Path | str) -> str:
    """A name beside `path` that no other process, on this host or another, will use."""
    directory, name = os.path.split(os.fspath(path))
    return os.path.join(directory, f".{name}.{_HOST}.{os.getpid()}.{os.urandom(4).hex()}.tmp")


@contextlib.contextmanager
def atomic_file(path: Path | str, durable: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write; on a normal exit it replaces `path` in one step, on an
    exception it is removed and `path` stays as it was."""
    tmp = temporary_name(path)
    try:
        with open(tmp, "xb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        sync_folder(os.path.dirname(os.fspath(path)) or ".")


def write_atomic(path: Path | str, data: bytes, durable: bool = False) -> None:
    """Replace the file at `path` with `data` in one step (see the module's notes)."""
    with atomic_file(path, durable) as f:
        f.write(data)


def sync_folder(folder: str) -> None:
    """Flush a folder's entries (a rename into it) to the disk, where the system allows."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the rename stands
        pass
    finally:
        os.close(fd)
