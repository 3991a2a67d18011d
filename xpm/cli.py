"""The command line: parse, call the command's module, return its exit code.

Only click is imported here at start-up; each command imports what it needs when it runs.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

import click

from .errors import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Terminated,
    XpmError,
    wrapped_interrupt,
)
from .machine import terminal_columns
from .version import __version__

# Failures of the machine, not of xpm: a full disk, a quota, permissions, a read-only mount.
_ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}

# The help's width as click makes it (the terminal's, at most 100, less 2, at least 50),
# given so that click does not import shutil to ask.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100,
           "terminal_width": max(min(terminal_columns(), 100) - 2, 50)}


class WithCommand(click.Command):
    """A command taking `-- COMMAND ARG...` at the end: everything after the first `--` is
    the command, kept apart from xpm's own arguments (`ctx.meta["command"]`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            split = args.index("--")
            ctx.meta["command"] = tuple(args[split + 1:])
            args = args[:split]
        return super().parse_args(ctx, args)


def _command_after_dashes(given: tuple[str, ...] = ()) -> tuple[str, ...]:
    after: tuple[str, ...] = click.get_current_context().meta.get("command", ())
    return given + after


def _complete_run(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from .completion import complete_runs

    return complete_runs(incomplete)


def _complete_name(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from .completion import complete_names

    return complete_names(incomplete)


def _complete_status(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    from .completion import complete_statuses

    return complete_statuses(incomplete)


def _complete_clean_target(ctx: click.Context, param: click.Parameter, incomplete: str
                           ) -> list[Any]:
    """Runs and names clean takes: not through links; in the trash with --empty-trash."""
    from .completion import complete_runs

    return complete_runs(incomplete, trash=bool(ctx.params.get("empty_trash")),
                         follow_links=False)


def _complete_clean_status(ctx: click.Context, param: click.Parameter, incomplete: str
                           ) -> list[Any]:
    from .completion import complete_statuses

    return complete_statuses(incomplete, corrupt=False)


def _complete_metric(ctx: click.Context, param: click.Parameter, incomplete: str
                     ) -> list[Any]:
    """Metric names the runs have logged (`-m`, `--keep-best` with `:min`/`:max`)."""
    from .completion import complete_metrics

    suffixes = (":min", ":max") if param.name == "keep_best" else ()
    return complete_metrics(incomplete, suffixes=suffixes)


def _complete_field(ctx: click.Context, param: click.Parameter, incomplete: str
                    ) -> list[Any]:
    from .completion import complete_fields

    return complete_fields(incomplete)


def _complete_trashed(ctx: click.Context, param: click.Parameter, incomplete: str
                      ) -> list[Any]:
    from .completion import complete_runs

    return complete_runs(incomplete, trash=True)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="xpm")
def cli() -> None:
    """Keep machine-learning experiments in a plain results tree.

    Each run gets a folder results/NAME/N holding its frozen config, git state, output,
    metrics and checkpoints. The guide is README.md, with a page per topic in docs/
    (docs/exit-codes.md: what each exit code means), in xpm's source and its sdist.
    """


@cli.command(context_settings=CONTEXT)
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False))
@click.option("--template", type=click.Choice(["default", "torch"]), default="default",
              show_default=True, help="Example project to start from.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option("--git/--no-git", default=None,
              help="Make DIRECTORY a git repository with a first commit when it is in none "
                   "(default: ask on a terminal).")
def init(directory: str, template: str, force: bool, git: bool | None) -> int:
    """Create an example project (xpm.yaml, configs, train.py) in DIRECTORY."""
    from .commands.init import init as command

    return command(directory, template, force, git)


@cli.command(cls=WithCommand, context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("-n", "--name", help="Run name (default: xpm.yaml's name, else the script's stem).")
@click.option("-c", "--config", "configs", multiple=True, metavar="FILE",
              help="Config file (YAML, JSON or Python); repeat to merge in order.")
@click.option("-s", "--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. -s model.lr=1e-3 -s layers=[64,64].")
@click.option("--seed", type=int, help="Seed (default: the config's seed, else a random one).")
@click.option("-t", "--tag", "tags", multiple=True, help="Tag the run; repeatable.")
@click.option("-m", "--note", help="A note about this run.")
@click.option("--detach", is_flag=True, help="Run in the background; print the run id.")
@click.option("--require-clean", is_flag=True,
              help="Refuse to run from a dirty git tree or with untracked files not captured.")
@click.option("--capture-untracked", is_flag=True,
              help="Keep the untracked (not ignored) files in the run folder, for an exact "
                   "rerun.")
@click.option("--slurm/--local", "slurm", default=None,
              help="Submit to Slurm, or run here (default: xpm.yaml's `launcher`, else here).")
@click.option("--slurm-opt", "slurm_opts", multiple=True, metavar="KEY=VALUE",
              help="Override one `slurm:` option for this run, e.g. --slurm-opt time=04:00:00.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(command: tuple[str, ...], name: str | None, configs: tuple[str, ...],
        assignments: tuple[str, ...], seed: int | None, tags: tuple[str, ...],
        note: str | None, detach: bool, require_clean: bool, capture_untracked: bool,
        slurm: bool | None, slurm_opts: tuple[str, ...]) -> int:
    """Run COMMAND (or xpm.yaml's command) in a new run folder.

    \b
    xpm run -- python train.py --epochs 3
    xpm run -c configs/model.yaml -s model.lr=1e-3 -t baseline
    xpm run --slurm --slurm-opt time=04:00:00 -- python train.py
    """
    from .commands.run import run as command_

    return command_(_command_after_dashes(command), name, configs, assignments, seed, tags,
                    note, detach, require_clean, slurm=slurm, slurm_opts=slurm_opts,
                    capture_untracked=capture_untracked)


@cli.command(cls=WithCommand, context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("-n", "--name", help="Run name of every trial (default as for xpm run).")
@click.option("-c", "--config", "configs", multiple=True, metavar="FILE",
              help="Config file (YAML, JSON or Python); repeat to merge in order.")
@click.option("-s", "--set", "assignments", multiple=True, metavar="KEY=EXPR",
              help="Sweep a key: a,b,c | range(start,stop[,step]) | choice(a,b) | "
                   "interval(lo,hi) | log_interval(lo,hi); one value is fixed.")
@click.option("--seed", type=int, help="Seed of every trial (default: each trial's config "
                                       "seed, else a random one).")
@click.option("-t", "--tag", "tags", multiple=True, help="Tag every trial; repeatable.")
@click.option("-m", "--note", help="A note on every trial.")
@click.option("--require-clean", is_flag=True, help="Refuse to run from a dirty git tree.")
@click.option("--zip", "zip_", is_flag=True,
              help="Pair the swept keys' values in order instead of taking the product.")
@click.option("--random", "random_n", type=int, metavar="N",
              help="Draw N trials at random from the swept keys.")
@click.option("--sweep-seed", type=int, metavar="S",
              help="Seed of --random's draws (the same S draws the same trials).")
@click.option("--trials", "trials_file", metavar="FILE",
              help="A YAML list of mappings, one trial each, merged over the fixed -s.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), metavar="N",
              help="Run N trials at once (default 1).")
@click.option("--slurm/--local", "slurm", default=None,
              help="Submit the trials as one Slurm job array (default: xpm.yaml's launcher).")
@click.option("--slurm-opt", "slurm_opts", multiple=True, metavar="KEY=VALUE",
              help="Override one `slurm:` option for every trial, e.g. time=04:00:00.")
@click.option("--dry-run", is_flag=True, help="Print the trials; make nothing.")
@click.option("--detach", is_flag=True, help="Run the sweep in the background; print NAME@K.")
@click.option("--resume", "resume_ref", metavar="NAME@K",
              help="Run the trials of sweep NAME@K that did not complete.")
@click.option("--retry-failed", is_flag=True, help="With --resume: run failed trials again.")
@click.option("-y", "--yes", is_flag=True, help="Allow more than 10,000 trials.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def sweep(command: tuple[str, ...], name: str | None, configs: tuple[str, ...],
          assignments: tuple[str, ...], seed: int | None, tags: tuple[str, ...],
          note: str | None, require_clean: bool, zip_: bool, random_n: int | None,
          sweep_seed: int | None, trials_file: str | None, jobs: int | None,
          slurm: bool | None, slurm_opts: tuple[str, ...], dry_run: bool, detach: bool,
          resume_ref: str | None, retry_failed: bool, yes: bool) -> int:
    """Run many trials of COMMAND, one run each, from swept -s values.

    \b
    xpm sweep -s lr=0.1,0.01,0.001 -s layers=[64],[64,64] -j 2 -- python train.py
    xpm sweep -s lr=range(1,4) -s batch=32,64,128 --zip
    xpm sweep --random 20 --sweep-seed 1 -s lr=log_interval(1e-4,1e-1)
    xpm sweep --trials trials.yaml --dry-run
    xpm sweep --slurm -j 8 -s seed=1,2,3 -s lr=0.1,0.01   (one job array, 8 at once)
    xpm sweep --resume train@3
    """
    command = _command_after_dashes(command)
    if resume_ref is not None:
        given = [flag for flag, on in (
            ("-s", assignments), ("-c", configs), ("-n", name), ("--seed", seed is not None),
            ("-t", tags), ("-m", note), ("--zip", zip_), ("--random", random_n is not None),
            ("--trials", trials_file), ("--sweep-seed", sweep_seed is not None),
            ("--slurm/--local", slurm is not None), ("--slurm-opt", slurm_opts),
            ("--dry-run", dry_run), ("COMMAND", command)) if on]
        if given:
            raise click.UsageError(f"--resume runs a sweep as it was made; {given[0]} "
                                   "cannot change it (only -j, --retry-failed, --detach)")
        from .commands.sweep import resume as resume_command

        return resume_command(resume_ref, jobs, retry_failed, detach)
    if retry_failed:
        raise click.UsageError("--retry-failed goes with --resume NAME@K")
    from .commands.sweep import sweep as command_

    return command_(command, name, configs, assignments, seed, tags, note, require_clean,
                    zip_, random_n, sweep_seed, trials_file, jobs, slurm, dry_run, detach, yes,
                    slurm_opts)


@cli.command(cls=WithCommand, context_settings=CONTEXT)
@click.argument("run", required=False, shell_complete=_complete_run)
@click.option("--force", is_flag=True, help="Resume a completed (or queued) run too.")
def resume(run: str | None, force: bool) -> int:
    """Continue RUN (default: the latest started) from its newest checkpoint.

    RUN is NAME/N, NAME (its newest run), NAME/-1, NAME/-2... or a run folder's path.

    \b
    xpm resume                      # the latest started run
    xpm resume mnist/3 -- python3 train.py --lr 0.01   # with another command (recorded)
    """
    from .commands.resume import resume as command_

    return command_(run, force, _command_after_dashes())


@cli.command(context_settings=CONTEXT)
@click.argument("run", shell_complete=_complete_run)
@click.option("--exact", is_flag=True,
              help="Run in RUN's recorded code: its commit, git.patch and captured untracked "
                   "files, in a temporary git worktree.")
@click.option("-s", "--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a value of RUN's frozen config.")
@click.option("--seed", type=int, help="Seed (default: RUN's).")
@click.option("-n", "--name", help="Run name (default: RUN's).")
@click.option("-t", "--tag", "tags", multiple=True, help="Tag the new run; repeatable.")
@click.option("-m", "--note", help="A note about the new run.")
@click.option("--keep-worktree", is_flag=True,
              help="With --exact: keep the worktree afterwards (its resumes run there).")
@click.option("--require-same-env", is_flag=True,
              help="Refuse when installed packages differ from RUN's environment.json.")
@click.option("--detach", is_flag=True, help="Run in the background; print the run id.")
@click.option("--slurm/--local", "slurm", default=None,
              help="Submit to Slurm, or run here (default: where RUN ran).")
@click.option("--slurm-opt", "slurm_opts", multiple=True, metavar="KEY=VALUE",
              help="Override one of RUN's Slurm options, e.g. --slurm-opt time=04:00:00.")
def rerun(run: str, exact: bool, assignments: tuple[str, ...], seed: int | None,
          name: str | None, tags: tuple[str, ...], note: str | None, keep_worktree: bool,
          require_same_env: bool, detach: bool, slurm: bool | None,
          slurm_opts: tuple[str, ...]) -> int:
    """Run RUN again: its command, frozen config and seed, plus any -s/--seed overrides,
    in a new run that records `rerun_of`.

    \b
    xpm rerun mnist/3                  # today's code, mnist/3's config and seed
    xpm rerun mnist/3 --exact          # mnist/3's own code, rebuilt from git
    xpm rerun mnist/3 -s model.lr=1e-4 --seed 7 -n mnist-lr
    xpm rerun mnist/3 --slurm --slurm-opt time=04:00:00   # or --detach, here
    """
    from .commands.rerun import rerun as command

    return command(run, exact, assignments, seed, name, tags, note, keep_worktree,
                   require_same_env, detach=detach, slurm=slurm, slurm_opts=slurm_opts)


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, metavar="[RUN|NAME]...", shell_complete=_complete_clean_target)
@click.option("--status", metavar="S,...", shell_complete=_complete_clean_status,
              help="Take runs with these statuses (default: failed,lost,interrupted,killed).")
@click.option("--keep-last", type=int, metavar="K", help="Keep the K newest runs of each name.")
@click.option("--older-than", metavar="AGE", help="Take runs that ended at least AGE ago "
              "(30m, 12h, 3d, 2w).")
@click.option("--checkpoints", is_flag=True,
              help="Thin the checkpoints inside the runs instead of removing runs.")
@click.option("--keep", type=int, metavar="K", help="With --checkpoints: keep the K newest.")
@click.option("--keep-best", metavar="METRIC[:min|max]", shell_complete=_complete_metric,
              help="With --checkpoints: also keep the best by METRIC in metrics.jsonl.")
@click.option("--keep-every", type=int, metavar="N",
              help="With --checkpoints: also keep every step that is a multiple of N.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--purge", is_flag=True, help="Delete for good instead of moving to the trash.")
@click.option("--empty-trash", is_flag=True, help="Delete what the trash holds for good.")
@click.option("--force", is_flag=True,
              help="Remove a queued run too (waiting to start); only one named as NAME/N.")
def clean(runs: tuple[str, ...], status: str | None, keep_last: int | None,
          older_than: str | None, checkpoints: bool, keep: int | None, keep_best: str | None,
          keep_every: int | None, dry_run: bool, yes: bool, purge: bool,
          empty_trash: bool, force: bool) -> int:
    """Reclaim space: move runs to results/.trash, delete them, or thin checkpoints.

    With no selection: the failed, lost, interrupted and killed runs. Shows the runs and
    the space first and asks before acting. A run in use is never touched, nor anything
    outside results_dir.

    \b
    xpm clean                          # failed, lost, interrupted and killed runs
    xpm clean mnist --keep-last 5      # all but mnist's five newest runs
    xpm clean --older-than 2w --purge  # finished runs older than two weeks, for good
    xpm clean --checkpoints --keep 2 --keep-best val_loss
    xpm clean --empty-trash
    """
    from .commands.clean import clean as command

    return command(runs=runs, status=status, keep_last=keep_last, older_than=older_than,
                   checkpoints=checkpoints, keep=keep, keep_best=keep_best,
                   keep_every=keep_every, dry_run=dry_run, yes=yes, purge=purge,
                   empty_trash=empty_trash, force=force)


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, metavar="[RUN]...", shell_complete=_complete_trashed)
def restore(runs: tuple[str, ...]) -> int:
    """Put runs back from results/.trash; with no RUN, list what the trash holds."""
    from .commands.restore import restore as command

    return command(runs=runs)


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, metavar="RUN RUN [RUN]...", shell_complete=_complete_run)
@click.option("--code", is_flag=True,
              help="Also compare the runs' code: commit + git.patch of each, as a patch.")
@click.option("--all", "everything", is_flag=True,
              help="Show every field, the same ones and those that differ by nature.")
@click.option("--json", "as_json", is_flag=True, help="Print the difference as JSON.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the runs differ, 0 when not.")
@click.option("--only", multiple=True, metavar="SECTION[,SECTION]",
              help="Compare only these sections: config, run, git, packages, environment, "
                   "metrics, outcome.")
@click.option("--tolerance", type=float, default=1e-6, show_default=True, metavar="RTOL",
              help="Relative tolerance under which metric values count as equal.")
def diff(runs: tuple[str, ...], code: bool, everything: bool, as_json: bool, exit_code: bool,
         only: tuple[str, ...], tolerance: float) -> int:
    """Show what differs between runs: config, command, seed, git, packages, environment,
    metrics and outcome.

    \b
    xpm diff mnist/3 mnist/4
    xpm diff mnist/-2 mnist/-1 --code
    xpm diff mnist/1 mnist/2 mnist/3
    """
    from .commands.diff import diff as command

    return command(runs, code=code, everything=everything, as_json=as_json,
                   exit_code=exit_code, only=only, tolerance=tolerance)


@cli.command(context_settings=CONTEXT)
@click.argument("patterns", nargs=-1, metavar="[NAME|GLOB]...", shell_complete=_complete_name)
@click.option("--status", "statuses", multiple=True, metavar="S,...",
              shell_complete=_complete_status,
              help="Only runs with these statuses, e.g. --status failed,lost.")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Only runs tagged TAG; repeat to require several tags.")
@click.option("--since", metavar="AGE", help="Only runs started within AGE: 30m, 12h, 3d, 2w.")
@click.option("-w", "--where", "wheres", multiple=True, metavar="EXPR",
              help="Only runs where EXPR holds: FIELD OP VALUE with OP one of "
                   "= != < <= > >= ~ !~, e.g. config.lr<0.01, metrics.acc>=0.9, "
                   "status=failed, tag=baseline; repeat to require all.")
@click.option("--sort", metavar="KEY", shell_complete=_complete_field,
              help="Sort by a field (started, duration, config.lr, metrics.loss...), "
                   "ascending; runs without it come last. Default: newest first.")
@click.option("-r", "--reverse", is_flag=True, help="Reverse the order.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N",
              help="Show the first N runs (default 30).")
@click.option("-a", "--all", "show_all", is_flag=True, help="Show every run.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array with every field.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV with every field.")
@click.option("--columns", metavar="FIELD,...",
              help="Table and CSV columns, e.g. id,status,config.lr,metrics.loss.")
def ls(patterns: tuple[str, ...], statuses: tuple[str, ...], tags: tuple[str, ...],
       since: str | None, wheres: tuple[str, ...], sort: str | None, reverse: bool,
       limit: int | None, show_all: bool, as_json: bool, as_csv: bool,
       columns: str | None) -> int:
    """List runs, newest first: status, start, duration, commit, tags, the last value of
    each metric and the config keys that differ among them.

    \b
    xpm ls                        the newest 30 runs
    xpm ls mnist 'sweep-*' -a     every run of these names
    xpm ls --status failed,lost --since 2d
    xpm ls -w 'config.lr<0.01' -w 'metrics.acc>=0.9' --sort metrics.acc -r
    xpm ls -a --json | jq '.[] | .id'
    """
    from .commands.ls import ls as command

    return command(patterns, statuses, tags, since, wheres, sort, reverse, limit, show_all,
                   as_json, as_csv, columns)


@cli.command(context_settings=CONTEXT)
@click.argument("run", shell_complete=_complete_run)
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
def show(run: str, as_json: bool) -> int:
    """Everything about one run: record, attempts, git, config, environment, checkpoints,
    metrics, disk use and the end of its output.

    RUN is NAME/N, NAME (its newest run), NAME/-2 (the one before) or a run folder.
    """
    from .commands.show import show as command

    return command(run, as_json)


@cli.command(context_settings=CONTEXT)
@click.argument("run", shell_complete=_complete_run)
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing what the run writes until it ends (on any host); "
                   "exits 0 when it ends, whatever its outcome (`xpm wait` gives that).")
@click.option("-n", "--lines", type=click.IntRange(min=0), metavar="LINES",
              help="Print only the last LINES lines.")
def log(run: str, follow: bool, lines: int | None) -> int:
    """Print a run's output (output.log); -f follows it while the run is running.

    RUN is NAME/N, NAME (its newest run), NAME/-2 (the one before) or a run folder.
    """
    from .commands.log import log as command

    return command(run, follow, lines)


@cli.command(context_settings={**CONTEXT, "ignore_unknown_options": True})
@click.argument("changes", nargs=-1, required=True, type=click.UNPROCESSED,
                metavar="RUN... +TAG... -TAG...")
def tag(changes: tuple[str, ...]) -> int:
    """Add (+TAG) and remove (-TAG) tags of runs that exist, running or not.

    \b
    xpm tag mnist/3 +best -draft
    xpm tag mnist/-1 mnist/-2 +baseline
    xpm tag mnist@1 +swept      # every run of sweep mnist@1
    """
    from .commands.tag import tag as command

    return command(changes)


@cli.command(context_settings=CONTEXT)
@click.argument("run", shell_complete=_complete_run)
@click.argument("text")
def note(run: str, text: str) -> int:
    """Set RUN's note to TEXT (an empty TEXT removes it).

    \b
    xpm note mnist/3 "lr too high: diverged at step 900"
    """
    from .commands.tag import note as command

    return command(run, text)


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, required=True, metavar="RUN|NAME@K...",
                shell_complete=_complete_run)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; only the exit code tells.")
def wait(runs: tuple[str, ...], quiet: bool) -> int:
    """Wait until the runs end (on any host): exit 0 when all completed, else the exit
    code of the first one, in the order given, that did not (128+N for signal N, 1 when
    there is none). NAME@K waits for every trial of that sweep.

    \b
    xpm wait "$(xpm run --detach -- python prep.py)" && xpm run -- python train.py
    xpm wait mnist@1 && xpm ls mnist@1 --sort metrics.loss
    """
    from .commands.wait import wait as command

    return command(runs, quiet)


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, required=True, metavar="RUN...", shell_complete=_complete_run)
def cancel(runs: tuple[str, ...]) -> int:
    """Cancel queued or running Slurm runs (scancel); they are recorded `cancelled`."""
    from .commands.cancel import cancel as command

    return command(runs)


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, metavar="[RUN|NAME]...", shell_complete=_complete_run)
def sync(runs: tuple[str, ...]) -> int:
    """Ask Slurm (one squeue call) about the queued and running Slurm runs; record what it
    says (a queued job Slurm no longer knows becomes `lost`)."""
    from .commands.sync import sync as command

    return command(runs)


@cli.command("_slurm_job", hidden=True, context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(file_okay=False))
def slurm_job(run_dir: str) -> int:
    """Run a submitted run inside its Slurm job (job.sbatch execs this)."""
    from pathlib import Path

    from .launch.slurmjob import run_job

    return run_job(Path(run_dir).resolve())


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, required=True, metavar="RUN...", shell_complete=_complete_run)
@click.option("-m", "--metric", "wanted", multiple=True, metavar="METRIC",
              shell_complete=_complete_metric,
              help="Only this metric; repeatable (default: every metric).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line (the default).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines: one object per step.")
def metrics(runs: tuple[str, ...], wanted: tuple[str, ...], as_csv: bool, as_json: bool) -> int:
    """Print the whole history of a run's metrics, one row per step, as CSV or JSON lines.

    With several runs (RUN... or NAME@K), a first column names the run. Lines a resumed
    attempt superseded are left out; nan and inf read as such.

    \b
    xpm metrics mnist/3 > mnist-3.csv
    xpm metrics mnist/3 -m loss -m val_acc --json | jq .loss
    """
    if as_csv and as_json:
        raise click.UsageError("choose one of --csv and --json")
    from .commands.metrics import metrics as command

    return command(runs, wanted, as_json)


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, required=True, metavar="RUN|NAME|GLOB...",
                shell_complete=_complete_run)
@click.option("-m", "--metric", "wanted", multiple=True, metavar="METRIC",
              shell_complete=_complete_metric,
              help="Plot this metric, one panel each; repeatable (default: the metrics "
                   "the runs share, losses first).")
@click.option("--x", "x", type=click.Choice(["step", "time"]), default="step",
              show_default=True, help="Against steps, or time since the run's first line.")
@click.option("--smooth", type=int, default=1, metavar="N",
              help="Show the mean of the last N points.")
@click.option("--log-y", is_flag=True, help="A logarithmic y axis.")
@click.option("--by", metavar="KEY", help="Color by a field, e.g. config.optimizer or status.")
@click.option("-o", "--output", metavar="FILE", help="Write a .png or .svg image instead "
              "(needs the extra: pip install 'xpm-runs[plot]').")
@click.option("--rank", type=click.IntRange(min=0), default=0, show_default=True,
              help="Plot this rank's lines (those run.log(..., all_ranks=True) wrote).")
def plot(runs: tuple[str, ...], wanted: tuple[str, ...], x: str, smooth: int, log_y: bool,
         by: str | None, output: str | None, rank: int) -> int:
    """Plot runs' curves overlaid, one line per run, in the terminal or to an image.

    A NAME is every run of it; a GLOB ('lr-*') every run of the names it matches. Lines
    are labelled by the config keys that differ between the runs.

    \b
    xpm plot mnist                       every run of mnist, in the terminal
    xpm plot mnist/3 mnist/4 -m loss -m val_acc --smooth 20
    xpm plot 'lr-*' --by config.optimizer --log-y -o curves.png
    """
    from .commands.plot import plot as command

    return command(runs, wanted, x, smooth, log_y, by, output, rank)


@cli.command("_supervise", hidden=True, context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def supervise(run_dir: str) -> int:
    """Supervise a prepared run folder (used by --detach and by Slurm jobs)."""
    from pathlib import Path

    from .commands.run import supervise_detached

    return supervise_detached(Path(run_dir).resolve())


@cli.command("_sweep", hidden=True, context_settings=CONTEXT)
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--retry-failed", is_flag=True)
def sweep_detached(manifest: str, retry_failed: bool) -> int:
    """Run a sweep from its manifest (used by xpm sweep --detach)."""
    from pathlib import Path

    from .commands.sweep import run_detached

    return run_detached(Path(manifest).resolve(), retry_failed)


def _report_internal(exc: BaseException) -> int:
    from . import console
    from .crash import write_report

    if os.environ.get("XPM_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    report = write_report(exc)
    where = (f"the details are in {report}; please send that file with a report to xpm's "
             "maintainers" if report is not None else
             "rerun with XPM_DEBUG=1 for the traceback and report it to xpm's maintainers")
    first = str(exc).splitlines()[0] if str(exc) else ""
    console.error(f"internal error: {exc.__class__.__name__}: {first}; this is a bug in xpm "
                  f"{__version__} — {where}")
    return EXIT_INTERNAL


def _sentence(message: str) -> str:
    """click's message without its closing full stop, to go on with `; see ...`."""
    return message.rstrip().rstrip(".")


def _error(message: str) -> None:
    from . import console  # not imported by what never prints through it (`xpm --help`)

    console.error(message)


def _interrupted(stop: BaseException | None) -> int:
    """The exit code of an interrupt: 128+N for SIGTERM or SIGHUP, 130 for Ctrl-C."""
    return 128 + stop.signum if isinstance(stop, Terminated) else EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """The error funnel: every exit code xpm returns comes out of here."""
    try:
        result: Any = cli.main(args=argv, prog_name="xpm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        hint = f"; see `{exc.ctx.command_path} --help`" if exc.ctx is not None else ""
        _error(f"{_sentence(exc.format_message())}{hint}")
        return EXIT_USAGE
    except click.exceptions.Abort as exc:  # click's form of KeyboardInterrupt
        return _interrupted(exc.__cause__)
    except click.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except XpmError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        if exc.errno not in _ENVIRONMENT_ERRORS:
            return _report_internal(exc)
        where = f" {exc.filename}" if exc.filename else ""
        _error(f"cannot write or read{where}: {exc.strerror}; free some space or fix "
                      "the permissions, then try again")
        return EXIT_ERROR
    except Exception as exc:
        stop = wrapped_interrupt(exc)
        if stop is not None:  # Ctrl-C, wrapped by Python: an interrupt, not a bug
            return _interrupted(stop)
        return _report_internal(exc)
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
    return int(result or 0)


def _silence_stdout() -> None:
    """Reading stopped early (`xpm ls | head`): stop writing to the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())

