"""Benchmark for `xpm sweep` (issue 12): the overhead xpm adds to each trial.

    python benchmarks/sweep_bench.py [--trials 100] [--jobs 2] [--repeat 3] [--slurm]

In a git repository of 1,000 tracked files (one modified), the same sitting:
- baseline: `python -c pass` TRIALS times, JOBS at once, by a minimal process pool;
- xpm: `xpm sweep -s i=range(TRIALS) -j JOBS -- python -c pass`.
Prints the medians of wall time, the overhead per trial ((xpm - baseline) x JOBS /
TRIALS: the time each trial holds one of the JOBS slots beyond the command) and the CPU
time per trial (user + system of all processes, steadier on a busy machine). Goal: at
most 150 ms of overhead per trial beyond the command.

With --slurm (a Slurm cluster answering, e.g. the one tests/slurm/start.sh starts):
`xpm sweep --slurm` of TRIALS trials, from the command's start to the array id printed,
beside `sbatch` of an empty array of as many tasks (the same sitting, alternated); both
are submitted held (`--hold`) and cancelled at once, so that nothing runs. Goal: under
3 s for 100 trials.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ms, quiet_env, xpm_command
from benchmarks.run_bench import make_repo


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def baseline(trials: int, jobs: int, cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of TRIALS `python -c pass`, JOBS at once."""
    env = quiet_env()
    cpu = _children_cpu()
    start = time.perf_counter()
    running: list[subprocess.Popen[bytes]] = []
    left = trials
    while left or running:
        while left and len(running) < jobs:
            running.append(subprocess.Popen([sys.executable, "-c", "pass"], cwd=cwd, env=env))
            left -= 1
        running.pop(0).wait()
    return time.perf_counter() - start, _children_cpu() - cpu


def sweep(trials: int, jobs: int, cwd: Path) -> tuple[float, float]:
    argv = [*xpm_command(), "sweep", "-n", "bench", "-s", f"i=range({trials})", "-j",
            str(jobs), "--", sys.executable, "-c", "pass"]
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=quiet_env(), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    shutil.rmtree(cwd / "results")
    return wall, _children_cpu() - cpu


def slurm_submit(trials: int, jobs: int, cwd: Path, repeat: int) -> None:
    xpm_times, sbatch_times = [], []
    script = cwd / "empty.sbatch"
    script.write_text(f"#!/bin/bash\n#SBATCH --array=0-{trials - 1}%{jobs}\n"
                      f"#SBATCH --output=/dev/null\n#SBATCH --hold\ntrue\n")
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(["sbatch", "--parsable", str(script)], cwd=cwd,
                              capture_output=True, text=True, check=True)
        sbatch_times.append(time.perf_counter() - start)
        subprocess.run(["scancel", done.stdout.strip().split(";")[0]], check=False)
        argv = [*xpm_command(), "sweep", "--slurm", "--slurm-opt", "extra=--hold", "-n",
                "bench", "-s", f"i=range({trials})", "-j", str(jobs), "--", sys.executable,
                "-c", "pass"]
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=quiet_env(), capture_output=True,
                              text=True, check=False)
        xpm_times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"xpm sweep --slurm failed: {done.stderr.strip()}")
        subprocess.run(["scancel", done.stdout.split()[-1]], check=False)
        shutil.rmtree(cwd / "results", ignore_errors=True)
    print(f"xpm sweep --slurm of {trials} trials to the array id printed: median "
          f"{statistics.median(xpm_times):.2f} s (min {min(xpm_times):.2f})   goal < 3 s")
    print(f"  sbatch of an empty {trials}-task array: median "
          f"{statistics.median(sbatch_times):.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slurm", action="store_true",
                        help="measure `xpm sweep --slurm` instead (needs a cluster)")
    args = parser.parse_args()
    if args.slurm:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            make_repo(root, 1000)
            slurm_submit(args.trials, args.jobs, root, args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_repo(root, 1000)
        sweep(4, args.jobs, root)  # warm-up: bytecode, caches
        base_wall, base_cpu, xpm_wall, xpm_cpu = [], [], [], []
        for _ in range(args.repeat):  # alternate, so that load hits both alike
            wall, cpu = baseline(args.trials, args.jobs, root)
            base_wall.append(wall)
            base_cpu.append(cpu)
            wall, cpu = sweep(args.trials, args.jobs, root)
            xpm_wall.append(wall)
            xpm_cpu.append(cpu)
    bw, xw = statistics.median(base_wall), statistics.median(xpm_wall)
    bc, xc = statistics.median(base_cpu), statistics.median(xpm_cpu)
    n, j = args.trials, args.jobs
    print(f"{n} trials of `python -c pass`, -j {j}, medians of {args.repeat} (same sitting)")
    print(f"  baseline pool:  wall {bw:.2f} s, cpu {ms(bc / n)} per trial")
    print(f"  xpm sweep:      wall {xw:.2f} s, cpu {ms(xc / n)} per trial")
    print(f"  overhead per trial (slot time, (xpm - baseline) x {j} / {n}): "
          f"{ms((xw - bw) * j / n)}   goal <= 150 ms")
    print(f"  cpu overhead per trial: {ms((xc - bc) / n)}")


if __name__ == "__main__":
    main()
