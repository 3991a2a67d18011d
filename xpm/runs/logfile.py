"""Reading a run's output.log: where its last lines begin, and copying it out as it grows.

The log holds what the command wrote, byte for byte (with `\\r\\n` line ends and progress
bars redrawn with `\\r` when it ran on a terminal); these functions read it from the end,
so that their cost does not grow with the log.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import console
from .regular import open_regular

BLOCK = 64 * 1024


def size_of(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def start_of_last_lines(path: Path, count: int) -> int:
    """The offset where the last `count` lines begin (0 when the log has fewer)."""
    try:
        fd = open_regular(path)
    except OSError:
        return 0
    try:
        end = os.fstat(fd).st_size
        if count <= 0:
            return end
        position = end
        wanted = count + 1  # a final newline ends the last line; one more starts it
        first = True
        while position > 0:
            start = max(0, position - BLOCK)
            block = os.pread(fd, position - start, start)
            if first and not block.endswith(b"\n"):
                wanted -= 1  # an unfinished last line counts as a line
            first = False
            index = len(block)
            while True:
                index = block.rfind(b"\n", 0, index)
                if index < 0:
                    break
                wanted -= 1
                if wanted == 0:
                    return start + index + 1
            position = start
        return 0
    finally:
        os.close(fd)


def last_lines(path: Path, count: int) -> list[str]:
    """The last `count` lines as a terminal would show them (what follows a `\\r`)."""
    try:
        with os.fdopen(open_regular(path), "rb") as f:
            f.seek(start_of_last_lines(path, count))
            data = f.read()
    except OSError:
        return []
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r").rsplit("\r", 1)[-1] for line in lines[-count:]]


def copy_out(path: Path, offset: int) -> int:
    """Write the log from `offset` to its current end to stdout; return the new end.

    A log that shrank (rewritten) is copied again from its start.
    """
    try:
        fd = open_regular(path)
    except OSError:
        return offset
    try:
        if os.fstat(fd).st_size < offset:
            offset = 0
        while True:
            data = os.pread(fd, BLOCK * 16, offset)
            if not data:
                return offset
            console.out_raw(data)
            offset += len(data)
    finally:
        os.close(fd)
