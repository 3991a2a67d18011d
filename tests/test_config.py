"""Configs: merging, `-s` assignments, flattening (pure functions)."""

from __future__ import annotations

import pytest

from xpm.config import apply_assignments, deep_merge, flatten, parse_assignment, parse_key
from xpm.errors import UsageError


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    assert deep_merge(base, {"a": {"y": [3], "z": 0}, "c": 2}) == {
        "a": {"x": 1, "y": [3], "z": 0}, "b": 1, "c": 2}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}  # inputs untouched


@pytest.mark.parametrize("text, key, value", [
    ("lr=1e-3", ["lr"], 0.001),
    ("lr=0.5", ["lr"], 0.5),
    ("n=3", ["n"], 3),
    ("layers=[64, 64]", ["layers"], [64, 64]),
    ("opt={name: adam, b: 0.9}", ["opt"], {"name": "adam", "b": 0.9}),
    ("name=abc", ["name"], "abc"),
    ("flag=true", ["flag"], True),
    ("empty=", ["empty"], ""),
    ("x=null", ["x"], None),
    ("model.layers[1]=8", ["model", "layers", 1], 8),
    ("model.layers.1=8", ["model", "layers", 1], 8),
    ("path=a=b", ["path"], "a=b"),
])
def test_parse_assignment(text: str, key: list[object], value: object) -> None:
    assert parse_assignment(text) == (key, value)


@pytest.mark.parametrize("key", ["", ".a", "a..b", "a[x]", "[1]"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(UsageError):
        parse_key(key)


def test_apply_assignments_creates_and_indexes() -> None:
    config = {"model": {"layers": [1, 2, 3]}}
    apply_assignments(config, ["model.layers[-1]=9", "new.deep.key=1"])
    assert config == {"model": {"layers": [1, 2, 9]}, "new": {"deep": {"key": 1}}}


@pytest.mark.parametrize("assignment, words", [
    ("model.layers[5]=1", "out of range"),
    ("lr.x=1", "indexes into `lr`, which is a float"),
    ("model.layers.name=1", "indexes into `model.layers`, which is a list"),
])
def test_apply_assignment_errors(assignment: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        apply_assignments({"lr": 0.1, "model": {"layers": [1]}}, [assignment])


def test_yaml_numbers_and_dates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from xpm.config import load_file

    path = tmp_path / "c.yaml"
    path.write_text("lr: 1e-3\nbig: 2.5E+4\nwhen: 2024-01-01\nat: 2024-01-01 10:00:00\n"
                    "name: 1e10x\n")
    assert load_file(path) == {"lr": 0.001, "big": 25000.0, "when": "2024-01-01",
                               "at": "2024-01-01 10:00:00", "name": "1e10x"}


@pytest.mark.parametrize("text, words", [
    ("blob: !!binary aGVsbG8=\n", "`blob` is a bytes value"),
    ("tags: !!set {a, b}\n", "`tags` is a set value"),
    ("when: !!timestamp 2024-01-01\n", "`when` is a date value"),
])
def test_values_json_cannot_hold_are_refused(tmp_path, text: str, words: str) -> None:  # type: ignore[no-untyped-def]
    from xpm.config import load_file
    from xpm.errors import XpmError

    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(XpmError, match=words):
        load_file(path)


def test_flatten() -> None:
    assert flatten({"a": {"b": [1, {"c": 2}], "e": {}}, "d": None}) == {
        "a.b[0]": 1, "a.b[1].c": 2, "a.e": {}, "d": None}
