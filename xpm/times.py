"""Timestamps (ISO 8601 with timezone), durations and ages ("3d", "12h")."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from .errors import UsageError

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
MAX_AGE_DAYS = 100 * 365
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def now() -> datetime:
    return datetime.now().astimezone()


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def now_iso() -> str:
    return iso(now())


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def seconds_between(start: str, end: str) -> float:
    return round((parse_iso(end) - parse_iso(start)).total_seconds(), 3)


def parse_age(text: str, option: str = "AGE") -> timedelta:
    """`30s`, `15m`, `12h`, `3d`, `2w` → a timedelta."""
    match = _AGE.match(text)
    if not match:
        raise UsageError(
            f"{option} `{text}` is not an age; write a number and a unit, e.g. 30m, 12h, 3d or 2w"
        )
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds > MAX_AGE_DAYS * 86400:  # beyond what a date can count back to
        raise UsageError(f"{option} `{text}` is more than {MAX_AGE_DAYS // 365} years; "
                         "give a shorter age, e.g. 52w")
    return timedelta(seconds=seconds)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def format_ago(moment: datetime, reference: datetime | None = None) -> str:
    seconds = ((reference or now()) - moment).total_seconds()
    if seconds < 0:
        return "just now"
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 14 * 86400:
        return f"{int(seconds // 86400)}d ago"
    return moment.strftime("%Y-%m-%d")
