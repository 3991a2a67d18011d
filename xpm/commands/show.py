"""`xpm show RUN`: everything about one run."""

from __future__ import annotations

import shlex
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import console, times
from ..config import flatten
from ..project import load_project
from ..reading.query import as_text
from ..runs import disk, metrics, sweeps
from ..runs.catalog import CORRUPT, NEWER, load_entry
from ..runs.checkpoints import find
from ..runs.logfile import last_lines, size_of
from ..runs.record import (
    OUTPUT_FILE,
    PATCH_FILE,
    QUEUED,
    RUNNING,
    Attempt,
    RunRecord,
    read_environment,
)
from ..runs.tree import RunRef, copy_of, resolve

LAST_LINES = 10


def show(run: str, as_json: bool) -> int:
    project = load_project()
    if sweeps.is_ref(run) and not Path(run).exists():
        return _show_sweep(project.results_dir, run, as_json)
    ref = resolve(project.results_dir, run)
    entry = load_entry(ref)
    record = entry.record
    run_dir = ref.path
    checkpoints = find(run_dir, project.settings.checkpoints)
    reader = metrics.Reader(run_dir, record.attempts if record else ())
    summary = metrics.summarize(reader, non_finite=True)
    if (problem := reader.problem(ref.id)) is not None:
        console.warn(problem)
    output = run_dir / OUTPUT_FILE
    tail = last_lines(output, LAST_LINES)
    facts: dict[str, Any] = {
        "id": ref.id,  # where it is: NAME/N, as ls lists it (docs/rerun.md, identity)
        "copy_of": copy_of(record, run_dir),
        "path": str(run_dir),
        "rerun_of": record.rerun_of if record is not None else None,
        "status": entry.status,
        "problem": entry.problem,
        "record": record.to_json() if record else None,
        "git": _git(record, run_dir),
        "environment": _environment(run_dir),
        "checkpoints": {
            "count": len(checkpoints),
            "newest": {
                "path": str(checkpoints[-1].path.relative_to(run_dir)),
                "step": checkpoints[-1].step,
                "modified": times.iso(_local(checkpoints[-1].mtime)),
            } if checkpoints else None,
            "size": sum(disk.size_of(c.path) for c in checkpoints),
        },
        "metrics": {name: s._asdict() for name, s in summary.items()},
        "disk_size": disk.size_of(run_dir),
        "output": {"size": size_of(output), "last_lines": tail},
    }
    if as_json:
        console.json_document(facts)
    else:
        _print(facts, record)
    return 0


def _local(timestamp: float) -> Any:
    from datetime import datetime

    return datetime.fromtimestamp(timestamp).astimezone()


def _git(record: RunRecord | None, run_dir: Path) -> dict[str, Any] | None:
    if record is None or record.git is None:
        return None
    data = asdict(record.git)
    data["patch_size"] = size_of(run_dir / record.git.patch) if record.git.patch else None
    return data


def _environment(run_dir: Path) -> dict[str, Any] | None:
    """The summary of environment.json: Python, platform, GPUs, variables, package count."""
    data = read_environment(run_dir)
    if data is None:
        return None
    distributions = data.get("distributions")
    gpus = data.get("gpus") or []
    variables = data.get("variables") or {}
    return {  # what is not of its type (a file edited by hand) is left out
        "python": _text(data.get("python")),
        "implementation": _text(data.get("implementation")),
        "platform": _text(data.get("platform")),
        "machine": _text(data.get("machine")),
        "cpu_count": data.get("cpu_count") if type(data.get("cpu_count")) is int else None,
        "distributions": len(distributions) if isinstance(distributions, dict) else None,
        "gpus": [g for g in gpus if isinstance(g, dict)] if isinstance(gpus, list) else [],
        "variables": {k: v for k, v in variables.items() if isinstance(v, str)}
        if isinstance(variables, dict) else {},
    }


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# ------------------------------------------------------------------------- text

def _slurm(record: RunRecord, status: str) -> list[tuple[str, str]]:
    """The Slurm section: the job, when it was submitted, what xpm last learned."""
    section = record.slurm or {}
    pairs = [("job", str(section.get("job_id") or "not submitted"))]
    if section.get("submitted"):
        pairs.append(("submitted", _when(str(section["submitted"]))))
    jobs = section.get("jobs") or []
    if len(jobs) > 1:
        pairs.append(("jobs", ", ".join(str(j) for j in jobs)))
    for key in ("error", "lost_reason"):
        if section.get(key):
            pairs.append(("reason", str(section[key])))
    if status == QUEUED:
        pairs.append(("note", "queued as of the record; `xpm sync` asks Slurm"))
    return pairs


def _when(text: str | None) -> str:
    if not text:
        return ""
    moment = times.parse_iso(text)
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S %z')} ({times.format_ago(moment)})"


def _print(facts: dict[str, Any], record: RunRecord | None) -> None:
    status = facts["status"]
    shown_status = status
    if record is not None and record.exit_code is not None and status != RUNNING:
        shown_status += f" (exit {record.exit_code}" + (
            f", signal {record.signal})" if record.signal else ")")
    head: list[tuple[str, str]] = [("status", shown_status), ("path", facts["path"])]
    if facts["copy_of"]:
        head.append(("copy", f"this folder is a copy of {facts['copy_of']} (its run.json "
                             "says so)"))
    if facts["rerun_of"]:
        exact = " (exact: in its recorded code)" if record is not None and record.exact else ""
        head.append(("rerun of", facts["rerun_of"] + exact))
    if record is not None and record.sweep:
        head.append(("sweep", f"{record.sweep} (trial {record.trial})"))
    if facts["problem"]:
        head.append(("problem", facts["problem"]))
    if record is not None:
        head += [
            ("command", shlex.join(record.command)),
            ("created", _when(record.created)),
            ("started", _when(record.started)),
            ("ended", _when(record.ended)),
            ("duration", _duration(record, status)),
            ("seed", str(record.seed)),
            ("tags", ", ".join(record.tags)),
            ("note", record.note or ""),
            ("host", f"{record.host} (user {record.user})"),
            ("python", f"{record.python} ({record.python_executable})"),
            ("xpm", record.xpm_version),
        ]
    console.fields(facts["id"], [(k, v) for k, v in head if v],
                   {"status": console.status_style(status) or ""})
    if record is not None and record.slurm:
        console.fields("slurm", _slurm(record, status))
    if record is not None and record.attempts:
        console.fields("attempts", [
            (str(a.number), _attempt(a)) for a in record.attempts
        ])
    git = facts["git"]
    if git is not None:
        pairs = [("commit", git["commit"] or "(no commits yet)"),
                 ("branch", git["branch"] or "(detached)")]
        if git["dirty"]:
            size = git["patch_size"]
            pairs.append(("dirty", f"yes: {PATCH_FILE} ({disk.format_size(size)})"
                          if size is not None else "yes"))
        else:
            pairs.append(("dirty", "no"))
        if git["remote"]:
            pairs.append(("remote", git["remote"]))
        if git["untracked_count"]:
            pairs.append(("untracked", f"{git['untracked_count']} files"))
        console.fields("git", pairs)
    if record is not None and record.config:
        console.fields("config", [(k, as_text(v)) for k, v in flatten(record.config).items()])
    env = facts["environment"]
    if env is not None:
        pairs = [("python", " ".join(v for v in (env["python"], env["implementation"]) if v)),
                 ("platform", env["platform"] or ""),
                 ("cpus", str(env["cpu_count"] or "")),
                 ("packages", f"{env['distributions']} distributions"
                  if env["distributions"] is not None else ""),
                 ("gpus", "; ".join(str(g.get("name", "?")) for g in env["gpus"]) or "none")]
        pairs += [(k, v) for k, v in env["variables"].items()]
        console.fields("environment", [(k, v) for k, v in pairs if v])
    cks = facts["checkpoints"]
    if cks["count"]:
        newest = cks["newest"]
        step = f"step {newest['step']}, " if newest["step"] is not None else ""
        console.fields("checkpoints", [
            ("count", str(cks["count"])),
            ("newest", f"{newest['path']} ({step}{_when(newest['modified'])})"),
            ("size", disk.format_size(cks["size"])),
        ])
    if facts["metrics"]:
        console.fields("metrics", [
            (name, f"last {s['last']:.6g}  min {s['min']:.6g}  max {s['max']:.6g}  "
                   f"({s['samples']} values"
                   + (f", last at step {s['last_step']})" if s["last_step"] is not None
                      else ")"))
            for name, s in facts["metrics"].items()
        ])
    console.fields("disk", [("size", disk.format_size(facts["disk_size"]))])
    out = facts["output"]
    if out["size"] is None:
        console.fields(OUTPUT_FILE, [("size", "none yet")])
    else:
        title = f"{OUTPUT_FILE} ({disk.format_size(out['size'])}"
        count = len(out["last_lines"])
        title += f", last {console.plural(count, 'line')})" if count else ")"
        console.fields(title, [])
        for line in out["last_lines"]:
            console.out(f"  {line}")
    if status == CORRUPT:
        console.warn(f"{facts['id']} is corrupt: {facts['problem']}")
    elif status == NEWER:
        console.warn(f"{facts['id']}: {facts['problem']}")


def _duration(record: RunRecord, status: str) -> str:
    if status == RUNNING:  # counted up to now
        from ..reading.query import live_duration

        live = live_duration([{"started": a.started, "ended": a.ended}
                              for a in record.attempts])
        return f"{times.format_duration(live)} so far"
    return times.format_duration(record.duration)


def _attempt(a: Attempt) -> str:
    text = f"{a.kind} {_when(a.started)}"
    if a.ended:
        text += f" → {a.status or '?'} after "
        text += times.format_duration(times.seconds_between(a.started, a.ended))
    else:
        text += " (running)"
    text += f", pid {a.pid} on {a.host}"
    if a.slurm_job_id:
        text += f", slurm job {a.slurm_job_id}"
        if a.slurm_restart_count:
            text += f" (restart {a.slurm_restart_count})"
    if a.checkpoint:
        text += f", from {a.checkpoint}"
    if a.reason:
        text += f"; {a.reason}"
    return text


# ------------------------------------------------------------------------- a sweep

def _show_sweep(results: Path, text: str, as_json: bool) -> int:
    """`xpm show NAME@K`: the sweep's manifest, with the status of each trial's run as its
    run folder says (never Slurm)."""
    manifest = sweeps.resolve(results, text)
    statuses: dict[str, str] = {}
    for trial in manifest.trials:
        if trial.run is None:
            continue
        name, _, number = trial.run.partition("/")
        path = results / name / number
        statuses[trial.run] = (load_entry(RunRef(name, int(number), path)).status
                               if path.is_dir() else "removed")
    counts: dict[str, int] = {}
    for trial in manifest.trials:
        status = statuses.get(trial.run, "not started") if trial.run else "not started"
        counts[status] = counts.get(status, 0) + 1
    if as_json:
        console.json_document({**manifest.to_json(), "path": str(manifest.path(results)),
                               "statuses": statuses, "counts": counts})
        return 0
    section = manifest.slurm or {}
    where = "this machine"
    if manifest.launcher == "slurm":
        where = (f"Slurm, job array {section.get('job_id') or '(not submitted)'}"
                 + (f", at most {manifest.jobs} at once" if manifest.jobs else ""))
    elif manifest.jobs > 1:
        where += f", {manifest.jobs} at once"
    runner = manifest.runner or {}
    pairs = [
        ("trials", f"{len(manifest.trials)} ({manifest.mode}"
         + (f" over {', '.join(manifest.keys)}" if manifest.keys else "") + ")"),
        ("status", ", ".join(f"{n} {s}" for s, n in sorted(counts.items(),
                                                            key=lambda i: -i[1]))),
        ("runs on", where),
        ("runner", f"pid {runner.get('pid')} on {runner.get('host')}" if runner else ""),
        ("command", shlex.join(manifest.command)),
        ("created", _when(manifest.created)),
        ("sweep seed", "" if manifest.sweep_seed is None else str(manifest.sweep_seed)),
        ("manifest", console.path(manifest.path(results))),
    ]
    console.fields(manifest.id, [(k, v) for k, v in pairs if v])
    submissions = section.get("submissions") or []
    if submissions:
        console.fields("slurm", [(str(s.get("job_id")), f"{_when(s.get('submitted'))}, "
                                  f"{console.plural(len(s.get('trials') or ()), 'trial')}")
                                 for s in submissions])
    console.info(f"`xpm ls {manifest.id}` lists its trials")
    return 0
