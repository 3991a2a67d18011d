"""`xpm sweep`: many runs of one name from one command, on this machine or in the
background; `xpm sweep --resume NAME@K` finishes what did not complete."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import console, times
from ..errors import EXIT_ERROR, UsageError, XpmError, stop_on_termination
from ..launch import lifecycle
from ..launch.sweeps.grammar import parse_override
from ..launch.sweeps.local import LocalSweep, take
from ..launch.sweeps.remaining import Remaining, remaining
from ..launch.sweeps.template import RunTemplate
from ..launch.sweeps.trials import FILE, GRID, RANDOM, ZIP, check, expand, read_trials_file
from ..masking import is_masked, mask_argv
from ..project import Project, load_project
from ..runs import sweeps
from ..runs.record import COMPLETED
from ..runs.sweeps import Manifest, TrialEntry

if TYPE_CHECKING:
    from ..launch.slurm import SlurmOptions


def sweep(command: tuple[str, ...], name: str | None, configs: tuple[str, ...],
          assignments: tuple[str, ...], seed: int | None, tags: tuple[str, ...],
          note: str | None, require_clean: bool, zip_: bool, random_n: int | None,
          sweep_seed: int | None, trials_file: str | None, jobs: int | None,
          slurm: bool | None, dry_run: bool, detach: bool, yes: bool,
          slurm_opts: tuple[str, ...] = ()) -> int:
    stop_on_termination()
    mode = _mode(zip_, random_n, trials_file, sweep_seed)
    if detach and dry_run:
        raise UsageError("--dry-run makes nothing, so there is nothing to --detach; "
                         "drop one of them")
    overrides = [parse_override(a) for a in assignments]
    rows = read_trials_file(Path(trials_file)) if trials_file else None
    check(overrides, mode, random_n, yes, len(rows) if rows is not None else None)
    if mode == RANDOM and sweep_seed is None:
        sweep_seed = int.from_bytes(os.urandom(4), "big") >> 1
    trials = expand(overrides, mode, random_n, sweep_seed or 0, rows)
    project = load_project()
    options = _slurm_options(project, slurm, slurm_opts, detach)
    template = RunTemplate.build(project, command, name, configs, seed, require_clean,
                                 tags, note)
    template.check(trials)
    keys = _keys(trials)
    if dry_run:
        _table(trials, keys)
        seeded = f"; sweep seed {sweep_seed} (--sweep-seed)" if mode == RANDOM else ""
        console.info(f"{console.plural(len(trials), 'trial')} of {template.name}{seeded}; "
                     "nothing was made (--dry-run)")
        return 0
    manifest = sweeps.create(project.results_dir, Manifest(
        name=template.name, number=0, created=times.now_iso(), mode=mode, keys=tuple(keys),
        command=mask_argv(template.plan.command),  # a record: never a secret
        options={**template.options(), "require_clean": require_clean},
        trials=tuple(trials), sweep_seed=sweep_seed,
        **({"launcher": "slurm", "jobs": jobs or 0} if options else {"jobs": jobs or 1}),
    ))
    handover = lifecycle.handover(template.plan.command, manifest.command)
    if options is not None:
        return run_slurm(project, manifest, template, options, retry_failed=False,
                         env=handover)
    console.info(f"sweep {manifest.id}: {console.plural(len(trials), 'trial')}"
                 + (f", {jobs} at once" if (jobs or 1) > 1 else ""))
    if detach:
        return _detach(project, manifest, handover=handover)
    return run_local(project, manifest, template, jobs or 1, retry_failed=False)


def _slurm_options(project: Project, slurm: bool | None, slurm_opts: tuple[str, ...],
                   detach: bool) -> SlurmOptions | None:
    """The Slurm options of a sweep submitted as a job array, None for a sweep run here."""
    use_slurm = slurm if slurm is not None else project.settings.launcher == "slurm"
    if not use_slurm:
        if slurm_opts:
            raise UsageError("--slurm-opt only applies to a Slurm sweep; add --slurm (or set "
                             "`launcher: slurm` in xpm.yaml)")
        return None
    if detach:
        raise UsageError("--detach and --slurm do not go together: a Slurm sweep is "
                         "detached already (drop --detach)")
    from ..launch.slurm import parse_options

    return parse_options(project.settings.slurm, slurm_opts)


def run_slurm(project: Project, manifest: Manifest, template: RunTemplate,
              options: SlurmOptions, retry_failed: bool,
              env: dict[str, str] | None = None) -> int:
    """Submit what is left of the sweep as one Slurm job array; print `NAME@K JOB`."""
    from ..launch.sweeps import array

    results_dir = project.results_dir
    manifest, release = take(results_dir, manifest)
    try:
        left = array.held_by_slurm(results_dir, manifest,
                                   remaining(results_dir, manifest, retry_failed))
        if not left.steps:
            return _nothing_left(manifest, left)
        again = bool(manifest.slurm)
        if again:
            _say_left(manifest, left)
        try:
            manifest = array.submit(project, manifest, template, left.steps, options,
                                    manifest.jobs or None, env)
        except XpmError as exc:  # sbatch refused: the runs say so too
            raise XpmError(f"sweep {manifest.id} was not submitted: {exc}; once that is "
                           f"fixed, `xpm sweep --resume {manifest.id}` submits it") from None
    finally:
        release()
    section = manifest.slurm or {}
    count, limit = len(left.steps), manifest.jobs
    console.info(f"sweep {manifest.id}: {console.plural(count, 'trial')} "
                 f"{'resubmitted' if again else 'submitted'} to Slurm as job array "
                 f"{section.get('job_id')}" + (f", {limit} at once" if limit else "")
                 + f"; `xpm ls {manifest.id}` shows them, `xpm sync` asks Slurm how they go")
    console.out(f"{manifest.id} {section.get('job_id')}")
    return 0


def _mode(zip_: bool, random_n: int | None, trials_file: str | None,
          sweep_seed: int | None) -> str:
    chosen = [flag for flag, on in (("--zip", zip_), ("--random", random_n is not None),
                                    ("--trials", trials_file is not None)) if on]
    if len(chosen) > 1:
        raise UsageError(f"{chosen[0]} and {chosen[1]} are different ways to make the trials; "
                         "give one of them")
    if sweep_seed is not None and random_n is None:
        raise UsageError("--sweep-seed seeds the draws of --random N; add --random N or drop "
                         "--sweep-seed")
    if zip_:
        return ZIP
    if random_n is not None:
        return RANDOM
    return FILE if trials_file is not None else GRID


def _keys(trials: list[TrialEntry]) -> list[str]:
    keys: dict[str, None] = {}
    for trial in trials:
        keys.update(dict.fromkeys(trial.overrides))
    return list(keys)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _table(trials: list[TrialEntry], keys: list[str]) -> None:
    rows = [[str(t.index), *(_cell(t.overrides[k]) if k in t.overrides else "" for k in keys)]
            for t in trials]
    console.table(["trial", *keys], rows)


def _template_of(project: Project, manifest: Manifest,
                 command: tuple[str, ...] | None = None) -> RunTemplate:
    """The template of the sweep's trials; `command`: as given, when the manifest holds it
    masked."""
    if command is None and is_masked(manifest.command):
        raise XpmError(f"sweep {manifest.id}'s command had secret values, which xpm does not "
                       "record; start the trials left as a new sweep (`xpm ls "
                       f"{manifest.id}` shows which), or `xpm resume RUN -- COMMAND` one")
    options = manifest.options
    return RunTemplate.build(
        project, command or manifest.command, manifest.name, tuple(options.get("configs") or ()),
        options.get("seed"), bool(options.get("require_clean")),
        tuple(options.get("tags") or ()), options.get("note"))


def run_local(project: Project, manifest: Manifest, template: RunTemplate, jobs: int,
              retry_failed: bool, echo: bool = True,
              on_taken: Callable[[], None] | None = None) -> int:
    """Run what is left of the sweep here, `jobs` trials at once; the exit code."""
    results_dir = project.results_dir
    manifest, release = take(results_dir, manifest)
    try:
        if on_taken is not None:
            on_taken()
        left = remaining(results_dir, manifest, retry_failed)
        if left.running:
            console.warn(f"{console.plural(len(left.running), 'trial')} of {manifest.id} "
                         f"{'is' if len(left.running) == 1 else 'are'} running elsewhere "
                         f"({', '.join(left.running[:3])}); left alone")
        if left.missing:
            console.warn(f"{', '.join(left.missing[:3])} of {manifest.id} "
                         "no longer exist; their trials start again in new runs")
        runner = LocalSweep(results_dir, manifest, template, left.steps, jobs, echo)
        runner.run()
    finally:
        release()
    final = sweeps.read(results_dir, manifest.name, manifest.number)
    total = len(final.trials)
    completed = left.completed + sum(s == COMPLETED for s in runner.outcomes.values())
    if runner.stopped_by is not None:
        unstarted = len(runner.pending)
        console.info(f"sweep {manifest.id} stopped: {completed} of {total} trials completed, "
                     f"{unstarted} not started; `xpm sweep --resume {manifest.id}` finishes "
                     "the rest")
        return 128 + runner.stopped_by
    if completed == total:
        console.info(f"sweep {manifest.id}: all {console.plural(total, 'trial')} completed; "
                     f"`xpm ls {manifest.id}` lists them")
        return 0
    failed = left.failed + [final.trials[i].run or f"trial {i}"
                            for i, s in runner.outcomes.items() if s != COMPLETED]
    retry = " --retry-failed" if failed else ""
    console.error(f"sweep {manifest.id}: {total - completed} of {total} trials did not "
                  f"complete ({', '.join(failed[:3])}{', …' if len(failed) > 3 else ''}); "
                  f"`xpm ls {manifest.id}` lists them, `xpm sweep --resume {manifest.id}"
                  f"{retry}` tries them again")
    return EXIT_ERROR


def resume(ref: str, jobs: int | None, retry_failed: bool, detach: bool) -> int:
    stop_on_termination()
    project = load_project()
    given = sweeps.resolve(project.results_dir, ref)
    manifest = sweeps.reconcile(project.results_dir, given)
    if manifest != given:  # runs it had not written down: the runs are the truth
        sweeps.write(project.results_dir, manifest)
    if manifest.launcher not in ("local", "slurm"):
        raise XpmError(f"sweep {manifest.id} ran on {manifest.launcher}, which this xpm does "
                       "not know; upgrade xpm-runs")
    if manifest.launcher == "slurm" and detach:
        raise UsageError("--detach and a Slurm sweep do not go together: its trials are "
                         "resubmitted to Slurm, detached already (drop --detach)")
    if jobs is not None and jobs != manifest.jobs:
        manifest = replace(manifest, jobs=jobs)
        sweeps.write(project.results_dir, manifest)
    if manifest.launcher == "slurm":
        template = _template_of(project, manifest)
        return run_slurm(project, manifest, template, _array_options(manifest), retry_failed)
    left = remaining(project.results_dir, manifest, retry_failed)
    if not left.steps:
        return _nothing_left(manifest, left)
    _say_left(manifest, left)
    template = _template_of(project, manifest)  # refuses a masked command before detaching
    if detach:
        return _detach(project, manifest, retry_failed)
    return run_local(project, manifest, template, manifest.jobs, retry_failed)


def _array_options(manifest: Manifest) -> SlurmOptions:
    from ..launch.sweeps.array import options_of

    return options_of(manifest)


def _say_left(manifest: Manifest, left: Remaining) -> None:
    console.info(f"sweep {manifest.id}: {console.plural(len(left.steps), 'trial')} to run "
                 f"of {len(manifest.trials)}")


def _nothing_left(manifest: Manifest, left: Remaining) -> int:
    """Say why a resume has nothing to run; the exit code."""
    if left.failed:
        console.info(f"sweep {manifest.id}: nothing to resume; "
                     f"{console.plural(len(left.failed), 'trial')} failed "
                     f"({', '.join(left.failed[:3])}); --retry-failed runs them again")
        return EXIT_ERROR
    if left.running:
        console.info(f"sweep {manifest.id}: nothing to resume; the trials left are "
                     f"running or queued ({', '.join(left.running[:3])})")
        return 0
    console.info(f"sweep {manifest.id}: all {len(manifest.trials)} trials completed; "
                 "nothing to resume")
    return 0


def _detach(project: Project, manifest: Manifest, retry_failed: bool = False,
            handover: dict[str, str] | None = None) -> int:
    """Run the sweep in `xpm _sweep` in a session of its own; return once it holds it.
    `handover`: the command as given, when the manifest holds it masked."""
    path = manifest.path(project.results_dir)
    from ..launch import background

    args = ["_sweep", str(path), *(["--retry-failed"] if retry_failed else [])]
    log = path.with_suffix(".log")
    if not background.start(args, project.root, log, handover):
        raise XpmError(f"the background runner of sweep {manifest.id} did not start; see "
                       f"{log}")
    console.info(f"sweep {manifest.id} runs in the background; `xpm ls {manifest.id}` shows "
                 f"its trials, {console.path(log)} its progress")
    console.out(manifest.id)
    return 0


def run_detached(path: Path, retry_failed: bool) -> int:
    """The hidden `xpm _sweep MANIFEST`: run a sweep with its messages going to a file."""
    stop_on_termination()
    from ..launch import background

    ready = background.ready_signal()

    command = lifecycle.handed_over_command()
    project = load_project()  # started in the project's root
    manifest = sweeps.read(project.results_dir, path.parent.parent.name, int(path.stem))
    template = _template_of(project, manifest, command)
    return run_local(project, manifest, template, manifest.jobs, retry_failed, echo=True,
                     on_taken=ready)
