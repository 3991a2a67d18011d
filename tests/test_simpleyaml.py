"""simpleyaml reads and writes the simplest YAML documents without PyYAML: checked against
PyYAML itself (config.yaml_loader, config.pyyaml_dump) on generated documents, so that
whatever it answers is what PyYAML answers, and anything else is left to PyYAML."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from xpm import simpleyaml
from xpm.config import dump_yaml, parse_assignment, parse_yaml, pyyaml_dump, yaml_loader

settings.register_profile("simpleyaml", max_examples=150, deadline=None)


def pyyaml_load(text: str) -> Any:
    return yaml.load(text, Loader=yaml_loader())


def same(a: Any, b: Any) -> bool:
    """Equal, with the types kept apart (True is not 1) and nan equal to itself."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def check_parse(text: str) -> None:
    """simpleyaml gives PyYAML's answer or NOT_SIMPLE, and NOT_SIMPLE whenever PyYAML fails."""
    got = simpleyaml.parse(text)
    try:
        expected = pyyaml_load(text)
    except yaml.YAMLError:
        assert got is simpleyaml.NOT_SIMPLE, (text, got)
        return
    assert got is simpleyaml.NOT_SIMPLE or same(got, expected), (text, got, expected)


# Pieces of lines: the characters and words that YAML gives a meaning to.
PIECES = st.sampled_from([
    "a", "b", "key", "x_1", "lr", "model.lr", "/data", "train.py", "a-b", "_", "y", "n",
    "yes", "No", "ON", "off", "true", "False", "TRUE", "null", "Null", "~", "NaN", ".nan",
    ".inf", "-.inf", "0", "1", "-1", "+1", "007", "0x1f", "0b1", "0o7", "1_000", "1:30",
    "1.5", "-0.0", "01.5", ".5", "1.", "1e3", "1E-3", "1.5e+3", "1e", "2024-01-02",
    "2024-01-02 10:00:00", ":", ": ", " ", "  ", "-", "- ", "#", " #", "[", "]", ",", ", ",
    "{", "}", "'", '"', "&a", "*a", "!x", "|", ">", "?", "%", "---", "...", "\t", "\r", "=",
    "<<", "@", "`", "\\", "é", "\x07",
])
LINES = st.lists(st.lists(PIECES, max_size=6).map("".join), max_size=8).map("\n".join)


@settings(settings.get_profile("simpleyaml"))
@given(LINES)
def test_any_text_reads_as_pyyaml_reads_it_or_goes_to_pyyaml(text: str) -> None:
    check_parse(text)


# Documents in the simple form, written with the freedoms YAML allows (indentation, spaces,
# comments, flow or block lists), then maybe damaged by one piece put anywhere.
PLAIN = st.sampled_from(["a", "b", "lr", "x_1", "a.b", "/p", "k-2", "y", "1", "-2", "0.5",
                         "1e-3", "1.5e3", "true", "False", "null"])
TRICKY = st.sampled_from(["on", "No", "007", "~", ".inf", "2024-01-02", "a b", "", "1_0",
                          "0x1", "1:2", "-", "-.5", "'q'"])
WORDS = st.one_of(PLAIN, PLAIN, PLAIN, TRICKY)


@st.composite
def written(draw: st.DrawFn, depth: int = 0, indent: int = 0) -> list[str]:
    lines: list[str] = []
    names = st.sampled_from(["a", "b", "lr", "x_1", "a.b", "/p", "k-2", "y", "on", "1", ""])
    for key in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
        pad = " " * indent
        comment = draw(st.sampled_from(["", "", " # c", "  #c", "#c"]))
        kind = draw(st.sampled_from(["scalar", "flow", "block", "map", "empty"]))
        if kind == "scalar":
            lines.append(f"{pad}{key}:{draw(st.sampled_from([' ', '  ', '']))}"
                         f"{draw(WORDS)}{comment}")
        elif kind == "flow":
            items = draw(st.lists(WORDS, max_size=3))
            sep = draw(st.sampled_from([", ", ",", " , "]))
            lines.append(f"{pad}{key}: [{sep.join(items)}]{comment}")
        elif kind == "block":
            lines.append(f"{pad}{key}:{comment}")
            step = " " * draw(st.sampled_from([0, 0, 2, 1]))
            lines.extend(f"{pad}{step}- {draw(WORDS)}" for _ in range(draw(st.integers(0, 3))))
        elif kind == "map" and depth < 2:
            lines.append(f"{pad}{key}:{comment}")
            lines.extend(draw(written(depth + 1, indent + draw(st.sampled_from([2, 4, 1])))))
        else:
            lines.append(f"{pad}{key}:{comment}")
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "# note", "   # note", "  "])))
    return lines


@st.composite
def simple_texts(draw: st.DrawFn) -> str:
    lines = draw(written())
    if draw(st.booleans()):
        at = draw(st.integers(0, len(lines) - 1))
        line = lines[at]
        cut = draw(st.integers(0, len(line)))
        lines[at] = line[:cut] + draw(PIECES) + line[cut:]
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@settings(settings.get_profile("simpleyaml"))
@given(simple_texts())
def test_simple_documents_read_as_pyyaml_reads_them(text: str) -> None:
    check_parse(text)


KEYS = st.sampled_from(["a", "b", "lr", "model", "x_1", "a.b", "/p", "k-2", "on", "null",
                        "1", "Yes"])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "train.py", "/data/x", "a-b", "yes", "no", "true", "null", "~",
                     "1", "1.5", "1e3", "", " ", "a b", "a: b", "#", "-a", ".inf", "é",
                     "2024-01-02", "x" * 90, "a\nb"]),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=8,
)
DOCUMENTS = st.dictionaries(st.one_of(KEYS, st.text(max_size=4)), VALUES, max_size=5)


def check_dump(data: dict[str, Any]) -> None:
    got = simpleyaml.dump(data)
    expected = pyyaml_dump(data)
    assert got is None or got == expected, (data, got, expected)
    assert dump_yaml(data) == expected
    if got is not None:  # and it reads back, by both
        assert same(simpleyaml.parse(got), pyyaml_load(got))


@settings(settings.get_profile("simpleyaml"))
@given(DOCUMENTS)
def test_a_config_is_written_as_pyyaml_writes_it_or_by_pyyaml(data: dict[str, Any]) -> None:
    check_dump(data)


SIMPLE_KEYS = st.sampled_from(["a", "b", "lr", "x_1", "a.b", "/p", "k-2", "y", "_",
                               "a." + "b" * 120])
SIMPLE_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(),
    st.from_regex(r"[A-Za-z_/][A-Za-z0-9_./-]{0,100}", fullmatch=True),
)
SIMPLE_DOCUMENTS = st.dictionaries(SIMPLE_KEYS, st.recursive(
    SIMPLE_SCALARS,
    lambda inner: st.one_of(st.lists(SIMPLE_SCALARS, min_size=1, max_size=3),
                            st.dictionaries(SIMPLE_KEYS, inner, min_size=1, max_size=3)),
    max_leaves=10,
), min_size=1, max_size=5)


@settings(settings.get_profile("simpleyaml"))
@given(SIMPLE_DOCUMENTS)
def test_a_simple_config_is_written_as_pyyaml_writes_it(data: dict[str, Any]) -> None:
    check_dump(data)


@settings(settings.get_profile("simpleyaml"))
@given(DOCUMENTS)
def test_what_pyyaml_writes_reads_as_pyyaml_reads_it(data: dict[str, Any]) -> None:
    check_parse(pyyaml_dump(data))
    check_parse(yaml.safe_dump(data, default_flow_style=True, sort_keys=False))


@settings(settings.get_profile("simpleyaml"))
@given(st.lists(PIECES, max_size=5).map("".join))
def test_an_assignment_value_reads_as_pyyaml_reads_it(raw: str) -> None:
    try:
        expected = pyyaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        expected = None
        assert simpleyaml.parse_value(raw) is simpleyaml.NOT_SIMPLE
    got = simpleyaml.parse_value(raw)
    assert got is simpleyaml.NOT_SIMPLE or same(got, expected), (raw, got, expected)


@pytest.mark.parametrize("text, expected", [
    ("results_dir: results\n", {"results_dir": "results"}),
    ("# settings\nname: mnist  # the default\n\ncommand: [python, train.py]\n"
     "git:\n  require_clean: true\n  untracked_max_mb: 2.5\nenv:\n- HF_HOME\n- TORCH_*x\n",
     None),
    ("model:\n  lr: 1e-3\n  layers:\n  - 64\n  - 64\n  name: resnet-18\nseed: 0\n"
     "opt:\n", {"model": {"lr": 0.001, "layers": [64, 64], "name": "resnet-18"}, "seed": 0,
                "opt": None}),
    ("", None),
    ("# only a comment\n", None),
])
def test_typical_files_are_simple(text: str, expected: Any) -> None:
    got = simpleyaml.parse(text)
    if text.startswith("# settings"):  # `TORCH_*x` is not a plain word here: PyYAML's
        assert got is simpleyaml.NOT_SIMPLE
        got = simpleyaml.parse(text.replace("TORCH_*x", "TORCH_HOME"))
        expected = pyyaml_load(text.replace("TORCH_*x", "TORCH_HOME"))
    assert got is not simpleyaml.NOT_SIMPLE
    assert same(got, expected if expected is not None else pyyaml_load(text))
    assert same(parse_yaml(text, "x.yaml"), pyyaml_load(text))


@pytest.mark.parametrize("text", [
    "a: yes\n", "a: 'x'\n", "a: 010\n", "a: 1_0\n", "a: b\na: c\n", "a:\n\tb: 1\n",
    "- a\n", "a: &x 1\nb: *x\n", "a: 2024-01-02\n", "a: .inf\n", "a: b c\n", "a: b#c\n",
    " a: 1\n", "a:\n  b: 1\n c: 2\n", "a: [b, [c]]\n", "a: {b: 1}\n", "a: é\n", "---\na: 1\n",
])
def test_anything_else_goes_to_pyyaml(text: str) -> None:
    assert simpleyaml.parse(text) is simpleyaml.NOT_SIMPLE
    check_parse(text)


def test_assignments_read_the_same() -> None:
    for raw in ("1e-3", "[64, 64]", "adam", "true", "null", "0.5", "-3", "yes", "'a: b'",
                "[a, {b: 1}]", "2024-01-02"):
        assert same(parse_assignment(f"k={raw}")[1], pyyaml_load(raw)), raw
    assert parse_assignment("k=")[1] == ""


def test_a_simple_run_does_not_import_pyyaml(tmp_path: Any) -> None:
    (tmp_path / "xpm.yaml").write_text("results_dir: results  # runs go here\n")
    (tmp_path / "c.yaml").write_text("model:\n  lr: 0.001\n  layers: [64, 64]\n")
    script = ("import sys; sys.argv = ['xpm', 'run', '-n', 'r', '-c', 'c.yaml', '-s', "
              "'model.lr=1e-4', '--', sys.executable, '-c', 'pass']\n"
              "from xpm.cli import main\ncode = main()\n"
              "assert 'yaml' not in sys.modules, 'PyYAML was imported'\nsys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    frozen = (tmp_path / "results" / "r" / "1" / "config.yaml").read_text()
    assert frozen.startswith("model:\n  lr: 0.0001\n  layers:\n  - 64\n  - 64\nseed: ")
    assert frozen == pyyaml_dump(pyyaml_load(frozen))
