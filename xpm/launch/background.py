"""Starting xpm in the background: a child `python -m xpm ...` in a session of its own,
and the handshake by which it says it has taken what it runs (a run, a sweep).
`start_run` is `xpm run --detach` and `xpm rerun --detach`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..runs.tree import RunRef

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


def start_run(root: Path, ref: RunRef, handover: Mapping[str, str] | None = None) -> None:
    """Start `xpm _supervise` of a prepared run (its lock free, its record `queued`) in the
    background and return once it holds the run; print the run id. XpmError, with the
    reason the run recorded, when it did not start. `handover`: the command as given, when
    the record holds it masked."""
    from .. import console
    from ..errors import XpmError
    from ..runs.record import CorruptRecord, read_record

    if not start(["_supervise", str(ref.path)], root, None, handover):
        try:
            record = read_record(ref.path)
        except CorruptRecord:
            record = None
        last = record.last_attempt if record else None
        if record is not None and last is not None and last.reason:
            raise XpmError(f"run {ref.id} did not start: {last.reason}", record.exit_code)
        raise XpmError(f"the background supervisor of {ref.id} did not start; "
                       f"see `xpm show {ref.id}` and {ref.path / 'output.log'}")
    console.info(f"run {ref.id} started in the background in {ref.path}; "
                 f"`xpm log -f {ref.id}` follows it")
    console.out(ref.id)
