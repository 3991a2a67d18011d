"""Benchmark of xpm on Slurm (run by hand, on a machine with a Slurm cluster up, e.g. the
one tests/slurm/start.sh starts):

    python benchmarks/slurm_bench.py [--submits 10] [--requeues 3] [--runs 1000] [--dir DIR]

1. Submission: `xpm run --slurm` until it prints the job id, against `sbatch --parsable`
   of a one-line script alone, alternated, median of `--submits` each (the jobs are held
   and cancelled: nothing runs). Target (issue 11): at most 1.5x sbatch. For context,
   `xpm run --local -- true`, which prepares the run folder the same way, and
   `python -c pass`, the floor of any Python command (CPU times too: steadier when the
   machine is busy).
2. Requeue: from `scancel --signal=USR2 --batch JOB` to the requeued job's new attempt
   recorded `running`, median of `--requeues` (dominated by Slurm: cred_expire + the
   scheduler's interval).
3. Listing: `xpm ls -a` of `--runs` Slurm runs against as many local runs (same folders but
   for the `slurm` section and attempts' job ids). Target: the same speed (ls never asks
   Slurm).

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import ms, quiet_env, summary, time_command, xpm_command


def project(root: Path, slurm_settings: str) -> Path:
    root.mkdir(parents=True)
    (root / "xpm.yaml").write_text(f"results_dir: results\n{slurm_settings}")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".gitignore").write_text("results/\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "b"],
                   cwd=root, check=True)
    return root


def bench_submit(base: Path, count: int) -> None:
    root = project(base / "submit", "slurm:\n  time: '00:05:00'\n")
    script = root / "plain.sbatch"
    script.write_text(f"#!/bin/bash\n#SBATCH --output={root}/plain-%j.out\n"
                      "#SBATCH --hold\ntrue\n")
    env = quiet_env()
    xpm = [*xpm_command(), "run", "--slurm", "--slurm-opt", "extra=--hold", "-n", "sub", "--",
           "true"]
    local = [*xpm_command(), "run", "--local", "-n", "here", "--", "true"]
    plain = ["sbatch", "--parsable", str(script)]
    floor = [sys.executable, "-c", "pass"]
    jobs: list[str] = []
    times: dict[str, list[float]] = {"sbatch": [], "xpm": [], "local": [], "python": []}
    cpu: dict[str, list[float]] = {label: [] for label in times}
    for _ in range(count):
        for label, argv in (("sbatch", plain), ("xpm", xpm), ("local", local),
                            ("python", floor)):
            used = _children_cpu()
            start = time.perf_counter()
            out = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True,
                                 check=True).stdout
            times[label].append(time.perf_counter() - start)
            cpu[label].append(_children_cpu() - used)
            if label in ("sbatch", "xpm"):
                jobs.append(out.split()[-1])
    subprocess.run(["scancel", *jobs], check=False)
    ratio = statistics.median(times["xpm"]) / statistics.median(times["sbatch"])

    def cpu_of(label: str) -> str:
        return f"cpu median {ms(statistics.median(cpu[label]))}"

    print(f"submit  sbatch alone:      {summary(times['sbatch'])}; {cpu_of('sbatch')}")
    print(f"submit  xpm run --slurm:   {summary(times['xpm'])}; {cpu_of('xpm')}")
    print(f"submit  ratio (medians):   {ratio:.2f}x  (target <= 1.5x)")
    print(f"context xpm run --local -- true: {summary(times['local'])}; {cpu_of('local')} "
          "(the same preparation)")
    print(f"floor   python -c pass:    {summary(times['python'])}; {cpu_of('python')} "
          "(any Python command's start on this machine)")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _record(path: Path) -> dict[str, object]:
    try:
        data: dict[str, object] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def bench_requeue(base: Path, count: int) -> None:
    root = project(base / "requeue", "slurm:\n  grace: 6\n  max_requeues: 100\n")
    loop = "trap 'exit 0' USR2; while true; do sleep 0.1; done"
    out = subprocess.run([*xpm_command(), "run", "--slurm", "-n", "rq", "--", "bash", "-c",
                          loop], cwd=root, env=quiet_env(), capture_output=True, text=True,
                         check=True).stdout
    run_id, job = out.split()
    record = root / "results" / run_id / "run.json"

    def running_attempt(n: int) -> bool:
        data = _record(record)
        attempts = data.get("attempts") or []
        return (data.get("status") == "running" and isinstance(attempts, list)
                and len(attempts) == n)

    def wait(n: int) -> None:
        deadline = time.monotonic() + 120
        while not running_attempt(n):
            if time.monotonic() > deadline:
                raise SystemExit(f"attempt {n} of {run_id} never ran")
            time.sleep(0.02)

    wait(1)
    seconds = []
    for n in range(2, count + 2):
        start = time.perf_counter()
        subprocess.run(["scancel", "--signal=USR2", "--batch", job], check=True)
        wait(n)
        seconds.append(time.perf_counter() - start)
    subprocess.run([*xpm_command(), "cancel", run_id], cwd=root, env=quiet_env(),
                   capture_output=True, check=False)
    print(f"requeue signal -> running again: median {statistics.median(seconds):.2f} s, "
          f"min {min(seconds):.2f} s, max {max(seconds):.2f} s over {count}")


def bench_ls(base: Path, count: int) -> None:
    roots = {}
    for label, flag in (("local", "--local"), ("slurm", "--slurm")):
        root = project(base / f"ls-{label}", "")
        out = subprocess.run([*xpm_command(), "run", flag, "-n", "r", "--", "true"], cwd=root,
                             env=quiet_env(), capture_output=True, text=True, check=True)
        if label == "slurm":
            run_json = root / "results" / "r" / "1" / "run.json"
            deadline = time.monotonic() + 60
            while _record(run_json).get("status") != "completed":
                if time.monotonic() > deadline:
                    raise SystemExit(f"the Slurm run did not complete: {out.stderr}")
                time.sleep(0.05)
        source = root / "results" / "r" / "1"
        template = json.loads((source / "run.json").read_text())
        for n in range(2, count + 1):
            target = source.parent / str(n)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock"))
            data = dict(template, number=n, id=f"r/{n}")
            if label == "slurm" and n % 3 == 0:
                data["status"] = "queued"
                data["attempts"] = []
            (target / "run.json").write_text(json.dumps(data))
        roots[label] = root
    argv = [*xpm_command(), "ls", "-a"]
    medians = {}
    for label, root in roots.items():
        taken = time_command(argv, 7, cwd=root)
        medians[label] = statistics.median(taken)
        print(f"ls -a   {count} {label} runs: {summary(taken)}")
    print(f"ls -a   slurm / local: {medians['slurm'] / medians['local']:.2f}x "
          f"({ms(medians['slurm'])} vs {ms(medians['local'])}; target: the same)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--submits", type=int, default=10)
    parser.add_argument("--requeues", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--dir", type=Path)
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        raise SystemExit("no sbatch here: start a cluster (tests/slurm/start.sh) first")
    base = Path(tempfile.mkdtemp(prefix="xpm-slurm-bench-", dir=args.dir))
    try:
        bench_submit(base, args.submits)
        bench_requeue(base, args.requeues)
        bench_ls(base, args.runs)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
