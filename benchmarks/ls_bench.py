"""Benchmark of `xpm ls`, `xpm show` and `xpm log` on 10,000 and 100,000 runs.

    python benchmarks/ls_bench.py [--sizes 10000,100000] [--repeat 5] [--cold-repeat 3]
                                  [--dir DIR] [--keep] [--reuse]

No PATH to set: xpm is run by this interpreter from this checkout (benchmarks/common.py;
XPM_BENCH_CHECKOUT=OTHER measures another checkout's, e.g. the commit before a change,
on the same tree with --dir DIR --keep then --reuse).
It makes a real run with `xpm run` (the default `xpm init` project, in a git repository:
2,000 metric lines, 4 checkpoints), then clones that run folder into more and more runs
(spread over ten names, renumbered, with varied config values, statuses, tags and start
times; run.json and config.yaml written per run, the other files hard-linked so that
100,000 runs take about 2 GB and a minute to make).

At each size it prints medians (wall time, CPU time of the process tree) and the peak
memory of each command, the raw scanner (os.scandir + json.load of each run.json + a
table printed: what any listing must at least do) timed in the same rounds:

    warm   --repeat rounds, the commands taken in turns: raw scanner, `xpm ls -a --json`,
           `xpm ls -a | cat`, `xpm ls` (the newest 30), `xpm show`, `xpm log`
    cold   --cold-repeat rounds, in turns: the page cache dropped (echo 3 >
           /proc/sys/vm/drop_caches, as root) before the raw scanner, and before
           `xpm ls -a --json` with results/.cache deleted too (it reads every folder and
           every metrics.jsonl, and writes the cache). Not root: only the cache deleted.

Goals (issue 9): warm `ls -a --json` at most 0.8x the raw scanner at 10,000 runs and 0.7x
at 100,000; cold at most 1.5x; peak memory at most 150 MB at 100,000, cold included;
`xpm ls` under 0.5 s at 100,000. The figures are printed, not asserted: timing belongs
here, never in the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, quiet_env, xpm_command

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
    return subprocess.run(args, cwd=cwd, check=True, text=True, capture_output=True,
                          env=quiet_env(), **kwargs)


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
        source = self.copy(k // self.LINKS)
        kept = record.get("metrics_tally")
        if isinstance(kept, dict):  # as the run's xpm keeps it: its own file's identity
            st = (source / "metrics.jsonl").stat()
            record["metrics_tally"] = dict(kept, inode=st.st_ino, mtime_ns=st.st_mtime_ns)
        (run_dir / "run.json").write_text(json.dumps(record, indent=2) + "\n")
        (run_dir / "config.yaml").write_text(json.dumps(config) + "\n")  # JSON is YAML
        for file in self.shared:
            os.link(source / file, run_dir / file)
        for folder, files in self.folders.items():
            (run_dir / folder).mkdir()
            for file in files:
                os.link(source / folder / file, run_dir / folder / file)


class Figure:
    """Each run's wall time, CPU time of its process tree, and the peak memory seen."""

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []
        self.rss = 0.0

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpus)

    def against(self, raw: Figure) -> str:
        """This command's medians as multiples of the raw scanner's."""
        return f"{self.wall / raw.wall:5.2f}x raw (CPU {self.cpu / raw.cpu:4.2f}x)"

    def __str__(self) -> str:
        return (f"{self.wall:7.3f}s {self.cpu:6.3f}c {self.rss:4.0f}MB"
                f"  ({len(self.walls)} runs)")


def run_once(command: str | list[str], cwd: Path, figure: Figure) -> None:
    """Run `command` (a shell line when a str) with output to /dev/null; add to `figure`
    its wall time, the CPU time and peak memory of its process tree (os.wait4)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, shell=isinstance(command, str),
                                stdout=subprocess.DEVNULL, stderr=err,
                                stdin=subprocess.DEVNULL, env=quiet_env())
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{command} failed: {err.read().decode()}")
    figure.walls.append(elapsed)
    figure.cpus.append(usage.ru_utime + usage.ru_stime)
    figure.rss = max(figure.rss, usage.ru_maxrss / 1024)


DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_page_cache() -> bool:
    """Empty the kernel's page cache (root only); False when it cannot."""
    try:
        os.sync()
        DROP_CACHES.write_text("3\n")
    except OSError:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dir", type=Path, help="where to build (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated runs")
    parser.add_argument("--reuse", action="store_true",
                        help="use the runs a run with --dir DIR --keep made there")
    parser.add_argument("--repeat", type=int, default=5, help="warm rounds")
    parser.add_argument("--cold-repeat", type=int, default=3, help="cold rounds")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    base = args.dir or Path(tempfile.mkdtemp(prefix="xpm-ls-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    project = base / "project"
    results = project / "results"
    exe = xpm_command()
    line = " ".join(shlex.quote(part) for part in exe)
    dropping = os.geteuid() == 0 and os.access(DROP_CACHES, os.W_OK)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, xpm from {ROOT}; "
          f"building in {base}", flush=True)
    print("figures: median wall time, median CPU time (c) of the process tree, peak memory\n"
          "cold: " + ("page cache dropped before each cold run (and results/.cache deleted "
                      "for xpm)" if dropping else
                      "NOT root: page cache kept, only results/.cache deleted for xpm"))
    try:
        made = base / "made"  # how many runs the tree holds, for --reuse
        reused = args.reuse and made.exists()
        source = results / "source" / "1" if reused else make_source_run(project, exe)
        scanner = base / "raw_scanner.py"
        scanner.write_text(RAW_SCANNER)
        raw_command = [sys.executable, str(scanner), str(results)]
        cloner = Cloner(source, results)
        if reused:
            cloner.count = int(made.read_text())
        lines = []
        for size in sizes:
            started = time.perf_counter()
            cloner.grow(size)
            made.write_text(f"{cloner.count}\n")
            print(f"{size} runs ready (+{time.perf_counter() - started:.1f}s to make)",
                  flush=True)
            one = f"sweep-3/{max(1, size // NAMES // 2)}"
            load = [os.getloadavg()[0]]
            cold, cold_raw = Figure(), Figure()
            for _ in range(args.cold_repeat):
                drop_page_cache() if dropping else None
                run_once(raw_command, project, cold_raw)
                shutil.rmtree(results / ".cache", ignore_errors=True)
                drop_page_cache() if dropping else None
                run_once([*exe, "ls", "-a", "--json"], project, cold)
                load.append(os.getloadavg()[0])
            commands: dict[str, str | list[str]] = {
                "raw scanner": raw_command,
                "ls -a --json": [*exe, "ls", "-a", "--json"],
                "ls -a | cat": f"{line} ls -a | cat > /dev/null",
                "ls (30)": [*exe, "ls"],
                "show": [*exe, "show", one],
                "log": [*exe, "log", one],
            }
            figures = {name: Figure() for name in commands}
            run_once([*exe, "ls", "-a", "--json"], project, Figure())  # the cache, warm
            for _ in range(args.repeat):
                for name, command in commands.items():
                    run_once(command, project, figures[name])
                load.append(os.getloadavg()[0])
            raw = figures["raw scanner"]
            warm = figures["ls -a --json"]
            lines.append(
                f"{size:>7} runs (1-minute load average {min(load):.1f} to {max(load):.1f})\n"
                f"  warm  raw scanner   {raw}\n"
                f"        ls -a --json  {warm}  {warm.against(raw)}\n"
                f"        ls -a | cat   {figures['ls -a | cat']}  "
                f"{figures['ls -a | cat'].against(raw)}\n"
                f"        ls (30)       {figures['ls (30)']}\n"
                f"        show          {figures['show']}\n"
                f"        log           {figures['log']}\n"
                f"  cold  raw scanner   {cold_raw}\n"
                f"        ls -a --json  {cold}  {cold.against(cold_raw)}\n"
                f"  per run: warm ls --json {warm.wall / size * 1e6:.0f} us, raw "
                f"{raw.wall / size * 1e6:.0f} us; cold {cold.wall / size * 1e6:.0f} us, raw "
                f"{cold_raw.wall / size * 1e6:.0f} us")
            print(*lines, sep="\n", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
