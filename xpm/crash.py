"""The crash report: what an internal error (exit 3) leaves for its bug report.

A file under the user's cache folder ($XDG_CACHE_HOME/xpm, else ~/.cache/xpm) holding the
traceback, the versions of xpm, Python and the platform, and the command line. Writing it
never raises: without a writable cache folder the report is simply not written.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
from pathlib import Path

from .version import __version__


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xpm"


def write_report(exc: BaseException) -> Path | None:
    """Write the report of `exc`; its path, or None when it could not be written."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = cache_dir() / f"crash-{stamp}-{os.getpid()}.log"
    lines = [
        f"xpm {__version__} crashed on {time.strftime('%Y-%m-%d %H:%M:%S %z')}",
        f"command: {' '.join(sys.argv)}",
        f"cwd: {os.getcwd() if os.path.isdir('.') else '(removed)'}",
        f"python: {sys.version.split()[0]} ({sys.executable})",
        f"platform: {platform.platform()}",
        "",
        *traceback.format_exception(exc),
    ]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(line.rstrip("\n") for line in lines) + "\n",
                        encoding="utf-8", errors="backslashreplace")
    except (OSError, ValueError):
        return None
    return path
