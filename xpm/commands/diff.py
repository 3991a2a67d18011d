"""`xpm diff`: what differs between two runs (or more): config, command, code, packages,
environment, metrics and outcome."""

from __future__ import annotations

import json
from pathlib import Path

from .. import console
from ..errors import UsageError
from ..project import load_project
from ..reading.compare import DEFAULT_TOLERANCE, SECTIONS, compare, read_side
from ..runs import sweeps
from ..runs.record import GitState
from ..runs.tree import resolve


def diff(
    runs: tuple[str, ...],
    code: bool = False,
    everything: bool = False,
    as_json: bool = False,
    exit_code: bool = False,
    only: tuple[str, ...] = (),
    tolerance: float = DEFAULT_TOLERANCE,
) -> int:
    if any(sweeps.is_ref(r) for r in runs):
        runs = tuple(sweeps.run_ids(load_project().results_dir, runs))
    if len(runs) < 2:
        raise UsageError("xpm diff needs two runs or more, e.g. `xpm diff mnist/3 mnist/4` "
                         "(`xpm diff mnist/-2 mnist/-1` compares mnist's last two runs)")
    sections = _sections(only)
    if tolerance < 0:
        raise UsageError(f"--tolerance {tolerance} is negative; give a relative tolerance "
                         "such as 1e-6 (0 compares metrics exactly)")
    project = load_project()
    sides = [read_side(resolve(project.results_dir, ref)) for ref in runs]
    for side in sides:
        if side.metrics_problem:
            console.warn(side.metrics_problem)

    from ..vcs import state as gitinfo

    gits = [s.record.git for s in sides]
    candidates = [project.root, *(Path(g.root) for g in gits if g is not None and g.root)]
    commits = [g.commit for g in gits if g is not None and g.commit]
    facts = gitinfo.NO_FACTS
    # the repository is asked only when the commits differ, or for the code
    if code or ("git" in sections and len(set(commits)) > 1):
        first = gits[0].commit if gits[0] is not None else None
        pairs = [(first, c) for c in commits if first]
        facts = gitinfo.commit_facts(candidates, commits, pairs)
    difference = compare(sides, facts, tolerance, sections)
    if code:
        from ..vcs import trees as gitcode

        sources = [gitcode.Source(
            s.id, g is not None, g.commit if g else None,
            s.path / g.patch if g is not None and g.patch and not s.patch_missing else None,
            s.patch_missing, g.untracked_count if g else 0,
            _archive(s.path, g),
        ) for s, g in zip(sides, gits, strict=True)]
        diffs = gitcode.code_diffs(facts.repository, sources, facts.found)
        difference = difference._replace(code=tuple(diffs))
    if as_json:
        console.out(json.dumps(difference.to_json(everything), indent=2, ensure_ascii=False))
    else:
        from ..reading.diffview import show

        show(difference, everything)
    return 1 if exit_code and difference.differs else 0


def _archive(run_dir: Path, git: GitState | None) -> Path | None:
    """The run's captured untracked files, when it kept them and they are still there."""
    if git is None or not git.untracked_archive:
        return None
    path = run_dir / git.untracked_archive
    return path if path.is_file() else None


def _sections(only: tuple[str, ...]) -> tuple[str, ...]:
    if not only:
        return SECTIONS
    chosen = {name.strip() for item in only for name in item.split(",") if name.strip()}
    unknown = sorted(chosen - set(SECTIONS))
    if unknown:
        raise UsageError(f"--only `{unknown[0]}` is not a section; choose among "
                         f"{', '.join(SECTIONS)}")
    return tuple(s for s in SECTIONS if s in chosen)
