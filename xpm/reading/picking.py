"""Which runs a reading command was given: RUN, NAME, GLOB or NAME@K arguments → run folders.

One function for `xpm metrics` and `xpm plot` (and any command that reads several runs):
  NAME/N, NAME/-K, a run folder's path   that run (a copied folder anywhere too)
  NAME                                   every run of NAME (or only its newest, see below)
  GLOB (`lr-*`, `mnist/*`)               every run of the names it matches
  NAME@K, NAME@-1                        the runs of sweep K of NAME (its manifest's
                                         trials still in the tree, in trial order)
Each run once, in the order given (a name's runs by number).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError, XpmError
from ..runs import sweeps
from ..runs.tree import RunRef, resolve, run_names, scan

_GLOB = "*?["


def pick(results_dir: Path, args: Sequence[str], whole_names: bool = True) -> list[RunRef]:
    """The runs the arguments name. With `whole_names`, a bare NAME is every run of it;
    without, its newest (as a RUN)."""
    if not args:
        raise UsageError("name at least one run: NAME/N, NAME, a glob such as 'lr-*', "
                         "NAME@K or a run folder's path")
    runs: dict[Path, RunRef] = {}
    for arg in args:
        for ref in pick_one(results_dir, arg, whole_names):
            runs.setdefault(ref.path.resolve(), ref)
    return list(runs.values())


def pick_one(results_dir: Path, arg: str, whole_names: bool = True) -> list[RunRef]:
    text = arg.strip().rstrip("/")
    if sweeps.is_ref(text) and not os.path.exists(text):
        return [resolve(results_dir, run) for run in sweeps.run_ids(results_dir, [text])]
    if any(c in text for c in _GLOB) and not os.path.exists(text):
        name_part, sep, number_part = text.partition("/")
        names = fnmatch.filter(run_names(results_dir, follow_links=True), name_part)
        found = [ref for ref in scan(results_dir, names)
                 if not sep or fnmatch.fnmatch(str(ref.number), number_part)]
        if not found:
            raise XpmError(f"no run matches `{arg}` in {results_dir}; `xpm ls` lists the runs")
        return found
    if whole_names and text and "/" not in text and (results_dir / text).is_dir():
        found = list(scan(results_dir, [text]))
        if not found:
            raise XpmError(f"`{text}` has no runs left in {results_dir}; "
                           "`xpm ls` lists the runs there")
        return found
    return [resolve(results_dir, text)]
