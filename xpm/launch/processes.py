"""The processes a command started, wherever they went.

Stopping the command's process group is not enough for a launcher of several processes:
torchrun starts each worker in a session of its own (so out of the group), and once
torchrun is gone its workers are re-parented to init, out of its tree too. A process
belongs to the command when it descends from it, or when it was started since the command
with the environment xpm gave the command (its run folder and attempt), which every worker
inherits and keeps wherever it is re-parented. Read from /proc (Linux); xpm itself and its
ancestors never count.

Nothing here imports lazily: the guardian, a fork of xpm, calls `stop` after xpm is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from typing import NamedTuple

# what the command's environment holds that marks every process it starts
MARKS = ("XPM_RUN_DIR", "XPM_ATTEMPT")
ROUNDS = 5  # kill, look again (a process may fork meanwhile), up to this many times
# A process in the middle of an exec shows an empty environment for a moment (its new
# program's memory is not set up yet): it is read again, for at most this long (seconds).
EXEC_WAIT = 0.02
_PF_KTHREAD = 0x00200000  # a kernel thread (its environment is empty for good)


class Stat(NamedTuple):
    ppid: int
    started: int  # clock ticks since boot
    zombie: bool
    kernel: bool  # a kernel thread


class Command(NamedTuple):
    """What identifies a command's processes: its first process (0 while not yet known),
    when it started (or a moment before), and the entries of its environment that mark the
    rest."""

    pid: int
    started: int
    marks: tuple[bytes, ...]


def _stat(pid: int | str) -> Stat | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    try:
        return Stat(int(fields[1]), int(fields[19]), fields[0] == b"Z",
                    bool(int(fields[6]) & _PF_KTHREAD))
    except (IndexError, ValueError):
        return None


def command(pid: int, env: Mapping[str, str]) -> Command:
    """Identify the command whose first process is `pid`, started with `env`."""
    stat = _stat(pid)
    return Command(pid, stat.started if stat else 0, _marks(env))


def to_start(env: Mapping[str, str]) -> Command:
    """Identify a command about to be started with `env`, before its first process is
    known: by its marks, on processes started since this one (xpm) was."""
    stat = _stat("self")
    return Command(0, stat.started if stat else 0, _marks(env))


def _marks(env: Mapping[str, str]) -> tuple[bytes, ...]:
    return tuple(f"{name}={env[name]}".encode() for name in MARKS if name in env)


def _environ(pid: int) -> set[bytes] | None:
    """The entries of the process's environment, empty while it is in the middle of an
    exec; None when it cannot be read (gone, or another user's)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return set(data.split(b"\0")) if data else set()


def _marked(pids: list[int], marks: tuple[bytes, ...]) -> set[int]:
    """Those of `pids` whose environment holds `marks`. One that reads empty (an exec in
    progress, or a program started with no environment at all) is read again until it
    shows, for at most EXEC_WAIT."""
    found: set[int] = set()
    deadline = time.monotonic() + EXEC_WAIT
    while True:
        unsure = []
        for pid in pids:
            environ = _environ(pid)
            if environ is None:
                continue
            if not environ:
                unsure.append(pid)
            elif environ.issuperset(marks):
                found.add(pid)
        if not unsure or time.monotonic() >= deadline:
            return found
        pids = unsure
        time.sleep(0.001)


def members(cmd: Command) -> set[int]:
    """The live processes of the command, its first process included while it lives."""
    stats: dict[int, Stat] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = _stat(name)
                if stat is not None:
                    stats[int(name)] = stat
    mine: set[int] = set()
    root = stats.get(cmd.pid)
    if root is not None and root.started == cmd.started:  # not a reused pid
        mine.add(cmd.pid)
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        children.setdefault(stat.ppid, []).append(pid)
    todo = list(mine)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in mine:
                mine.add(child)
                todo.append(child)
    if cmd.marks:
        mine.update(_marked([pid for pid, stat in stats.items()
                             if pid not in mine and stat.started >= cmd.started
                             and not stat.kernel], cmd.marks))
    spared = {0}
    pid = os.getpid()
    while pid > 1 and pid not in spared:  # xpm and its ancestors
        spared.add(pid)
        pid = stats[pid].ppid if pid in stats else 0
    return {pid for pid in mine if pid not in spared and not stats[pid].zombie}


def stop(cmd: Command, signum: int = signal.SIGKILL) -> bool:
    """Send `signum` to the command's process group and to every one of its processes;
    True when, at the end, none of them was left to send it to."""
    if cmd.pid > 0:  # never 0: that would be this process's own group
        with contextlib.suppress(OSError):
            os.killpg(cmd.pid, signum)
    for _ in range(ROUNDS):
        found = members(cmd)
        if not found:
            return True
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signum)
        if signum != signal.SIGKILL:
            return False
    return False
