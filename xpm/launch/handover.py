"""Handing a background supervisor (`xpm _supervise`, `xpm _sweep`, a Slurm job) the
command as given, when the record holds it with secrets masked: through one environment
variable, removed before the command starts. Kept apart from lifecycle.py, so that
submitting a Slurm job does not import the supervisor."""

from __future__ import annotations

import json
import os

COMMAND_VARIABLE = "XPM_COMMAND"  # the command as given, for a background supervisor


def handover(given: tuple[str, ...], recorded: tuple[str, ...]) -> dict[str, str]:
    """Variables that give a background supervisor (`xpm _supervise`) the command as
    given, when the record holds it with secrets masked; none when they are the same."""
    if tuple(given) == tuple(recorded):
        return {}
    return {COMMAND_VARIABLE: json.dumps(list(given))}


def handed_over_command() -> tuple[str, ...] | None:
    """The command a background supervisor was given (and no longer in its environment,
    so the command does not see it)."""
    text = os.environ.pop(COMMAND_VARIABLE, None)
    if text is None:
        return None
    try:
        argv = json.loads(text)
    except ValueError:
        return None
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        return None
    return tuple(argv)
