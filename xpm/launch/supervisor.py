"""Spawning the command, streaming its output, forwarding signals.

The command runs in a session of its own, so that a signal reaches it once, from xpm,
and so that its whole process group can be stopped. Its stdout and stderr share one
pipe (or one pseudo-terminal, its controlling terminal, when xpm's stdout is a
terminal), so output.log holds them in the order they were written; xpm copies every
byte to its own stdout and to the log.

If xpm itself dies (even by SIGKILL, of xpm alone or of its whole process group), the
command must not run on unsupervised: a small guardian process, forked from xpm before
the command starts and in a session of its own, waits for xpm's end of a pipe to close,
then kills the command's process group and every other process of the command
(launch/processes.py), so that what the command started (`bash -c '...'`, torchrun's
workers in their own sessions) dies too. xpm tells it the command's first process once
started; should xpm die before that, the guardian still finds the command by the marks
in its environment. The same happens when the command ends, or outlives the grace
period after a signal. (No preexec function runs in the child, but for a
pseudo-terminal's controlling terminal, so that subprocess can vfork: 2-3 ms less.)

Signals are forwarded to the command's process group: a launcher forwards them on to its
workers. torchrun does so for SIGTERM, SIGINT, SIGHUP and SIGQUIT only, and dies of the
others, so the command's environment asks it (PET_SIGNALS_TO_HANDLE, torchrun's
`--signals-to-handle`) to forward SIGUSR1 and SIGUSR2 too, unless the user chose otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from .. import console
from ..errors import XpmError
from . import processes

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PASSED_THROUGH = (signal.SIGUSR1, signal.SIGUSR2)
CHUNK = 1 << 16
BURST = 64  # chunks copied before looking at signals and the clock again
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
# torchrun's own default, and the signals xpm passes through (Slurm's requeue signal)
ALL_STOPPED = b"."  # what xpm tells the guardian when no process of the command is left
TORCHRUN_SIGNALS = ("PET_SIGNALS_TO_HANDLE", "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1,SIGUSR2")


class Outcome(NamedTuple):
    returncode: int  # as subprocess reports it: negative -N when killed by signal N
    forwarded: int | None  # the first stopping signal xpm forwarded (grace began), if any
    killed_after_grace: bool = False

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None

    @property
    def exit_code(self) -> int:
        """What xpm exits with: the command's code, or 128+N for death by signal N."""
        return 128 + -self.returncode if self.returncode < 0 else self.returncode


class CommandNotFound(XpmError):
    """The command could not be started (exit 127 or 126, as a shell would)."""


def _controlling_terminal() -> None:
    """A preexec function (it runs in the child after setsid, before exec): make the
    pseudo-terminal, the child's stdout, its controlling terminal."""
    import fcntl
    import termios

    with contextlib.suppress(OSError):
        fcntl.ioctl(1, termios.TIOCSCTTY, 0)


def _start_guardian(cmd: processes.Command) -> tuple[int, int]:
    """Fork the guardian of the command, which is about to start; returns (its pid, xpm's
    end of the pipe).

    The guardian ignores signals, leaves xpm's session and process group (a SIGKILL of the
    whole group must not take it too), closes everything else it inherited, and blocks
    reading the pipe, where xpm writes the command's first process and its start
    (`_tell_guardian`). When xpm closes its end, by finishing or by dying, the guardian
    SIGKILLs the command's processes and exits; when xpm writes `ALL_STOPPED` (xpm has
    seen every process of the command gone), it exits at once, as there is nothing to
    stop.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the guardian: nothing here may return into xpm's code
        try:
            for signum in (*INTERRUPTS, *PASSED_THROUGH, signal.SIGWINCH, signal.SIGPIPE):
                signal.signal(signum, signal.SIG_IGN)
            os.setsid()  # out of xpm's group: a shell's `kill -9 %1` kills the whole group
            os.closerange(0, read_fd)
            os.closerange(read_fd + 1, os.sysconf("SC_OPEN_MAX"))
            heard = b""
            while True:
                try:
                    said = os.read(read_fd, 64)
                except InterruptedError:
                    continue
                if not said or ALL_STOPPED in said:
                    break
                heard += said
            if not said:
                told = heard.split()
                if heard.endswith(b"\n") and len(told) == 2:  # the whole line was told
                    cmd = cmd._replace(pid=int(told[0]), started=int(told[1]))
                processes.stop(cmd)
        finally:
            os._exit(0)
    os.close(read_fd)
    return pid, write_fd


def _tell_guardian(fd: int, cmd: processes.Command) -> None:
    """Tell the guardian the command's first process and its start, in one write."""
    with contextlib.suppress(OSError):
        os.write(fd, f"{cmd.pid} {cmd.started}\n".encode())


def _spawn_error(argv: list[str], exc: OSError) -> CommandNotFound:
    """A clear message (and the shell's exit code) for a command that could not start."""
    name = argv[0]
    if isinstance(exc, FileNotFoundError):
        if "/" in name and os.path.exists(name):
            return CommandNotFound(f"`{name}` exists but could not be started: the "
                                   "interpreter on its #! line was not found; fix that line", 126)
        return CommandNotFound(f"command not found: `{name}`; check the command and your PATH",
                               exit_code=127)
    if isinstance(exc, PermissionError):
        return CommandNotFound(f"command `{name}` is not executable; check its permissions "
                               f"(chmod +x {name})", 126)
    if exc.errno == errno.ENOEXEC:
        return CommandNotFound(f"`{name}` is not a program the system can start (no #! line?); "
                               f"add one, or run it through its interpreter (bash {name})", 126)
    return CommandNotFound(f"cannot start `{name}` ({exc.strerror}); check the command", 126)


def _open_pty() -> tuple[int, int]:
    import fcntl
    import termios

    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as the command wrote it (the log stays exact)
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    try:
        size = fcntl.ioctl(sys.stdout.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
    except OSError:
        pass
    return master, slave


def _copy_winsize(master: int) -> None:
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(sys.stdout.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(master, termios.TIOCSWINSZ, size)
    except OSError:
        pass


class Supervisor:
    """Run one command to its end; see the module docstring."""

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        echo: bool,
        use_pty: bool,
        grace_period: float,
        tick: Callable[[], None] | None = None,
        tick_interval: float = 30.0,
        on_started: Callable[[int], None] | None = None,
        stop_signals: tuple[int, ...] = INTERRUPTS,
        waits: dict[int, float] | None = None,
    ) -> None:
        self.argv = argv
        self.cwd = cwd
        self.env = dict([TORCHRUN_SIGNALS]) | env
        self.log_path = log_path
        self.echo = echo
        self.use_pty = use_pty
        self.grace_period = grace_period
        self.tick = tick
        self.tick_interval = tick_interval
        self.on_started = on_started
        self.stop_signals = stop_signals
        self.waits = dict(waits or {})  # a stop signal's own grace period, if not the usual
        self._pid: int | None = None
        self._forwarded: int | None = None
        self._pending: list[int] = []
        self._deadline: float | None = None
        self._killed = False
        self._master: int | None = None
        self._command: processes.Command | None = None
        self._all_stopped = False  # the command's processes were all seen gone at its end
        self.logging = True

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGWINCH:
            # the pseudo-terminal's new size; the kernel tells the command (SIGWINCH)
            if self._master is not None:
                _copy_winsize(self._master)
            return
        if signum in self.stop_signals and self._forwarded is None:
            self._forwarded = signum
            self._deadline = time.monotonic() + self.waits.get(signum, self.grace_period)
        if self._pid is None:
            self._pending.append(signum)
        else:
            self._send(signum)

    def _send(self, signum: int) -> None:
        assert self._pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._pid, signum)

    def _install_handlers(self) -> dict[int, object]:
        previous: dict[int, object] = {}
        wanted = dict.fromkeys((*INTERRUPTS, *PASSED_THROUGH, *self.stop_signals,
                                signal.SIGWINCH))
        for signum in wanted:
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    # ------------------------------------------------------------------ running
    def run(self) -> Outcome:
        wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_wakeup = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        previous = self._install_handlers()
        try:
            return self._run(wake_read)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_read)
            os.close(wake_write)

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int]:
        if self.use_pty:
            read_fd, write_fd = _open_pty()
            self._master = read_fd
        else:
            read_fd, write_fd = os.pipe()
            try:
                import fcntl

                fcntl.fcntl(read_fd, _F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass
        try:
            proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=write_fd,
                stderr=write_fd,
                start_new_session=True,
                preexec_fn=_controlling_terminal if self.use_pty else None,
            )
        except OSError as exc:
            os.close(read_fd)
            raise _spawn_error(self.argv, exc) from None
        finally:
            os.close(write_fd)
        return proc, read_fd

    def _run(self, wake_fd: int) -> Outcome:
        guardian, guardian_fd = _start_guardian(processes.to_start(self.env))
        try:
            proc, read_fd = self._spawn()
            self._pid = proc.pid
            self._command = processes.command(proc.pid, self.env)
            _tell_guardian(guardian_fd, self._command)
            return self._supervise(proc, read_fd, wake_fd)
        finally:
            if self._all_stopped:  # nothing left to stop: the guardian need not look again
                with contextlib.suppress(OSError):
                    os.write(guardian_fd, ALL_STOPPED)
            os.close(guardian_fd)  # the guardian stops what may be left, and exits
            with contextlib.suppress(ChildProcessError):
                os.waitpid(guardian, 0)

    def _supervise(self, proc: subprocess.Popen[bytes], read_fd: int, wake_fd: int
                   ) -> Outcome:
        command = self._command
        assert command is not None
        if self.on_started is not None:
            self.on_started(proc.pid)
        for signum in self._pending:
            self._send(signum)
        self._pending.clear()
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        sel = selectors.DefaultSelector()
        try:
            pidfd: int | None = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            pidfd = None
        try:
            sel.register(read_fd, selectors.EVENT_READ, "out")
            sel.register(wake_fd, selectors.EVENT_READ, "wake")
            if pidfd is not None:
                sel.register(pidfd, selectors.EVENT_READ, "exit")
            os.set_blocking(read_fd, False)
            open_output = True
            next_tick = time.monotonic() + self.tick_interval
            while True:
                timeout = next_tick - time.monotonic()
                if self._deadline is not None:
                    timeout = min(timeout, self._deadline - time.monotonic())
                if pidfd is None:
                    timeout = min(timeout, 0.1)
                exited = pidfd is None
                for key, _ in sel.select(max(timeout, 0.0)):
                    if key.data == "out" and self._pump_burst(read_fd, log_fd) is False:
                        sel.unregister(read_fd)
                        open_output = False
                    elif key.data == "wake":
                        _drain(wake_fd)
                    elif key.data == "exit":
                        exited = True
                if exited and proc.poll() is not None:
                    break
                if not open_output and pidfd is None:
                    time.sleep(0.01)
                now = time.monotonic()
                if self._deadline is not None and now >= self._deadline and not self._killed:
                    self._killed = True
                    processes.stop(command)
                if now >= next_tick:
                    next_tick = now + self.tick_interval
                    if self.tick is not None:
                        self.tick()
            self._all_stopped = processes.stop(command)  # what the command left behind
            self._finish_output(read_fd, log_fd, open_output)
        finally:
            sel.close()
            if pidfd is not None:
                os.close(pidfd)
            os.close(log_fd)
            os.close(read_fd)
        assert proc.returncode is not None
        return Outcome(proc.returncode, self._forwarded, self._killed)

    def _finish_output(self, read_fd: int, log_fd: int, open_output: bool) -> None:
        """The command has exited (and what it left behind is stopped): copy the rest of its
        output."""
        if not open_output:
            return
        deadline = time.monotonic() + 2.0
        sel = selectors.DefaultSelector()
        sel.register(read_fd, selectors.EVENT_READ)
        try:
            while time.monotonic() < deadline:
                if not sel.select(deadline - time.monotonic()):
                    break
                if self._pump_burst(read_fd, log_fd) is False:
                    break
        finally:
            sel.close()

    def _pump_burst(self, read_fd: int, log_fd: int) -> bool | None:
        """Copy what the command has written, up to BURST chunks (so that signals and the
        heartbeat are seen between bursts); False at end of output."""
        for _ in range(BURST):
            copied = self._pump(read_fd, log_fd)
            if copied is not True:
                return copied
        return True

    def _pump(self, read_fd: int, log_fd: int) -> bool | None:
        """Copy one chunk: True when copied, None when nothing waits, False at the end."""
        try:
            data = os.read(read_fd, CHUNK)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno == errno.EIO:  # a pty whose other end is closed
                return False
            raise
        if not data:
            return False
        if self.logging:
            try:
                _write_all(log_fd, data)
            except OSError as exc:  # a full disk must not end the run
                self.logging = False
                console.warn(f"cannot write {self.log_path} ({exc.strerror}); the rest of "
                             "the output goes to the terminal only")
        if self.echo:
            try:
                _write_all(1, data)
            except OSError:  # our stdout went away (closed pipe, hung-up terminal)
                self.echo = False
        return True


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
