"""Benchmark for reading a huge metrics.jsonl (issue 13): `xpm show`, `xpm diff` and
`xpm metrics` of a run with 1.5 million lines (about 108 MB).

    python benchmarks/metrics_bench.py [--runs 5] [--lines 1500000] [--dir DIR]

Prints wall-clock time (median, min, max; after one warm-up), CPU time and peak memory
(max RSS) of each command, and as the baseline of the same sitting what the reader of
earlier versions did: `json.loads` of every line into a list. Goal: show and diff under
2 s and 200 MB. `xpm plot` is timed with its curve cache removed before each run (cold:
the file parsed) and kept (warm); `xpm ls -a --json` with the listing cache removed
before each run (cold: the tally of the whole file rebuilt).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import cpu_times, peak_mb, summary, time_command, xpm_command


def build(root: Path, lines: int) -> Path:
    from xpm import times
    from xpm.runs.record import Attempt, RunRecord, write_record
    from xpm.runs.tree import allocate

    (root / "xpm.yaml").write_text("results_dir: results\n")
    ref = allocate(root / "results", "huge")
    now = times.iso(times.now())
    write_record(ref.path, RunRecord(
        name="huge", number=1, status="completed", command=("python", "train.py"),
        cwd=str(root), created=now, seed=1, config={"lr": 0.1}, host="h", user="u",
        platform="Linux", python="3.11", python_executable="python", xpm_version="0",
        started=now, ended=now, duration=1.0, exit_code=0,
        attempts=(Attempt(1, "start", now, "h", 1, ("python",), ended=now,
                          status="completed", exit_code=0),)))
    rng = random.Random(1)
    with open(ref.path / "metrics.jsonl", "w") as f:
        for step in range(lines):
            f.write(f'{{"step": {step}, "time": {1.7e9 + step * 0.01:.3f}, "attempt": 1, '
                    f'"loss": {rng.random():.6f}}}\n')
    return ref.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lines", type=int, default=1_500_000)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="xpm-metrics-bench-"))
    run_dir = root / "results" / "huge" / "1"
    if not run_dir.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        build(root, args.lines)
    path = run_dir / "metrics.jsonl"
    print(f"{path}: {path.stat().st_size / 1e6:.0f} MB")
    baseline = []
    for _ in range(min(args.runs, 2)):  # it holds every row: slow, and costs memory
        start = time.perf_counter()
        with open(path, "rb") as f:
            rows = [json.loads(line) for line in f]
        baseline.append(time.perf_counter() - start)
        del rows
    print(f"baseline, json.loads of every line into a list: {summary(baseline)}")
    xpm = xpm_command()
    caches = root / "results" / ".cache"
    for label, argv, cache in (
            ("xpm show", [*xpm, "show", "huge"], None),
            ("xpm diff", [*xpm, "diff", "huge/1", "huge/1", "--only", "metrics"], None),
            ("xpm metrics --csv", [*xpm, "metrics", "huge"], None),
            ("xpm metrics --json", [*xpm, "metrics", "huge", "--json"], None),
            ("xpm plot (terminal), warm", [*xpm, "plot", "huge"], None),
            ("xpm plot (terminal), cold", [*xpm, "plot", "huge"], caches / "curves"),
            ("xpm ls -a --json, cold", [*xpm, "ls", "-a", "--json"], caches / "ls")):
        if cache is None:
            wall = time_command(argv, args.runs, cwd=root)
            cpu = cpu_times(argv, args.runs, cwd=root)
        else:
            wall, cpu = [], []
            for _ in range(args.runs):
                shutil.rmtree(cache, ignore_errors=True)
                wall += time_command(argv, 1, cwd=root, warm_up=False)
                shutil.rmtree(cache, ignore_errors=True)
                cpu += cpu_times(argv, 1, cwd=root)
            shutil.rmtree(cache, ignore_errors=True)
        print(f"{label}: wall {summary(wall)}; cpu median {statistics.median(cpu):.2f} s; "
              f"peak {peak_mb(argv[len(xpm):], root):.0f} MB")
    if not args.dir:
        print(f"(tree left in {root}; pass --dir {root} to reuse it)")


if __name__ == "__main__":
    main()
