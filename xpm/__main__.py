"""The `xpm` command's entry point (`python -m xpm` and the console script).

Ctrl-C may come at any moment, also while Python is still importing xpm's modules: from
the first line of `main` on it ends xpm with exit 130 and no traceback. Only this module
(and the two lines of xpm/__init__.py) run before that line, so the rest of xpm is
imported inside it.
"""

import sys


def main() -> int:
    try:
        from .cli import main as run_command_line

        return run_command_line()  # from here on its own funnel maps signals to exit codes
    except KeyboardInterrupt as exc:  # in the moments before that funnel is entered
        signum = getattr(exc, "signum", None)
        return 128 + signum if isinstance(signum, int) else 130


if __name__ == "__main__":
    sys.exit(main())
