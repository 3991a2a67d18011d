"""The one error type xpm raises on purpose, and the exit codes it maps to."""

from __future__ import annotations

# Exit codes (documented in the README):
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


class UsageError(XpmError):
    """The command line itself is wrong."""

    exit_code = EXIT_USAGE


class RunBusyError(XpmError):
    """Another process holds the run's lock."""
