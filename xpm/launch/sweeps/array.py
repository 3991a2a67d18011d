"""A sweep as one Slurm job array: `xpm sweep --slurm`, and `xpm sweep --resume` of such a
sweep.

The trials to run get their run folders here (prepared, `queued`, as `xpm run --slurm`
prepares one), then one script `.sweeps/K.sbatch` (`K.2.sbatch` for the second
submission, ...) whose task T runs the T-th of those folders under the Slurm job of
issue 9 (launch/slurmjob.py: requeue and resume per task), and one `sbatch`. Each run
records its task's job id (`JOB_T`); the manifest records the array (`slurm`: job id,
script, options, which trial each task runs, and the earlier submissions).

On --resume, Slurm is asked once (`squeue`) about the trials' jobs: a trial whose job
Slurm still holds (pending, running, requeued) is left alone, whatever its record says.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ... import times
from ...errors import XpmError
from ...project import Project
from ...runs import sweeps
from ...runs.record import ACTIVE, read_record
from ...runs.sweeps import Manifest
from ...runs.tree import record_highest
from .. import slurm
from .remaining import START, Remaining, Step
from .template import RunTemplate

# What squeue says of a job that Slurm still holds (it may run again).
_HELD = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED",
         "CONFIGURING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED",
         "PREEMPTED"}


def script_path(project: Project, manifest: Manifest) -> Path:
    """Where the next submission's script goes: K.sbatch, then K.2.sbatch, ..."""
    done = len((manifest.slurm or {}).get("submissions") or ())
    base = manifest.path(project.results_dir)
    return base.with_suffix(".sbatch") if not done else \
        base.with_name(f"{manifest.number}.{done + 1}.sbatch")


def submit(project: Project, manifest: Manifest, template: RunTemplate, steps: list[Step],
           options: slurm.SlurmOptions, parallel: int | None,
           env: dict[str, str] | None = None) -> Manifest:
    """Prepare the folders of `steps`' trials that have none, submit one array of all of
    them (at most `parallel` at once) and return the manifest as written, its `slurm`
    section naming the array. `env`: added to what the tasks inherit (the command as
    given, when the manifest holds it masked). On an sbatch refusal the trials' runs are
    recorded `failed` (Slurm's reason), and SlurmError raised."""
    results_dir = project.results_dir
    run_dirs: list[Path] = []
    highest = 0
    try:
        for step in steps:
            trial = manifest.trials[step.trial]
            if trial.run is None or not (results_dir / trial.run).is_dir():
                # the high-water mark is raised once, below, not once per trial
                ref, _record, lock = template.make(trial, manifest.id, mark=False)
                lock.release()
                manifest = manifest.with_run(trial.index, ref.id)
                highest = max(highest, ref.number)
                run_dirs.append(ref.path)
            else:
                run_dirs.append(results_dir / trial.run)
    finally:
        if highest:
            record_highest(results_dir / manifest.name, highest)
        sweeps.write(results_dir, manifest)  # the runs made so far, even if interrupted
    script = slurm.write_array_script(script_path(project, manifest), run_dirs, options,
                                      project.root, results_dir, parallel=parallel,
                                      job_name=manifest.id)
    job_id = slurm.submit_array(script, run_dirs, options, env)
    manifest = replace(manifest, slurm=_section(manifest.slurm, job_id, script, options,
                                                [s.trial for s in steps], parallel))
    sweeps.write(results_dir, manifest)
    return manifest


def _section(previous: dict[str, Any] | None, job_id: str, script: Path,
             options: slurm.SlurmOptions, trials: list[int], parallel: int | None
             ) -> dict[str, Any]:
    submissions = [*((previous or {}).get("submissions") or ()),
                   {"job_id": job_id, "submitted": times.now_iso(), "script": str(script),
                    "trials": trials}]
    return {"job_id": job_id, "script": str(script), "options": options.to_json(),
            "limit": parallel, "trials": trials, "submitted": submissions[-1]["submitted"],
            "submissions": submissions}


def options_of(manifest: Manifest) -> slurm.SlurmOptions:
    """The Slurm options the sweep was submitted with."""
    return slurm.SlurmOptions.from_json((manifest.slurm or {}).get("options"))


def held_by_slurm(results_dir: Path, manifest: Manifest, left: Remaining) -> Remaining:
    """`left` with the trials whose job Slurm still holds moved from its steps to its
    running ones (one squeue for all of them)."""
    jobs: dict[int, str] = {}
    for step in left.steps:
        run = manifest.trials[step.trial].run
        if step.action == START and run is None:
            continue
        try:
            record = read_record(results_dir / str(run))
        except (OSError, XpmError):  # gone or unreadable: nothing of it is in Slurm
            continue
        job = (record.slurm or {}).get("job_id")
        if job and record.status in ACTIVE:
            jobs[step.trial] = str(job)
    if not jobs:
        return left
    states = slurm.queue_states(sorted(set(jobs.values())))
    held = {t for t, job in jobs.items() if job in states and states[job].state in _HELD}
    if not held:
        return left
    return replace(left, steps=[s for s in left.steps if s.trial not in held],
                   running=[*left.running,
                            *(str(manifest.trials[t].run) for t in sorted(held))])
