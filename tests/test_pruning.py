"""The checkpoint thinning rules (xpm/pruning.py): pure functions, no files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xpm.cleaning.thinning import MAX, MIN, Best, Rule, best_step, parse_best, thin
from xpm.errors import UsageError
from xpm.runs.checkpoints import Checkpoint
from xpm.runs.metrics import direction as guess_mode


def cps(*steps: int | None) -> list[Checkpoint]:
    return [Checkpoint(s, Path(f"checkpoints/model_{s}.pt"), float(i)) for i, s in enumerate(steps)]


def kept(checkpoints: list[Checkpoint], rule: Rule, best_at: int | None = None) -> list[int | None]:
    return [c.step for c, d in zip(checkpoints, thin(checkpoints, rule, best_at), strict=True)
            if d.keep]


def test_keep_newest_k() -> None:
    found = cps(100, 200, 300, 400, 500)
    assert kept(found, Rule(keep=2)) == [400, 500]
    assert kept(found, Rule(keep=0)) == []
    assert kept(found, Rule(keep=9)) == [100, 200, 300, 400, 500]


def test_every_nth_step() -> None:
    found = cps(0, 250, 500, 750, 1000, 1250)
    assert kept(found, Rule(keep=1, every=500)) == [0, 500, 1000, 1250]
    assert kept(found, Rule(keep=0, every=1)) == [0, 250, 500, 750, 1000, 1250]


def test_best_is_the_checkpoint_at_or_before_the_best_step() -> None:
    found = cps(100, 200, 300, 400, 500)
    assert kept(found, Rule(keep=1, best=Best("loss", MIN)), best_at=300) == [300, 500]
    assert kept(found, Rule(keep=1, best=Best("loss", MIN)), best_at=350) == [300, 500]
    assert kept(found, Rule(keep=0, best=Best("loss", MIN)), best_at=99) == []  # none before
    assert kept(found, Rule(keep=0, best=Best("loss", MIN)), best_at=None) == []


def test_reasons_are_named() -> None:
    found = cps(100, 200, 300)
    decisions = thin(found, Rule(keep=1, best=Best("val_loss", MIN), every=100), best_at=300)
    assert decisions[-1].reasons == ("newest", "best val_loss", "every 100")
    assert [d.keep for d in decisions] == [True, True, True]
    assert thin(found, Rule(keep=1), None)[0].reasons == ()


def test_all_files_of_a_kept_step_are_kept_and_steps_count_once() -> None:
    found = [
        Checkpoint(100, Path("model_100.pt"), 1.0), Checkpoint(100, Path("optim_100.pt"), 2.0),
        Checkpoint(200, Path("model_200.pt"), 3.0), Checkpoint(200, Path("optim_200.pt"), 4.0),
    ]
    decisions = thin(found, Rule(keep=1))
    assert [d.keep for d in decisions] == [False, False, True, True]


def test_a_checkpoint_without_a_step_is_always_kept() -> None:
    found = [Checkpoint(None, Path("best.pt"), 9.0), *cps(100, 200)]
    decisions = thin(found, Rule(keep=0))
    assert [d.keep for d in decisions] == [True, False, False]
    assert decisions[0].reasons == ("no step",)


def test_bad_rules() -> None:
    with pytest.raises(ValueError):
        thin(cps(1), Rule(keep=-1))
    with pytest.raises(ValueError):
        thin(cps(1), Rule(keep=1, every=0))


def test_best_step_min_and_max() -> None:
    rows = [{"step": 1, "loss": 3.0, "acc": 0.1}, {"step": 2, "loss": 1.0, "acc": 0.9},
            {"step": 3, "loss": 1.0, "acc": 0.5}, {"step": 4, "loss": 2.0}]
    assert best_step(rows, Best("loss", MIN)) == 2  # first of a tie
    assert best_step(rows, Best("loss", MAX)) == 1
    assert best_step(rows, Best("acc", MAX)) == 2


def test_best_step_skips_what_cannot_count() -> None:
    rows: list[dict[str, Any]] = [
        {"loss": 0.0}, {"step": "5", "loss": 0.0}, {"step": True, "loss": 0.0},
        {"step": 7, "loss": float("nan")}, {"step": 8, "loss": "low"},
        {"step": 9, "loss": True}, {"step": 10, "loss": 4}]
    assert best_step(rows, Best("loss", MIN)) == 10
    assert best_step(rows, Best("other", MIN)) is None
    assert best_step([], Best("loss", MIN)) is None


@pytest.mark.parametrize(("metric", "mode"), [
    ("loss", MIN), ("val_loss", MIN), ("train/loss", MIN), ("top1_error", MIN),
    ("eval.mse", MIN), ("perplexity", MIN), ("wer", MIN), ("valloss", MIN),
    ("accuracy", MAX), ("val_acc", MAX), ("f1", MAX), ("eval/auc", MAX), ("mean_reward", MAX),
    ("lr", None), ("epoch", None), ("grad_norm", None), ("accent", None),
    ("map_loss", MIN), ("success_rate", MAX), ("hit_rate", MAX), ("top5", MAX),
])
def test_guess_mode(metric: str, mode: str | None) -> None:
    assert guess_mode(metric) == mode


def test_parse_best() -> None:
    assert parse_best("val_loss") == Best("val_loss", MIN)
    assert parse_best("accuracy") == Best("accuracy", MAX)
    assert parse_best("val_loss:max") == Best("val_loss", MAX)
    assert parse_best("lr:MIN") == Best("lr", MIN)
    assert parse_best("eval:acc:max") == Best("eval:acc", MAX)
    assert str(parse_best("acc")) == "acc:max"


@pytest.mark.parametrize("text", ["", ":min", "lr", "grad_norm", "loss:lowest"])
def test_parse_best_refuses(text: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_best(text)
    assert "--keep-best" in str(exc.value)
