"""The sweep grammar and the expansion into trials (pure: no processes)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from xpm.config import apply_assignments, parse_assignment
from xpm.errors import UsageError
from xpm.launch.sweeps.grammar import parse_override, split_top
from xpm.launch.sweeps.trials import (
    FILE,
    GRID,
    RANDOM,
    ZIP,
    check,
    expand,
    read_trials_file,
    render,
)


def values(text: str) -> list[Any]:
    return [v.data for v in parse_override(text).values]


def trials(*given: str, mode: str = GRID, n: int | None = None, seed: int = 0,
           rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    overrides = [parse_override(g) for g in given]
    check(overrides, mode, n, yes=False, rows=len(rows) if rows is not None else None)
    return [t.overrides for t in expand(overrides, mode, n, seed, rows)]


def test_lists_keep_yaml_types() -> None:
    assert values("lr=0.1,1e-3,abc,true,null") == [0.1, 0.001, "abc", True, None]
    assert values("layers=[64,64],[128]") == [[64, 64], [128]]
    assert values('name="a,b",c') == ["a,b", "c"]
    assert values("opt={name: sgd, m: 0.9},{name: adam}") == [{"name": "sgd", "m": 0.9},
                                                             {"name": "adam"}]


def test_one_value_is_fixed_and_read_as_run_reads_it() -> None:
    for text in ("lr=1e-3", "layers=[64,64]", "name='a,b'", "x=", "d={a: 1}"):
        override = parse_override(text)
        assert not override.swept
        assert override.values[0].data == parse_assignment(text)[1]


def test_range_of_ints_and_floats() -> None:
    assert values("x=range(0,10,3)") == [0, 3, 6, 9]
    assert values("x=range(3)") == [0, 1, 2]
    assert values("x=range(5,0,-2)") == [5, 3, 1]
    assert values("x=range(0,1,0.25)") == [0.0, 0.25, 0.5, 0.75]
    assert values("x=range(0,1,0.1)") == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert values("x = range( 1 , 3 )".replace(" ", "")) == [1, 2]
    assert parse_override("x=range(0,2)").swept


def test_choice_is_a_list() -> None:
    assert values("opt=choice(sgd,adam)") == ["sgd", "adam"]
    assert values("x=choice(1)") == [1]


@pytest.mark.parametrize(("text", "part"), [
    ("x=range(0,0)", "is empty"),
    ("x=range(5,0)", "is empty"),
    ("x=range(0,5,0)", "step of range() is 0"),
    ("x=range(a,5)", "are numbers"),
    ("x=range(1,2,3,4)", "not 4 arguments"),
    ("x=choice()", "choice() is empty"),
    ("x=interval(1,1)", "is empty"),
    ("x=log_interval(0,1)", "above 0"),
    ("x=rnage(1,2)", "`rnage()` is not a sweep function"),
    ("x=[1,2", "unclosed"),
    ("x=1,2]", "closes nothing"),
    ("x='a,b", "never closed"),
    ("x=1,,2", "value 2 of the list is empty"),
    ("x=1,", "value 2 of the list is empty"),
    ("=1,2", "not KEY=VALUE"),
    ("x", "not KEY=VALUE"),
    ("a..b=1,2", "empty part"),
    ("x=1,{a: [}", "closes nothing"),
])
def test_malformed_expressions_name_the_part(text: str, part: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_override(text)
    assert part in str(err.value)
    assert text in str(err.value)
    assert "\n" not in str(err.value)


def test_grid_is_the_cartesian_product_last_key_fastest() -> None:
    assert trials("a=1,2", "b=x,y", "c=5") == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]


def test_assignments_keep_the_order_typed_and_the_text_given() -> None:
    overrides = [parse_override(g) for g in ("model={lr: 1}", "model.lr=0.1,1e-2", "c=5")]
    found = expand(overrides)
    assert found[1].assignments == ("model={lr: 1}", "model.lr=1e-2", "c=5")
    config = apply_assignments({}, list(found[1].assignments))
    assert config == {"model": {"lr": 0.01}, "c": 5}


def test_zip_pairs_and_refuses_unequal_lengths() -> None:
    assert trials("a=1,2,3", "b=range(3)", mode=ZIP) == [
        {"a": 1, "b": 0}, {"a": 2, "b": 1}, {"a": 3, "b": 2}]
    with pytest.raises(UsageError, match="a has 3, b has 2"):
        trials("a=1,2,3", "b=1,2", mode=ZIP)


def test_random_is_the_same_with_the_same_seed_and_in_bounds() -> None:
    given_ = ("lr=log_interval(1e-4,1e-1)", "m=interval(0,1)", "opt=choice(a,b,c)", "k=5")
    first = trials(*given_, mode=RANDOM, n=50, seed=7)
    assert first == trials(*given_, mode=RANDOM, n=50, seed=7)
    assert first != trials(*given_, mode=RANDOM, n=50, seed=8)
    for t in first:
        assert 1e-4 <= t["lr"] < 1e-1 and 0 <= t["m"] < 1 and t["opt"] in "abc"
        assert "k" not in t
    assert len({t["opt"] for t in first}) == 3


def test_intervals_need_random() -> None:
    with pytest.raises(UsageError, match="add --random N"):
        trials("lr=interval(0,1)")


def test_limits_and_combinations() -> None:
    with pytest.raises(UsageError, match="nothing to sweep"):
        trials("a=1")
    with pytest.raises(UsageError, match="more than 10,000"):
        trials("a=range(101)", "b=range(100)")
    overrides = [parse_override("a=range(101)"), parse_override("b=range(100)")]
    assert check(overrides, GRID, None, yes=True) == 10_100
    with pytest.raises(UsageError, match="swept by two -s"):
        trials("a=1,2", "a=3,4")
    with pytest.raises(UsageError, match="keep fixed -s values only"):
        trials("a=1,2", mode=FILE, rows=[{"b": 1}])
    with pytest.raises(UsageError, match="at least 1"):
        trials("a=1,2", mode=RANDOM, n=0)


def test_trials_file(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("- {lr: 0.1, model: {depth: 2}}\n- lr: 1e-3\n  layers: [1, 2]\n- {}\n")
    rows = read_trials_file(path)
    assert rows == [{"lr": 0.1, "model.depth": 2}, {"lr": 0.001, "layers": [1, 2]}, {}]
    found = expand([parse_override("batch=32")], FILE, rows=rows)
    assert found[1].assignments == ("batch=32", "lr=0.001", "layers=[1, 2]")
    assert apply_assignments({"model": {"depth": 1, "w": 3}}, list(found[0].assignments)) \
        == {"model": {"depth": 2, "w": 3}, "batch": 32, "lr": 0.1}
    for text, part in (("a: 1\n", "holds a dict"), ("[]\n", "an empty list"),
                       ("- 1\n", "item 1 is a int"), ("- [\n", "malformed YAML")):
        path.write_text(text)
        with pytest.raises(UsageError, match=part.replace("[", r"\[")):
            read_trials_file(path)
    with pytest.raises(UsageError, match="does not exist"):
        read_trials_file(tmp_path / "missing.yaml")


# -- properties ----------------------------------------------------------------------

_scalars = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=False, width=64), st.booleans(),
    st.none(), st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                       max_size=8))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text("abc", min_size=1, max_size=3),
                                                 inner, max_size=3)), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_render_reads_back_as_the_same_value(value: Any) -> None:
    text = render(value)
    back = parse_assignment(f"k={text}")[1]
    assert _same(back, value), (text, back)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isinf(a) and a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=300, deadline=None)
@given(st.lists(_values, min_size=2, max_size=5))
def test_a_list_of_rendered_values_parses_back_whole(items: list[Any]) -> None:
    text = ",".join(render(v) for v in items)
    override = parse_override(f"k={text}")
    assert override.swept
    assert all(_same(v.data, item) for v, item in zip(override.values, items, strict=True))
    assert len(split_top(text, text)) == len(items)


@settings(max_examples=200, deadline=None)
@given(st.integers(-50, 50), st.integers(-50, 50), st.integers(-7, 7).filter(bool))
def test_integer_range_is_pythons(start: int, stop: int, step: int) -> None:
    expected = list(range(start, stop, step))
    if not expected:
        with pytest.raises(UsageError, match="is empty"):
            parse_override(f"x=range({start},{stop},{step})")
    else:
        assert values(f"x=range({start},{stop},{step})") == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(-100, 100), st.integers(1, 200), st.sampled_from([0.1, 0.25, 0.5, 0.05]))
def test_float_range_steps_evenly_short_of_stop(start_tenths: int, span: int,
                                                step: float) -> None:
    start = start_tenths / 10
    stop = start + span * step
    found = values(f"x=range({start!r},{stop!r},{step!r})")
    assert len(found) == span
    assert all(abs(b - a - step) < 1e-9 for a, b in itertools.pairwise(found))
    assert found[-1] < stop
    assert yaml.safe_load(repr(found[-1])) == found[-1]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4))
def test_grid_size_is_the_product(sizes: list[int]) -> None:
    given_ = [f"k{i}=" + ",".join(str(v) for v in range(n)) for i, n in enumerate(sizes)
              if n > 1]
    if not given_:
        return
    found = trials(*given_)
    assert len(found) == math.prod(n for n in sizes if n > 1)
    assert len({tuple(sorted(t.items())) for t in found}) == len(found)
