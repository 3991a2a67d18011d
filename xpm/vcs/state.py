"""Git state of the project: with gitcode.py, the only module that talks to git.

Recording a run needs three plumbing calls, made to the git CLI directly and at once
(`status --porcelain=v2 --branch` gives the commit, the branch, dirtiness and the
untracked files; `rev-parse --show-toplevel` the top level; `config` the remotes), then,
when the tree is dirty, the diff, started as soon as the status is read and left running
while the run folder is made (`PendingPatch`). GitPython costs more to import than all of
them take to run. The same goes for what `xpm diff` asks of every pair of runs (are their
commits here, how far apart). GitPython is imported only for the richer work, in
gitcode.py (`xpm diff --code`).

`xpm run` starts the calls before it imports most of itself, so this module imports little:
the record's types and the masking of remotes are imported when the answers are read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple

from ..errors import XpmError

if TYPE_CHECKING:
    from ..runs.record import GitState

UNTRACKED_LIMIT = 100
PATCH_PIPE_SIZE = 1 << 20  # what a pending diff may print before it waits to be read
_F_SETPIPE_SZ = 1031


def strip_credentials(url: str) -> str:
    """The remote without credentials, whatever its scheme (see masking.strip_userinfo)."""
    from ..masking import strip_userinfo

    return strip_userinfo(url)


def _git(args: list[str], cwd: Path, stdin: int = subprocess.DEVNULL,
         stdout: int | IO[bytes] = subprocess.PIPE) -> subprocess.Popen[bytes]:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    return subprocess.Popen(
        ["git", *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, stdin=stdin, env=env,
    )


def _finish(proc: subprocess.Popen[bytes], data: bytes | None = None) -> tuple[int, bytes]:
    out, _ = proc.communicate(data)
    return proc.returncode, out


def git_installed() -> bool:
    return shutil.which("git") is not None


class GitUnreadable(XpmError):
    """git is there and so is a repository, but git would not report its state."""


class Capture:
    """The git calls that record a repository's state, started at once and left running
    while xpm does other work; `result()` collects them."""

    def __init__(self, root: Path) -> None:
        self._procs: tuple[subprocess.Popen[bytes], ...] = ()
        if git_installed():
            self._procs = (
                _git(["status", "--porcelain=v2", "--branch", "-z",
                      "--untracked-files=normal"], root),
                _git(["rev-parse", "--show-toplevel"], root),
                _git(["config", "--get-regexp", r"^remote\..*\.url$"], root),
            )

    def result(self) -> GitState | None:
        """The state of the repository holding the root, or None when it is not in one.

        GitUnreadable when git answers otherwise (a repository it refuses to read, say)."""
        if not self._procs:
            return None
        status, top, remotes = self._procs
        status_out, status_err = status.communicate()
        top_out, top_err = top.communicate()
        remote_out, _ = remotes.communicate()
        if status.returncode != 0 or top.returncode != 0:
            err = (status_err or top_err).decode("utf-8", "replace")
            if "not a git repository" in err:
                return None
            first = next((line for line in err.splitlines() if line.strip()), "no message")
            raise GitUnreadable(f"git cannot read the repository here ({first.strip()})")
        return _parse(status_out, Path(top_out.decode().strip()), remote_out)


def capture(root: Path) -> GitState | None:
    """The state of the repository holding `root`, or None when it is not in one."""
    return Capture(root).result()


def _parse(status_out: bytes, toplevel: Path, remote_out: bytes) -> GitState:
    from ..runs.record import GitState

    commit: str | None = None
    branch: str | None = None
    dirty = False
    untracked: list[str] = []
    untracked_count = 0
    fields = status_out.split(b"\0")
    i = 0
    while i < len(fields):
        entry = fields[i].decode("utf-8", "backslashreplace")
        i += 1
        if entry.startswith("# branch.oid "):
            oid = entry.split(" ", 2)[2]
            commit = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry.split(" ", 2)[2]
            branch = None if head == "(detached)" else head
        elif entry[:2] in ("1 ", "u "):
            dirty = True
        elif entry.startswith("2 "):
            dirty = True
            i += 1  # the original path follows in its own field
        elif entry.startswith("? "):
            untracked_count += 1
            if len(untracked) < UNTRACKED_LIMIT:
                untracked.append(entry[2:])
    return GitState(
        commit=commit,
        branch=branch,
        dirty=dirty,
        remote=_pick_remote(remote_out.decode("utf-8", "replace")),
        untracked=tuple(untracked),
        untracked_count=untracked_count,
        root=str(toplevel),
        submodules=_submodules(toplevel),
    )


def _pick_remote(config_lines: str) -> str | None:
    urls: dict[str, str] = {}
    for line in config_lines.splitlines():
        key, _, url = line.partition(" ")
        urls[key[len("remote."):-len(".url")]] = url.strip()
    chosen = urls.get("origin") or next(iter(urls.values()), None)
    return strip_credentials(chosen) if chosen else None


def save_patch(state: GitState, run_dir: Path, pending: PendingPatch | None = None
               ) -> GitState:
    """Write uncommitted changes to tracked files to run_dir/git.patch (when dirty); from
    `pending`, the diff of this state already started (`start_patch`), when given."""
    from dataclasses import replace

    from ..runs.record import PATCH_FILE

    if pending is None:
        pending = start_patch(state)
        if pending is None:  # a clean tree
            return state
    return replace(state, patch=pending.save(run_dir / PATCH_FILE))


class PendingPatch:
    """The `git diff` of a dirty tree, started as soon as the status names its base, and
    left running while xpm makes the run folder: what it prints waits in a pipe (up to
    PATCH_PIPE_SIZE, then git waits) until `save` streams it into git.patch."""

    def __init__(self, args: list[str], root: str) -> None:
        self.root = root
        self._proc = _git(args, Path(root))
        assert self._proc.stdout is not None
        try:
            import fcntl

            fcntl.fcntl(self._proc.stdout.fileno(), _F_SETPIPE_SZ, PATCH_PIPE_SIZE)
        except OSError:  # a smaller pipe only means git waits sooner
            pass

    def save(self, path: Path) -> str:
        """Stream the diff into `path`; its name (git.patch) once git is done. XpmError
        (and no file) when git failed."""
        import selectors

        proc = self._proc
        assert proc.stdout is not None and proc.stderr is not None
        err = bytearray()
        try:
            with open(path, "wb") as out, selectors.DefaultSelector() as sel:
                sel.register(proc.stdout, selectors.EVENT_READ, out)
                sel.register(proc.stderr, selectors.EVENT_READ, None)
                while sel.get_map():
                    for key, _ in sel.select():
                        data = os.read(key.fd, 1 << 16)
                        if not data:
                            sel.unregister(key.fileobj)
                        elif key.data is None:
                            err += data[:4096 - len(err)]
                        else:
                            key.data.write(data)
            proc.wait()
        except BaseException:
            self.cancel()
            path.unlink(missing_ok=True)
            raise
        finally:
            proc.stdout.close()
            proc.stderr.close()
        if proc.returncode != 0:
            path.unlink(missing_ok=True)
            raise _diff_failed(self.root, bytes(err))
        return path.name

    def cancel(self) -> None:
        """Stop the diff (the run was not made) and reap it."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()


def start_patch(state: GitState | None) -> PendingPatch | None:
    """Start the diff that `save_patch` writes, when the tree is dirty; see PendingPatch."""
    if state is None:
        return None
    args = _patch_args(state)
    if args is None or state.root is None:
        return None
    return PendingPatch(args, state.root)


def current_patch(state: GitState) -> bytes:
    """The uncommitted changes of the working tree now, as git.patch would hold them."""
    args = _patch_args(state)
    if args is None or state.root is None:
        return b""
    proc = _git(args, Path(state.root))
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise _diff_failed(state.root, err)
    return out


def _patch_args(state: GitState) -> list[str] | None:
    """`git diff` of the working tree against the commit, for tracked files: staged and
    unstaged changes together (against the empty tree before the first commit)."""
    if not state.dirty or state.root is None:
        return None
    base = state.commit
    if base is None:
        code, out = _finish(_git(["hash-object", "-t", "tree", "/dev/null"], Path(state.root)))
        if code != 0:
            return None
        base = out.decode().strip()
    return ["diff", "--binary", "--no-color", "--no-ext-diff", base]


def _diff_failed(root: str, err: bytes) -> XpmError:
    return XpmError(f"git diff failed in {root} ({err.decode(errors='replace').strip()}); "
                    "check the repository with `git status`")


def _submodules(toplevel: Path) -> dict[str, str]:
    if not (toplevel / ".gitmodules").is_file():
        return {}
    code, out = _finish(_git(["submodule", "status", "--recursive"], toplevel))
    if code != 0:
        return {}
    found: dict[str, str] = {}
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line[1:].split()
        if len(parts) >= 2:
            found[parts[1]] = parts[0]
    return found


class CommitFacts(NamedTuple):
    """What a repository knows of some recorded commits (for `xpm diff`)."""

    repository: Path | None  # a folder in the repository asked; None when none was found
    found: frozenset[str]  # the commits the repository holds
    apart: dict[tuple[str, str], tuple[int, int]]  # (a, b) → (only in a, only in b)


NO_FACTS = CommitFacts(None, frozenset(), {})


def commit_facts(candidates: Sequence[Path], commits: Sequence[str],
                 pairs: Sequence[tuple[str, str]] = ()) -> CommitFacts:
    """Which `commits` a repository holds, and how far apart each pair is (`git rev-list
    --count --left-right a...b`): the first of the `candidates` folders in a repository
    holding them all, else the one holding the most. Read-only; the git calls run at once.
    """
    if not git_installed():
        return NO_FACTS
    wanted = list(dict.fromkeys(c for c in commits if c))
    pairs = list(dict.fromkeys((a, b) for a, b in pairs if a and b and a != b))
    best = NO_FACTS
    for folder in dict.fromkeys(candidates):
        if not folder.is_dir():
            continue
        check = _git(["cat-file", "--batch-check"], folder, stdin=subprocess.PIPE)
        counts = [_git(["rev-list", "--count", "--left-right", f"{a}...{b}", "--"], folder)
                  for a, b in pairs]
        code, out = _finish(check, "".join(f"{c}\n" for c in wanted).encode())
        results = [_finish(proc) for proc in counts]
        if code != 0:
            continue  # not a repository: try the next folder
        found = set()
        for line in out.decode("utf-8", "replace").splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1] == "commit":
                found.add(parts[0])
        apart: dict[tuple[str, str], tuple[int, int]] = {}
        for pair, (count_code, count_out) in zip(pairs, results, strict=True):
            numbers = count_out.split()
            if count_code == 0 and len(numbers) == 2:
                apart[pair] = (int(numbers[0]), int(numbers[1]))
        facts = CommitFacts(folder, frozenset(found), apart)
        if len(found) == len(wanted):
            return facts
        if best.repository is None or len(found) > len(best.found):
            best = facts
    return best
