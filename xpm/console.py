"""The one place that prints.

Data (tables, JSON, logs) goes to stdout; messages (progress, warnings, errors) go to
stderr, prefixed with ``xpm:``. rich is imported only by the functions that draw.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import TYPE_CHECKING, Any

from .machine import terminal_columns

if TYPE_CHECKING:
    from rich.console import Console


STATUS_STYLES = {
    "completed": "green", "running": "cyan", "queued": "blue", "failed": "red",
    "killed": "red", "interrupted": "yellow", "lost": "magenta", "cancelled": "yellow",
    "corrupt": "bold red",
}


def status_style(status: str) -> str | None:
    """The color a status is shown in on a terminal."""
    return STATUS_STYLES.get(status)


def _use_color(stream: Any) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return bool(getattr(stream, "isatty", lambda: False)())


def stdout_in_color() -> bool:
    """Whether what goes to stdout may be colored (a terminal, and no NO_COLOR)."""
    return _use_color(sys.stdout)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _message(text: str, style: str | None = None) -> None:
    clear_live()
    if style and _use_color(sys.stderr):
        text = f"\x1b[{style}m{text}\x1b[0m"
    try:
        sys.stderr.write(f"xpm: {text}\n")
        sys.stderr.flush()
    except OSError:  # the terminal hung up, the pipe closed: nobody is left to read it
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (stderr from now on)


def info(text: str) -> None:
    _message(text)


def warn(text: str) -> None:
    _message(f"warning: {text}", "33")


def one_line(text: str) -> str:
    """Text with its line breaks and other control characters written as escapes
    (`\\n`), so that a message stays one line whatever a user's input holds."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def error(text: str) -> None:
    _message(f"error: {one_line(text)}", "31")


def out(text: str = "") -> None:
    """One line of data on stdout."""
    sys.stdout.write(text + "\n")


def out_raw(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def plural(count: int, word: str) -> str:
    """`1 run`, `3 runs`."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def path(p: os.PathLike[str] | str) -> str:
    """A path as the user would type it: relative to the current folder when below it."""
    relative = os.path.relpath(p)
    return os.fspath(p) if relative.startswith("..") else relative


def flush() -> None:
    sys.stdout.flush()


_live = {"shown": False}


def live(text: str) -> None:
    """A status line on stderr, redrawn in place (a terminal only); `clear_live` wipes it
    before other output."""
    if sys.stderr.isatty():
        width = terminal_columns() - 1
        sys.stderr.write("\r\x1b[K" + text[:width])
        sys.stderr.flush()
        _live["shown"] = True


def clear_live() -> None:
    if _live["shown"]:
        sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()
        _live["shown"] = False


def confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal; default no."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def rich_console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(
        file=stream,
        no_color=not _use_color(stream),
        highlight=False,
        soft_wrap=not stream.isatty(),
    )


RICH_ROWS = 2000  # above this, rich's layout takes seconds: a terminal gets plain rows too
GAP = 2  # between two columns of a table
CUT_MIN = 10  # a cut column keeps at least this many characters (and its whole header)


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    styles: Sequence[Sequence[str | None]] | None = None,
    footer: str | None = None,
    fixed: Sequence[bool] | None = None,
    hidden_hint: str | None = None,
    style_of: Callable[[int, str], str | None] | None = None,
) -> None:
    """A table fitted to the terminal, or plain tab-free aligned rows for a pipe.

    A cell's style (a color, where colors are on) comes from `styles` (row by row) or
    from `style_of(column, cell)`.

    Plain rows are written as they are laid out (memory stays that of `rows`); on a
    terminal they keep their styles as colors. With `fixed` (a flag a column), a terminal
    never cuts the fixed columns (ids, statuses, times) and cuts the others with an
    ellipsis; columns that do not fit are hidden (see `fit`), a line under the table
    naming them and saying `hidden_hint` (how to see them). Without it, rich folds every
    column.
    """
    if stdout_is_terminal() and len(rows) <= RICH_ROWS:
        from rich.table import Table
        from rich.text import Text

        console = rich_console()
        widths: list[int | None] = [None] * len(columns)
        shown = list(range(len(columns)))
        if fixed is not None:
            widths = fit(columns, rows, fixed, console.width)
            shown = [i for i, w in enumerate(widths) if w is not None]
        t = Table(box=None, pad_edge=False, header_style="bold")
        for i in shown:
            if fixed is None:
                t.add_column(columns[i], overflow="fold")
            elif fixed[i]:
                t.add_column(columns[i], no_wrap=True, overflow="ellipsis")
            else:
                t.add_column(columns[i], no_wrap=True, overflow="ellipsis", width=widths[i])
        for n, row in enumerate(rows):
            t.add_row(*(Text(row[i], style=_style(styles, style_of, n, i, row[i]) or "")
                        for i in shown))
        console.print(t)
        hidden = [c for c, w in zip(columns, widths, strict=True) if fixed and w is None]
        if hidden:
            names = ", ".join(hidden[:3]) + (", …" if len(hidden) > 3 else "")
            console.print(f"{plural(len(hidden), 'column')} hidden to "
                          f"fit ({names})" + (f"; {hidden_hint}" if hidden_hint else ""),
                          style="dim")
        if footer:
            console.print(footer, style="dim")
        return
    sizes = [len(c) for c in columns]
    for row in rows:
        for i, v in enumerate(row):
            if len(v) > sizes[i]:
                sizes[i] = len(v)
    color = bool(styles or style_of) and _use_color(sys.stdout)
    write = sys.stdout.write
    write("  ".join(c.ljust(w) for c, w in zip(columns, sizes, strict=True)).rstrip() + "\n")
    for n, row in enumerate(rows):
        cells = [v.ljust(w) for v, w in zip(row, sizes, strict=True)]
        if color:
            cells = [f"\x1b[{_ANSI[style]}m{c}\x1b[0m"
                     if (style := _style(styles, style_of, n, i, row[i])) in _ANSI else c
                     for i, c in enumerate(cells)]
        write("  ".join(cells).rstrip() + "\n")
    if footer:
        info(footer)


def _style(styles: Sequence[Sequence[str | None]] | None,
           style_of: Callable[[int, str], str | None] | None, row: int, column: int,
           cell: str) -> str | None:
    if styles:
        return styles[row][column]
    return style_of(column, cell) if style_of is not None else None


def fit(columns: Sequence[str], rows: Sequence[Sequence[str]], fixed: Sequence[bool],
        width: int) -> list[int | None]:
    """Each column's width in a table `width` characters wide, None for a hidden one.

    Fixed columns are whole or hidden: from left to right, each is shown while it fits
    (the first of them always). Then the others, from left to right, each while at least
    CUT_MIN characters of it (its whole header, or all of it when narrower) fit. The room
    left is shared among those cut, the least cut first, so that as many as can are whole.
    """
    from rich.cells import cell_len

    natural = [cell_len(c) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            size = cell_len(cell)
            if size > natural[i]:
                natural[i] = size
    least = [n if fixed[i] else min(n, max(cell_len(columns[i]), CUT_MIN))
             for i, n in enumerate(natural)]
    widths: list[int | None] = [None] * len(columns)
    empty = width + GAP  # each column shown takes its width and a gap; the first, no gap
    room = empty
    for is_fixed in (True, False):
        for i, n in enumerate(least):
            if fixed[i] == is_fixed and (n + GAP <= room or room == empty):
                widths[i] = n
                room -= n + GAP
    cut = sorted((i for i, w in enumerate(widths) if w is not None and w < natural[i]),
                 key=lambda i: natural[i] - least[i])
    for k, i in enumerate(cut):
        more = min(natural[i] - least[i], max(room, 0) // (len(cut) - k))
        widths[i] = least[i] + more
        room -= more
    return widths


def json_line(item: Any, finite: Callable[[Any], bool] | None = None) -> bytes:
    """One item of a JSON array (json_lines), encoded: compact JSON, no newline.

    Encoded by orjson (4 times faster than json: `ls --json` of 100,000 runs spends most
    of its time here), except an item holding a non-finite number (orjson would write
    null; `standard` writes "nan") or what orjson refuses (a huge int, a lone surrogate).
    `finite` tells whether an item holds only finite numbers (False when unsure); by
    default every value is looked at (all_finite).
    """
    import orjson

    try:
        if not (finite(item) if finite is not None else all_finite(item)):
            raise TypeError("a non-finite number")
        return orjson.dumps(item)
    except TypeError:
        return json.dumps(standard(item), ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8", "surrogateescape")


def json_lines(lines: Iterable[bytes]) -> None:
    """A JSON array on stdout of items already encoded (json_line), one per line."""
    sys.stdout.flush()
    out = sys.stdout.buffer
    write = out.write
    separator = b"[\n"
    for line in lines:
        write(separator)
        write(line)
        separator = b",\n"
    write(b"[]\n" if separator == b"[\n" else b"\n]\n")
    out.flush()


def all_finite(value: Any) -> bool:
    """No float in `value` (nested in lists and dicts too) is inf or nan."""
    kind = type(value)
    if kind is float:
        return bool(value - value == 0.0)  # inf - inf and nan - nan are nan
    if kind is dict:
        return all(all_finite(v) for v in value.values())
    if kind is list or kind is tuple:
        return all(all_finite(v) for v in value)
    return True


def json_document(data: Any) -> None:
    """One JSON value on stdout, indented for people."""
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    except ValueError:  # a non-finite number
        text = json.dumps(standard(data), indent=2, ensure_ascii=False, allow_nan=False)
    sys.stdout.write(text + "\n")


def standard(value: Any) -> Any:
    """The value with every non-finite number as the string "inf", "-inf" or "nan": JSON
    (RFC 8259) has no such numbers, and most readers refuse Python's `NaN`/`Infinity`."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: standard(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [standard(v) for v in value]
    return value


_CSV_BATCH = 4096


def csv_rows(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """CSV on stdout (RFC 4180 quoting), a header line first."""
    import csv

    buffer = io.StringIO()  # written a batch of rows at a time: one write per row is slow
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    source = iter(rows)
    while batch := list(islice(source, _CSV_BATCH)):
        writer.writerows(batch)
        sys.stdout.write(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    sys.stdout.write(buffer.getvalue())


def fields(title: str | None, pairs: Sequence[tuple[str, str]],
           styles: dict[str, str] | None = None) -> None:
    """A titled block of `key  value` lines (bold title and styled values on a terminal)."""
    color = _use_color(sys.stdout)
    lines = []
    if title is not None:
        lines.append(f"\x1b[1m{title}\x1b[0m" if color else title)
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        style = (styles or {}).get(key)
        shown = f"\x1b[{_ANSI[style]}m{value}\x1b[0m" if color and style in _ANSI else value
        lines.append(f"  {key.ljust(width)}  {shown}".rstrip())
    sys.stdout.write("\n".join(lines) + "\n")


_ANSI = {"green": "32", "red": "31", "yellow": "33", "blue": "34", "magenta": "35",
         "cyan": "36", "bold red": "1;31", "dim": "2"}


@contextmanager
def progress(description: str, total: int, delay: float = 0.4
             ) -> Iterator[Callable[[], None]]:
    """A transient progress bar on stderr for `total` steps; yields `advance()`.

    Drawn only on a terminal, and only once the work has taken longer than `delay`
    seconds, so that quick work does not flicker.
    """
    if total <= 0 or not sys.stderr.isatty():
        yield lambda: None
        return
    import threading

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(),
                   console=rich_console(stderr=True), transient=True)
    task = bar.add_task(description, total=total)
    timer = threading.Timer(delay, bar.start)
    timer.daemon = True
    timer.start()
    try:
        yield lambda: bar.advance(task)
    finally:
        timer.cancel()
        timer.join()
        bar.stop()


Segment = tuple[str, str | None]  # text and its rich style (None: plain)


def styled_lines(lines: Sequence[Sequence[Segment]]) -> None:
    """Lines of styled segments on stdout: colored (rich) on a terminal, plain in a pipe."""
    if not (stdout_is_terminal() and _use_color(sys.stdout)):
        sys.stdout.write("".join("".join(text for text, _ in line) + "\n" for line in lines))
        return
    from rich.text import Text

    console = rich_console()
    for line in lines:
        text = Text()
        for part, style in line:
            text.append(part, style=style or "")
        console.print(text)
