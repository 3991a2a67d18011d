"""The fields of a run, `--where` conditions and `--sort` order (pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from xpm.errors import UsageError
from xpm.reading.query import RunInfo, order, parse_condition, parse_field

STATUSES = ("completed", "failed", "running", "lost", "corrupt")


def info(number: int = 1, **fields: Any) -> RunInfo:
    values: dict[str, Any] = {"name": "exp", "number": number, "folder": "/r/exp",
                              "status": "completed", "metrics": {}}
    values.update(fields)
    for short in ("commit", "branch", "dirty"):
        if short in values:
            values[f"git_{short}"] = values.pop(short)
    return RunInfo.of(**values)


def matches(text: str, run: RunInfo) -> bool:
    return parse_condition(text, STATUSES).matches(run)


def test_numbers_compare_as_numbers() -> None:
    run = info(config={"model": {"lr": 0.001, "layers": [64, 128]}}, metrics={"acc": 0.93})
    assert matches("config.model.lr<0.01", run)
    assert matches("config.model.lr<=1e-3", run)
    assert not matches("config.model.lr>0.01", run)
    assert matches("config.model.lr=0.001", run)
    assert matches("config.model.lr==1e-3", run)
    assert matches("metrics.acc>=0.9", run)
    assert matches("metrics.acc != 0.5", run)
    assert matches("config.model.layers[1]=128", run)
    assert matches("config.model.layers.0>32", run)
    assert matches("config.model.layers=[64, 128]", run)
    assert matches("number>=1", run) and not matches("number>1", run)


def test_text_fields_and_regexes() -> None:
    run = info(status="failed", note="warm-up run", config={"act": "relu"},
               commit="abc1234def", dirty=True)
    assert matches("status=failed", run) and matches("status!=completed", run)
    assert matches("config.act=relu", run) and not matches("config.act=tanh", run)
    assert matches("note~warm.?up", run) and matches("note!~^cold", run)
    assert matches("id=exp/1", run) and matches("name~^ex", run)
    assert matches("commit~^abc1", run) and matches("git.commit~^abc1", run)
    assert matches("dirty=true", run) and not matches("git.dirty=false", run)
    assert matches("config.act>abc", run)  # text against text: in text order


def test_tags_match_by_membership() -> None:
    run = info(tags=("baseline", "long"))
    assert matches("tag=baseline", run) and matches("tags=long", run)
    assert not matches("tag=short", run) and matches("tag!=short", run)
    assert matches("tag~^base", run) and not matches("tag!~line$", run)
    assert not matches("tag=baseline", info(tags=()))


def test_missing_fields_match_only_not_equal() -> None:
    run = info(config={"lr": 0.1})
    assert not matches("config.momentum=0.9", run)
    assert not matches("config.momentum<1", run)
    assert not matches("metrics.acc>0", run)
    assert not matches("config.momentum~.", run)
    assert matches("config.momentum!=0.9", run)
    assert matches("config.momentum=null", run)
    assert matches("config.lr!=null", run)
    assert not matches("config.lr.deeper=1", run)  # indexing into a number: missing


def test_a_number_never_orders_against_text() -> None:
    assert not matches("config.act<5", info(config={"act": "relu"}))
    assert not matches("config.lr<abc", info(config={"lr": 0.1}))
    assert matches("config.version=1.10", info(config={"version": "1.10"}))


def test_a_value_beginning_with_an_operator_is_written_as_json_text() -> None:
    run = info(config={"token": "<pad>", "op": "=", "expr": ">=1"})
    assert matches('config.token="<pad>"', run) and not matches('config.token!="<pad>"', run)
    assert matches('config.op="="', run)
    assert matches('config.expr<">=2"', run) and not matches('config.expr>">=2"', run)
    assert matches("config.token~^<pa", run)  # a regular expression is taken as it is
    assert matches("config.op~=", run)


def test_nan_equals_nan() -> None:
    run = info(metrics={"loss": float("nan"), "acc": float("inf")})
    assert matches("metrics.loss=nan", run) and not matches("metrics.loss!=nan", run)
    assert matches("metrics.acc=inf", run) and not matches("metrics.acc=nan", run)
    assert not matches("metrics.loss<1", run) and not matches("metrics.loss>1", run)


def test_times_compare_as_times() -> None:
    run = info(started="2024-05-01T12:00:00.000+02:00")
    assert matches("started>2024-05-01T09:59+00:00", run)
    assert not matches("started>2024-05-01T10:01+00:00", run)
    assert matches("started<2024-05-02", run)
    assert matches("started~^2024-05", run)


@pytest.mark.parametrize(("text", "says"), [
    ("config.lr", "is not FIELD OP VALUE"),
    ("<0.1", "is not FIELD OP VALUE"),
    ("lr<0.1", "unknown field `lr`"),
    ("config<0.1", "name a key under `config`"),
    ("metrics.<0.1", "name a key under `metrics`"),
    ("status=fialed", "unknown status `fialed`"),
    ("note~(unclosed", "is not a regular expression"),
    ("tags<3", "tags compare only with"),
    ("started>yesterday", "is not a date or time"),
    ("config.a[x]=1", "malformed index"),
    ("config.lr<<3", "the value `<3` begins with an operator; did you mean --where "
                     "'config.lr<3'?"),
    ("config.lr=>3", "did you mean --where 'config.lr>=3'?"),
    ("config.lr=<3", "did you mean --where 'config.lr<=3'?"),
    ("config.lr!==3", "did you mean --where 'config.lr!=3'?"),
    ("config.lr>=<1", "did you mean --where 'config.lr>=1'?"),
    ("config.lr<", "has no value after `<`"),
    ("config.lr>= ", "has no value after `>=`"),
])
def test_malformed_conditions_are_usage_errors(text: str, says: str) -> None:
    with pytest.raises(UsageError, match=r"--where `.*`") as caught:
        parse_condition(text, STATUSES)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_field_aliases_and_unknown_fields() -> None:
    assert parse_field("tag", "x").parts == ("tags",)
    assert parse_field("commit", "x") == parse_field("git.commit", "x")._replace(text="commit")
    assert parse_field("metrics.val.acc", "x").parts == ("val.acc",)  # names may hold dots
    with pytest.raises(UsageError, match=r"unknown field `git\.remote`"):
        parse_field("git.remote", "--sort `git.remote`")


def test_order_by_field_keeps_runs_without_it_last() -> None:
    runs = [info(1, config={"lr": 0.1}, started="2024-01-01T00:00:00+00:00"),
            info(2, config={}, started="2024-01-02T00:00:00+00:00"),
            info(3, config={"lr": 0.01}, started="2024-01-03T00:00:00+00:00"),
            info(4, config={"lr": 0.1}, started="2024-01-04T00:00:00+00:00")]
    lr = parse_field("config.lr", "x")
    assert [r.number for r in order(runs, lr, reverse=False)] == [3, 4, 1, 2]
    assert [r.number for r in order(runs, lr, reverse=True)] == [4, 1, 3, 2]


def test_default_order_is_newest_first_across_timezones() -> None:
    runs = [info(1, started="2024-01-01T12:00:00+00:00"),
            info(2, started="2024-01-01T13:30:00+02:00"),  # 11:30 UTC: the oldest
            info(3, started=None, created="2024-01-02T00:00:00+00:00")]  # queued
    assert [r.number for r in order(runs, None, reverse=False)] == [3, 1, 2]
    assert [r.number for r in order(runs, None, reverse=True)] == [2, 1, 3]


def test_sort_puts_numbers_before_text() -> None:
    runs = [info(1, config={"x": "b"}), info(2, config={"x": 10}), info(3, config={"x": 2}),
            info(4, config={"x": "a"})]
    x = parse_field("config.x", "x")
    assert [r.number for r in order(runs, x, reverse=False)] == [3, 2, 4, 1]


def test_json_object_has_stable_keys() -> None:
    data = info(tags=("a",), config={"lr": 1}, metrics={"loss": 0.5}).to_json()
    assert list(data) == [
        "id", "name", "number", "status", "problem", "created", "started", "ended",
        "duration", "exit_code", "signal", "attempts", "tags", "note", "seed", "host", "user",
        "rerun_of",
        "git", "config", "metrics", "path"]
    assert data["git"] == {"commit": None, "branch": None, "dirty": None}
    assert data["id"] == "exp/1" and data["path"] == "/r/exp/1" and data["tags"] == ["a"]
