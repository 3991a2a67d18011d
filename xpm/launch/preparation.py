"""Everything about a run decided and made before its command starts: the plan (name,
command, merged config, seed, git state) and the run folder with its frozen config and
record. `xpm run`, `xpm sweep` and Slurm submission share it."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import console, times
from ..config import apply_assignments, deep_merge, dump_yaml, load_file
from ..errors import UsageError, XpmError
from ..masking import mask_argv
from ..project import Project
from ..runs.atomic import write_atomic
from ..runs.lock import RunLock
from ..runs.record import (
    CONFIG_FILE,
    CONFIGS_DIR,
    ENVIRONMENT_FILE,
    PATCH_FILE,
    QUEUED,
    GitState,
    RunRecord,
    write_json_atomic,
    write_record,
)
from ..runs.tree import RunRef, allocate_locked, check_name, prepared
from ..vcs import state as gitinfo
from ..version import __version__

if TYPE_CHECKING:  # imported when there are untracked files to list (tarfile and all)
    from ..vcs import untracked as untracked_files

_PYTHONS = ("python", "python3", "pypy", "pypy3")


class Plan(NamedTuple):
    """Everything checked and computed before a run folder is made."""

    project: Project
    name: str
    command: tuple[str, ...]
    config: dict[str, Any]
    config_files: tuple[Path, ...]
    seed: int
    git: GitState | None
    sweep: str | None = None  # NAME@K and the trial's index, for a trial of a sweep
    assignments: tuple[str, ...] = ()  # the -s KEY=VALUE as given
    given_name: str | None = None  # -n as given (None: the default name)
    require_clean: bool = False  # --require-clean as given
    trial: int | None = None
    untracked: untracked_files.Untracked | None = None  # to store in the run folder
    sources: tuple[str, ...] | None = None  # config sources to record (a rerun's: RUN's)


def default_name(command: tuple[str, ...]) -> str:
    """The script's stem: `python train.py` → train, `python -m pkg.train` → train."""
    args = list(command)
    if args and Path(args[0]).name.startswith(_PYTHONS):
        rest = args[1:]
        while rest and rest[0].startswith("-"):
            flag = rest.pop(0)
            if flag == "-m" and rest:
                return rest[0].rsplit(".", 1)[-1]
            if flag == "-c":
                return "python"
        if rest:
            return Path(rest[0]).stem
    return Path(args[0]).stem if args else "run"


def plan_run(
    project: Project,
    command: tuple[str, ...],
    name: str | None,
    configs: tuple[str, ...],
    assignments: tuple[str, ...],
    seed: int | None,
    require_clean: bool,
    git_capture: gitinfo.Capture | None = None,
    capture_untracked: bool = False,
) -> Plan:
    """Check and compute everything about a run before its folder is made."""
    given_name = name
    command = command or project.settings.command
    if not command:
        raise UsageError("no command to run; give one after `--` (xpm run -- python train.py) "
                         "or set `command:` in xpm.yaml")
    if not command[0].strip():
        raise UsageError("the command is empty; give one after `--` (xpm run -- python train.py)")
    if any("{checkpoint}" in arg for arg in command):
        raise XpmError("`{checkpoint}` is only known when resuming; use it with "
                       "`xpm resume -- ...`, or read XPM_CHECKPOINT in the command")
    if name is None:
        name = project.settings.name or default_name(command)
    name = check_name(name)
    files = config_files(project, configs)
    config, seed = configure(merged_files(files), assignments, seed)
    clean_required = require_clean or project.settings.require_clean
    try:
        git = (git_capture or gitinfo.Capture(project.root)).result()
    except gitinfo.GitUnreadable as exc:
        if clean_required:
            raise XpmError(f"cannot tell whether the git tree is clean: {exc}; fix that, or "
                           "drop --require-clean") from None
        console.warn(f"{exc}; the run records no git state")
        git = None
    if clean_required and git is None:
        raise XpmError(f"a clean git tree is required but {project.root} is not in a git "
                       "repository; run `git init` and commit, or drop --require-clean")
    if clean_required and git is not None and git.dirty:
        raise XpmError("the git tree is dirty and a clean tree is required; commit or stash "
                       "your changes (`git status` shows them), or drop --require-clean")
    untracked = _untracked(project, git, clean_required,
                           capture_untracked or project.settings.capture_untracked)
    return Plan(project, name, tuple(command), config, files, seed, git, untracked=untracked,
                assignments=tuple(assignments), given_name=given_name,
                require_clean=require_clean)


def config_source(path: Path, root: Path) -> str:
    """Where a config file came from: its path relative to the project root, or its
    absolute path when it lies outside (links are not followed)."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(root))
    except ValueError:
        return str(absolute)


def _untracked(project: Project, git: GitState | None, clean_required: bool, capture: bool
               ) -> untracked_files.Untracked | None:
    """The untracked, not ignored source files to store with the run (None: none to store),
    refusing them when a clean tree is required and they cannot be stored."""
    if git is None or git.root is None or not git.untracked_count or not (
            capture or clean_required):
        return None  # git status saw none: no need to list them
    from ..vcs import untracked as untracked_files

    listing = untracked_files.list_untracked(Path(git.root), exclude=(project.results_dir,))
    if not listing.files:
        return None
    settings = project.settings
    problem = listing.over(int(settings.untracked_max_mb * 1024 * 1024),
                           settings.untracked_max_files) if capture else None
    if capture and problem is None:
        return listing
    if clean_required:
        why = (f"they cannot be captured ({problem}; raise git.untracked_max_mb or "
               "git.untracked_max_files in xpm.yaml)" if problem else
               "they are not captured (pass --capture-untracked or set "
               "git.capture_untracked in xpm.yaml)")
        raise XpmError(f"a clean tree is required but {len(listing.files)} untracked file(s) "
                       f"are not in git ({listing.first()}) and {why}; add them to git, "
                       "ignore them in .gitignore, or drop --require-clean")
    console.warn(f"the untracked files are not captured: {problem}; only their names are "
                 "recorded (raise git.untracked_max_mb or git.untracked_max_files in "
                 "xpm.yaml to keep them), so `xpm rerun --exact` cannot restore them")
    return None


def config_files(project: Project, configs: tuple[str, ...]) -> tuple[Path, ...]:
    """The config files given (-c), else xpm.yaml's."""
    if configs:
        return tuple(Path(c) for c in configs)
    return tuple(project.root / c for c in project.settings.configs)


def merged_files(files: tuple[Path, ...]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for path in files:
        loaded = load_file(path)
        if loaded is not None:
            config = deep_merge(config, loaded)
    return config


def configure(base: dict[str, Any], assignments: tuple[str, ...] | list[str],
              seed: int | None) -> tuple[dict[str, Any], int]:
    """The config a run sees (a copy of `base` with the assignments applied and its
    seed set) and that seed."""
    import copy

    config = apply_assignments(copy.deepcopy(base), list(assignments))
    if seed is None:
        seed = _config_seed(config)
    config["seed"] = seed
    return config, seed


def _config_seed(config: dict[str, Any]) -> int:
    value = config.get("seed")
    if value is None:
        return int.from_bytes(os.urandom(4), "big") >> 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise XpmError(f"the config's `seed` is {value!r}, not an integer; "
                       "set it to a whole number or pass --seed")
    return value


def _copy_configs(files: tuple[Path, ...], run_dir: Path) -> tuple[str, ...]:
    if not files:
        return ()
    target = run_dir / CONFIGS_DIR
    target.mkdir()
    names: list[str] = []
    for i, path in enumerate(files, start=1):
        name = path.name if path.name not in names else f"{i}-{path.name}"
        shutil.copy2(path, target / name)
        names.append(name)
    return tuple(f"{CONFIGS_DIR}/{n}" for n in names)


def create_run(plan: Plan, tags: tuple[str, ...], note: str | None,
               host: dict[str, Any] | None = None, mark: bool = True,
               host_file: Path | None = None, detach: bool = False,
               patch_file: Path | None = None,
               pending_patch: gitinfo.PendingPatch | None = None
               ) -> tuple[RunRef, RunRecord, RunLock]:
    """Make the run folder and everything in it but the output, under the run's lock (held
    from the moment the folder exists, so that no reader takes a half-made run for a dead
    one); the caller gets the lock and must release it. `host`: the environment already
    captured (a sweep captures it once for all its trials), and `host_file` an
    environment.json already holding it, hard-linked rather than written again (a sweep's
    trials share one: 20 kB and a JSON encoding each saved). Without `mark` the name's
    high-water mark is left to the caller, who raises it once for many runs made at once
    (`tree.record_highest`). `patch_file`: the git.patch of an earlier run of the same
    plan's git state, hard-linked rather than asked of git again (a sweep's trials share
    the state captured when the sweep began). `pending_patch`: the diff of the plan's git
    state, already started (`gitinfo.start_patch`); this function sees it ended."""
    try:
        ref, lock = allocate_locked(plan.project.results_dir, plan.name, mark)
    except BaseException:
        if pending_patch is not None:
            pending_patch.cancel()
        raise
    try:
        lock.say("xpm run")
        copied = _copy_configs(plan.config_files, ref.path)
        write_atomic(ref.path / CONFIG_FILE, dump_yaml(plan.config).encode("utf-8"))
        git = plan.git
        if git is not None and patch_file is not None \
                and _linked(patch_file, ref.path / PATCH_FILE):
            git = replace(git, patch=PATCH_FILE)
        elif git is not None:
            pending, pending_patch = pending_patch, None
            git = gitinfo.save_patch(git, ref.path, pending)
        if pending_patch is not None:  # not needed after all
            pending_patch.cancel()
            pending_patch = None
        if git is not None and plan.untracked is not None:
            from ..vcs import untracked as untracked_files

            git = replace(git, untracked_archive=untracked_files.store(plan.untracked,
                                                                       ref.path))
        if host is None:
            from . import environment  # imported here, once the folder is made

            # its summary goes in run.json
            host = environment.capture(plan.project.settings.env, plan.command,
                                       plan.project.root)
        if not _linked(host_file, ref.path / ENVIRONMENT_FILE):
            write_json_atomic(ref.path / ENVIRONMENT_FILE, host)
        record = RunRecord(
            name=ref.name, number=ref.number, status=QUEUED, command=mask_argv(plan.command),
            cwd=str(plan.project.root), created=times.now_iso(), seed=plan.seed,
            config=plan.config, xpm_version=__version__, tags=tags, note=note,
            config_files=copied, git=git,
            checkpoint_patterns=plan.project.settings.checkpoints,
            heartbeat_interval=plan.project.settings.heartbeat_interval, host=host["host"],
            user=host["user"], platform=host["platform"], python=host["python"],
            python_executable=host["python_executable"], sweep=plan.sweep, trial=plan.trial,
            assignments=plan.assignments,
            config_sources=plan.sources if plan.sources is not None else tuple(
                config_source(p, plan.project.root) for p in plan.config_files),
            launch={"name": plan.given_name, "tags": list(tags), "note": note,
                    "detach": detach, "require_clean": plan.require_clean},
            grace_period=plan.project.settings.grace_period,
            env_patterns=plan.project.settings.env,
        )
        write_record(ref.path, record)
        prepared(ref.path)
    except BaseException as exc:
        if pending_patch is not None:
            pending_patch.cancel()
        shutil.rmtree(ref.path, ignore_errors=True)
        lock.release()
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C, SIGTERM, SIGHUP
            console.info(f"interrupted while preparing run {ref.id}; removed its folder")
        raise
    return ref, record, lock


def _linked(source: Path | None, target: Path) -> bool:
    if source is None:
        return False
    try:
        os.link(source, target)
    except OSError:  # gone, or a file system without hard links: written instead
        return False
    return True
