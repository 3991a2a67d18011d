"""Benchmarks for `xpm run` (issues 2 and 9): start-up, run overhead, output throughput.

    python benchmarks/run_bench.py [--runs 20] [--gib 1]

Prints the figures (medians, xpm beside its baseline in the same rounds, wall and CPU
time); the goals (issue 9): `xpm --help` ≤ 40 ms median; run overhead (`xpm run -- python
-c pass` minus `python -c pass`, in a git repository with 1,000 tracked files and one
modified) ≤ 80 ms median; output throughput at least half of coreutils tee's, the log
byte-exact, peak memory flat.

Python's own start-up is part of both: `python -c pass` is printed beside `python -S -c
pass` (no site module: no site-packages, no .pth file run), whose difference is what the
interpreter's site-packages cost every Python program on this machine before xpm runs a
line; the run overhead is printed twice, the second time with every Python (the baseline,
xpm, the command) started with -S and site-packages on PYTHONPATH, as on a machine whose
site-packages run no start-up hooks. `XPM_BENCH_CHECKOUT=OLD` measures another checkout
(a "before" in the same sitting)."""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import (
    CONSOLE_SCRIPT,
    cpu_times,
    ms,
    quiet_env,
    summary,
    time_command,
    xpm_command,
)


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def no_site_env() -> dict[str, str]:
    """quiet_env() for a Python started with -S: site-packages on PYTHONPATH, so that
    imports work while no .pth file runs."""
    import site

    env = quiet_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], *site.getsitepackages()])
    return env


def startup(runs: int) -> None:
    """`xpm --help`, `import click` and a bare Python, with and without the site module,
    taken in turns (each command once per round, so that a busy moment slows them alike)."""
    xpm = xpm_command()
    env, bare_env = quiet_env(), no_site_env()
    commands = {
        "xpm --help": ([*xpm, "--help"], env),
        "python -c 'import click'": ([sys.executable, "-c", "import click"], env),
        "python -c pass": ([sys.executable, "-c", "pass"], env),
        "xpm --help (python -S)": ([sys.executable, "-S", *xpm[1:], "--help"], bare_env),
        "python -S -c 'import click'": ([sys.executable, "-S", "-c", "import click"],
                                        bare_env),
        "python -S -c pass": ([sys.executable, "-S", "-c", "pass"], bare_env),
    }
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    print(f"startup  ({load()})")
    for _ in range(runs):
        for name, (argv, environment) in commands.items():
            wall[name] += time_command(argv, 1, env=environment, warm_up=False)
            cpu[name] += cpu_times(argv, 1, env=environment)
    for name in commands:
        print(f"         {name + ':':29s} {summary(wall[name])}; CPU median "
              f"{ms(statistics.median(cpu[name]))}")

    def median(name: str) -> float:
        return statistics.median(wall[name])

    help_cpu = statistics.median(cpu["xpm --help"]) - statistics.median(cpu["python -c pass"])
    print(f"         xpm --help minus python -c pass: "
          f"{ms(median('xpm --help') - median('python -c pass'))} wall, {ms(help_cpu)} "
          f"CPU; the site module's share of python -c pass: "
          f"{ms(median('python -c pass') - median('python -S -c pass'))}")
    above_click = median("xpm --help (python -S)") - median("python -S -c 'import click'")
    print(f"         without the site module, xpm --help above importing click: "
          f"{ms(above_click)}")


def make_repo(root: Path, files: int) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    git("init", "-q")
    for i in range(files):
        sub = root / f"pkg{i % 20}"
        sub.mkdir(exist_ok=True)
        (sub / f"mod{i}.py").write_text(f"VALUE = {i}\n" * 20)
    (root / ".gitignore").write_text("results/\n")
    (root / "xpm.yaml").write_text("results_dir: results\n")
    git("add", "-A")
    git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "files")
    (root / "pkg0" / "mod0.py").write_text("VALUE = 'modified'\n")


def overhead(runs: int) -> None:
    """`xpm run -- python -c pass` and `python -c pass` in a repository of 1,000 files with
    one modified, taken in turns; then the same with every Python started without its site
    module (`-S`, site-packages on PYTHONPATH: no .pth file runs), as on a machine whose
    site-packages hold no start-up hooks."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_repo(root, 1000)
        for no_site in (False, True):
            env = no_site_env() if no_site else quiet_env()
            python = [sys.executable, "-S"] if no_site else [sys.executable]
            bare = [*python, "-c", "pass"]
            wrapped = [*python, "-c", CONSOLE_SCRIPT, "run", "-n", "bench", "--", *bare]
            floor = [*python, "-c", "import click, filelock"]
            commands = (bare, wrapped, floor)
            for argv in commands:  # warm-up
                subprocess.run(argv, cwd=root, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=True)
            wall: tuple[list[float], ...] = ([], [], [])
            cpu: tuple[list[float], ...] = ([], [], [])
            for _ in range(runs):
                for i, argv in enumerate(commands):
                    wall[i].extend(time_command(argv, 1, cwd=root, env=env, warm_up=False))
                    cpu[i].extend(cpu_times(argv, 1, cwd=root, env=env))
            base = statistics.median(wall[0])
            wall_diff = statistics.median(wall[1]) - base
            cpu_diff = statistics.median(cpu[1]) - statistics.median(cpu[0])
            flag = " -S" if no_site else ""
            print(f"overhead{' without the site module (python -S)' if no_site else ''} "
                  f"({load()})")
            print(f"         python{flag} -c pass:         {summary(wall[0])}")
            print(f"         xpm run -- python{flag} -c pass: {summary(wall[1])}")
            print(f"         run overhead (median difference): {ms(wall_diff)} wall, "
                  f"{ms(cpu_diff)} CPU (user+system, xpm and git)")
            print(f"         of which the floor, a Python importing click and filelock "
                  f"(which xpm run must): {ms(statistics.median(wall[2]))}, "
                  f"xpm's own share {ms(wall_diff - statistics.median(wall[2]))}")


def throughput(gib: float, rounds: int = 3) -> None:
    """1 GiB through `tee` to a file and through `xpm run`, taken in turns `rounds` times
    (the disk's write-back of one run slows the next, whichever it is); the log is checked
    byte for byte against what the writer wrote."""
    size = int(gib * (1 << 30))
    writer = ("import random,sys\nblock=random.Random(0).randbytes(1<<20)\n"
              f"left={size}\nw=sys.stdout.buffer\n"
              "while left:\n n=min(left,len(block)); w.write(block[:n]); left-=n\n")
    block = random.Random(0).randbytes(1 << 20)
    expected = hashlib.sha256()
    left = size
    while left:
        n = min(left, len(block))
        expected.update(block[:n])
        left -= n
    tee_times: list[float] = []
    xpm_times: list[float] = []
    exact = True
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "xpm.yaml").write_text("results_dir: results\n")
        (root / "writer.py").write_text(writer)
        env = quiet_env()
        for _ in range(rounds):
            os.sync()
            start = time.perf_counter()
            subprocess.run(f"{sys.executable} writer.py | tee tee.out > /dev/null", shell=True,
                           cwd=root, check=True)
            tee_times.append(time.perf_counter() - start)
            (root / "tee.out").unlink()
            os.sync()
            start = time.perf_counter()
            subprocess.run([*xpm_command(), "run", "-n", "tp", "--", sys.executable,
                            "writer.py"], cwd=root, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            xpm_times.append(time.perf_counter() - start)
            for log in (root / "results" / "tp").glob("*/output.log"):
                digest = hashlib.sha256()
                with open(log, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                exact = exact and digest.hexdigest() == expected.hexdigest()
                log.unlink()
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    mib = size / (1 << 20)
    tee_s, xpm_s = statistics.median(tee_times), statistics.median(xpm_times)
    print(f"output   ({load()})")
    print(f"         tee:  {mib / tee_s:8.0f} MiB/s (median of {rounds}, {gib:g} GiB)")
    print(f"         xpm:  {mib / xpm_s:8.0f} MiB/s = {tee_s / xpm_s:.2f}x tee (rounds: "
          f"{', '.join(f'{t / x:.2f}' for t, x in zip(tee_times, xpm_times, strict=True))}); "
          f"log byte-exact: {exact}")
    print(f"         peak RSS of any child (xpm included): {peak_kib / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    startup(args.runs)
    overhead(args.runs)
    throughput(args.gib)


if __name__ == "__main__":
    main()
