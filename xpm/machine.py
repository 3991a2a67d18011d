"""Who and where this process is: the host and user names every record names, the width
of its terminal."""

from __future__ import annotations

import os
import sys


def hostname() -> str:
    return os.uname().nodename


def username() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())


def terminal_columns() -> int:
    """The terminal's width as shutil.get_terminal_size() gives it ($COLUMNS, else standard
    output's terminal, else 80), without importing shutil (with bz2 and lzma: 3 ms of
    `xpm --help`)."""
    try:
        columns = int(os.environ.get("COLUMNS", 0))
    except ValueError:
        columns = 0
    if columns <= 0 and sys.__stdout__ is not None:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80
