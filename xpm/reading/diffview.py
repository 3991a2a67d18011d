"""How `xpm diff` shows a Difference.

Two runs: a block per section, one line per field (`old → new`, or the value and which
run alone has it). Three runs or more: one table of every field that varies, a column
per run. The code difference follows as a list of files and a patch. Everything goes
through console (colors on a terminal, plain text in a pipe).
"""

from __future__ import annotations

import json
import shlex
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import console
from ..console import Segment
from .compare import Difference, Field, PatchSummary, Section

if TYPE_CHECKING:
    from ..vcs.trees import CodeDiff

Line = list[Segment]

OLD, NEW, DIM, BOLD, KEY, NOTE = "red", "green", "dim", "bold", "cyan", "yellow"
LONG = 60  # values longer than this are shown on lines of their own (- old / + new)
KEY_WIDTH = 30
_TYPED_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "none", "~", ""}


def labels(diff: Difference) -> list[str]:
    """Run ids, or their paths when two runs share an id (copies of one run)."""
    ids = [side.id for side in diff.runs]
    paths = [str(side.path) for side in diff.runs]
    if len(set(ids)) == len(ids) or len(set(paths)) != len(paths):
        return ids
    return paths


# ---- values as text -------------------------------------------------------------------


def _config_value(value: Any) -> str:
    if isinstance(value, str):
        plain = value.strip() == value and value.lower() not in _TYPED_WORDS
        if plain:
            try:
                float(value)
            except ValueError:
                return value
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def _number(value: float) -> str:
    return f"{value:.6g}"


def _metric(value: dict[str, Any], aim: str) -> str:
    return f"last {_number(value['last'])}, {aim} {_number(value['best'])}"


def text(section: str, key: str, value: Any) -> str:
    """One field's value as people read it."""
    if section == "config":
        return _config_value(value)
    if value is None:
        return {"commit": "(no commits yet)", "branch": "(detached)",
                "patch": "none (clean)"}.get(key, "none")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, PatchSummary):
        files = console.plural(value.files, "file")
        return f"{files}, +{value.insertions} -{value.deletions}"
    if key == "patch" and value == "missing":
        return "git.patch missing"
    if key == "command":
        return shlex.join(value)
    if key == "commit":
        return str(value)[:10]
    if key == "signal" and isinstance(value, int):
        try:
            return f"{signal.Signals(value).name} ({value})"
        except ValueError:
            return str(value)
    if key == "duration" and isinstance(value, int | float):
        from ..times import format_duration  # only --all shows durations

        return format_duration(value)
    if isinstance(value, tuple | list):
        if key == "untracked":
            return console.plural(len(value), "file") if value else "none"
        return ", ".join(str(v) for v in value) if value else "none"
    return str(value)


def _signed(value: float) -> str:
    return f"{value:+.3g}"


# ---- two runs -------------------------------------------------------------------------


def _only(section: str, index: int, names: Sequence[str]) -> str:
    if section == "packages":
        return "removed" if index == 0 else "added"
    return f"only in {names[index]}"


def _commit_note(f: Field, names: Sequence[str]) -> str:
    apart = f.detail.get("apart") or [None, None]
    counts = apart[1] if len(apart) > 1 else None
    if not counts:
        return ""
    ahead, behind = counts["ahead"], counts["behind"]

    def commits(n: int) -> str:
        return console.plural(n, "commit")

    if ahead and behind:
        return (f"  (diverged: {names[1]} has {commits(ahead)} {names[0]} lacks, "
                f"{names[0]} has {commits(behind)} {names[1]} lacks)")
    if ahead:
        return f"  ({names[1]} is {commits(ahead)} ahead)"
    if behind:
        return f"  ({names[1]} is {commits(behind)} behind)"
    return ""


def _metric_line(f: Field, names: Sequence[str], prefix: Line) -> Line:
    aim = f.detail.get("goal", "min")
    a, b = f.values
    if not all(f.present):
        index = 0 if f.present[0] else 1
        value = a if index == 0 else b
        return [*prefix, (_metric(value, aim), OLD if index == 0 else NEW),
                (f"  ({_only('metrics', index, names)})", DIM)]
    if not f.differs:
        return [*prefix, (_metric(a, aim), DIM)]
    line = [*prefix]
    for part, label in (("last", "last"), ("best", aim)):
        line += [(f"{label} ", None), (_number(a[part]), OLD), (" → ", DIM),
                 (_number(b[part]), NEW)]
        change = b[part] - a[part]
        line.append((f" ({_signed(change)})   " if change else "   ", DIM))
    if a["last_step"] != b["last_step"]:
        line += [(f"last step {a['last_step']} → {b['last_step']}   ", None)]
    elif a["samples"] != b["samples"]:
        line += [(f"samples {a['samples']} → {b['samples']}   ", None)]
    step = (f.detail.get("diverges_at") or [None, None])[1]
    if step is not None:
        line.append((f"diverge at step {step}", BOLD))
    return _trim(line)


def _trim(line: Line) -> Line:
    if line:
        last, style = line[-1]
        line[-1] = (last.rstrip(), style)
    return line


def _field_lines(section: Section, f: Field, names: Sequence[str], width: int) -> list[Line]:
    prefix: Line = [("  ", None), (f.key.ljust(width) + "  ", DIM if f.by_nature else KEY)]
    if section.name == "metrics":
        return [_metric_line(f, names, prefix)]
    a, b = (text(section.name, f.key, v) for v in f.values)
    if not f.differs:
        return [[*prefix, (a, DIM)]]
    if f.by_nature:
        return [[*prefix, (f"{a} → {b}", DIM)]]
    if not all(f.present):
        index = 0 if f.present[0] else 1
        value = a if index == 0 else b
        return [[*prefix, (value, OLD if index == 0 else NEW),
                 (f"  ({_only(section.name, index, names)})", DIM)]]
    if f.key == "untracked":
        old, new = (set(v) for v in f.values)
        changes = [f"+{n}" for n in sorted(new - old)] + [f"-{n}" for n in sorted(old - new)]
        return [[*prefix, (f"{a} → {b}", None), (f"  ({' '.join(changes)})", DIM)]]
    if f.key == "patch" and a == b:  # same size, different content
        return [[*prefix, (a, OLD), (" → ", DIM), (b, NEW), ("  (different changes)", DIM)]]
    suffix = _commit_note(f, names) if f.key == "commit" else ""
    if len(a) + len(b) > LONG or "\n" in a + b:
        a, b = (v.replace("\n", "\n      ") for v in (a, b))  # a note's further lines
        return [[("  ", None), (f.key, KEY)], [("    - ", OLD), (a, OLD)],
                [("    + ", NEW), (b, NEW)]]
    return [[*prefix, (a, OLD), (" → ", DIM), (b, NEW), (suffix, DIM)]]


def _section_lines(section: Section, fields: Sequence[Field], names: Sequence[str]
                   ) -> list[Line]:
    lines: list[Line] = [[(section.name, BOLD)]]
    width = min(KEY_WIDTH, max((len(f.key) for f in fields), default=0))
    for f in fields:
        lines += _field_lines(section, f, names, width)
    if not fields and not section.notes:
        lines.append([("  (nothing recorded)", DIM)])
    lines += [[("  note: ", NOTE), (note, None)] for note in section.notes]
    return lines


# ---- code -----------------------------------------------------------------------------


def _patch_lines(patch: str) -> list[Line]:
    lines: list[Line] = []
    in_header = False
    for raw in patch.splitlines():
        if raw.startswith("diff --git "):
            in_header = True
            style: str | None = BOLD
        elif raw.startswith("@@"):
            in_header = False
            style = KEY
        elif in_header:
            style = BOLD
        elif raw.startswith("+"):
            style = NEW
        elif raw.startswith("-"):
            style = OLD
        else:
            style = None
        lines.append([(raw, style)])
    return lines


def _code_lines(code: CodeDiff, names: Sequence[str]) -> list[Line]:
    lines: list[Line] = [[("code", BOLD), (f"  {names[0]} → {names[1]} "
                                           "(commit + git.patch)", DIM)]]
    if code.available and not code.differs:
        lines.append([("  identical (every tracked file)", DIM)])
    paths = [f"{f.old_path} → {f.path}" if f.old_path else f.path for f in code.files]
    width = max((len(f.status) for f in code.files), default=0)
    path_width = min(KEY_WIDTH * 2, max((len(p) for p in paths), default=0))
    for f, path in zip(code.files, paths, strict=True):
        counts = ("binary" if f.insertions is None
                  else f"+{f.insertions} -{f.deletions}")
        lines.append([("  ", None), (f.status.ljust(width) + "  ", KEY),
                      (path.ljust(path_width), None), (f"  {counts}", DIM)])
    lines += [[("  note: ", NOTE), (note, None)] for note in code.notes]
    if code.patch:
        lines.append([])
        lines += _patch_lines(code.patch)
    return lines


# ---- the whole view -------------------------------------------------------------------


def _identical(diff: Difference, names: Sequence[str]) -> Line:
    runs = " and ".join([", ".join(names[:-1]), names[-1]])
    what = [s.name for s in diff.sections] + (["code"] if diff.code is not None else [])
    hidden = sum(s.hidden_by_nature() for s in diff.sections)
    tail = (f"; {console.plural(hidden, 'field')} that differ by nature (ids, times, "
            "pids) hidden, --all shows them" if hidden else "")
    return [(f"{runs} are identical", BOLD), (f" ({', '.join(what)}){tail}", DIM)]


def show(diff: Difference, everything: bool) -> None:
    if len(diff.runs) == 2:
        _show_two(diff, everything)
    else:
        _show_many(diff, everything)


def _show_two(diff: Difference, everything: bool) -> None:
    names = labels(diff)
    differs = diff.differs
    lines: list[Line] = [[(names[0], OLD), (" → ", DIM), (names[1], NEW)]]
    for section in diff.sections:
        fields = section.shown(everything)
        if fields or section.notes or everything:
            lines += [[], *_section_lines(section, fields, names)]
    if diff.code is not None:
        lines += [[], *_code_lines(diff.code[0], names)]
    if not differs and not everything:
        lines = lines[2:] if len(lines) > 1 else []  # drop the heading: nothing differs
        lines += [[], _identical(diff, names)] if lines else [_identical(diff, names)]
    console.styled_lines(lines)


def _cells(section: Section, f: Field) -> list[tuple[str, list[str]]]:
    if f.key == "commit" and section.name == "git":
        cells = [text("git", "commit", v) if present else "-"
                 for v, present in zip(f.values, f.present, strict=True)]
        for i, counts in enumerate(f.detail.get("apart") or ()):
            if counts and (counts["ahead"] or counts["behind"]):
                cells[i] += f" (+{counts['ahead']} -{counts['behind']})"
        return [("commit", cells)]
    if section.name == "metrics":
        aim = f.detail.get("goal", "min")
        return [(f"{f.key} {part}", [
            _number(v["last" if part == "last" else "best"]) if present else "-"
            for v, present in zip(f.values, f.present, strict=True)
        ]) for part in ("last", aim)]
    return [(f.key, [text(section.name, f.key, v) if present else "-"
                     for v, present in zip(f.values, f.present, strict=True)])]


def _show_many(diff: Difference, everything: bool) -> None:
    names = labels(diff)
    rows: list[list[str]] = []
    styles: list[list[str | None]] = []
    dim: str | None = DIM
    notes: list[Line] = []
    for section in diff.sections:
        for f in section.shown(everything):
            for key, values in _cells(section, f):
                rows.append([section.name, key, *values])
                style = None if f.counts else dim
                styles.append([dim, dim if f.by_nature else KEY, *[style] * len(values)])
        notes += [[(f"{section.name}: ", NOTE), (note, None)] for note in section.notes]
    if not diff.differs and not everything:
        console.styled_lines([*notes, _identical(diff, names)])
    else:
        if rows:
            console.table(["section", "field", *names], rows, styles)
        if notes:
            console.styled_lines(notes)
    for code in diff.code or ():
        pair = [code.runs[0], code.runs[1]]
        console.styled_lines([[], *_code_lines(code, pair)])
