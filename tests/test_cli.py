"""The command itself: version, help, `python -m xpm`, usage errors."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import run_xpm
from xpm.version import __version__


def test_version() -> None:
    result = run_xpm("--version")
    assert result.code == 0 and result.out.strip() == f"xpm, version {__version__}"


# Commands a user meets: a command removed or renamed by mistake fails here.
PUBLIC = ("init", "run", "resume", "ls", "show", "log", "diff", "clean", "restore", "sweep",
          "tag", "note", "wait")


def test_help_lists_every_command() -> None:
    from xpm.cli import cli

    result = run_xpm("--help")
    assert result.code == 0
    listed = {line.split()[0] for line in result.out.split("Commands:", 1)[1].splitlines()
              if line.startswith("  ") and line.split()}
    visible = {name for name, command in cli.commands.items() if not command.hidden}
    assert listed == visible, (listed, visible)
    assert set(PUBLIC) <= listed, set(PUBLIC) - listed
    assert not any(name.startswith("_") for name in listed)  # _supervise, _sweep: hidden


def test_every_command_has_its_help() -> None:
    from xpm.cli import cli

    for name, command in cli.commands.items():
        if command.hidden:
            continue
        result = run_xpm(name, "--help")
        assert result.code == 0 and result.out.startswith(f"Usage: xpm {name}"), result
        assert (command.help or "").split("\n")[0].strip()[:30] in " ".join(result.out.split())


def test_python_dash_m() -> None:
    proc = subprocess.run([sys.executable, "-m", "xpm", "--help"], capture_output=True,
                          text=True)
    assert proc.returncode == 0 and "Usage: xpm" in proc.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run_xpm("frobnicate")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "No such command" in result.err


def test_import_xpm_is_light() -> None:
    code = "import sys, xpm; print(sorted(m for m in ('click', 'yaml', 'rich', 'git', " \
           "'filelock') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_the_help_is_as_wide_as_the_terminal_up_to_100_columns() -> None:
    """$COLUMNS less 2, at most 98 and at least 50 (click's rule, without its shutil)."""
    import os

    for columns, args, widest in (("60", "--help", 58), ("200", "--help", 98),
                                  ("200", "run", 98), ("30", "--help", 50)):
        result = run_xpm(*args.split(), *(["--help"] if args == "run" else []),
                         env={**os.environ, "COLUMNS": columns})
        lengths = [len(line) for line in result.out.splitlines()]
        assert result.code == 0 and widest - 4 <= max(lengths) <= widest, (columns, args)
