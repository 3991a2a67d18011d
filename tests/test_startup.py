"""Starting and stopping xpm itself: Ctrl-C at any moment of start-up, the crash report of
an internal error (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_xpm

# A Python that sends itself SIGINT the moment it imports MODULE (as Ctrl-C pressed while
# xpm is still loading), then runs xpm as the console script does.
INTERRUPTED_AT_IMPORT = """
import importlib.abc, os, signal, sys
MODULE = sys.argv[1]
class Interrupt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == MODULE:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None
sys.meta_path.insert(0, Interrupt())
sys.argv = ["xpm", *sys.argv[2:]]
from xpm.__main__ import main
sys.exit(main())
"""


@pytest.mark.parametrize("module", ["xpm.cli", "click", "xpm.errors", "xpm.console",
                                    "xpm.project", "yaml", "xpm.commands.ls",
                                    "xpm.reading.listing"])
def test_ctrl_c_while_xpm_loads_exits_130_without_a_traceback(project: Path,
                                                               module: str) -> None:
    if module == "yaml":  # an xpm.yaml that simpleyaml leaves to PyYAML (quotes)
        (project / "xpm.yaml").write_text("results_dir: 'results'\n")
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED_AT_IMPORT, module, "ls"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc
    assert proc.stderr.strip() == "", proc.stderr  # click ends the ^C line


BOOM = """
import sys, click, xpm.cli
@xpm.cli.cli.command("boom")
def boom():
    raise RuntimeError("the second line\\nof a message")
sys.exit(xpm.cli.main(["boom"]))
"""


def test_an_internal_error_writes_a_crash_report(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    proc = subprocess.run([sys.executable, "-c", BOOM], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    reports = list((cache / "xpm").glob("crash-*.log"))
    assert len(reports) == 1 and str(reports[0]) in proc.stderr
    text = reports[0].read_text()
    assert "RuntimeError: the second line" in text and "Traceback" in text
    assert "python: 3." in text and "xpm 0" in text and "command: " in text


def test_the_crash_report_goes_under_home_without_xdg(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"}
    proc = subprocess.run([sys.executable, "-c", BOOM], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 3
    home = Path(os.environ["HOME"])
    assert list((home / ".cache" / "xpm").glob("crash-*.log")), proc.stderr


def test_without_a_writable_cache_the_line_says_how_to_get_the_traceback(
        tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {**os.environ, "XDG_CACHE_HOME": str(blocker)}
    proc = subprocess.run([sys.executable, "-c", BOOM], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 3 and proc.stderr.count("\n") == 1
    assert "XPM_DEBUG=1" in proc.stderr


def test_the_console_script_is_the_guarded_entry_point() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["xpm"] == "xpm.__main__:main"


def test_version_through_the_entry_point() -> None:
    assert run_xpm("--version").code == 0


# xpm's quick exit (xpm/__main__.py): what atexit holds still runs, a thread still running
# is waited for, and the exit code and output are xpm's.
AT_EXIT = """
import atexit, sys, threading, time
from pathlib import Path
folder = Path(sys.argv[1])
atexit.register(lambda: (folder / "atexit").write_text("ran"))
if sys.argv[2] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.3), (folder / "thread").write_text("ran"))
                     ).start()
sys.argv = ["xpm", *sys.argv[3:]]
from xpm.__main__ import main
main()
"""


@pytest.mark.parametrize("thread", ["thread", "none"])
def test_xpm_exits_with_atexit_run_threads_ended_and_output_flushed(
        tmp_path: Path, thread: str) -> None:
    proc = subprocess.run([sys.executable, "-c", AT_EXIT, str(tmp_path), thread, "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc
    assert "Usage: xpm" in proc.stdout and len(proc.stdout) > 1000
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").exists() == (thread == "thread")
    proc = subprocess.run([sys.executable, "-c", AT_EXIT, str(tmp_path), "none", "show", "x"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 1 and proc.stderr.startswith("xpm: error"), proc


@pytest.mark.parametrize("closed", [">&-", "2>&-", "<&-"])
def test_a_standard_stream_closed_at_start_is_dev_null(project: Path, closed: str) -> None:
    """`xpm run ... >&-` (a cron line, a daemon): no traceback, the run is recorded."""
    script = (f"{sys.executable} -m xpm run -n c -- echo hi {closed}; echo code=$?; "
              f"{sys.executable} -m xpm ls {closed}; echo code=$?")
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=project)
    assert proc.stdout.count("code=0") == 2, proc
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc
    assert (project / "results" / "c" / "1" / "output.log").read_text() == "hi\n"


# xpm on a pseudo-terminal that goes away (the terminal window closed) while its command
# runs: the command, told SIGHUP, exits 3; xpm's last message has no terminal to go to.
TERMINAL_CLOSED = """
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "xpm", "run", "-n", "hup", "--", "bash",
             "-c", "trap 'exit 3' HUP; echo started; while :; do sleep 0.1; done"])
seen, deadline = b"", time.monotonic() + 30
while b"started" not in seen and time.monotonic() < deadline:
    if select.select([fd], [], [], 0.5)[0]:
        seen += os.read(fd, 4096)
os.close(fd)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""


def test_a_closed_terminal_ends_the_run_with_the_commands_code(project: Path) -> None:
    cache = project / "cache"
    proc = subprocess.run([sys.executable, "-c", TERMINAL_CLOSED], capture_output=True,
                          text=True, timeout=60, cwd=project,
                          env={**os.environ, "XDG_CACHE_HOME": str(cache)})
    assert proc.stdout.strip() == "3", proc
    assert not cache.exists()  # no crash report: nothing went wrong in xpm
    ended = json.loads((project / "results" / "hup" / "1" / "run.json").read_text())
    assert ended["status"] == "interrupted" and ended["exit_code"] == 3


# Python 3.11 wraps a KeyboardInterrupt raised while a class is made (a dataclass's field
# names set, say: Ctrl-C while xpm imports a module) in RuntimeError.
WRAPPED = """
import sys, xpm.cli
from xpm.errors import Terminated
@xpm.cli.cli.command("boom")
def boom():
    stop = Terminated(15) if sys.argv[1] == "term" else KeyboardInterrupt()
    raise RuntimeError("Error calling __set_name__ on 'Field' instance") from stop
sys.exit(xpm.cli.main(["boom"]))
"""


@pytest.mark.parametrize(("stop", "code"), [("int", 130), ("term", 143)])
def test_an_interrupt_wrapped_by_python_is_an_interrupt_not_a_bug(
        tmp_path: Path, stop: str, code: int) -> None:
    cache = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-c", WRAPPED, stop], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "XDG_CACHE_HOME": str(cache)})
    assert proc.returncode == code and "internal error" not in proc.stderr, proc
    assert not cache.exists()


WRAPPED_AT_IMPORT = """
import importlib.abc, sys
class Wrapped(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "xpm.cli":
            raise RuntimeError("Error calling __set_name__") from KeyboardInterrupt()
        return None
sys.meta_path.insert(0, Wrapped())
sys.argv = ["xpm", "ls"]
from xpm.__main__ import main
main()
"""


def test_an_interrupt_wrapped_while_xpm_loads_exits_130(project: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", WRAPPED_AT_IMPORT], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 130 and proc.stderr == "", proc
