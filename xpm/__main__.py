"""The `xpm` command's entry point (`python -m xpm` and the console script).

Ctrl-C may come at any moment, also while Python is still importing xpm's modules: from
the first line of `main` on it ends xpm with exit 130 and no traceback. Only this module
(and the two lines of xpm/__init__.py) run before that line, so the rest of xpm is
imported inside it. A standard stream closed when xpm starts (`xpm ls >&-`) is
/dev/null: the descriptor is taken again, so that xpm and what it starts write nowhere
rather than fail.

xpm ends its process as soon as the command is done (`_end`): Python's own exit frees
each of the 150-200 modules a command imports and every object they hold, one by one,
which took 12-14 ms of each `xpm run` here; the system frees the memory at once.
"""

import os
import sys
from typing import NoReturn


def main() -> NoReturn:
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        if getattr(sys, name) is None:  # started with it closed (`>&-`): /dev/null takes it
            setattr(sys, name, open(os.devnull, "w" if number else "r"))  # noqa: SIM115
    try:
        from .cli import main as run_command_line

        code = run_command_line()  # from here on its own funnel maps signals to exit codes
    except (KeyboardInterrupt, RuntimeError) as exc:  # before that funnel is entered
        stop = exc if isinstance(exc, KeyboardInterrupt) else exc.__cause__
        if not isinstance(stop, KeyboardInterrupt):  # Ctrl-C wrapped as a class was made
            raise
        signum = getattr(stop, "signum", None)
        code = 128 + signum if isinstance(signum, int) else 130
    _end(code)


def _end(code: int) -> NoReturn:
    """Exit with `code` as Python would, but for freeing its modules: what was registered
    with atexit runs (coverage's data, filelock's release of a lock still held) and the
    standard streams are flushed. While a thread of xpm's still runs (a progress bar's
    timer), Python's usual exit waits for it."""
    threading = sys.modules.get("threading")
    if threading is not None and any(
            thread.is_alive() and not thread.daemon for thread in threading.enumerate()
            if thread is not threading.main_thread()):
        sys.exit(code)
    try:
        import atexit
        import contextlib

        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to say
                stream.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    main()
