"""Benchmark of `xpm ls`, `xpm show` and `xpm log` on 1,000 to 100,000 runs.

    python benchmarks/ls_bench.py [--sizes 1000,10000,100000] [--dir DIR] [--keep]

It makes a real run with `xpm run` (the default `xpm init` project, in a git repository:
2,000 metric lines, 4 checkpoints), then clones that run folder into more and more runs
(spread over ten names, renumbered, with varied config values, statuses, tags and start
times; run.json and config.yaml written per run, the other files hard-linked so that
100,000 runs take about 2 GB and a minute to make). At each size it times, best of
`--repeat`, with the peak memory of the process tree:

    xpm ls -a --json > /dev/null        xpm ls -a | cat > /dev/null
    raw scanner (os.scandir + json.load of each run.json + print a table)
    xpm ls (newest 30)    xpm show NAME/N    xpm log NAME/N

Targets (issue 4): ls at most 1.5x the raw scanner at 10,000 runs; at most 5 s and
150 MB at 100,000; show and log flat in the number of runs (at most 150 ms at 10,000).
The first listing after the cache (results/.cache) is removed is timed apart: it reads
every folder and writes the cache. The figures are printed, not asserted: timing belongs
here, never in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import xpm_command

NAMES = 10
STATUSES = ["completed"] * 16 + ["failed"] * 2 + ["interrupted", "killed"]
TAGS: list[list[str]] = [[], [], ["baseline"], ["sweep"], ["sweep", "long"]]
LRS = [0.1, 0.05, 0.01, 0.005, 0.001, 0.0005]
BATCHES = [16, 32, 64, 128]
NOISES = [0.05, 0.1, 0.2]

RAW_SCANNER = r'''
import json, os, sys
root = sys.argv[1]
rows = []
for name in sorted(os.scandir(root), key=lambda e: e.name):
    if name.name.startswith(".") or not name.is_dir():
        continue
    for run in os.scandir(name.path):
        if not run.name.isdigit():
            continue
        try:
            with open(os.path.join(run.path, "run.json")) as f:
                r = json.load(f)
        except (OSError, ValueError):
            continue
        rows.append((f"{r['name']}/{r['number']}", r["status"], r.get("started") or "",
                     "" if r.get("duration") is None else f"{r['duration']:.1f}s"))
widths = [max(len(row[i]) for row in rows) for i in range(4)] if rows else [0] * 4
out = sys.stdout
for row in rows:
    out.write("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() + "\n")
'''


def sh(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, check=True, text=True, capture_output=True, **kwargs)


def make_source_run(project: Path, xpm: list[str]) -> Path:
    """A real run of the default template, in a git repository."""
    sh([*xpm, "init", str(project)], cwd=project.parent)
    sh(["git", "init", "-q"], cwd=project)
    sh(["git", "add", "-A"], cwd=project)
    sh(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-q",
        "-m", "init"], cwd=project)
    sh([*xpm, "run", "-n", "source", "-t", "bench",
        "-s", "data.samples=64", "-s", "train.steps=6000", "-s", "train.log_every=3",
        "-s", "train.checkpoint_every=1500", "-s", "train.step_delay=0",
        # this interpreter, not whichever python3 comes first on PATH (it imports xpm)
        "--", sys.executable, "train.py"], cwd=project)
    return project / "results" / "source" / "1"


class Cloner:
    """Clones the source run folder into results/sweep-K/N."""

    LINKS = 60_000  # ext4 allows 65,000 hard links to one file: use a new copy past that

    def __init__(self, source: Path, results: Path) -> None:
        self.source = source
        self.copies: list[Path] = [source]
        self.results = results
        self.record = json.loads((source / "run.json").read_text())
        self.shared = [p.name for p in source.iterdir()
                       if p.is_file() and p.name not in ("run.json", "config.yaml", ".lock")]
        self.folders = {d.name: [f.name for f in d.iterdir()]
                        for d in source.iterdir() if d.is_dir()}
        self.count = 0
        self.start = datetime.now().astimezone() - timedelta(days=400)

    def grow(self, total: int) -> None:
        while self.count < total:
            self.count += 1
            self.clone(self.count)
        for k in range(min(total, NAMES)):
            name = f"sweep-{k}"
            highest = sum(1 for j in range(1, total + 1) if j % NAMES == k)
            (self.results / name / ".highest").write_text(f"{highest}\n")

    def copy(self, index: int) -> Path:
        """The index-th copy of the source folder's files (outside the results tree)."""
        while len(self.copies) <= index:
            copy = self.results.parent / f"clone-source-{len(self.copies)}"
            shutil.copytree(self.source, copy, dirs_exist_ok=True)
            self.copies.append(copy)
        return self.copies[index]

    def clone(self, k: int) -> None:
        name = f"sweep-{k % NAMES}"
        number = (k - 1) // NAMES + 1
        run_dir = self.results / name / str(number)
        run_dir.mkdir(parents=True)
        record = dict(self.record)
        config = json.loads(json.dumps(record["config"]))
        config["model"]["lr"] = LRS[k % len(LRS)]
        config["model"]["batch_size"] = BATCHES[(k // 7) % len(BATCHES)]
        config["data"]["noise"] = NOISES[(k // 3) % len(NOISES)]
        config["seed"] = k
        started = self.start + timedelta(minutes=5 * k)
        duration = 60.0 + (k * 37) % 3600
        status = STATUSES[k % len(STATUSES)]
        record.update(
            id=f"{name}/{number}", name=name, number=number, status=status, seed=k,
            config=config, tags=TAGS[k % len(TAGS)],
            created=started.isoformat(timespec="milliseconds"),
            started=started.isoformat(timespec="milliseconds"),
            ended=(started + timedelta(seconds=duration)).isoformat(timespec="milliseconds"),
            duration=duration, exit_code=0 if status == "completed" else 1,
            heartbeat=None,
        )
        record["attempts"] = [dict(a, started=record["started"], ended=record["ended"],
                                   status=status) for a in record["attempts"]]
        (run_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")
        (run_dir / "config.yaml").write_text(json.dumps(config) + "\n")  # JSON is YAML
        source = self.copy(k // self.LINKS)
        for file in self.shared:
            os.link(source / file, run_dir / file)
        for folder, files in self.folders.items():
            (run_dir / folder).mkdir()
            for file in files:
                os.link(source / folder / file, run_dir / folder / file)


class Figure:
    """The best wall and CPU time and the peak memory seen over a command's runs."""

    def __init__(self) -> None:
        self.wall = self.cpu = float("inf")
        self.rss = 0.0

    def __str__(self) -> str:
        return f"{self.wall:6.2f}s {self.cpu:5.2f}c {self.rss:4.0f}MB"

    def ms(self) -> str:
        return f"{self.wall * 1000:5.0f}ms"


def run_once(command: str | list[str], cwd: Path, figure: Figure) -> None:
    """Run `command` (a shell line when a str) with output to /dev/null; update `figure`
    with its wall time, the CPU time and peak memory of its process tree (os.wait4)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, shell=isinstance(command, str),
                                stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{command} failed: {err.read().decode()}")
    figure.wall = min(figure.wall, elapsed)
    figure.cpu = min(figure.cpu, usage.ru_utime + usage.ru_stime)
    figure.rss = max(figure.rss, usage.ru_maxrss / 1024)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--dir", type=Path, help="where to build (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated runs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    base = args.dir or Path(tempfile.mkdtemp(prefix="xpm-ls-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    project = base / "project"
    results = project / "results"
    xpm = [sys.executable, "-m", "xpm"]
    exe = xpm_command()  # the installed script beside this python, else python -m xpm
    line = " ".join(shlex.quote(part) for part in exe)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus; building in {base}",
          flush=True)
    print("figures: best wall time, best CPU time (c) of the process tree, peak memory;\n"
          "`ls cold` is the first listing after the cache was removed (it rebuilds it);\n"
          "the others are the best of --repeat rounds, the commands taken in turns.")
    try:
        source = make_source_run(project, xpm)
        scanner = base / "raw_scanner.py"
        scanner.write_text(RAW_SCANNER)
        cloner = Cloner(source, results)
        commands: dict[str, str | list[str]] = {
            "ls -a --json": [*exe, "ls", "-a", "--json"],
            "ls -a | cat": f"{line} ls -a | cat > /dev/null",
            "raw scanner": [sys.executable, str(scanner), str(results)],
        }
        lines = []
        for size in sizes:
            started = time.perf_counter()
            cloner.grow(size)
            print(f"{size} runs ready (+{time.perf_counter() - started:.1f}s to make)",
                  flush=True)
            one = f"sweep-3/{max(1, size // NAMES // 2)}"
            shutil.rmtree(results / ".cache", ignore_errors=True)
            cold = Figure()
            run_once([*exe, "ls", "-a", "--json"], project, cold)
            figures = {name: Figure() for name in [*commands, "ls", "show", "log"]}
            everything = {**commands, "ls": [*exe, "ls"], "show": [*exe, "show", one],
                          "log": [*exe, "log", one]}
            for _ in range(args.repeat):
                for name, command in everything.items():
                    run_once(command, project, figures[name])
            raw = figures["raw scanner"]
            lines.append(
                f"{size:>7} runs (load {os.getloadavg()[0]:.1f})\n"
                f"  ls -a --json  {figures['ls -a --json']}  "
                f"{figures['ls -a --json'].wall / raw.wall:5.2f}x raw\n"
                f"  ls -a | cat   {figures['ls -a | cat']}  "
                f"{figures['ls -a | cat'].wall / raw.wall:5.2f}x raw\n"
                f"  raw scanner   {raw}\n"
                f"  ls cold       {cold}  {cold.wall / raw.wall:5.2f}x raw\n"
                f"  ls (30)       {figures['ls']}\n"
                f"  show {figures['show'].ms()}   log {figures['log'].ms()}\n"
                f"  per run: ls --json {figures['ls -a --json'].wall / size * 1e6:.0f} us, "
                f"raw {raw.wall / size * 1e6:.0f} us, cold {cold.wall / size * 1e6:.0f} us")
            print(*lines, sep="\n", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
