"""The Python the command runs, and what is installed for it.

xpm may live in an environment of its own (pipx) while the command runs another Python
(a project's venv, conda). What a run records is the command's Python: the `python` it
names, found on PATH as the command will find it; else the interpreter on the #! line of
the program it starts (a script, `torchrun`, `accelerate`); else, for a command that names
no Python at all (`bash train.sh`), the `python3` on PATH that such a script would run.

When that Python is xpm's own, its version and distributions are read in-process (1 ms).
Otherwise it is asked once, in the background while the command runs (`probe`), so the
run's start pays nothing for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

from ..runs.record import ENVIRONMENT_FILE, read_environment, write_json_atomic

_PYTHONS = ("python", "pypy")
PROBE_TIMEOUT = 60.0

# What the probe prints: run by the command's Python with the command's environment, so
# that its sys.path is the command's. The same scan as environment.distributions.
PROBE = r"""
import json, os, re, sys
dist = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+?)(?:-py\d.*)?\.(?:dist|egg)-info$")
found, odd = {}, []
for entry in sys.path:
    if not entry or not os.path.isdir(entry):
        continue
    try:
        names = os.listdir(entry)
    except OSError:
        continue
    for name in names:
        if name.endswith((".dist-info", ".egg-info")):
            m = dist.match(name)
            if m:
                found.setdefault(m.group("name"), m.group("version"))
            else:
                odd.append(os.path.join(entry, name))
if odd:
    from importlib.metadata import PathDistribution
    for path in odd:
        d = PathDistribution(__import__("pathlib").Path(path))
        n = d.metadata["Name"] if d.metadata else None
        if n and d.version:
            found.setdefault(n, d.version)
print(json.dumps({
    "version": ".".join(str(p) for p in sys.version_info[:3]),
    "implementation": sys.implementation.name,
    "executable": sys.executable,
    "prefix": sys.prefix,
    "distributions": dict(sorted(found.items(), key=lambda kv: kv[0].lower())),
}))
"""


class Interpreter(NamedTuple):
    executable: str  # as the command finds it (not resolved through links: venvs are links)
    how: str  # how it was found, for people: "`python3` on PATH", "the #! line of train.sh"

    @property
    def is_xpms_own(self) -> bool:
        """Whether it is the interpreter xpm runs on, in the same environment."""
        mine = os.path.abspath(sys.executable)
        theirs = os.path.abspath(self.executable)
        return mine == theirs or (os.path.dirname(mine) == os.path.dirname(theirs)
                                  and os.path.realpath(mine) == os.path.realpath(theirs))


def _is_python(name: str) -> bool:
    return Path(name).name.startswith(_PYTHONS)


def _which(name: str, cwd: Path, path: str | None) -> str | None:
    if "/" in name:
        found = Path(name) if os.path.isabs(name) else cwd / name
        return str(found) if os.access(found, os.X_OK) and found.is_file() else None
    return shutil.which(name, path=path)


def _shebang(program: str) -> list[str] | None:
    """The #! line of `program`, split; None when it has none."""
    try:
        with open(program, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return line.split() or None


def resolve(argv: tuple[str, ...] | list[str], cwd: Path, env: dict[str, str] | None = None
            ) -> Interpreter | None:
    """The Python the command `argv` runs from `cwd` with `env` (see the module's doc)."""
    environ = os.environ if env is None else env
    path = environ.get("PATH")
    args = list(argv)
    while args and (Path(args[0]).name == "env" or "=" in args[0]):  # env VAR=1 python ...
        args.pop(0)
        while args and Path(args[0]).name != "env" and args[0].startswith("-"):
            args.pop(0)  # env's own options (-S, -u NAME is rare enough)
    if args:
        name = args[0]
        found = _which(name, cwd, path)
        if _is_python(name):
            return Interpreter(found, f"`{name}` on PATH") if found else None
        if found is not None:
            line = _shebang(found)
            if line:
                program, rest = line[0], line[1:]
                if Path(program).name == "env":
                    rest = [a for a in rest if not a.startswith("-")]
                    program = rest[0] if rest else ""
                    located = shutil.which(program, path=path) if program else None
                else:
                    located = program if os.access(program, os.X_OK) else None
                if located and _is_python(program):
                    return Interpreter(located, f"the #! line of {Path(found).name}")
    fallback = shutil.which("python3", path=path)
    if fallback:
        return Interpreter(fallback, "`python3` on PATH (the command names no Python)")
    return None


def describe(interpreter: Interpreter | None) -> dict[str, Any]:
    """environment.json's `interpreter`, as far as it is known without asking it."""
    if interpreter is None:
        return {"executable": None, "how": "no Python found for the command",
                "captured": True}
    out: dict[str, Any] = {"executable": interpreter.executable, "how": interpreter.how}
    if interpreter.is_xpms_own:
        out.update(version=".".join(str(p) for p in sys.version_info[:3]),
                   implementation=sys.implementation.name, xpms_own=True, captured=True)
    else:
        out.update(xpms_own=False, captured=False)
    return out


def probe(executable: str, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """Ask the interpreter its version and distributions (seconds at most; run it in the
    background). On failure: {"error": why}."""
    try:
        proc = subprocess.run([executable, "-c", PROBE], env=env, cwd=cwd,
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=PROBE_TIMEOUT, check=False, start_new_session=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return {"error": f"{executable} could not be asked ({exc})"}
    try:
        data = json.loads(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        return {"error": f"{executable} exited {proc.returncode}: {tail[0][:200]}"}
    return data if isinstance(data, dict) else {"error": "unexpected answer"}


class BackgroundProbe:
    """Ask the command's Python about itself in a thread while the command runs, then
    complete environment.json (and say what to put in run.json's `python`)."""

    def __init__(self, run_dir: Path, env: dict[str, str], cwd: Path) -> None:
        import threading

        # Without the run's marks: the probe is not part of the command, and the sweep of
        # the command's processes at its end (processes.MARKS) must not take it.
        from .processes import MARKS

        self.run_dir, self.cwd = run_dir, cwd
        self.env = {key: value for key, value in env.items() if key not in MARKS}
        self.version: str | None = None
        self._thread: threading.Thread | None = None
        environment = read_environment(run_dir) or {}
        said = environment.get("interpreter")
        if isinstance(said, dict) and said.get("captured") is False and said.get("executable"):
            self._executable = str(said["executable"])
            self._thread = threading.Thread(target=self._run, name="xpm-probe", daemon=True)

    @property
    def needed(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            self._thread.start()

    def _run(self) -> None:
        answer = probe(self._executable, self.env, self.cwd)
        environment = read_environment(self.run_dir) or {}
        said = dict(environment.get("interpreter") or {})
        said["captured"] = True
        if "error" in answer:
            said["error"] = answer["error"]
        else:
            for key in ("version", "implementation", "prefix"):
                said[key] = answer.get(key)
            distributions = answer.get("distributions")
            environment["distributions"] = distributions if isinstance(distributions,
                                                                       dict) else {}
            environment["python"] = answer.get("version")
            environment["implementation"] = answer.get("implementation")
            self.version = str(answer.get("version") or "") or None
        environment["interpreter"] = said
        with contextlib.suppress(OSError):  # a full disk: the run goes on without it
            write_json_atomic(self.run_dir / ENVIRONMENT_FILE, environment)

    def finish(self, timeout: float = 30.0) -> str | None:
        """Wait (at most `timeout` seconds) for the answer; the interpreter's version."""
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        return self.version
