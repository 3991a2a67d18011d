"""From parsed overrides (and a trials file) to the list of trials: the Cartesian product,
pairs (--zip), random draws (--random N with a seed) or a file's rows (--trials FILE).

Each trial carries the `-s` assignments its run is given, in the order typed (fixed and
swept alike, a trials file's values last, so that they merge over the fixed ones), and the
values of the keys that vary. Pure but for reading the trials file.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

from ...errors import UsageError, XpmError
from ...runs.sweeps import TrialEntry as Trial
from .grammar import Override, Value

MAX_TRIALS = 10_000
GRID, ZIP, RANDOM, FILE = "grid", "zip", "random", "trials"


def render(value: Any) -> str:
    """A value as `-s KEY=TEXT` reads back the same (JSON is YAML's flow syntax)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {render(v)}"
                               for k, v in value.items()) + "}"
    return json.dumps(value, ensure_ascii=False)


def count(overrides: list[Override], mode: str) -> int:
    swept = [o for o in overrides if o.swept]
    if mode == ZIP:
        return len(swept[0].values) if swept else 0
    return math.prod(len(o.values) for o in swept) if swept else 0


def check(overrides: list[Override], mode: str, random_n: int | None, yes: bool,
          rows: int | None = None) -> int:
    """How many trials there will be; UsageError for a combination that cannot be run."""
    swept = [o for o in overrides if o.swept or o.random_only]
    keys = [o.key for o in swept]
    for key in keys:
        if keys.count(key) > 1:
            raise UsageError(f"`{key}` is swept by two -s; give all its values in one "
                             f"(-s {key}=a,b,c)")
    if mode != RANDOM:
        for o in overrides:
            if o.random_only:
                raise UsageError(f"-s `{o.given}`: interval() and log_interval() draw values "
                                 "at random; add --random N, or give a list or range()")
    if mode == ZIP:
        if not swept:
            raise UsageError("--zip pairs swept keys but no -s gives several values; "
                             "write e.g. -s lr=0.1,0.01 -s batch=32,64")
        lengths = {o.key: len(o.values) for o in swept}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
            raise UsageError(f"--zip needs as many values for every swept key ({shown}); "
                             "give each the same number, or drop --zip for the product")
    if mode == FILE:
        if swept:
            raise UsageError(f"-s `{swept[0].given}` sweeps a key, and --trials FILE gives "
                             "the trials; keep fixed -s values only with --trials")
        total = rows or 0
    elif mode == RANDOM:
        if random_n is None or random_n < 1:
            raise UsageError("--random takes the number of trials to draw, at least 1")
        total = random_n
    else:
        total = count(overrides, mode)
        if total == 0:
            raise UsageError("nothing to sweep: give a key several values (-s lr=0.1,0.01, "
                             "-s lr=range(1,4)), --trials FILE or --random N")
    if total > MAX_TRIALS and not yes:
        raise UsageError(f"this sweep has {total:,} trials, more than {MAX_TRIALS:,}; "
                         "narrow it, or pass --yes to make them all")
    return total


def _fixed(o: Override) -> tuple[str, ...]:
    return (o.assignment(o.values[0]),)


def _trial(index: int, overrides: list[Override], chosen: dict[str, Value],
           extra: dict[str, Any] | None = None) -> Trial:
    assignments = []
    varying: dict[str, Any] = {}
    for o in overrides:
        if o.key in chosen and (o.swept or o.random_only):
            value = chosen[o.key]
            assignments.append(o.assignment(value))
            varying[o.key] = value.data
        else:
            assignments.extend(_fixed(o))
    for key, data in (extra or {}).items():
        assignments.append(f"{key}={render(data)}")
        varying[key] = data
    return Trial(index, tuple(assignments), varying)


def _draw(o: Override, rng: random.Random) -> Value:
    if o.interval is not None:
        lo, hi = o.interval
        if o.log:
            x = math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * rng.random())
        else:
            x = lo + (hi - lo) * rng.random()
        x = min(max(x, lo), math.nextafter(hi, lo))
        return Value(x, repr(x))
    return o.values[rng.randrange(len(o.values))]


def expand(overrides: list[Override], mode: str = GRID, random_n: int | None = None,
           sweep_seed: int = 0, rows: list[dict[str, Any]] | None = None) -> list[Trial]:
    """The trials, indexed from 0 (call `check` first)."""
    swept = [o for o in overrides if o.swept or o.random_only]
    if mode == FILE:
        return [_trial(i, overrides, {}, row) for i, row in enumerate(rows or [])]
    if mode == RANDOM:
        rng = random.Random(sweep_seed)
        return [_trial(i, overrides, {o.key: _draw(o, rng) for o in swept})
                for i in range(random_n or 0)]
    if mode == ZIP:
        columns = [o.values for o in swept]
        combos: Any = zip(*columns, strict=True)
    else:
        combos = itertools.product(*(o.values for o in swept))
    return [_trial(i, overrides, {o.key: v for o, v in zip(swept, combo, strict=True)})
            for i, combo in enumerate(combos)]


def _flat(row: dict[Any, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings become dotted keys; lists and scalars are values."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(_flat(value, name))
        else:
            out[name] = value
    return out


def read_trials_file(path: Path) -> list[dict[str, Any]]:
    """A YAML (or JSON) list of mappings, each flattened to dotted keys."""
    from ...config import check_plain, parse_key, parse_yaml, read_text

    try:
        data = parse_yaml(read_text(path, "trials file"), str(path))
        check_plain(data, str(path))
    except XpmError as exc:
        raise UsageError(str(exc)) from None
    if not isinstance(data, list) or not data:
        what = "an empty list" if data == [] else f"a {type(data).__name__}"
        raise UsageError(f"trials file `{path}` holds {what}, not a list of mappings; write "
                         "one `- key: value` mapping per trial")
    rows = []
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise UsageError(f"trials file `{path}`: item {i + 1} is a {type(row).__name__}, "
                             "not a mapping; write each trial as `- key: value`")
        flat = _flat(row)
        for key in flat:
            parse_key(key)
        rows.append(flat)
    return rows
