"""Benchmark for `xpm diff` (issue 5): two runs compared in a tree of 10,000 runs.

    python benchmarks/diff_bench.py [--runs 20] [--tree 10000] [--dir DIR]

Makes a project in a real git repository, two real runs with `xpm run` (different config,
seed, commit and a dirty tree, 200 logged metric steps each), then clones their folders
into a tree of --tree runs (run.json renumbered through the record module). Prints the
wall-clock time of `xpm diff` as a user types it (median, min, max; after one warm-up),
and its CPU time (less sensitive to other work on the machine).
Target: `xpm diff A B` ≤ 150 ms median at 10,000 runs, flat in the number of runs.

The timed commands run with bytecode caching on (PYTHONDONTWRITEBYTECODE unset), as an
installed xpm-runs has its .pyc files: the warm-up run writes them for an editable install.
--dir DIR builds the tree in DIR and keeps it; given again, it times the tree found there.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

TRAIN = """\
import json, os
import yaml

config = yaml.safe_load(open(os.environ["XPM_CONFIG"]))
with open(os.path.join(os.environ["XPM_RUN_DIR"], "metrics.jsonl"), "w") as f:
    for step in range(200):
        loss = config["lr"] / (step + 1) + config["seed"] * 1e-4
        f.write(json.dumps({"step": step, "loss": loss, "acc": 1 - loss}) + "\\n")
print("trained")
"""


def xpm_command() -> list[str]:
    """The installed `xpm` script beside this interpreter, else `python -m xpm`."""
    script = Path(sys.executable).parent / "xpm"
    return [str(script)] if script.exists() else [sys.executable, "-m", "xpm"]


def quiet_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("XPM_") and k != "PYTHONDONTWRITEBYTECODE"}


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com",
                    *args], cwd=root, check=True, capture_output=True)


def make_project(root: Path) -> None:
    git(root, "init", "-q")
    (root / ".gitignore").write_text("results/\n")
    (root / "xpm.yaml").write_text("results_dir: results\nname: bench\n")
    (root / "train.py").write_text(TRAIN)
    (root / "model.py").write_text("LAYERS = [64, 64]\n" * 50)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    xpm = xpm_command()
    env = quiet_env()
    subprocess.run([*xpm, "run", "-s", "lr=0.1", "-s", "model.layers=[64,64]", "--seed", "1",
                    "--", sys.executable, "train.py"], cwd=root, env=env, check=True,
                   capture_output=True)
    (root / "model.py").write_text("LAYERS = [128, 64]\n" * 50)
    git(root, "commit", "-q", "-am", "wider")
    (root / "train.py").write_text(TRAIN + "# tuned\n")  # dirty: git.patch
    subprocess.run([*xpm, "run", "-s", "lr=0.05", "-s", "model.layers=[128,64,10]",
                    "--seed", "2", "-t", "wide", "--", sys.executable, "train.py"],
                   cwd=root, env=env, check=True, capture_output=True)


def clone_runs(results: Path, total: int) -> None:
    """Fill results/bench/ up to `total` runs by copying the two real ones, renumbered."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from xpm.runs.record import read_record, write_record
    from xpm.runs.tree import record_highest

    name_dir = results / "bench"
    originals = [read_record(name_dir / "1"), read_record(name_dir / "2")]
    for number in range(3, total + 1):
        source = name_dir / str(1 + number % 2)
        target = name_dir / str(number)
        shutil.copytree(source, target)
        write_record(target, replace(originals[number % 2], number=number))
    record_highest(name_dir, total)


def time_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall-clock seconds, and CPU seconds (user + system, git's included) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_commands(commands: list[list[str]], runs: int, cwd: Path
                  ) -> list[tuple[list[float], list[float]]]:
    """Each command `runs` times (after one warm-up), in turns: a burst of load elsewhere
    on the machine then weighs on every figure alike."""
    env = quiet_env()
    for argv in commands:
        time_once(argv, cwd, env)
    results: list[tuple[list[float], list[float]]] = [([], []) for _ in commands]
    for _ in range(runs):
        for argv, (walls, cpus) in zip(commands, results, strict=True):
            wall, cpu = time_once(argv, cwd, env)
            walls.append(wall)
            cpus.append(cpu)
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def summary(walls: list[float], cpus: list[float]) -> str:
    return (f"median {ms(statistics.median(walls))}, min {ms(min(walls))}, "
            f"max {ms(max(walls))}; cpu median {ms(statistics.median(cpus))} "
            f"({len(walls)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs per figure")
    parser.add_argument("--tree", type=int, default=10_000, help="runs in the results tree")
    parser.add_argument("--dir", type=Path, help="build the project here and keep it "
                                                  "(reused when it is already built)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        if (root / "results" / "bench" / str(args.tree)).is_dir():
            print(f"tree     {args.tree} runs found in {root / 'results'}")
        else:
            root.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            make_project(root)
            clone_runs(root / "results", args.tree)
            print(f"tree     {args.tree} runs made in {time.perf_counter() - start:.1f} s "
                  f"({root / 'results'})")
        xpm = xpm_command()
        far = str(args.tree - 1)
        figures = [
            ("python -c pass", [sys.executable, "-c", "pass"]),
            ("xpm --help", [*xpm, "--help"]),
            ("xpm diff bench/1 bench/2", [*xpm, "diff", "bench/1", "bench/2"]),
            (f"xpm diff bench/2 bench/{far}", [*xpm, "diff", "bench/2", f"bench/{far}"]),
            ("xpm diff bench/-1 bench/-2", [*xpm, "diff", "bench/-1", "bench/-2"]),
            ("xpm diff bench/1 bench/2 --json", [*xpm, "diff", "bench/1", "bench/2", "--json"]),
            ("xpm diff bench/1 bench/2 bench/3", [*xpm, "diff", "bench/1", "bench/2",
                                                  "bench/3"]),
            ("xpm diff bench/1 bench/2 --code", [*xpm, "diff", "bench/1", "bench/2",
                                                 "--code"]),
        ]
        width = max(len(label) for label, _ in figures)
        timed = time_commands([argv for _, argv in figures], args.runs, root)
        for (label, _), (walls, cpus) in zip(figures, timed, strict=True):
            print(f"{label.ljust(width)}  {summary(walls, cpus)}")
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
              f"on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
