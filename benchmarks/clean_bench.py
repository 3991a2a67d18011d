"""Benchmarks for `xpm clean` and `xpm restore` (issue 6).

    python benchmarks/clean_bench.py [--runs 2000] [--files 100000] [--repeat 5]

Builds synthetic results trees in a temporary folder (run folders written with xpm's own
record module) and prints wall-clock figures for: listing what `xpm clean` would take
from a large tree (--dry-run), sizing a run holding many files, moving runs to the trash,
emptying the trash, restoring, and thinning checkpoints across many runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xpm import times
from xpm.runs.record import RunRecord, write_record
from xpm.runs.tree import allocate


def xpm(*args: str, cwd: Path) -> float:
    """Seconds taken by one `xpm ARGS` (which must succeed)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xpm", *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def make_runs(project: Path, count: int, checkpoints: int = 0) -> None:
    """`count` runs over 10 names, every other one failed; optional checkpoints + metrics."""
    results = project / "results"
    now = times.now_iso()
    for i in range(count):
        ref = allocate(results, f"exp{i % 10}")
        write_record(ref.path, RunRecord(
            name=ref.name, number=ref.number, status="failed" if i % 2 else "completed",
            command=("python", "train.py"), cwd=str(project), created=now, seed=i,
            config={"lr": 0.001 * i, "model": {"layers": [64, 64]}}, host="bench",
            user="u", platform="linux", python="3.11", python_executable=sys.executable,
            xpm_version="0", started=now, ended=now, duration=1.0, exit_code=i % 2,
        ))
        (ref.path / "output.log").write_text("epoch 1\n" * 20)
        if checkpoints:
            (ref.path / "checkpoints").mkdir()
            for step in range(1, checkpoints + 1):
                (ref.path / "checkpoints" / f"model_{step * 100}.pt").write_bytes(b"w" * 1024)
            with open(ref.path / "metrics.jsonl", "w") as f:
                for step in range(1, checkpoints + 1):
                    f.write(json.dumps({"step": step * 100, "loss": abs(step - 17) + 0.5})
                            + "\n")


def median(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:.0f} ms over {len(values)}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "proj"
        project.mkdir()
        (project / "xpm.yaml").write_text("results_dir: results\n")

        make_runs(project, options.runs)
        dry = [xpm("clean", "--dry-run", "--keep-last", "0", cwd=project)
               for _ in range(options.repeat)]
        print(f"clean --dry-run, {options.runs} runs selected: {median(dry)}")
        moved = xpm("clean", "-y", cwd=project)
        print(f"clean -y, {options.runs // 2} failed runs to the trash: {moved * 1000:.0f} ms")
        listed = xpm("restore", cwd=project)
        print(f"restore (list the trash), {options.runs // 2} runs: {listed * 1000:.0f} ms")
        back = xpm("restore", "exp1/2", cwd=project)
        print(f"restore exp1/2: {back * 1000:.0f} ms")
        emptied = xpm("clean", "--empty-trash", "-y", cwd=project)
        print(f"clean --empty-trash -y, {options.runs // 2 - 1} runs: {emptied * 1000:.0f} ms")
        shutil.rmtree(project / "results")

        make_runs(project, 1)
        big = project / "results" / "exp0" / "1" / "many"
        per_folder = 1000
        for i in range(options.files):
            folder = big / f"d{i // per_folder}"
            if i % per_folder == 0:
                folder.mkdir(parents=True)
            (folder / f"f{i}").write_bytes(b"x" * 100)
        sized = [xpm("clean", "--dry-run", "exp0/1", cwd=project) for _ in range(options.repeat)]
        print(f"clean --dry-run of one run holding {options.files} files: {median(sized)}")
        shutil.rmtree(project / "results")

        runs, steps = 200, 50
        make_runs(project, runs, checkpoints=steps)
        thin_dry = xpm("clean", "--checkpoints", "--keep", "2", "--keep-best", "loss",
                       "--dry-run", cwd=project)
        print(f"clean --checkpoints --dry-run, {runs} runs x {steps} checkpoints: "
              f"{thin_dry * 1000:.0f} ms")
        thinned = xpm("clean", "--checkpoints", "--keep", "2", "--keep-best", "loss", "-y",
                      cwd=project)
        left = sum(len(os.listdir(p)) for p in (project / "results").glob("*/*/checkpoints"))
        print(f"clean --checkpoints -y, {runs} runs x {steps} checkpoints: "
              f"{thinned * 1000:.0f} ms ({left} checkpoints left)")


if __name__ == "__main__":
    main()
