"""Starting xpm in the background: a child `python -m xpm ...` in a session of its own,
and the handshake by which it says it has taken what it runs (a run, a sweep)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

_READY = "XPM_READY_FD"


def start(args: list[str], cwd: Path, output: Path | None,
          handover: Mapping[str, str] | None = None) -> bool:
    """Start `xpm ARGS` detached (stdout and stderr to `output`, else nowhere); True once it
    said it is ready, False when it ended without saying so."""
    read_fd, write_fd = os.pipe()
    env = dict(os.environ, **{_READY: str(write_fd)}, **(handover or {}))
    with open(os.devnull, "rb") as devnull_in, \
            open(output if output is not None else os.devnull, "ab") as out:
        subprocess.Popen([sys.executable, "-m", "xpm", *args], cwd=cwd, env=env,
                         stdin=devnull_in, stdout=out, stderr=out, start_new_session=True,
                         pass_fds=(write_fd,))
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as ready:
        return ready.read() == b"ok"


def ready_signal() -> Callable[[], None]:
    """In the background child: the function that tells the starter it is ready (a no-op
    when nobody waits)."""
    ready_fd = int(os.environ.pop(_READY, "-1"))

    def ready() -> None:
        if ready_fd >= 0:
            os.write(ready_fd, b"ok")
            os.close(ready_fd)

    return ready
