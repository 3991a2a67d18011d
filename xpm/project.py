"""Finding the project root and reading its `xpm.yaml`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, NamedTuple

from .config import parse_yaml, read_text
from .errors import XpmError

PROJECT_FILE = "xpm.yaml"

DEFAULT_CHECKPOINT_PATTERNS = (
    "checkpoints/*",
    "*.ckpt*",
    "*.pt",
    "*.pth",
    "*.safetensors",
    "model.ckpt-*",
)

_GIT_KEYS = {"require_clean", "capture_untracked", "untracked_max_mb", "untracked_max_files"}
_KNOWN_KEYS = {
    "results_dir", "name", "command", "configs", "checkpoints", "git", "grace_period",
    "heartbeat_interval", "env", "slurm", "launcher",
}
LAUNCHERS = ("local", "slurm")


class Settings(NamedTuple):
    results_dir: str = "results"
    name: str | None = None
    command: tuple[str, ...] = ()
    configs: tuple[str, ...] = ()
    checkpoints: tuple[str, ...] = DEFAULT_CHECKPOINT_PATTERNS
    require_clean: bool = False
    capture_untracked: bool = False
    untracked_max_mb: float = 10.0
    untracked_max_files: int = 1000
    grace_period: float = 10.0
    heartbeat_interval: float = 30.0
    env: tuple[str, ...] = ()
    slurm: Mapping[str, Any] = MappingProxyType({})
    launcher: str = "local"  # `slurm`: `xpm run` submits unless given --local


class Project(NamedTuple):
    root: Path
    settings: Settings
    has_file: bool

    @property
    def results_dir(self) -> Path:
        return self.root / self.settings.results_dir


def find_root(start: Path) -> Path | None:
    """The nearest folder upward holding an xpm.yaml (of any kind: one that is a folder
    is an error when read, never silently passed over)."""
    for folder in (start, *start.parents):
        if os.path.lexists(folder / PROJECT_FILE):
            return folder
    return None


def load_project(start: Path | None = None) -> Project:
    """The nearest folder upward holding xpm.yaml; else the start folder with defaults."""
    here = (start or Path.cwd()).resolve()
    root = find_root(here)
    if root is None:
        return Project(root=here, settings=Settings(), has_file=False)
    path = root / PROJECT_FILE
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not a regular file"
        raise XpmError(f"project file `{path}` is {what}; remove it, or make it a file of "
                       "settings (`results_dir: results`)")
    data = parse_yaml(read_text(path, "project file"), str(path))
    return Project(root=root, settings=parse_settings(data, path), has_file=True)


def _fail(path: Path, text: str) -> XpmError:
    return XpmError(f"{path}: {text}")


def parse_settings(data: Any, path: Path) -> Settings:
    if data is None:
        return Settings()
    if not isinstance(data, dict):
        raise _fail(path, "must be a mapping of settings (`results_dir: results`, ...)")
    unknown = sorted(str(key) for key in set(data) - _KNOWN_KEYS)
    if unknown:
        raise _fail(path, f"unknown setting `{unknown[0]}`; known settings are "
                          f"{', '.join(sorted(_KNOWN_KEYS))}")
    git = data.get("git") or {}
    if not isinstance(git, dict) or set(git) - _GIT_KEYS:
        raise _fail(path, "`git` takes only `require_clean: true|false`, "
                          "`capture_untracked: true|false`, `untracked_max_mb: MB` and "
                          "`untracked_max_files: N`")
    return Settings(
        results_dir=_string(data, "results_dir", path) or "results",
        name=_string(data, "name", path),
        command=_command(data.get("command"), path),
        configs=_strings(data, "configs", path),
        checkpoints=_patterns(data, path) or DEFAULT_CHECKPOINT_PATTERNS,
        require_clean=_bool(git, "require_clean", path),
        capture_untracked=_bool(git, "capture_untracked", path),
        untracked_max_mb=_limit(git, "untracked_max_mb", path, 10.0),
        untracked_max_files=int(_limit(git, "untracked_max_files", path, 1000)),
        grace_period=_number(data, "grace_period", path, 10.0),
        heartbeat_interval=_number(data, "heartbeat_interval", path, 30.0),
        env=_strings(data, "env", path),
        slurm=_mapping(data, "slurm", path),
        launcher=_launcher(data, path),
    )


def _launcher(data: dict[str, Any], path: Path) -> str:
    value = data.get("launcher", "local")
    if value not in LAUNCHERS:
        raise _fail(path, f"`launcher` must be `local` or `slurm`, not {value!r}")
    return str(value)


def _string(data: dict[str, Any], key: str, path: Path) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
        raise _fail(path, f"`{key}` must be a non-empty string")
    return str(value)


def _strings(data: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(path, f"`{key}` must be a string or a list of strings")
    return tuple(value)


def checkpoint_pattern_problem(pattern: str) -> str | None:
    """Why a checkpoint pattern cannot be used (the end of a sentence), or None. Patterns
    are globs relative to the run folder, naming things inside it."""
    parts = PurePosixPath(pattern).parts
    if pattern.startswith(("/", "~")):
        return ("is not relative to the run folder; patterns name files inside each run "
                "folder, e.g. `checkpoints/*.pt`")
    if ".." in parts:
        return ("leads out of the run folder with `..`; patterns name files inside each run "
                "folder, e.g. `checkpoints/*.pt`")
    if not parts:
        return "names the run folder itself; name files inside it, e.g. `checkpoints/*.pt`"
    if any("**" in part and part != "**" for part in parts):
        return "has `**` inside a name; `**` must be a whole part, e.g. `**/*.pt`"
    if "\0" in pattern:
        return "contains a NUL character; remove it"
    return None


def _patterns(data: dict[str, Any], path: Path) -> tuple[str, ...]:
    patterns = _strings(data, "checkpoints", path)
    for pattern in patterns:
        problem = checkpoint_pattern_problem(pattern)
        if problem:
            shown = pattern.replace("\0", "\\0")
            raise _fail(path, f"`checkpoints` pattern `{shown}` {problem}")
    return patterns


def _command(value: Any, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        import shlex

        try:
            words = tuple(shlex.split(value))
        except ValueError as exc:
            raise _fail(path, f"`command` cannot be split as a shell would ({exc})") from None
        if not words:
            raise _fail(path, "`command` is empty; give the command, e.g. "
                              "`command: python train.py`, or remove the setting")
        return words
    if isinstance(value, list) and value and all(isinstance(v, str | int | float) for v in value):
        return tuple(str(v) for v in value)
    raise _fail(path, "`command` must be a string or a non-empty list of strings")


MAX_SECONDS = 86400.0  # a day: the most any of xpm.yaml's durations may be


def _number(data: dict[str, Any], key: str, path: Path, default: float) -> float:
    """A duration in seconds: a finite number above 0 and at most a day."""
    value = data.get(key, default)
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not 0 < value <= MAX_SECONDS):  # NaN fails this too
        raise _fail(path, f"`{key}` must be a number of seconds above 0 and at most "
                          f"{MAX_SECONDS:.0f} (a day), not {value!r}")
    return float(value)


def _bool(data: dict[str, Any], key: str, path: Path) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _fail(path, f"`git.{key}` must be true or false")
    return value


def _limit(data: dict[str, Any], key: str, path: Path, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _fail(path, f"`git.{key}` must be a positive number")
    return float(value)


def _mapping(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        raise _fail(path, f"`{key}` must be a mapping")
    return value
