"""The command itself: version, help, `python -m xpm`, usage errors."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import run_xpm
from xpm.version import __version__


def test_version() -> None:
    result = run_xpm("--version")
    assert result.code == 0 and result.out.strip() == f"xpm, version {__version__}"


def test_help_lists_commands() -> None:
    result = run_xpm("--help")
    assert result.code == 0
    for command in ("init", "run"):
        assert command in result.out
    assert "_supervise" not in result.out


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
