"""Git state of the project: the only module that talks to git.

Recording a run needs three plumbing calls, made to the git CLI directly and at once
(status, top level, remotes; then the diff when the tree is dirty): GitPython costs
more to import than all of them take to run. GitPython is imported only for the richer
work (`xpm diff --code`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

from .errors import XpmError
from .record import PATCH_FILE, GitState

UNTRACKED_LIMIT = 100
_CREDENTIALS = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.\-]*://)(?P<userinfo>[^@/]*)@", re.I)


def strip_credentials(url: str) -> str:
    """Remove any user:password@ (and, for http, any user@: often a token) from a URL."""
    match = _CREDENTIALS.match(url)
    if not match:
        return url
    scheme, userinfo = match.group("scheme"), match.group("userinfo")
    user = userinfo.split(":", 1)[0]
    keep = "" if scheme.lower().startswith("http") or ":" in userinfo else f"{user}@"
    return scheme + keep + url[match.end():]


def _git(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    return subprocess.Popen(
        ["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, env=env,
    )


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    out, _ = proc.communicate()
    return proc.returncode, out


def capture(root: Path) -> GitState | None:
    """The state of the repository holding `root`, or None when it is not in one."""
    if shutil.which("git") is None:
        return None
    status = _git(["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=normal"],
                  root)
    top = _git(["rev-parse", "--show-toplevel"], root)
    remotes = _git(["config", "--get-regexp", r"^remote\..*\.url$"], root)
    code, status_out = _finish(status)
    top_code, top_out = _finish(top)
    _, remote_out = _finish(remotes)
    if code != 0 or top_code != 0:
        return None
    commit: str | None = None
    branch: str | None = None
    dirty = False
    untracked: list[str] = []
    untracked_count = 0
    fields = status_out.split(b"\0")
    i = 0
    while i < len(fields):
        entry = fields[i].decode("utf-8", "surrogateescape")
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
    toplevel = Path(top_out.decode().strip())
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


def save_patch(state: GitState, run_dir: Path) -> GitState:
    """Write uncommitted changes to tracked files to run_dir/git.patch (when dirty)."""
    if not state.dirty or state.root is None:
        return state
    patch = _write_patch(Path(state.root), state.commit, run_dir / PATCH_FILE)
    return replace(state, patch=patch)


def current_patch(state: GitState) -> bytes:
    """The uncommitted changes of the working tree now, as git.patch would hold them."""
    if state.root is None:
        return b""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / PATCH_FILE
        return path.read_bytes() if _write_patch(Path(state.root), state.commit, path) else b""


def _write_patch(toplevel: Path, commit: str | None, path: Path) -> str | None:
    base = commit
    if base is None:  # no commits yet: everything tracked is new
        code, out = _finish(_git(["hash-object", "-t", "tree", "/dev/null"], toplevel))
        base = out.decode().strip() if code == 0 else None
        if base is None:
            return None
    # working tree vs the commit, for tracked files: staged and unstaged changes together
    args = ["diff", "--binary", "--no-color", "--no-ext-diff", base]
    with open(path, "wb") as out_file:
        proc = subprocess.Popen(
            ["git", *args], cwd=toplevel, stdout=out_file, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"),
        )
        _, err = proc.communicate()
    if proc.returncode != 0:
        path.unlink(missing_ok=True)
        raise XpmError(f"git diff failed in {toplevel} ({err.decode(errors='replace').strip()}); "
                       "check the repository with `git status`")
    return path.name


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
