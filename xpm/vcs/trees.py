"""The code a run ran, rebuilt as a git tree (its commit plus its git.patch), and the
difference between two such trees: what `xpm diff --code` shows.

With gitinfo.py, the only module that talks to git, and the only one that imports
GitPython (inside the functions: it costs more to import than the rest of `xpm diff`).

Nothing of the user's repository changes, neither the working tree, nor the index, nor
the object store: the trees are built in a temporary index (GIT_INDEX_FILE) and the new
objects go to a temporary object folder (GIT_OBJECT_DIRECTORY) that reads the
repository's own objects as an alternate (GIT_ALTERNATE_OBJECT_DIRECTORIES).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .state import git_installed

if TYPE_CHECKING:
    from git import Repo

STATUSES = {"A": "added", "D": "deleted", "M": "modified", "R": "renamed", "C": "copied",
            "T": "type changed", "U": "unmerged", "X": "unknown"}


@dataclass(frozen=True)
class Source:
    """Where a run's code comes from, as recorded."""

    run_id: str
    has_git: bool
    commit: str | None
    patch: Path | None  # the run's git.patch, when it recorded one
    patch_missing: bool = False  # recorded, but the file is gone from the run folder
    untracked_count: int = 0
    untracked_archive: Path | None = None  # the captured untracked files, when kept


@dataclass(frozen=True)
class FileChange:
    path: str
    status: str  # one of STATUSES' values
    old_path: str | None = None  # for renames and copies
    insertions: int | None = None  # None for a binary file
    deletions: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "old_path": self.old_path, "status": self.status,
                "insertions": self.insertions, "deletions": self.deletions}


@dataclass(frozen=True)
class CodeDiff:
    """The code of `runs[1]` against the code of `runs[0]`."""

    runs: tuple[str, str]
    available: bool  # False when either side's code could not be rebuilt (see notes)
    files: tuple[FileChange, ...] = ()
    patch: str = ""
    notes: tuple[str, ...] = ()

    @property
    def differs(self) -> bool:
        return bool(self.files)

    def to_json(self) -> dict[str, Any]:
        return {"runs": list(self.runs), "available": self.available,
                "differs": self.differs, "files": [f.to_json() for f in self.files],
                "patch": self.patch, "notes": list(self.notes)}


def short(commit: str) -> str:
    return commit[:10]


class _Trees:
    """Builds trees in a temporary index and object folder beside the repository."""

    def __init__(self, repo: Repo, scratch: Path) -> None:
        objects = scratch / "objects"
        objects.mkdir()
        self.scratch = scratch
        self.repo = repo
        self.env = {
            "GIT_INDEX_FILE": str(scratch / "index"),
            "GIT_OBJECT_DIRECTORY": str(objects),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(Path(repo.common_dir, "objects").resolve()),
            "GIT_OPTIONAL_LOCKS": "0",
        }

    def git(self, command: str, *args: str) -> bytes:
        run = getattr(self.repo.git, command.replace("-", "_"))  # read_tree → git read-tree
        out: bytes = run(*args, env=self.env, stdout_as_string=False,
                         strip_newline_in_stdout=False)
        return out

    def build(self, source: Source) -> tuple[str | None, str | None]:
        """(tree, None), or (None, why this run's code cannot be rebuilt)."""
        from git import GitCommandError

        try:
            if source.commit is None:  # a repository without commits yet
                self.git("read-tree", "--empty")
            else:
                self.git("read-tree", f"{source.commit}^{{tree}}")
            if source.patch is not None and source.patch.stat().st_size > 0:
                self.git("apply", "--cached", "--binary", "--whitespace=nowarn",
                         str(source.patch.resolve()))
            if source.untracked_archive is not None:
                self._add_untracked(source.untracked_archive)
            return self.git("write-tree").decode().strip(), None
        except GitCommandError as exc:
            reason = _first_line(exc.stderr) or f"git exited with {exc.status}"
            return None, (f"the code of {source.run_id} cannot be rebuilt from its commit and "
                          f"git.patch ({reason}); check {source.patch or 'the commit'}")

    def _add_untracked(self, archive: Path) -> None:
        """Add the files of a run's untracked archive to the temporary index."""
        from .untracked import restore

        files = Path(tempfile.mkdtemp(prefix="untracked-", dir=self.scratch))
        names = [n for n in restore(archive, files) if not (files / n).is_dir()
                 or (files / n).is_symlink()]
        if names:
            from git import Git

            env = dict(self.env, GIT_DIR=str(Path(self.repo.git_dir).resolve()),
                       GIT_WORK_TREE=str(files))
            Git(str(files)).add("-f", "--", *names, env=env)

    def compare(self, a: str, b: str) -> tuple[tuple[FileChange, ...], str]:
        if a == b:
            return (), ""
        numstat = self.git("diff", "--numstat", "-z", "-M", "--no-ext-diff", a, b)
        names = self.git("diff", "--name-status", "-z", "-M", "--no-ext-diff", a, b)
        patch = self.git("diff", "--no-color", "--no-ext-diff", "-M", a, b)
        return _files(names, numstat), patch.decode("utf-8", "replace")


def _first_line(text: Any) -> str:
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    if not lines:
        return ""
    line = lines[0]
    return line.removeprefix("stderr: ").strip("'").strip()


def _files(names: bytes, numstat: bytes) -> tuple[FileChange, ...]:
    """Join `git diff --name-status -z` and `--numstat -z` (same files, same order)."""
    counts: dict[str, tuple[int | None, int | None]] = {}
    tokens = numstat.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(tokens):
        head = tokens[i]
        i += 1
        if not head:
            continue
        added, deleted, path = head.split("\t", 2)
        if not path:  # a rename or copy: the old and new paths follow
            path = tokens[i + 1]
            i += 2
        counts[path] = (None if added == "-" else int(added),
                        None if deleted == "-" else int(deleted))
    changes: list[FileChange] = []
    tokens = names.decode("utf-8", "surrogateescape").split("\0")
    i = 0
    while i < len(tokens):
        code = tokens[i]
        i += 1
        if not code:
            continue
        old: str | None = None
        if code[0] in "RC":
            old, path = tokens[i], tokens[i + 1]
            i += 2
        else:
            path = tokens[i]
            i += 1
        ins, dels = counts.get(path, (None, None))
        changes.append(FileChange(path, STATUSES.get(code[0], "unknown"), old, ins, dels))
    return tuple(changes)


def _unbuildable(source: Source, repository: Path | None, found: frozenset[str]
                 ) -> str | None:
    """Why this run's code cannot be rebuilt here, when it is known before asking git."""
    if not source.has_git:
        return f"{source.run_id} was not run in a git repository; it has no code to compare"
    if repository is None:
        return (f"no git repository here holds the code of {source.run_id}; run `xpm diff` "
                "from the project's repository")
    if source.commit is not None and source.commit not in found:
        return (f"commit {short(source.commit)} of {source.run_id} is not in the repository "
                f"at {repository}; fetch it (e.g. `git fetch --all`) to compare its code")
    return None


def code_diffs(repository: Path | None, sources: Sequence[Source], found: frozenset[str]
               ) -> list[CodeDiff]:
    """The code of each run against the first one's, rebuilt in `repository` (a folder in
    the repository holding the `found` commits; None when there is none)."""
    if not git_installed():
        return [CodeDiff((sources[0].run_id, s.run_id), False,
                         notes=("git is not installed; install it to compare the runs' code",))
                for s in sources[1:]]
    problems = [_unbuildable(s, repository, found) for s in sources]
    notes_of: dict[int, tuple[str, ...]] = {}
    for index, source in enumerate(sources):
        notes: list[str] = []
        if source.patch_missing:
            notes.append(f"{source.run_id} recorded a git.patch that is no longer in its run "
                         "folder; its code is taken as its commit alone")
        if source.untracked_count and source.untracked_archive is None:
            notes.append(f"{source.run_id} had {source.untracked_count} untracked file(s), "
                         "which git.patch does not hold; only tracked files are compared")
        notes_of[index] = tuple(notes)
    out: list[CodeDiff] = []
    with tempfile.TemporaryDirectory(prefix="xpm-code-") as scratch:
        trees = None
        if repository is not None and any(p is None for p in problems):
            from git import Repo

            trees = _Trees(Repo(repository, search_parent_directories=True), Path(scratch))
        built = [trees.build(s) if trees is not None and p is None else (None, p)
                 for s, p in zip(sources, problems, strict=True)]
        first_tree, first_problem = built[0]
        for index in range(1, len(sources)):
            runs = (sources[0].run_id, sources[index].run_id)
            tree, problem = built[index]
            said = tuple(dict.fromkeys((*notes_of[0], *notes_of[index],
                                        *(p for p in (first_problem, problem) if p))))
            if first_tree is None or tree is None:
                out.append(CodeDiff(runs, False, notes=said))
                continue
            assert trees is not None
            files, patch = trees.compare(first_tree, tree)
            out.append(CodeDiff(runs, True, files, patch, said))
    return out

