"""The one error type xpm raises on purpose, and the exit codes it maps to."""

from __future__ import annotations

# Exit codes (documented in docs/exit-codes.md):
#   0 success, 1 a clear xpm error, 2 usage error, 3 an internal error (a bug),
#   130 interrupted; `xpm run` and `xpm resume` pass the command's own code through.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class XpmError(Exception):
    """A failure the user can act on: one sentence naming the thing and the next step."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(XpmError):
    """The command line itself is wrong."""

    exit_code = EXIT_USAGE


class RunBusyError(XpmError):
    """Another process holds the run's lock."""


class Terminated(KeyboardInterrupt):
    """xpm received SIGTERM or SIGHUP while no command was running: it stops the way
    Ctrl-C stops it, so that cleanup runs and the record says what happened."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stop_on_termination() -> None:
    """From now on, SIGTERM and SIGHUP raise Terminated (as SIGINT raises
    KeyboardInterrupt) instead of killing xpm on the spot."""
    import signal

    def handler(signum: int, _frame: object) -> None:
        raise Terminated(signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


def wrapped_interrupt(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or stopping signal) behind `exc`, when Python wrapped one in another
    error: Python 3.11 turns one that lands while a class is being made into `RuntimeError:
    Error calling __set_name__ ...`."""
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, KeyboardInterrupt):
        cause = cause.__cause__
    return cause
