"""Which checkpoints to keep when thinning a run (`xpm clean --checkpoints`): pure rules.

A checkpoint is kept when any rule keeps its step:
  - newest K: the K highest steps;
  - best: the highest step at or before the step where METRIC was best in metrics.jsonl;
  - every N: steps that are a multiple of N.
Every file of a kept step is kept (a step saved as model-100.pt and optim-100.pt is one
checkpoint), and a checkpoint with no step in its name (`best.pt`, `last.ckpt`) is always
kept: nothing tells what it is.

Whether lower or higher is better: `METRIC:min` / `METRIC:max`, else guessed from the name —
lower for names containing `loss` or `error` (or a part such as `mse`, `perplexity`, `wer`),
higher for parts such as `acc`, `f1`, `auc`, `score`, `reward`; any other name must say.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import UsageError
from ..runs.metrics import MAX, MIN, direction, number
from ..runs.metrics import step as metric_step


class HasStep(Protocol):
    """The one thing the rules read from a checkpoint (xpm.checkpoints.Checkpoint fits)."""

    @property
    def step(self) -> int | None: ...


@dataclass(frozen=True)
class Best:
    metric: str
    mode: str  # MIN or MAX

    def __str__(self) -> str:
        return f"{self.metric}:{self.mode}"


@dataclass(frozen=True)
class Rule:
    keep: int
    best: Best | None = None
    every: int | None = None


@dataclass(frozen=True)
class Decision:
    step: int | None
    keep: bool
    reasons: tuple[str, ...]  # why it is kept: "newest", "best loss", "every 500", "no step"


def parse_best(text: str) -> Best:
    """`val_loss`, `val_loss:min`, `accuracy:max` → Best; unclear directions must be given."""
    metric, sep, mode = text.strip().rpartition(":")
    if not sep:
        metric, mode = text.strip(), ""
    if not metric:
        raise UsageError(f"--keep-best `{text}` names no metric; write e.g. --keep-best val_loss "
                         "or --keep-best accuracy:max")
    if mode:
        mode = mode.lower()
        if mode not in (MIN, MAX):
            raise UsageError(f"--keep-best `{text}`: `{mode}` is not min or max; write "
                             f"{metric}:min (lower is better) or {metric}:max (higher is better)")
        return Best(metric, mode)
    guessed = direction(metric)
    if guessed is None:
        raise UsageError(f"--keep-best `{metric}`: cannot tell whether lower or higher is better; "
                         f"write {metric}:min or {metric}:max")
    return Best(metric, guessed)


def best_step(rows: Iterable[dict[str, Any]], best: Best) -> int | None:
    """The step where `best.metric` was best (the first such step on a tie), or None when the
    metric was never logged with an integer step and a finite value."""
    found: tuple[float, int] | None = None
    for row in rows:
        step, value = metric_step(row), number(row.get(best.metric))
        if value is None or step is None:
            continue
        if found is None or (value < found[0] if best.mode == MIN else value > found[0]):
            found = (value, step)
    return found[1] if found is not None else None


def thin(checkpoints: Sequence[HasStep], rule: Rule, best_at: int | None = None
         ) -> list[Decision]:
    """A decision for each checkpoint, in the order given; `best_at` is best_step(...)."""
    if rule.keep < 0:
        raise ValueError("keep must be 0 or more")
    if rule.every is not None and rule.every < 1:
        raise ValueError("every must be 1 or more")
    steps = sorted({c.step for c in checkpoints if c.step is not None})
    reasons: dict[int, list[str]] = {s: [] for s in steps}
    for s in steps[max(0, len(steps) - rule.keep):] if rule.keep else ():
        reasons[s].append("newest")
    if rule.best is not None and best_at is not None:
        before = [s for s in steps if s <= best_at]
        if before:
            reasons[before[-1]].append(f"best {rule.best.metric}")
    if rule.every is not None:
        for s in steps:
            if s % rule.every == 0:
                reasons[s].append(f"every {rule.every}")
    decisions: list[Decision] = []
    for c in checkpoints:
        if c.step is None:
            decisions.append(Decision(None, True, ("no step",)))
        else:
            why = tuple(reasons[c.step])
            decisions.append(Decision(c.step, bool(why), why))
    return decisions
