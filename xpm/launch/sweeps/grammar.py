"""The sweep grammar of `-s KEY=EXPR`, as Hydra's and DVC's overrides read it.

    a,b,c                    a list of values (each read as YAML, as `-s` reads one)
    range([start,]stop[,step]) integers, or floats when any bound is a float; stop excluded
    choice(a,b,c)            a list; with --random, one drawn at random
    interval(lo,hi)          --random only: a float drawn uniformly in [lo, hi)
    log_interval(lo,hi)      --random only: a float drawn log-uniformly in [lo, hi)
    anything else            one value: a fixed override for every trial

Brackets, braces, parentheses and quotes keep a value whole: `layers=[64,64],[128]` is two
lists, `'name="a,b"'` one text. Pure: no files, no processes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ...config import check_plain, parse_key, yaml_loader
from ...errors import UsageError

_FUNCTION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.DOTALL)
FUNCTIONS = ("range", "choice", "interval", "log_interval")
_OPEN = {"[": "]", "{": "}", "(": ")"}
_CLOSE = {v: k for k, v in _OPEN.items()}


@dataclass(frozen=True)
class Value:
    """One value a key takes: as data, and as the `KEY=TEXT` a run's -s would be given."""

    data: Any
    text: str


@dataclass(frozen=True)
class Override:
    """One `-s KEY=EXPR`: fixed (one value), a list of values, or an interval."""

    key: str
    given: str  # the whole `KEY=EXPR` as typed
    values: tuple[Value, ...] = ()  # fixed: one; listed: one or more
    swept: bool = False  # a list, range or choice (even of one value)
    interval: tuple[float, float] | None = None
    log: bool = False

    @property
    def random_only(self) -> bool:
        return self.interval is not None

    def assignment(self, value: Value) -> str:
        return f"{self.key}={value.text}"


def split_top(text: str, given: str) -> list[str]:
    """Split on the commas outside brackets and quotes."""
    parts: list[str] = []
    stack: list[str] = []
    quote: str | None = None
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\" and quote == '"':
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in _OPEN:
            stack.append(_OPEN[ch])
        elif ch in _CLOSE:
            if not stack or stack[-1] != ch:
                raise UsageError(f"-s `{given}`: `{ch}` at position {i + 1} of `{text}` closes "
                                 "nothing; balance the brackets, or quote the value")
            stack.pop()
        elif ch == "," and not stack:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quote is not None:
        raise UsageError(f"-s `{given}`: the quote {quote} in `{text}` is never closed; "
                         "close it")
    if stack:
        raise UsageError(f"-s `{given}`: `{text}` leaves `{_CLOSE[stack[-1]]}` unclosed; "
                         f"add the `{stack[-1]}`")
    parts.append(text[start:])
    return parts


def parse_value(text: str, given: str) -> Any:
    """A value as `-s KEY=VALUE` reads it: YAML, an empty text for nothing."""
    if not text.strip():
        return ""
    import yaml

    try:
        value = yaml.load(text, Loader=yaml_loader())
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"-s `{given}`: `{text}` is not a YAML value ({problem}); quote it "
                         "to pass text") from None
    check_plain(value, f"-s `{given}`", text)
    return value


def _number(text: str, given: str, function: str) -> int | float:
    value = parse_value(text, given)
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise UsageError(f"-s `{given}`: the arguments of {function}() are numbers, "
                         f"`{text.strip()}` is not; write e.g. {function}(0,10)")
    return value


def _format_number(value: int | float) -> str:
    return repr(value)


def float_range(start: float, stop: float, step: float) -> list[float]:
    """start, start+step, ... short of stop, each rounded to the bounds' precision (so
    that range(0,1,0.1) gives 0.3, not 0.30000000000000004)."""
    digits = max(_decimals(start), _decimals(step), _decimals(stop))
    count = math.ceil(round((stop - start) / step, 9))
    return [round(start + i * step, digits) for i in range(max(count, 0))]


def _decimals(value: float) -> int:
    text = repr(float(value))
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        return max(0, len(mantissa.partition(".")[2]) - int(exponent))
    return len(text.partition(".")[2])


def _range(args: list[str], given: str) -> tuple[Value, ...]:
    if len(args) not in (1, 2, 3):
        raise UsageError(f"-s `{given}`: range() takes start, stop and an optional step, "
                         f"not {len(args)} arguments; write e.g. range(0,10,2)")
    numbers = [_number(a, given, "range") for a in args]
    if len(numbers) == 1:  # range(stop), as Python's
        numbers.insert(0, 0)
    start, stop = numbers[0], numbers[1]
    step = numbers[2] if len(numbers) == 3 else 1
    if step == 0:
        raise UsageError(f"-s `{given}`: the step of range() is 0; give a step that is not 0")
    values: list[int | float]
    if all(isinstance(n, int) for n in numbers):
        values = list(range(int(start), int(stop), int(step)))
    else:
        values = list(float_range(float(start), float(stop), float(step)))
    if not values:
        raise UsageError(f"-s `{given}`: range({', '.join(a.strip() for a in args)}) is empty; "
                         "give a stop past the start in the step's direction")
    return tuple(Value(v, _format_number(v)) for v in values)


def _interval(function: str, args: list[str], given: str) -> tuple[float, float]:
    if len(args) != 2:
        raise UsageError(f"-s `{given}`: {function}() takes two bounds, lo and hi, not "
                         f"{len(args)} arguments; write e.g. {function}(0.001,0.1)")
    lo, hi = (float(_number(a, given, function)) for a in args)
    if not lo < hi:
        raise UsageError(f"-s `{given}`: {function}({lo:g},{hi:g}) is empty; "
                         "give lo below hi")
    if function == "log_interval" and lo <= 0:
        raise UsageError(f"-s `{given}`: log_interval() needs bounds above 0, got {lo:g}; "
                         "use interval() for bounds at or below 0")
    return lo, hi


def _listed(parts: list[str], given: str) -> tuple[Value, ...]:
    values = []
    for i, part in enumerate(parts):
        if not part.strip():
            raise UsageError(f"-s `{given}`: value {i + 1} of the list is empty; remove the "
                             "extra comma, or quote a value holding commas ('x=\"a,b\"')")
        values.append(Value(parse_value(part, given), part.strip()))
    return tuple(values)


def parse_override(given: str) -> Override:
    """One `KEY=EXPR`, checked; UsageError naming the part that is wrong."""
    key, sep, expr = given.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"-s `{given}` is not KEY=VALUE; write e.g. -s lr=0.1,0.01 or "
                         "-s lr=range(1,4)")
    try:
        parse_key(key)
    except UsageError as exc:
        raise UsageError(f"-s `{given}`: {exc}") from None
    function = _FUNCTION.match(expr)
    if function is not None and split_top(expr, given) == [expr]:
        name, inner = function.group(1), function.group(2)
        if name not in FUNCTIONS:
            raise UsageError(f"-s `{given}`: `{name}()` is not a sweep function; use "
                             f"{', '.join(f + '()' for f in FUNCTIONS)}, or quote the value "
                             "to pass it as text")
        args = split_top(inner, given) if inner.strip() else []
        if name == "range":
            return Override(key, given, _range(args, given), swept=True)
        if name == "choice":
            if not args:
                raise UsageError(f"-s `{given}`: choice() is empty; give it values, "
                                 "e.g. choice(a,b)")
            return Override(key, given, _listed(args, given), swept=True)
        return Override(key, given, interval=_interval(name, args, given),
                        log=name == "log_interval")
    parts = split_top(expr, given)
    if len(parts) == 1:
        return Override(key, given, (Value(parse_value(expr, given), expr),))
    return Override(key, given, _listed(parts, given), swept=True)
