"""The command line: parse, call the command's module, return its exit code.

Only click is imported here at start-up; each command imports what it needs when it runs.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, XpmError
from .version import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="xpm")
def cli() -> None:
    """Keep machine-learning experiments in a plain results tree.

    Each run gets a folder results/NAME/N holding its frozen config, git state, output,
    metrics and checkpoints. See https://pypi.org/project/xpm-runs/ for the full guide.
    """


@cli.command(context_settings=CONTEXT)
@click.argument("directory", required=False, default=".", type=click.Path(file_okay=False))
@click.option("--template", type=click.Choice(["default", "torch"]), default="default",
              show_default=True, help="Example project to start from.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
def init(directory: str, template: str, force: bool) -> int:
    """Create an example project (xpm.yaml, configs, train.py) in DIRECTORY."""
    from .commands.init import init as command

    return command(directory, template, force)


@cli.command(context_settings={**CONTEXT, "allow_interspersed_args": False})
@click.option("-n", "--name", help="Run name (default: xpm.yaml's name, else the script's stem).")
@click.option("-c", "--config", "configs", multiple=True, metavar="FILE",
              help="Config file (YAML, JSON or Python); repeat to merge in order.")
@click.option("-s", "--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Override a config value, e.g. -s model.lr=1e-3 -s layers=[64,64].")
@click.option("--seed", type=int, help="Seed (default: the config's seed, else a random one).")
@click.option("-t", "--tag", "tags", multiple=True, help="Tag the run; repeatable.")
@click.option("-m", "--note", help="A note about this run.")
@click.option("--detach", is_flag=True, help="Run in the background; print the run id.")
@click.option("--require-clean", is_flag=True, help="Refuse to run from a dirty git tree.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(command: tuple[str, ...], name: str | None, configs: tuple[str, ...],
        assignments: tuple[str, ...], seed: int | None, tags: tuple[str, ...],
        note: str | None, detach: bool, require_clean: bool) -> int:
    """Run COMMAND (or xpm.yaml's command) in a new run folder.

    \b
    xpm run -- python train.py --epochs 3
    xpm run -c configs/model.yaml -s model.lr=1e-3 -t baseline
    """
    from .commands.run import run as command_

    return command_(command, name, configs, assignments, seed, tags, note, detach,
                    require_clean)


@cli.command(context_settings=CONTEXT)
@click.argument("runs", nargs=-1, metavar="RUN RUN [RUN]...")
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


@cli.command("_supervise", hidden=True, context_settings=CONTEXT)
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def supervise(run_dir: str) -> int:
    """Supervise a prepared run folder (used by --detach and by Slurm jobs)."""
    from pathlib import Path

    from .commands.run import supervise_detached

    return supervise_detached(Path(run_dir).resolve())


def _report_internal(exc: BaseException) -> int:
    from . import console

    if os.environ.get("XPM_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    console.error(f"internal error: {exc.__class__.__name__}: {exc}; this is a bug in xpm "
                  f"{__version__} — rerun with XPM_DEBUG=1 for the traceback and report it")
    return EXIT_INTERNAL


def main(argv: list[str] | None = None) -> int:
    """The error funnel: every exit code xpm returns comes out of here."""
    from . import console

    try:
        result: Any = cli.main(args=argv, prog_name="xpm", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        hint = f"; see `{exc.ctx.command_path} --help`" if exc.ctx is not None else ""
        console.error(f"{exc.format_message()}{hint}")
        return EXIT_USAGE
    except click.exceptions.Abort:
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        console.error(exc.format_message())
        return exc.exit_code
    except XpmError as exc:
        console.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as exc:
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

