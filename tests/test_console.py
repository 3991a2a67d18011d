"""Fitting a table to a terminal's width (console.fit, a pure function)."""

from __future__ import annotations

from xpm.console import fit

HEADERS = ["id", "status", "tags", "path"]
ROWS = [["exp/1", "completed", "a,b", "/data/" + "x" * 30],
        ["exp/10", "interrupted", "baseline,long-run", "/d"]]
FIXED = [True, True, False, False]


def total(widths: list[int | None]) -> int:
    shown = [w for w in widths if w is not None]
    return sum(shown) + 2 * (len(shown) - 1)


def test_everything_whole_when_it_fits() -> None:
    assert fit(HEADERS, ROWS, FIXED, 200) == [6, 11, 17, 36]


def test_the_long_columns_are_cut_the_least_cut_first() -> None:
    widths = fit(HEADERS, ROWS, FIXED, 60)
    assert widths[:3] == [6, 11, 17] and widths[3] is not None
    assert total(widths) == 60 and widths[3] < 36
    widths = fit(HEADERS, ROWS, FIXED, 45)
    assert widths[:2] == [6, 11] and total(widths) == 45
    assert widths[2] is not None and widths[3] is not None


def test_columns_that_do_not_fit_are_hidden_never_folded() -> None:
    assert fit(HEADERS, ROWS, FIXED, 40) == [6, 11, 17, None]
    assert fit(HEADERS, ROWS, FIXED, 31) == [6, 11, 10, None]  # cut to ten, not less
    assert fit(HEADERS, ROWS, FIXED, 30) == [6, 11, None, None]
    assert fit(HEADERS, ROWS, FIXED, 25) == [6, 11, None, None]
    assert fit(HEADERS, ROWS, FIXED, 10) == [6, None, None, None]
    assert fit(HEADERS, ROWS, FIXED, 3) == [6, None, None, None]  # the first stays


def test_a_header_is_never_cut() -> None:
    headers = ["id", "optimizer.scheduler.warmup_steps"]
    rows = [["a/1", "1" * 40]]
    assert fit(headers, rows, [True, False], 40) == [3, 35]
    assert fit(headers, rows, [True, False], 36) == [3, None]


def test_the_fixed_columns_come_first() -> None:
    headers = ["path", "id", "status"]
    rows = [["/data/" + "x" * 30, "exp/1", "completed"]]
    assert fit(headers, rows, [False, True, True], 30) == [12, 5, 9]
    assert fit(headers, rows, [False, True, True], 25) == [None, 5, 9]
    assert fit(headers, rows, [False, True, True], 4) == [None, 5, None]
