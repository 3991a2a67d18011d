"""`xpm ls`: one row per run, filtered, sorted, as a table, JSON or CSV."""

from __future__ import annotations

import fnmatch
import gc
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from .. import console, times
from ..config import flatten
from ..errors import UsageError, XpmError
from ..project import load_project
from ..reading.listing import FiniteRuns, Listed, listed, newest, order_listed, with_path
from ..reading.query import (
    COLUMNS,
    Condition,
    Field,
    RunInfo,
    as_text,
    order,
    parse_condition,
    parse_field,
)
from ..runs.catalog import CORRUPT, LISTED_STATUSES, NEWER, parse_statuses
from ..runs.tree import run_names

DEFAULT_LIMIT = 30
CSV_FIELDS = ("id", "name", "number", "status", *(c.key for c in COLUMNS if c.form != "config"),
              "problem", "path")
_GLOB = set("*?[")
_SHOWN_PROBLEMS = 5


def ls(
    patterns: tuple[str, ...],
    statuses: tuple[str, ...],
    tags: tuple[str, ...],
    since: str | None,
    wheres: tuple[str, ...],
    sort: str | None,
    reverse: bool,
    limit: int | None,
    show_all: bool,
    as_json: bool,
    as_csv: bool,
    columns: str | None,
) -> int:
    if as_json and as_csv:
        raise UsageError("give either --json or --csv, not both")
    if show_all and limit is not None:
        raise UsageError("give either -a (every run) or --limit N, not both")
    if as_json and columns:
        raise UsageError("--columns picks the columns of the table and of --csv; "
                         "--json always prints every field")
    wanted = {s for text in statuses for s in parse_statuses(text, LISTED_STATUSES)}
    keep = Filters(wanted, tags,
                   times.now() - times.parse_age(since, "--since") if since is not None else None,
                   [parse_condition(w, LISTED_STATUSES) for w in wheres])
    sort_field = parse_field(sort, f"--sort `{sort}`") if sort is not None else None
    column_fields = _columns(columns) if columns is not None else None
    results = load_project().results_dir
    sweep = _sweep_listing(results, patterns)
    if sweep is not None:
        show_all = show_all or limit is None  # a sweep's trials are listed whole
    names = list(sweep.names) if sweep is not None else _names(results, patterns)
    # Listing makes a few objects per run and frees none of them in cycles; the cyclic
    # collector would walk all of them again and again (a third of the time at 100,000).
    collecting = gc.isenabled()
    gc.disable()
    try:
        plain = not (wanted or tags or since is not None or wheres)  # every run kept
        # `--json` prints what the cache rendered; other outputs and filters need fields.
        fields = not (as_json and plain and sort_field is None and sweep is None)
        fast = None
        if plain and sort_field is None and sweep is None and not reverse and not show_all:
            fast = newest(results, names, limit or DEFAULT_LIMIT, fields, as_json)
        if fast is not None:  # the newest runs, picked through the cache's indexes
            shown, total = fast
            count = total
        else:
            total = 0
            selected: list[Listed] = []
            for item in listed(results, names, fields, as_json):
                if sweep is not None and item.id not in sweep.trials:
                    continue
                total += 1
                if plain or keep(item.run()):
                    selected.append(item)
            if sort_field is None and sweep is None:
                shown = order_listed(selected, reverse)
            elif sort_field is None:  # a sweep's trials, in trial order
                assert sweep is not None
                trials = sweep.trials
                shown = sorted(selected, key=lambda i: trials[i.id], reverse=reverse)
            else:
                by_info = {id(item.run()): item for item in selected}
                shown = [by_info[id(i)] for i in
                         order([i.run() for i in selected], sort_field, reverse)]
                del by_info
            del selected
            count = len(shown)
        if not show_all:
            del shown[limit or DEFAULT_LIMIT:]
        listed_count = len(shown)
        corrupt = [i.run() for i in shown if i.unread]
        footer = _footer(listed_count, count)
        # The outputs take the runs out of `shown` as they go, so that what they build
        # (table cells, JSON text) reuses the memory of the runs already written.
        if as_json:
            console.json_lines(_json_lines(_drain(shown)))
        elif as_csv:
            _csv(_infos(shown), column_fields)
        elif shown:
            _table(_infos(shown), column_fields, footer, sweep)
    finally:
        if collecting:
            gc.enable()
    if not listed_count:
        _explain_empty(results, total, patterns)
    elif (as_json or as_csv) and footer:
        console.info(footer)
    _warn_corrupt(corrupt)
    return 0


class SweepListing(NamedTuple):
    """The runs of the sweeps named (`NAME@K`): their names, trial indexes, swept keys."""

    names: tuple[str, ...]
    trials: dict[str, int]  # run id → trial index
    keys: tuple[str, ...]


def _sweep_listing(results: Path, patterns: tuple[str, ...]) -> SweepListing | None:
    if not any("@" in p for p in patterns):  # no sweep named: sweeps.py not even loaded
        return None
    from ..runs import sweeps

    refs = [p for p in patterns if sweeps.is_ref(p)]
    if not refs:
        return None
    if len(refs) < len(patterns):
        raise UsageError("list sweeps (NAME@K) apart from run names: "
                         f"`xpm ls {' '.join(refs)}`")
    names: dict[str, None] = {}
    trials: dict[str, int] = {}
    keys: dict[str, None] = {}
    for ref in refs:
        manifest = sweeps.resolve(results, ref)
        names[manifest.name] = None
        keys.update(dict.fromkeys(manifest.keys))
        trials.update({t.run: t.index for t in manifest.trials if t.run is not None})
    return SweepListing(tuple(names), trials, tuple(keys))


class Filters(NamedTuple):
    """What a run must have to be listed (every part given)."""

    statuses: set[str]
    tags: tuple[str, ...]
    since: datetime | None
    conditions: list[Condition]

    def __call__(self, info: RunInfo) -> bool:
        if self.statuses and info.status not in self.statuses:
            return False
        if self.tags and not all(t in info.tags for t in self.tags):
            return False
        if self.since is not None:
            when = info.when
            if when is None or times.parse_iso(when) < self.since:
                return False
        return all(c.matches(info) for c in self.conditions)


def _drain(runs: list[Any]) -> Iterator[Any]:
    """The runs in order, each dropped from the list as it is given."""
    runs.reverse()
    while runs:
        yield runs.pop()


def _infos(items: list[Listed]) -> list[RunInfo]:
    """The runs' fields, `items` emptied on the way (memory: see `ls`)."""
    return [item.run() for item in _drain(items)]


def _json_lines(items: Iterator[Listed]) -> Iterator[bytes]:
    """Each run's `--json` object, encoded: as the cache rendered it (with its path), or
    made from its fields."""
    finite = FiniteRuns()
    for item in items:
        if item.out is not None:
            yield with_path(item.out, item.path)
        else:
            yield console.json_line(item.run().to_json(), finite)


# ------------------------------------------------------------------------- options

def _columns(text: str) -> list[Field]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UsageError("--columns is empty; name fields, e.g. --columns id,status,config.lr")
    return [parse_field(p, f"--columns `{p}`") for p in parts]


def _names(results: Path, patterns: tuple[str, ...]) -> list[str] | None:
    """The run names the patterns select, or None for every name."""
    if not patterns:
        return None
    available = run_names(results, follow_links=True)
    chosen: dict[str, None] = {}
    for pattern in patterns:
        if "/" in pattern.rstrip("/"):
            raise UsageError(f"`xpm ls` takes run names or globs, not `{pattern}`; "
                             f"`xpm show {pattern}` shows one run")
        pattern = pattern.rstrip("/")
        if _GLOB & set(pattern):
            chosen.update(dict.fromkeys(fnmatch.filter(available, pattern)))
        elif pattern in available:
            chosen[pattern] = None
        else:
            raise XpmError(f"no run named `{pattern}` in {results}; `xpm ls` lists the "
                           "runs there")
    return list(chosen)


# ------------------------------------------------------------------------- output

def _footer(shown: int, count: int) -> str:
    if count <= shown:
        return ""
    return f"{shown} of {count} runs shown; -a shows all, --limit N more"


def _explain_empty(results: Path, total: int, patterns: tuple[str, ...]) -> None:
    if total:
        console.info(f"no runs match (of {console.plural(total, 'run')})")
    elif patterns:
        console.info("no runs match those names")
    else:
        console.info(f"no runs yet in {results}; `xpm run` starts one")


def _warn_corrupt(unread: list[RunInfo]) -> None:
    bad = [i for i in unread if i.status == CORRUPT]
    for info in bad[:_SHOWN_PROBLEMS]:
        console.warn(f"{info.id} is corrupt: {info.problem}")
    if len(bad) > _SHOWN_PROBLEMS:
        console.warn(f"and {len(bad) - _SHOWN_PROBLEMS} more corrupt run folders")
    newer = [i for i in unread if i.status == NEWER]
    if newer:
        console.warn(f"{newer[0].id}: {newer[0].problem}" if len(newer) == 1 else
                     f"{len(newer)} runs ({newer[0].id}, ...) were written by a newer xpm; "
                     "upgrade xpm-runs to read them")


def format_metric(value: Any) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return "" if value is None else as_text(value)


def format_value(value: Any) -> str:
    """A value in a table cell or CSV field: as YAML/JSON would write it (tags joined by
    commas)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is tuple:
        return ",".join(value)
    if kind is int or kind is float:
        return repr(value)
    if kind is bool:
        return "true" if value else "false"
    return "" if value is None else as_text(value)


def _ago(when: str | None, reference: datetime) -> str:
    return times.format_ago(times.parse_iso(when), reference) if when else ""


def _commit(info: RunInfo) -> str:
    if not info.commit:
        return ""
    return info.commit[:7] + ("*" if info.dirty else "")


def _display(field: Field, reference: datetime) -> Callable[[RunInfo], str]:
    """How a field's value is shown in the table."""
    name = field.parts[0]
    if field.kind == "metrics":
        return lambda i: format_metric(field.get(i))
    if field.kind == "plain" and name in ("created", "started", "ended"):
        return lambda i: _ago(field.get(i), reference)
    if field.kind == "plain" and name == "duration":
        return lambda i: times.format_duration(i.duration)
    if field.kind == "git" and name == "commit":
        return _commit
    if field.kind == "plain" and name == "tags":  # in the order `xpm diff` shows them
        return lambda i: format_value(tuple(sorted(i.tags)))
    return lambda i: format_value(field.get(i))


_MISSING = object()


class FlatConfigs:
    """Flattened config values (`model.layers[1]`), each distinct section flattened once:
    listing shares equal sections between runs, so a sweep of 100,000 runs has a handful."""

    def __init__(self) -> None:
        # By identity; each entry keeps its section alive, so that no id is reused.
        self._memo: dict[tuple[str, int], tuple[Any, dict[str, Any]]] = {}

    def flat(self, key: str, value: Any) -> dict[str, Any]:
        """flatten(value) under `key`, for a config's top-level `key: value`."""
        if isinstance(value, dict):
            memo = (key, id(value))
            known = self._memo.get(memo)
            if known is None:
                known = self._memo[memo] = (value, flatten(value, key))
            return known[1]
        return flatten(value, key) if isinstance(value, list) else {key: value}

    def value(self, config: dict[str, Any], top: str, key: str) -> Any:
        """The value at flattened `key` (under top-level `top`), or _MISSING."""
        value = config.get(top, _MISSING)
        if value is _MISSING or (key == top and not isinstance(value, dict | list)):
            return value
        return self.flat(top, value).get(key, _MISSING)

    def varying(self, configs: list[dict[str, Any]]) -> dict[str, str]:
        """Flattened keys whose values are not the same in every config (missing counts
        as different), in order of appearance, each with its top-level key."""
        count: dict[str, int] = {}
        distinct: dict[str, dict[Any, Any]] = {}
        for config in configs:
            for top, value in config.items():
                seen = distinct.get(top)
                if seen is None:
                    seen = distinct[top] = {}
                    count[top] = 0
                count[top] += 1
                kind = type(value)
                if kind is dict:
                    seen.setdefault(id(value), value)
                elif kind is list:
                    seen.setdefault(as_text(value), value)
                elif len(seen) < 2:  # one other value is enough to know it varies
                    seen.setdefault((kind, value), value)
        keys: dict[str, str] = {}
        for top, seen in distinct.items():
            flats = [self.flat(top, v) for v in seen.values()]
            union: dict[str, None] = {}
            for flat in flats:
                union.update(dict.fromkeys(flat))
            for key in union:
                values = [flat.get(key, _MISSING) for flat in flats]
                first = values[0]
                if count[top] < len(configs) or any(
                        v is _MISSING or type(v) is not type(first) or v != first
                        for v in values):
                    keys[key] = top
        return keys


# Fields whose cells are short and must be read whole: never cut on a terminal.
_WHOLE = {"id", "name", "number", "status", "created", "started", "ended", "duration",
          "exit_code", "signal", "attempts", "seed", "commit", "dirty"}
_HIDDEN_HINT = "see them with --columns, --json or in a pipe (xpm ls | less -S)"


def _table(shown: list[RunInfo], fields: list[Field] | None, footer: str,
           sweep: SweepListing | None = None) -> None:
    reference = times.now()
    # header, cell, whole (a short value never cut on a terminal; the others may be cut
    # or, from the right, hidden)
    columns: list[tuple[str, Callable[[RunInfo], str], bool]]
    if fields is not None:
        columns = [(f.text, _display(f, reference), f.kind not in ("config", "metrics")
                    and str(f.parts[0]) in _WHOLE) for f in fields]
    else:
        columns = [
            ("id", lambda i: i.id, True),
            ("status", lambda i: i.status, True),
            ("started", lambda i: _ago(i.when, reference), True),
            ("duration", lambda i: times.format_duration(i.duration), True),
        ]
        if sweep is not None:  # the trial and its swept keys first
            trials = sweep.trials
            columns.insert(1, ("trial", lambda i: str(trials.get(i.id, "")), True))
            columns.extend((key, _swept_getter(key), False) for key in sweep.keys)
        if any(i.commit for i in shown):
            columns.append(("commit", _commit, True))
        if any(i.tags for i in shown):
            columns.append(("tags", lambda i: format_value(tuple(sorted(i.tags))), False))
        if sweep is None and any(i.get("sweep") for i in shown):
            columns.append(("sweep", lambda i: i.get("sweep") or "", True))
        names: dict[str, None] = {}
        for info in shown:
            names.update(dict.fromkeys(info.metrics or {}))
        for name in names:
            columns.append((name, _metric_getter(name), False))
        configs = FlatConfigs()
        swept = sweep.keys if sweep is not None else ()
        for key, top in configs.varying([i.config for i in shown]).items():
            if not any(key == k or key.startswith((f"{k}.", f"{k}[")) for k in swept):
                columns.append((key, _config_getter(configs, top, key), False))
    # Equal cells (statuses, dates, config values) share one str: 100,000 rows fit.
    shared: list[dict[str, str]] = [{} for _ in columns]
    rows = [[cells.setdefault(text, text)
             for cells, text in zip(shared, (show(i) for _, show, _ in columns), strict=True)]
            for i in _drain(shown)]
    del shared
    status_at = next((n for n, (h, _, _) in enumerate(columns) if h == "status"), None)
    console.table([h for h, _, _ in columns], rows, footer=footer or None,
                  fixed=[whole for _, _, whole in columns], hidden_hint=_HIDDEN_HINT,
                  style_of=lambda col, cell: console.status_style(cell) if col == status_at
                  else None)


def _metric_getter(name: str) -> Callable[[RunInfo], str]:
    return lambda i: format_metric((i.metrics or {}).get(name))


def _swept_getter(key: str) -> Callable[[RunInfo], str]:
    """The cell of a swept key (`model.lr`, `layers`): its whole value in the config."""
    from ..config import parse_key

    path = parse_key(key)

    def get(info: RunInfo) -> str:
        node: Any = info.config
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return ""
        return format_value(node)

    return get


def _config_getter(configs: FlatConfigs, top: str, key: str) -> Callable[[RunInfo], str]:
    """The cell of config `key` (under top-level `top`) for a run."""
    # Shared sections: each formatted once (the entry keeps the section alive).
    by_section: dict[int, tuple[Any, str]] = {}

    def get(info: RunInfo) -> str:
        section = info.config.get(top)
        if isinstance(section, dict):
            known = by_section.get(id(section))
            if known is not None:
                return known[1]
        value = configs.value(info.config, top, key)
        cell = "" if value is _MISSING else format_value(value)
        if isinstance(section, dict):
            by_section[id(section)] = (section, cell)
        return cell

    return get


def _csv(shown: list[RunInfo], fields: list[Field] | None) -> None:
    getters: list[Callable[[RunInfo], str]]
    if fields is None:
        header = list(CSV_FIELDS)
        getters = [_csv_getter(parse_field(f, "csv")) for f in CSV_FIELDS]
        configs = FlatConfigs()
        keys: dict[str, str] = {}
        metric_names: dict[str, None] = {}
        for info in shown:
            for top, value in info.config.items():
                keys.update(dict.fromkeys(configs.flat(top, value), top))
            metric_names.update(dict.fromkeys(info.metrics or {}))
        for key, top in keys.items():
            header.append(f"config.{key}")
            getters.append(_config_getter(configs, top, key))
        for name in metric_names:
            header.append(f"metrics.{name}")
            getters.append(_csv_getter(Field(f"metrics.{name}", "metrics", (name,))))
    else:
        header = [f.text for f in fields]
        getters = [_csv_getter(f) for f in fields]
    console.csv_rows(header, ([get(i) for get in getters] for i in _drain(shown)))


def _csv_getter(field: Field) -> Callable[[RunInfo], str]:
    return lambda info: format_value(field.get(info))
