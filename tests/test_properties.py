"""Property-based tests (hypothesis) of what users type: overrides and sweep expressions,
config merging, run references, --where and ages. Any input either parses or gives an
XpmError/UsageError; never another exception."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.records import write_run
from xpm import times
from xpm.config import (
    apply_assignments,
    check_plain,
    deep_merge,
    dump_yaml,
    parse_assignment,
    parse_key,
    parse_yaml,
)
from xpm.errors import UsageError, XpmError
from xpm.launch.sweeps.grammar import parse_override
from xpm.reading.query import parse_condition, parse_field
from xpm.runs.tree import check_name, resolve

settings.register_profile("xpm", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("xpm")

# Text built from the characters these grammars care about, plus anything at all.
GRAMMAR = st.sampled_from([*"abc01239._-[](){}=,:<>!~\"' /@*+e\n\t\\", "range(", "choice(",
                           "interval(", "log_interval(", "nan", "inf", "true", "null", "1e-3",
                           "..", "-1", "config.", "metrics."])
TYPED = st.one_of(st.text(max_size=40), st.lists(GRAMMAR, max_size=20).map("".join))

KEYS = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12)
CONFIGS = st.dictionaries(KEYS, PLAIN, max_size=4)


@given(TYPED)
def test_an_override_parses_or_is_a_usage_error(text: str) -> None:
    try:
        path, value = parse_assignment(text)
    except XpmError:
        return
    assert path and isinstance(path[0], str)
    check_plain(value, "value")  # what parses is plain data


@given(CONFIGS, st.lists(TYPED, max_size=3))
def test_applying_overrides_changes_only_what_they_name_or_fails(
        config: dict[str, Any], assignments: list[str]) -> None:
    before = copy.deepcopy(config)
    try:
        result = apply_assignments(config, assignments)
    except XpmError:
        return
    assert result is config
    if not assignments:
        assert config == before


@given(KEYS, PLAIN)
def test_an_override_sets_the_value_it_names(key: str, value: Any) -> None:
    text = f"{key}={json.dumps(value)}"
    try:
        path, parsed = parse_assignment(text)
    except XpmError:
        return  # e.g. a float YAML reads another way: refused, never wrong silently
    assert path == [key]
    if isinstance(value, float) or (isinstance(value, str) and value != parsed):
        return
    assert parsed == value


@given(TYPED)
def test_a_sweep_expression_parses_or_is_a_usage_error(text: str) -> None:
    try:
        override = parse_override(text)
    except XpmError:
        return
    assert override.key
    assert override.values or override.interval is not None


@given(CONFIGS, CONFIGS)
def test_deep_merge_keeps_every_key_and_prefers_the_update(
        base: dict[str, Any], update: dict[str, Any]) -> None:
    base_copy, update_copy = copy.deepcopy(base), copy.deepcopy(update)
    merged = deep_merge(base, update)
    assert base == base_copy and update == update_copy  # inputs untouched
    assert set(merged) == set(base) | set(update)
    for key, value in update.items():
        if not (isinstance(value, dict) and isinstance(base.get(key), dict)):
            assert merged[key] == value
    assert deep_merge(merged, update) == merged  # merging the same update again: no change
    assert deep_merge(base, {}) == base and deep_merge({}, update) == update


@given(CONFIGS)
def test_a_plain_config_survives_yaml_and_json_unchanged(config: dict[str, Any]) -> None:
    check_plain(config, "config")
    assert parse_yaml(dump_yaml(config), "config.yaml") == config
    assert json.loads(json.dumps(config)) == config


@given(st.text(max_size=30))
def test_a_key_parses_or_is_a_usage_error(text: str) -> None:
    try:
        parts = parse_key(text)
    except UsageError:
        return
    assert parts and isinstance(parts[0], str)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("props")
    for name in ("a", "a", "b-1", "c.d"):
        write_run(root, name)
    return root / "results"


@given(TYPED)
def test_a_run_reference_resolves_inside_the_tree_or_is_an_error(results: Path,
                                                                   text: str) -> None:
    try:
        ref = resolve(results, text)
    except XpmError:
        return
    assert ref.path.is_dir() and ref.path.name == str(ref.number)


@given(st.text(max_size=20))
def test_a_run_name_is_one_safe_path_segment_or_refused(text: str) -> None:
    try:
        name = check_name(text)
    except XpmError:
        return
    assert "/" not in name and "\n" not in name and not name.startswith(".")
    assert Path(name).name == name


@given(TYPED)
def test_a_where_condition_parses_or_is_a_usage_error(text: str) -> None:
    try:
        condition = parse_condition(text)
    except UsageError:
        return
    assert condition.op in ("=", "!=", "<", "<=", ">", ">=", "~", "!~")


@given(TYPED)
def test_a_sort_field_parses_or_is_a_usage_error(text: str) -> None:
    try:
        parse_field(text, f"--sort `{text}`")
    except UsageError:
        return


@given(TYPED)
def test_an_age_parses_or_is_a_usage_error(text: str) -> None:
    try:
        age = times.parse_age(text, "--since")
    except UsageError:
        return
    assert timedelta(0) <= age <= timedelta(days=times.MAX_AGE_DAYS)
    times.now() - age  # never an OverflowError


@given(st.floats(min_value=0, allow_infinity=True), st.sampled_from(["s", "m", "h", "d", "w"]))
def test_any_number_of_any_unit_is_an_age_or_a_usage_error(number: float, unit: str) -> None:
    text = f"{number:f}{unit}" if number != float("inf") else f"9{'9' * 400}{unit}"
    try:
        age = times.parse_age(text)
    except UsageError:
        return
    times.now() - age
