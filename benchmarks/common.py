"""Helpers shared by the benchmarks: timing commands and finding the xpm to measure."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The checkout whose xpm is measured: this one, or $XPM_BENCH_CHECKOUT (another checkout,
# for a "before" figure of the same tree in the same sitting).
ROOT = Path(os.environ.get("XPM_BENCH_CHECKOUT") or Path(__file__).resolve().parent.parent)

# What the installed `xpm` script runs, as this interpreter runs it: no PATH needed, and
# the xpm measured is this checkout's (see quiet_env), whatever is installed. `-c` puts the
# current folder first on sys.path, where an installed script has its own folder: it is
# taken off, or a benchmark started in a checkout would measure that checkout's xpm.
CONSOLE_SCRIPT = ("import sys; del sys.path[0]; sys.argv[0] = 'xpm'; "
                  "from xpm.__main__ import main; sys.exit(main())")


def xpm_command() -> list[str]:
    """`xpm` as its console script starts it, with this interpreter."""
    return [sys.executable, "-c", CONSOLE_SCRIPT]


def time_command(argv: list[str], runs: int, cwd: Path | None = None,
                 env: dict[str, str] | None = None, stdout: int | None = subprocess.DEVNULL,
                 warm_up: bool = True) -> list[float]:
    """Wall-clock seconds of each of `runs` runs (after one warm-up run, unless not)."""
    env = env if env is not None else quiet_env()
    if warm_up:
        subprocess.run(argv, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.DEVNULL,
                       check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.DEVNULL,
                       check=True)
        times.append(time.perf_counter() - start)
    return times


def cpu_times(argv: list[str], runs: int, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> list[float]:
    """CPU seconds (user + system, the process and its children) of each of `runs` runs:
    steadier than wall time on a busy machine."""
    import resource

    env = env if env is not None else quiet_env()
    out = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def summary(times: list[float]) -> str:
    return (f"median {ms(statistics.median(times))}, min {ms(min(times))}, "
            f"max {ms(max(times))} over {len(times)} runs")


def quiet_env() -> dict[str, str]:
    """This environment without XPM_* variables and with bytecode caching on (an installed
    package ships its bytecode; PYTHONDONTWRITEBYTECODE would recompile xpm on every start).
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("XPM_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


# Runs xpm in a fresh interpreter and writes its peak memory in kB to $PEAK_FILE: VmHWM,
# the high-water mark of the process's own memory (ru_maxrss also counts what the forking
# parent held).
MEASURED = """\
import atexit, os, sys
def peak():
    with open("/proc/self/status") as f:
        kb = [line.split()[1] for line in f if line.startswith("VmHWM:")][0]
    with open(os.environ["PEAK_FILE"], "w") as out:
        out.write(kb)
atexit.register(peak)
from xpm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def peak_mb(args: list[str], cwd: Path | None = None) -> float:
    """Peak memory (MB) of `xpm ARGS`, run by this interpreter."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        peak = Path(folder) / "peak"
        subprocess.run([sys.executable, "-c", MEASURED, *args], cwd=cwd,
                       env={**quiet_env(), "PEAK_FILE": str(peak)}, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return int(peak.read_text()) / 1024
