"""Benchmark for `xpm plot` (issue 13): 100 runs of 10,000 steps each, plotted to a PNG
and to the terminal.

    python benchmarks/plot_bench.py [--runs 5] [--count 100] [--steps 10000] [--dir DIR]

Writes a results tree of --count runs of one name through the record module, each with a
metrics.jsonl of --steps lines as `run.log(step=..., loss=..., acc=...)` writes them (and
a validation line every 1,000 steps), their config differing in `lr`. Prints wall-clock
and CPU times (median, min, max; after one warm-up) of
  xpm plot bench -m loss -o out.png      goal < 3 s
  xpm plot bench -m loss -o out.svg
  xpm plot bench -m loss                 (terminal, 120 x 40, piped) goal < 1 s
  xpm plot bench                         (terminal, the default metrics: loss, acc)
and, as the baseline of the same sitting, the time to only parse every file with the
standard library's json, line by line (the floor of any plot that reads the data).
Each plot is timed twice: warm (the curve cache, results/.cache/curves, filled by the
warm-up run) and cold (the cache removed before each run, and that removal written to the
disk, so that its write-back is not timed: every metrics.jsonl parsed).
--dir DIR builds the tree in DIR and keeps it; given again, it times the tree found there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import cpu_times, quiet_env, summary, time_command, xpm_command


def build(root: Path, count: int, steps: int) -> None:
    from xpm import times
    from xpm.runs.metrics import encode
    from xpm.runs.record import Attempt, RunRecord, write_record
    from xpm.runs.tree import allocate

    (root / "xpm.yaml").write_text("results_dir: results\n")
    rng = random.Random(1)
    for index in range(count):
        ref = allocate(root / "results", "bench")
        now = times.iso(times.now())
        lr = round(0.001 * (1 + index), 4)
        attempt = Attempt(1, "start", now, "host", 1, ("python", "train.py"), ended=now,
                          status="completed", exit_code=0)
        write_record(ref.path, RunRecord(
            name=ref.name, number=ref.number, status="completed",
            command=("python", "train.py"), cwd=str(root), created=now, seed=index,
            config={"lr": lr, "batch": 32, "seed": index}, host="host", user="u",
            platform="Linux", python="3.11", python_executable="python", xpm_version="0",
            started=now, ended=now, duration=1.0, exit_code=0, attempts=(attempt,)))
        with open(ref.path / "metrics.jsonl", "w") as f:
            start = 1.7e9 + index
            for step in range(steps):
                loss = math.exp(-lr * step / 10) + rng.random() * 0.05
                f.write(encode({"step": step, "time": round(start + step * 0.05, 3),
                                "attempt": 1, "loss": loss, "acc": 1 - loss}) + "\n")
                if step % 1000 == 999:
                    f.write(encode({"step": step, "time": round(start + step * 0.05, 3),
                                    "attempt": 1, "val_acc": 1 - loss}) + "\n")


def parse_only(root: Path) -> float:
    start = time.perf_counter()
    for path in sorted((root / "results" / "bench").glob("*/metrics.jsonl")):
        with open(path, "rb") as f:
            for line in f:
                json.loads(line)
    return time.perf_counter() - start


def forget(root: Path) -> None:
    """The curve cache removed, and the removal written out (os.sync) before the timing."""
    shutil.rmtree(root / "results" / ".cache" / "curves", ignore_errors=True)
    os.sync()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="xpm-plot-bench-"))
    if not (root / "results" / "bench").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        build(root, args.count, args.steps)
        print(f"built {args.count} runs x {args.steps} steps in {root} "
              f"({time.perf_counter() - started:.1f} s)")
    size = sum(p.stat().st_size for p in (root / "results").rglob("metrics.jsonl"))
    print(f"{size / 1e6:.0f} MB of metrics.jsonl")
    xpm = xpm_command()
    env = {**quiet_env(), "COLUMNS": "120", "LINES": "40", "NO_COLOR": "1"}
    parse = [parse_only(root) for _ in range(args.runs)]
    print(f"baseline, json.loads line by line: {summary(parse)}")
    for label, argv in (
        ("xpm plot -o out.png", [*xpm, "plot", "bench", "-m", "loss", "-o",
                                 str(root / "out.png")]),
        ("xpm plot -o out.svg", [*xpm, "plot", "bench", "-m", "loss", "-o",
                                 str(root / "out.svg")]),
        ("xpm plot (terminal)", [*xpm, "plot", "bench", "-m", "loss"]),
        ("xpm plot (terminal, default metrics: loss, acc)", [*xpm, "plot", "bench"]),
    ):
        wall = time_command(argv, args.runs, cwd=root, env=env)
        cpu = cpu_times(argv, args.runs, cwd=root, env=env)
        print(f"{label}, warm: wall {summary(wall)}; cpu median {statistics.median(cpu):.2f} s")
        cold_wall, cold_cpu = [], []
        for _ in range(args.runs):
            forget(root)
            cold_wall += time_command(argv, 1, cwd=root, env=env, warm_up=False)
            forget(root)
            cold_cpu += cpu_times(argv, 1, cwd=root, env=env)
        print(f"{label}, cold: wall {summary(cold_wall)}; "
              f"cpu median {statistics.median(cold_cpu):.2f} s")
    if not args.dir:
        print(f"(tree left in {root}; pass --dir {root} to reuse it)")
    os.sync()


if __name__ == "__main__":
    main()
