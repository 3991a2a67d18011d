"""`xpm init`: copy an example project (xpm.yaml, configs, train.py) into a folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import console
from ..errors import XpmError

# Template files stored under another name (a wheel and some tools drop dotfiles).
RENAMED = {"gitignore": ".gitignore"}
MERGED = {".gitignore"}  # an existing one gets the missing lines appended, never replaced
KEPT = {"README.md"}  # an existing one is the project's own: left alone, even with --force


def templates_root() -> Path:
    """Inside an installed wheel: xpm/templates; in a source checkout: ./templates."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    source = Path(__file__).resolve().parent.parent.parent / "templates"
    if source.is_dir():
        return source
    raise XpmError("the project templates are missing from this installation; "
                   "reinstall xpm-runs")


def template_files(template: str) -> dict[str, Path]:
    """Target path (relative, as written) → template file."""
    root = templates_root() / template
    if not root.is_dir():
        raise XpmError(f"template `{template}` does not exist; use default or torch")
    files: dict[str, Path] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(root)
            files[str(rel.with_name(RENAMED.get(rel.name, rel.name)))] = path
    return files


def init(directory: str, template: str, force: bool, git: bool | None = None) -> int:
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise XpmError(f"`{target}` exists and is not a folder; choose another DIR")
    files = template_files(template)
    kept = [rel for rel in files if rel in KEPT and (target / rel).exists()]
    clashes = [rel for rel in files
               if rel not in MERGED and rel not in kept and (target / rel).exists()]
    if clashes and not force:
        raise XpmError(f"{len(clashes)} file(s) already exist in {target}: "
                       f"{', '.join(clashes)}; nothing was written (use --force to overwrite)")
    try:
        target.mkdir(parents=True, exist_ok=True)
        for rel, source in files.items():
            dest = target / rel
            if rel in kept:
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if rel in MERGED and dest.exists():
                _append_missing_lines(dest, source)
            else:
                shutil.copyfile(source, dest)
    except OSError as exc:
        raise XpmError(f"cannot write the project into `{target}` ({exc.strerror}); "
                       "check the folder's permissions") from None
    where = "here" if target.resolve() == Path.cwd().resolve() else str(target)
    written = [rel for rel in files if rel not in kept]
    console.info(f"created an xpm project ({template} template) {'in ' if where != 'here' else ''}"
                 f"{where}: {', '.join(written)}"
                 + (f" (kept your {', '.join(kept)})" if kept else ""))
    offer_git(target, git, template)
    step = "" if where == "here" else f"cd {target} && "
    console.info(f"next: {step}xpm run")
    return 0


def _append_missing_lines(dest: Path, source: Path) -> None:
    have = dest.read_text(encoding="utf-8").splitlines()
    missing = [line for line in source.read_text(encoding="utf-8").splitlines()
               if line and line not in have]
    if missing:
        text = dest.read_text(encoding="utf-8")
        prefix = "" if text.endswith("\n") or not text else "\n"
        dest.write_text(text + prefix + "\n".join(missing) + "\n", encoding="utf-8")


def offer_git(target: Path, git: bool | None, template: str) -> None:
    """Make the new project a git repository of its own (init and a first commit), so that
    its runs record its own code: with --git, or when asked on a terminal and the folder is
    in no repository yet; never with --no-git or inside a repository."""
    import subprocess

    from ..vcs.state import git_installed

    if git is False:
        return
    if not git_installed():
        if git:
            raise XpmError("`git` is not installed, so --git cannot make the project a "
                           "repository; install git, or drop --git")
        return
    inside = subprocess.run(["git", "-C", str(target), "rev-parse", "--show-toplevel"],
                            capture_output=True, text=True)
    if inside.returncode == 0:
        if git:
            console.info(f"{target} is already in the git repository {inside.stdout.strip()}; "
                         "not making another")
        return
    if git is None and not (console.stdin_is_terminal() and console.confirm(
            f"{target} is in no git repository: make it one and commit the project "
            "(its runs then record its own code)?")):
        if not console.stdin_is_terminal():
            console.info("the project is in no git repository; `xpm init --git` (or "
                         "`git init && git add -A && git commit`) makes it one")
        return
    steps = (["init", "-q"], ["add", "-A"],
             ["commit", "-q", "-m", f"xpm init ({template} template)"])
    for step in steps:
        done = subprocess.run(["git", "-C", str(target), *step], capture_output=True,
                              text=True)
        if done.returncode != 0:  # the project is written: a warning, not a failure
            said = (done.stderr.strip().splitlines() or ["no message"])[-1]
            console.warn(f"`git {step[0]}` failed in {target} ({said}); make the repository "
                         "yourself: git init && git add -A && git commit -m start")
            return
    console.info(f"made {target} a git repository with a first commit")
