"""A run's recorded code rebuilt as files: its commit, its git.patch applied, its captured
untracked files restored. Two forms:

- a temporary git worktree (`git worktree add --detach`), where `xpm rerun --exact` runs
  the command: git sees the very commit and the very changes, so the new run records the
  same code as the old one;
- a plain read-only copy in results/.cache/code/, for `run.load(..., exact=True)`.

The user's repository keeps its working tree, index, stash, branches and HEAD: a worktree
only adds its own entry under .git/worktrees (removed with it), the copy only reads
objects (`git archive`). Hooks never run (core.hooksPath is pointed at nothing).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import XpmError
from ..runs.record import RunRecord
from . import untracked as untracked_files
from .state import commit_facts, git_installed

CODE_CACHE = Path(".cache") / "code"
_NO_HOOKS = ("-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false")


@dataclass(frozen=True)
class Code:
    """Where a run's code comes from: a repository holding its commit, and its files."""

    run_id: str
    repository: Path  # a folder in a repository holding the commit
    commit: str
    patch: Path | None  # the run's git.patch, when it has one
    archive: Path | None  # the run's captured untracked files, when kept
    project: Path  # the project root relative to the repository's top level
    submodules: bool  # the run recorded submodules (not rebuilt)

    def key(self) -> str:
        """A name for this code: the commit and a digest of the patch and archive."""
        digest = hashlib.sha256()
        for part in (self.patch, self.archive):
            digest.update(part.read_bytes() if part is not None else b"-")
        return f"{self.commit[:12]}-{digest.hexdigest()[:12]}"


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C", **(env or {}))
    return subprocess.run(["git", *_NO_HOOKS, *args], cwd=cwd, env=full, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL)


def _first(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def locate(record: RunRecord, run_dir: Path, here: Path) -> Code:
    """The recorded code of a run, checked rebuildable from a repository at hand (the one
    it was recorded in, else the one holding `here`); a clear XpmError when it is not."""
    git = record.git
    if not git_installed():
        raise XpmError("git is not installed; install it to rebuild the code of "
                       f"{record.id}")
    if git is None:
        raise XpmError(f"{record.id} recorded no git state (it was not run in a git "
                       "repository), so its code cannot be rebuilt; rerun it without --exact")
    if git.commit is None:
        raise XpmError(f"{record.id} was run in a repository without commits, so its code "
                       "cannot be rebuilt; rerun it without --exact")
    patch = None
    if git.patch:
        patch = run_dir / git.patch
        if not patch.is_file():
            raise XpmError(f"{record.id} recorded a git.patch that is no longer in "
                           f"{run_dir}, so its uncommitted changes are lost; rerun it "
                           "without --exact")
    archive = None
    if git.untracked_archive:
        archive = run_dir / git.untracked_archive
        if not archive.is_file():
            raise XpmError(f"{record.id} recorded its untracked files in {archive}, which "
                           "is gone; rerun it without --exact")
    candidates = [Path(git.root)] if git.root else []
    candidates.append(here)
    facts = commit_facts(candidates, [git.commit])
    if facts.repository is None:
        raise XpmError(f"no git repository here holds the code of {record.id}; run "
                       "`xpm rerun` from the project's repository")
    if git.commit not in facts.found:
        raise XpmError(f"commit {git.commit[:10]} of {record.id} is not in the repository at "
                       f"{facts.repository}; fetch it (`git fetch --all`) and try again")
    project = Path()
    if git.root and record.cwd:
        with contextlib.suppress(ValueError):
            project = Path(record.cwd).relative_to(git.root)
    return Code(record.id, facts.repository, git.commit, patch, archive, project,
                bool(git.submodules))


def _apply(code: Code, tree: Path, env: dict[str, str] | None = None) -> None:
    if code.patch is not None and code.patch.stat().st_size > 0:
        applied = _run(["apply", "--binary", "--whitespace=nowarn", str(code.patch.resolve())],
                       tree, env)
        if applied.returncode != 0:
            raise _does_not_apply(code, applied.stderr)
    if code.archive is not None:
        untracked_files.restore(code.archive, tree)


def check(code: Code) -> None:
    """XpmError unless the run's git.patch applies to its commit; tried in a temporary
    index, so that nothing is made when it does not."""
    if code.patch is None or code.patch.stat().st_size == 0:
        return
    with tempfile.TemporaryDirectory(prefix="xpm-check-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        read = _run(["read-tree", code.commit], code.repository, env)
        if read.returncode != 0:
            raise XpmError(f"git cannot read commit {code.commit[:10]} of {code.run_id} "
                           f"({_first(read.stderr)}); check the repository with `git fsck`")
        applied = _run(["apply", "--cached", "--check", "--binary", "--whitespace=nowarn",
                        str(code.patch.resolve())], code.repository, env)
        if applied.returncode != 0:
            raise _does_not_apply(code, applied.stderr)


def _does_not_apply(code: Code, stderr: str) -> XpmError:
    return XpmError(f"the git.patch of {code.run_id} does not apply to its commit "
                    f"{code.commit[:10]} ({_first(stderr)}); its code cannot be rebuilt "
                    "exactly — rerun it without --exact")


def add_worktree(code: Code, parent: Path | None = None) -> Path:
    """A new temporary worktree holding the run's code; returns its top level."""
    target = Path(tempfile.mkdtemp(prefix=f"xpm-exact-{code.run_id.replace('/', '-')}-",
                                   dir=parent))
    target.rmdir()  # git worktree add makes it
    try:
        added = _run(["worktree", "add", "--detach", "-q", str(target), code.commit],
                     code.repository)
        if added.returncode != 0:
            raise XpmError(f"git cannot make a worktree of commit {code.commit[:10]} for "
                           f"{code.run_id} ({_first(added.stderr)}); check the repository "
                           "with `git worktree list`")
        _apply(code, target)
    except BaseException:  # Ctrl-C included: no half-made worktree is left behind
        remove_worktree(code.repository, target)
        raise
    return target


def remove_worktree(repository: Path, target: Path) -> None:
    """Remove a worktree made by add_worktree, and git's entry for it."""
    removed = _run(["worktree", "remove", "--force", "--force", str(target)], repository)
    if removed.returncode != 0 or target.exists():
        shutil.rmtree(target, ignore_errors=True)
        _run(["worktree", "prune"], repository)


def is_worktree_at(target: Path, commit: str) -> bool:
    """Whether `target` is still a worktree checked out at `commit` (one to reuse)."""
    if not (target / ".git").exists():
        return False
    head = _run(["rev-parse", "HEAD"], target)
    return head.returncode == 0 and head.stdout.strip() == commit


def materialise(code: Code, results_dir: Path) -> Path:
    """The run's code as read-only files in results/.cache/code/KEY (made once, kept);
    returns its top level. Nothing of the repository changes: `git archive` only reads."""
    cache = results_dir / CODE_CACHE
    final = cache / code.key()
    if final.is_dir():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
    try:
        tar_path = scratch.parent / f"{scratch.name}.tar"
        try:
            with open(tar_path, "wb") as out:
                archived = subprocess.run(
                    ["git", *_NO_HOOKS, "archive", "--format=tar", code.commit],
                    cwd=code.repository, stdout=out, stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL)
            if archived.returncode != 0:
                raise XpmError(f"git cannot read commit {code.commit[:10]} of {code.run_id} "
                               f"({_first(archived.stderr.decode(errors='replace'))})")
            with tarfile.open(tar_path) as tar:
                tar.extractall(scratch, filter="data")
        finally:
            tar_path.unlink(missing_ok=True)
        # outside any repository for git apply: it must patch these files, not the project
        _apply(code, scratch, {"GIT_CEILING_DIRECTORIES": str(scratch.parent)})
        _read_only(scratch)
        try:
            os.rename(scratch, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(scratch, ignore_errors=True)  # another process made it first
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return final


def _read_only(tree: Path) -> None:
    for folder, _dirs, files in os.walk(tree):
        for name in files:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & ~0o222)
