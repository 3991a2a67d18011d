"""Slurm: the `slurm:` options, the job script, and the few Slurm commands xpm calls.

A Slurm run is an ordinary run folder whose record carries a `slurm` section (the options,
the job id, when it was submitted). On the submitting host `xpm run --slurm` makes the
folder (status `queued`), writes `job.sbatch` into it with `write_script` and submits it
with `submit`. In the job, the script `exec`s `python -m xpm _slurm_job RUN_DIR`
(xpm/launch/slurmjob.py), which supervises the command as `xpm run` does.

Sweeps submit one job array whose task K runs the K-th prepared run folder:

    from xpm.launch import slurm
    options = slurm.parse_options(project.settings.slurm, overrides)   # SlurmOptions
    script = slurm.write_array_script(path, run_dirs, options, project.root,
                                      results_dir, parallel=4, job_name="lr-sweep@3")
    job_id = slurm.submit_array(script, run_dirs, options)   # "1234"; task K is "1234_K"

(the run folders prepared, `queued`, their locks free: launch.preparation.create_run).

Every task is requeued on its own (`scontrol requeue JOB_TASK`), exactly like a single job.
Listing never calls Slurm; `queue_states` (used by `xpm sync` only) asks it once for many
jobs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import times
from ..errors import UsageError, XpmError
from ..version import __version__

if TYPE_CHECKING:
    from ..project import Project
    from ..runs.lock import RunLock
    from ..runs.record import RunRecord
    from ..runs.tree import RunRef

SCRIPT_FILE = "job.sbatch"
OUTPUT_FILE = "slurm.out"  # the job's own stdout and stderr, every attempt appended
CANCEL_FILE = ".cancel"  # written by `xpm cancel` before it scancels a running job
SPOOL_DIR = ".slurm"  # in results_dir: Slurm's first output file, before the run folder

# `--time`: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds (sbatch(1)); or unlimited.
_TIME = re.compile(r"\d+(:\d{1,2}){0,2}|\d+-\d+(:\d{1,2}){0,2}")
_MEM = re.compile(r"\d+[KMGT]?B?", re.IGNORECASE)
_WORD = re.compile(r"[^\s'\"\\]+")


class SlurmError(XpmError):
    """Slurm refused, or one of its commands is missing."""


@dataclass(frozen=True)
class SlurmOptions:
    """What a job asks Slurm for; xpm.yaml's `slurm:` section, with `--slurm-opt` on top."""

    partition: str | None = None
    time: str | None = None
    cpus: int | None = None  # per task
    gpus: str | None = None  # the job's, all tasks together
    ntasks: int | None = None  # more than one: the command is started by srun, once a task
    nodes: int | None = None
    mem: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    extra: tuple[str, ...] = ()
    signal: str = "USR2"  # NCCL takes USR1
    grace: int = 90
    max_requeues: int = 3

    @property
    def signum(self) -> int:
        return int(signal.Signals["SIG" + self.signal])

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["extra"] = list(self.extra)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SlurmOptions:
        given = {k: v for k, v in (data or {}).items() if v is not None and v != []}
        return parse_options(given, (), where="the run record's `slurm.options`")


KEYS = tuple(f.name for f in fields(SlurmOptions))


def _problem(key: str, value: Any) -> tuple[str, Any]:
    """The value converted for `key`, or raise UsageError saying what is wrong."""
    def bad(text: str) -> UsageError:
        return UsageError(f"slurm `{key}` {text} (got {value!r})")

    if key in ("partition", "account", "qos", "constraint"):
        if not isinstance(value, str | int) or isinstance(value, bool) or \
                not _WORD.fullmatch(str(value)):
            raise bad("must be one word without spaces or quotes")
        return key, str(value)
    if key == "time":
        text = str(value).strip()
        if isinstance(value, bool) or not (_TIME.fullmatch(text)
                                           or text.lower() in ("unlimited", "infinite")):
            raise bad("must be a Slurm time: MINUTES, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS")
        return key, text
    if key in ("cpus", "ntasks", "nodes", "max_requeues", "grace"):
        try:
            number = int(str(value)) if not isinstance(value, bool | float) else None
        except ValueError:
            number = None
        if isinstance(value, float) and value.is_integer():
            number = int(value)
        least = 0 if key == "max_requeues" else 1
        if number is None or number < least or (key == "grace" and number > 65535):
            what = {"cpus": "a positive whole number of CPUs",
                    "ntasks": "a positive whole number of tasks",
                    "nodes": "a positive whole number of nodes",
                    "max_requeues": "a whole number of requeues, 0 or more",
                    "grace": "a positive whole number of seconds (at most 65535)"}[key]
            raise bad(f"must be {what}")
        return key, number
    if key == "gpus":
        text = str(value)
        if isinstance(value, bool) or not re.fullmatch(r"(\w+:)?\d+", text) or text == "0":
            raise bad("must be a number of GPUs, or TYPE:COUNT (a100:2)")
        return key, text
    if key == "mem":
        text = str(value)
        if isinstance(value, bool) or not _MEM.fullmatch(text):
            raise bad("must be a size Slurm takes: 16G, 4000M, 4000")
        return key, text
    if key == "signal":
        name = str(value).upper().removeprefix("SIG")
        if name.isdigit():
            try:
                name = signal.Signals(int(name)).name.removeprefix("SIG")
            except ValueError:
                raise bad("must be a signal name such as USR2") from None
        if name not in ("USR1", "USR2", "TERM", "INT", "HUP", "URG", "XCPU"):
            raise bad("must be a signal a job can catch: USR2 (the default), USR1, TERM, ...")
        return key, name
    if key == "extra":
        lines = [value] if isinstance(value, str) else value
        if not isinstance(lines, list | tuple) or not all(isinstance(v, str) for v in lines) \
                or any("\n" in v for v in lines):
            raise bad("must be a list of `#SBATCH` lines or options (--exclusive)")
        return key, tuple(v.strip() for v in lines if v.strip())
    raise UsageError(f"unknown slurm option `{key}`; the options are {', '.join(KEYS)}")


def parse_options(settings: Mapping[str, Any], overrides: tuple[str, ...] | list[str] = (),
                  where: str = "xpm.yaml's `slurm:` section") -> SlurmOptions:
    """xpm.yaml's `slurm:` mapping with `KEY=VALUE` overrides on top, every value checked;
    UsageError on the first unknown key or bad value."""
    values: dict[str, Any] = {}
    for key, value in settings.items():
        try:
            name, converted = _problem(str(key), value)
        except UsageError as exc:
            raise UsageError(f"{where}: {exc}") from None
        values[name] = converted
    for text in overrides:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--slurm-opt takes KEY=VALUE (time=04:00:00), not `{text}`")
        key = key.strip()
        name, converted = _problem(key, value.strip())
        if name == "extra":
            converted = (*values.get("extra", ()), *converted)
        values[name] = converted
    options = SlurmOptions(**values)
    if several_tasks(options) and options.signal not in ("USR1", "USR2"):
        raise UsageError(f"slurm `signal` {options.signal} cannot warn a job of several "
                         "tasks: srun cancels the tasks on SIGTERM, SIGHUP and SIGXCPU "
                         "without letting them save, and passes on only SIGUSR1 and "
                         "SIGUSR2; use USR2 (the default)")
    return options


# ---------------------------------------------------------------- the job script
def _directive(line: str) -> str:
    line = line.strip()
    return line if line.startswith("#SBATCH") else f"#SBATCH {line}"


def _resources(options: SlurmOptions) -> list[str]:
    pairs = [("partition", options.partition), ("time", options.time),
             ("nodes", options.nodes), ("ntasks", options.ntasks),
             ("cpus-per-task", options.cpus), ("gpus", options.gpus), ("mem", options.mem),
             ("account", options.account), ("qos", options.qos),
             ("constraint", options.constraint)]
    lines = [f"#SBATCH --{flag}={value}" for flag, value in pairs if value is not None]
    lines += [_directive(line) for line in options.extra]
    return lines


def several_tasks(options: SlurmOptions) -> bool:
    """Whether the job has more than one task (`ntasks`, or one task a node on `nodes`)."""
    return (options.ntasks or 1) > 1 or (options.nodes or 1) > 1


def task_launcher(options: SlurmOptions, command: tuple[str, ...] | list[str] = ()
                  ) -> tuple[str, ...]:
    """What the job starts the command with: for a job of several tasks, `srun
    --kill-on-bad-exit=1` (one process a task; when one fails, srun ends the others and
    exits non-zero), unless the command is srun already; else nothing. srun does not take
    sbatch's --cpus-per-task from the job since Slurm 22.05, so it is given again."""
    if not several_tasks(options) or (command and Path(command[0]).name == "srun"):
        return ()
    cpus = (f"--cpus-per-task={options.cpus}",) if options.cpus else ()
    return ("srun", "--kill-on-bad-exit=1", *cpus)


def _tasks_comment(options: SlurmOptions) -> list[str]:
    launcher = task_launcher(options)
    if not launcher:
        return []
    return [f"# xpm starts the command with `{' '.join(launcher)}`, once in each task; "
            f"SIG{options.signal} reaches",
            "# xpm (B:), which forwards it to srun, which forwards it to every task."]


def _header(job_name: str, spool: Path, project_root: Path, options: SlurmOptions,
            output: str) -> list[str]:
    return [
        "#!/bin/bash",
        f"#SBATCH --job-name={shlex.quote(job_name)}",
        f"#SBATCH --output={spool}/{output}",
        "#SBATCH --open-mode=append",
        f"#SBATCH --chdir={project_root}",
        f"#SBATCH --signal=B:{options.signal}@{options.grace}",
        "#SBATCH --requeue",
        *_resources(options),
    ]


def _body(run_dir_expr: str) -> list[str]:
    """Go to the run folder's own output file, or say clearly why the job cannot run; then
    become xpm (exec: xpm is the batch shell's process and gets Slurm's signal itself)."""
    python = shlex.quote(sys.executable)
    return [
        f"run_dir={run_dir_expr}",
        'first="$(readlink -f /proc/$$/fd/1)"',
        'if [ ! -f "$run_dir/run.json" ]; then',
        '    echo "xpm: the run folder $run_dir (or its run.json) was removed after the job '
        'was submitted; nothing to run (Slurm job ${SLURM_JOB_ID:-?})" >&2',
        "    exit 1",
        "fi",
        f'exec >>"$run_dir/{OUTPUT_FILE}" 2>&1',
        'case "$first" in */' + SPOOL_DIR + '/*) rm -f "$first" ;; esac',
        f'exec {python} -m xpm _slurm_job "$run_dir"',
    ]


def write_script(run_dir: Path, options: SlurmOptions, project_root: Path,
                 results_dir: Path, run_id: str) -> Path:
    """`job.sbatch` in the run folder: readable, and resubmittable by hand with sbatch."""
    spool = results_dir.resolve() / SPOOL_DIR
    lines = [
        *_header(run_id, spool, project_root, options, "%j.out"),
        "",
        f"# Slurm job of the xpm run {run_id}, written by xpm {__version__} "
        f"at {times.now_iso()}.",
        f"# Resubmit it by hand with: sbatch {run_dir / SCRIPT_FILE}",
        f"# Its output goes to {run_dir / OUTPUT_FILE}, the command's to output.log.",
        f"# {options.grace} s before the time limit Slurm sends SIG{options.signal}; xpm "
        "passes it to the command",
        "# (which saves a checkpoint), then requeues the job, which resumes the run.",
        *_tasks_comment(options),
        *_body(shlex.quote(str(run_dir.resolve()))),
    ]
    return _write(run_dir / SCRIPT_FILE, lines, spool)


def write_array_script(path: Path, run_dirs: list[Path], options: SlurmOptions,
                       project_root: Path, results_dir: Path, parallel: int | None = None,
                       job_name: str = "xpm-array") -> Path:
    """A job array script at `path` whose task K runs the prepared run folder run_dirs[K]
    (at most `parallel` at once); see the module docstring."""
    if not run_dirs:
        raise XpmError("a job array needs at least one run folder")
    spool = results_dir.resolve() / SPOOL_DIR
    limit = f"%{parallel}" if parallel else ""
    lines = [
        *_header(job_name, spool, project_root, options, "%A_%a.out"),
        f"#SBATCH --array=0-{len(run_dirs) - 1}{limit}",
        "",
        f"# A Slurm job array of {len(run_dirs)} xpm runs, written by xpm {__version__} "
        f"at {times.now_iso()}.",
        f"# Resubmit it by hand with: sbatch {path}",
        "run_dirs=(",
        *(f"    {shlex.quote(str(d.resolve()))}" for d in run_dirs),
        ")",
        *_body('"${run_dirs[$SLURM_ARRAY_TASK_ID]}"'),
    ]
    return _write(path, lines, spool)


def _write(path: Path, lines: list[str], spool: Path) -> Path:
    spool.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------- Slurm's commands
def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise SlurmError(f"`{name}` is not on PATH: this machine is not a Slurm submit host; "
                         "run on a cluster's login node, or drop --slurm to run here")
    return found


def _call(argv: list[str], timeout: float = 60, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=env)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{' '.join(argv[:2])}` did not answer within {timeout:.0f} s; "
                         "is slurmctld up? (`sinfo` tells)") from None


def _reason(proc: subprocess.CompletedProcess[str]) -> str:
    text = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(line.removeprefix("sbatch: error: ") for line in lines)


def submit(script: Path, env: dict[str, str] | None = None) -> str:
    """`sbatch --parsable SCRIPT` (with `env` added to the environment the job inherits);
    the job id, or SlurmError with Slurm's own reason."""
    proc = _call([_tool("sbatch"), "--parsable", str(script)],
                 env=dict(os.environ, **env) if env else None)
    job = proc.stdout.strip().split(";")[0]
    if proc.returncode != 0 or not job:
        raise SlurmError(f"sbatch refused the job: {_reason(proc)}")
    return job


def submit_array(script: Path, run_dirs: list[Path], options: SlurmOptions,
                 env: dict[str, str] | None = None) -> str:
    """Submit a script from `write_array_script` (with `env` added to the environment the
    tasks inherit) and record each run's job id (JOB_K) and status `queued`, holding every
    run's lock meanwhile (a task that starts at once waits for it); the job id. On a
    refusal each run is recorded `failed` with Slurm's reason, and SlurmError raised."""
    from ..runs.lock import RunLock
    from ..runs.record import FAILED
    from ..runs.update import update_record

    locks: list[RunLock] = []
    try:
        for run_dir in run_dirs:
            lock = RunLock(run_dir)
            lock.acquire(f"{run_dir.parent.name}/{run_dir.name}", purpose="Slurm submission")
            locks.append(lock)
        try:
            job_id = submit(script, env)
        except SlurmError as exc:
            now, failure = times.now_iso(), {"options": options.to_json(),
                                             "script": str(script), "error": str(exc)}
            for run_dir in run_dirs:
                update_record(run_dir, lambda r: replace(r, status=FAILED, ended=now,
                                                         exit_code=1,
                                                         slurm={**(r.slurm or {}), **failure}))
            raise
        record_submission(run_dirs, job_id, options, script, array=True)
    finally:
        for lock in locks:
            lock.release()
    return job_id


def record_submission(run_dirs: list[Path], job_id: str, options: SlurmOptions,
                      script: Path, array: bool = False) -> None:
    """Write the job id into each run's record (task K of an array is JOB_K), its status
    `queued`: a run submitted again (a sweep's --resume) keeps its earlier jobs, and one
    left `running` by a job that died (the caller holds its lock) is first marked lost."""
    from ..runs.lock import mark_lost
    from ..runs.record import QUEUED, RUNNING
    from ..runs.update import update_record

    for index, run_dir in enumerate(run_dirs):
        job = f"{job_id}_{index}" if array else job_id

        def change(record: Any, job: str = job, run_dir: Path = run_dir) -> Any:
            if record.status == RUNNING:
                record = mark_lost(run_dir, record)
            return replace(record, status=QUEUED, ended=None, exit_code=None, signal=None,
                           slurm=submission(options, job, script, record.slurm))

        update_record(run_dir, change)


def submission(options: SlurmOptions, job_id: str, script: Path,
               previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record's `slurm` section for a (re)submitted job."""
    jobs = list((previous or {}).get("jobs") or [])
    jobs.append(job_id)
    return {"job_id": job_id, "jobs": jobs, "submitted": times.now_iso(),
            "script": str(script), "options": options.to_json()}


def requeue(job_id: str) -> None:
    """`scontrol requeue JOB` (JOB is ARRAYJOB_TASK for an array task)."""
    proc = _call([_tool("scontrol"), "requeue", job_id])
    if proc.returncode != 0:
        raise SlurmError(f"scontrol requeue {job_id} failed: {_reason(proc)}")


def restarts(job_id: str) -> int | None:
    """How many times Slurm has requeued the job so far (`scontrol show job`), or None."""
    if shutil.which("scontrol") is None:
        return None
    try:
        proc = _call(["scontrol", "-o", "show", "job", job_id], timeout=20)
    except SlurmError:
        return None
    match = re.search(r"\bRestarts=(\d+)", proc.stdout)
    return int(match.group(1)) if match else None


def cancel(job_ids: list[str]) -> None:
    """`scancel JOB...` in one call."""
    if not job_ids:
        return
    proc = _call([_tool("scancel"), *job_ids])
    if proc.returncode != 0:
        raise SlurmError(f"scancel {' '.join(job_ids)} failed: {_reason(proc)}")


@dataclass(frozen=True)
class JobState:
    job_id: str
    state: str  # PENDING, RUNNING, COMPLETED, CANCELLED, FAILED, ...
    reason: str


def queue_states(job_ids: list[str]) -> dict[str, JobState]:
    """What Slurm says of these jobs, in one `squeue` call; a job it no longer knows is
    absent from the answer. (`squeue --json` ignores its filters in Slurm 22.05, so the
    plain format is asked for.)"""
    if not job_ids:
        return {}
    proc = _call([_tool("squeue"), "--noheader", "--states=all", "--array",
                  "--format=%i|%T|%r", "--jobs=" + ",".join(job_ids)])
    if proc.returncode != 0:
        if "Invalid job id" in proc.stderr:
            return {}  # none of them is known any more
        raise SlurmError(f"squeue failed: {_reason(proc)}")
    found: dict[str, JobState] = {}
    for line in proc.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            found[parts[0]] = JobState(parts[0], parts[1], parts[2])
    return found


def job_environment() -> dict[str, str | int | None]:
    """What the job knows of itself (SLURM_* variables), as the attempt records it."""
    env = os.environ
    array_job, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{task}" if array_job and task else env.get("SLURM_JOB_ID")
    return {"job_id": job, "array_task": int(task) if task and task.isdigit() else None,
            "restart_count": int(env.get("SLURM_RESTART_COUNT") or 0),
            "node": env.get("SLURMD_NODENAME")}


def submit_run(run_dir: Path, record: Any, options: SlurmOptions, project_root: Path,
               results_dir: Path, env: dict[str, str] | None = None) -> Any:
    """Write job.sbatch into a prepared run folder (whose lock the caller holds), submit
    it, and record the job id (status `queued`); the new record. When sbatch is missing or
    refuses, the run is recorded `failed` with Slurm's reason and SlurmError is raised."""
    from ..runs.record import FAILED, QUEUED
    from ..runs.update import update_record

    script = write_script(run_dir, options, project_root, results_dir, record.id)
    try:
        job_id = submit(script, env)
    except SlurmError as exc:
        now = times.now_iso()
        slurm_section = {**(record.slurm or {}), "options": options.to_json(),
                         "script": str(script), "error": str(exc)}
        update_record(run_dir, lambda r: replace(r, status=FAILED, ended=now, exit_code=1,
                                                 slurm=slurm_section))
        raise SlurmError(f"run {record.id} was not submitted: {exc}") from None
    section = submission(options, job_id, script, record.slurm)
    return update_record(run_dir, lambda r: replace(r, status=QUEUED, ended=None,
                                                    exit_code=None, signal=None,
                                                    slurm=section))


def submit_prepared(project: Project, ref: RunRef, record: RunRecord, lock: RunLock,
                    options: SlurmOptions, handover: dict[str, str] | None = None) -> None:
    """`submit_run` for `xpm run --slurm` and `xpm rerun --slurm`: the lock is released
    afterwards, whatever happens; prints the run id and the job id."""
    from .. import console

    try:
        record = submit_run(ref.path, record, options, project.root, project.results_dir,
                            handover)
    finally:
        lock.release()
    job = (record.slurm or {}).get("job_id")
    console.info(f"run {ref.id} submitted to Slurm as job {job} in {console.path(ref.path)}; "
                 f"`xpm sync` asks Slurm how it goes")
    console.out(f"{ref.id} {job}")
