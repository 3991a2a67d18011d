"""The results tree: run names, allocating run folders, resolving RUN references, scanning.

    results_dir/NAME/N/      one folder per run
    results_dir/NAME/.highest  the highest number ever handed out for NAME (and its lock)
    results_dir/.trash/NAME/N  runs `xpm clean` moved away (their numbers stay taken)
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..errors import XpmError
from .atomic import write_atomic
from .lock import RunLock
from .record import RECORD_FILE, RunRecord

TRASH_DIR = ".trash"
HIGHEST_FILE = ".highest"
HIGHEST_LOCK = ".highest.lock"
PREPARING_FILE = ".preparing"  # in a run folder whose preparation has not finished
STAGING_PREFIX = ".new-"  # NAME/.new-XXXX: a run folder made before it gets its number

_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9._\-]*\Z")  # \Z: no newline at the end


class RunRef(NamedTuple):
    """A run folder in the tree: its name, number and path."""

    name: str
    number: int
    path: Path

    @property
    def id(self) -> str:
        return f"{self.name}/{self.number}"


def check_name(name: str) -> str:
    if not _NAME.match(name) or name in (".", ".."):
        raise XpmError(
            f"run name `{name}` is not valid; use one path segment of letters, digits, "
            "`.`, `_` and `-`, not starting with a dot (e.g. -n mnist)"
        )
    return name


def _numbers(folder: Path) -> Iterator[int]:
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.isdigit() and entry.is_dir(follow_symlinks=False):
                    yield int(entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return


def _read_highest(name_dir: Path) -> int:
    try:
        return int((name_dir / HIGHEST_FILE).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def record_highest(name_dir: Path, number: int) -> None:
    """Raise the high-water mark so that `number` is never handed out again.

    Read, compare and write happen under a short lock of NAME's own (the mark must never
    go down when several xpm raise it at once); the run folders themselves are allocated
    without any lock.
    """
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(name_dir / HIGHEST_LOCK), timeout=30):
            if _read_highest(name_dir) >= number:
                return
            write_atomic(name_dir / HIGHEST_FILE, f"{number}\n".encode())
    except Timeout:
        raise XpmError(f"`{name_dir / HIGHEST_LOCK}` stayed locked for 30 s; is an xpm "
                       "process stuck? stop it and try again") from None


def _name_folder(results_dir: Path, name: str) -> Path:
    """results_dir/NAME, made if needed, for a valid run name."""
    check_name(name)
    name_dir = results_dir / name
    try:
        name_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise XpmError(f"cannot create the results folder `{name_dir}` ({exc.strerror}); "
                       "check `results_dir` in xpm.yaml and its permissions") from None
    return name_dir


def allocate(results_dir: Path, name: str, mark: bool = True) -> RunRef:
    """Create results_dir/NAME/N with N above every number handed out before.

    Race-free without a global lock: mkdir either creates the folder or fails because a
    concurrent xpm took that number, in which case we move on to the next. Without
    `mark`, the high-water mark is left to the caller (`record_highest` once after making
    many runs: the folders themselves keep their numbers taken meanwhile).
    """
    name_dir = _name_folder(results_dir, name)
    trash = results_dir / TRASH_DIR / name
    number = max(_read_highest(name_dir), *_numbers(name_dir), *_numbers(trash), 0) + 1
    while True:
        path = name_dir / str(number)
        try:
            path.mkdir()
        except FileExistsError:
            number += 1
            continue
        except OSError as exc:
            raise XpmError(f"cannot create the run folder `{path}` ({exc.strerror}); "
                           "check the permissions of the results folder") from None
        if mark:
            record_highest(name_dir, number)
        return RunRef(name, number, path)


def allocate_locked(results_dir: Path, name: str, mark: bool = True
                    ) -> tuple[RunRef, RunLock]:
    """Like `allocate`, but the folder appears with its lock held and a `.preparing`
    marker inside, from its first instant: it is made under a hidden name, locked, marked,
    then renamed to results_dir/NAME/N (a rename never lands on a folder with files in
    it, so a number taken meanwhile is skipped as with mkdir). A folder whose preparation
    died (marker, lock free) is then known to be abandoned, never mistaken for a corrupt
    run. The caller removes the marker once run.json is written (`prepared`), and
    releases the lock. `mark`: as for `allocate`."""
    name_dir = _name_folder(results_dir, name)
    try:
        staging = _staging_folder(name_dir)
    except OSError as exc:
        raise XpmError(f"cannot create a run folder in `{name_dir}` ({exc.strerror}); "
                       "check `results_dir` in xpm.yaml, its permissions and free space"
                       ) from None
    path = staging
    lock: RunLock | None = None
    try:
        lock = RunLock(staging)  # imports filelock: a signal meanwhile leaves no folder
        lock.try_acquire()  # nobody else knows this folder: free
        (staging / PREPARING_FILE).write_text(f"{os.getpid()}\n")
        trash = results_dir / TRASH_DIR / name
        number = max(_read_highest(name_dir), *_numbers(name_dir), *_numbers(trash), 0) + 1
        while True:
            target = name_dir / str(number)
            try:
                os.rename(staging, target)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                    number += 1
                    continue
                raise
            path = target
            break
        lock.moved_to(path)
        if mark:
            record_highest(name_dir, number)
    except BaseException as exc:
        shutil.rmtree(path, ignore_errors=True)
        if lock is not None:
            lock.release()
        if isinstance(exc, OSError):
            raise XpmError(f"cannot create a run folder in `{name_dir}` ({exc.strerror}); "
                           "check the permissions and free space of the results folder"
                           ) from None
        raise
    return RunRef(name, number, path), lock


def prepared(run_dir: Path) -> None:
    """The run folder is complete (run.json written): no longer being prepared."""
    (run_dir / PREPARING_FILE).unlink(missing_ok=True)


def _staging_folder(name_dir: Path) -> Path:
    """A new empty folder NAME/.new-XXXX, made by this process only (its mode as the umask
    allows, as for any folder; tempfile's mkdtemp would make it private)."""
    while True:
        path = name_dir / f"{STAGING_PREFIX}{os.urandom(6).hex()}"
        try:
            os.mkdir(path)
        except FileExistsError:  # 48 random bits taken: try others
            continue
        return path


def run_numbers(results_dir: Path, name: str) -> list[int]:
    """The numbers of NAME's run folders, ascending (what _numbers gives, in one list:
    listing calls it for every name of 100,000 runs)."""
    try:
        with os.scandir(results_dir / name) as entries:
            return sorted([int(e.name) for e in entries
                           if e.name.isdigit() and e.is_dir(follow_symlinks=False)])
    except (FileNotFoundError, NotADirectoryError):
        return []


def run_names(results_dir: Path, follow_links: bool = False) -> list[str]:
    """The folders of results_dir not starting with a dot. A symbolic link to a folder
    (results/big -> /scratch/big) counts only with `follow_links`: reading commands go
    through it, `xpm clean` never does."""
    try:
        with os.scandir(results_dir) as entries:
            return sorted(
                e.name for e in entries
                if not e.name.startswith(".") and _is_folder(e, follow_links)
            )
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise not_a_folder(results_dir) from None


def not_a_folder(results_dir: Path) -> XpmError:
    return XpmError(f"results_dir `{results_dir}` is a file, not a folder; move the file "
                    "away or set `results_dir` in xpm.yaml to a folder")


def _is_folder(entry: os.DirEntry[str], follow_links: bool) -> bool:
    try:
        return entry.is_dir(follow_symlinks=follow_links)
    except OSError:  # a link in a loop, a folder we may not look into
        return False


def scan(results_dir: Path, names: list[str] | None = None) -> Iterator[RunRef]:
    """Every run folder in the tree (or of the given names), by name then number."""
    for name in names if names is not None else run_names(results_dir):
        for number in run_numbers(results_dir, name):
            yield RunRef(name, number, results_dir / name / str(number))


def resolve(results_dir: Path, ref: str) -> RunRef:
    """`NAME/N`, `NAME` (its highest N), `NAME/-K` (K-th from the end) or a run folder path."""
    text = ref.strip().rstrip("/")
    if os.path.exists(results_dir) and not os.path.isdir(results_dir):
        raise not_a_folder(results_dir)
    if not text:
        raise XpmError("an empty RUN was given; name a run as NAME, NAME/N or a folder path")
    name, sep, tail = text.partition("/")
    if _NAME.match(name) and (not sep or re.fullmatch(r"-?\d+", tail)):
        if sep and not tail.startswith("-"):  # NAME/N: look at that folder, not all of NAME's
            path = results_dir / name / str(int(tail))
            if path.is_dir() and not path.is_symlink():  # as run_numbers counts them
                return RunRef(name, int(tail), path)
        numbers = run_numbers(results_dir, name)
        if not numbers and not (results_dir / name).is_dir():
            if Path(text).is_dir() and (Path(text) / RECORD_FILE).is_file():
                return _from_path(Path(text))
            raise XpmError(f"no run named `{name}` in {results_dir}; "
                           "`xpm ls` lists the runs there")
        if not sep:
            if not numbers:
                raise XpmError(f"`{name}` has no runs left in {results_dir}; "
                               "`xpm ls` lists the runs there")
            return RunRef(name, numbers[-1], results_dir / name / str(numbers[-1]))
        index = int(tail)
        if index < 0:
            if -index > len(numbers):
                raise XpmError(f"`{text}`: `{name}` has only {len(numbers)} runs; "
                               f"`xpm ls {name}` lists them")
            number = numbers[index]
        else:
            number = index
            if number not in numbers:
                raise XpmError(f"run `{name}/{number}` does not exist in {results_dir}; "
                               f"`xpm ls {name}` lists its runs")
        return RunRef(name, number, results_dir / name / str(number))
    path = Path(text)
    if path.is_dir():
        return _from_path(path)
    raise XpmError(f"`{ref}` is not a run: write NAME, NAME/N, NAME/-1 or a run folder's path")


def copy_of(record: RunRecord | None, path: Path) -> str | None:
    """The id a run folder's run.json records (`record`), when the
    folder is not at NAME/N of that id: it is a copy of that run."""
    if record is None or Path(path).parts[-2:] == (record.name, str(record.number)):
        return None
    return str(record.id)


def _from_path(path: Path) -> RunRef:
    """A run folder named by its path: NAME/N by where it is (what `ls` lists and users
    type); a folder not named by a number (a copy at backup/best) by its run.json. `show`
    and the API give a run the same identity (see docs/rerun.md)."""
    from .record import CorruptRecord, read_record_data

    path = path.resolve()
    if path.name.isdigit():
        return RunRef(path.parent.name, int(path.name), path)
    try:
        data = read_record_data(path)
        return RunRef(str(data["name"]), int(data["number"]), path)
    except (CorruptRecord, KeyError, TypeError, ValueError):
        raise XpmError(f"`{path}` is not a run folder (no readable run.json, and its name "
                       "is not a number); point at results/NAME/N") from None
