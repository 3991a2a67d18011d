"""Drawing curves: in the terminal with plotext, as a PNG or SVG image with matplotlib.

Both libraries are imported here, inside the functions that draw, so that nothing else in
xpm pays for them; matplotlib is the optional extra `xpm-runs[plot]`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import XpmError

IMAGE_SUFFIXES = (".png", ".svg")
IMAGE_WIDTH, DPI = 9, 110  # inches, dots per inch
IMAGE_COLUMNS = IMAGE_WIDTH * DPI  # pixel columns, that curves are decimated to
LEGEND_MAX = 12  # labelled lines in one panel; the others are drawn unlabelled
BEST_LEGEND_POINTS = 20_000  # beyond, the legend goes top right (see image)
TERMINAL_COLORS = ("blue+", "orange+", "green+", "red+", "magenta+", "cyan+", "yellow+",
                   "blue", "orange", "green", "red", "magenta", "cyan", "yellow")


class Line(NamedTuple):
    label: str | None  # None: no entry in the legend
    color: int  # index into the palette
    xs: list[float]
    ys: list[float]
    gid: str  # names the line in an SVG: `run NAME/N`


class Panel(NamedTuple):
    metric: str
    lines: list[Line]


def terminal(panels: Sequence[Panel], xlabel: str, log_y: bool, width: int, height: int,
             color: bool) -> str:
    """The panels stacked, fitting `width` by `height` cells; plain text without `color`."""
    import plotext as plt  # type: ignore[import-untyped,unused-ignore]

    plt.clf()
    plt.subplots(len(panels), 1)
    for index, panel in enumerate(panels, start=1):
        plt.subplot(index, 1)
        for line in panel.lines:
            plt.plot(line.xs, line.ys, label=line.label or "",
                     color=TERMINAL_COLORS[line.color % len(TERMINAL_COLORS)])
        plt.title(panel.metric)
        plt.xlabel(xlabel)
        if log_y:
            plt.yscale("log")
    plt.main().plotsize(width, height)
    plt.theme("clear")
    text: str = plt.main().build()
    return text if color else str(plt.uncolorize(text))


def image(panels: Sequence[Panel], xlabel: str, log_y: bool, path: Path) -> None:
    """A PNG or SVG image of the panels, one above the other."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise XpmError("writing an image needs matplotlib: pip install 'xpm-runs[plot]' "
                       "(or leave out -o to plot in the terminal)") from None
    from matplotlib import colormaps

    palette: Any = colormaps["tab10" if _colors(panels) <= 10 else "tab20"]
    figure = Figure(figsize=(IMAGE_WIDTH, 3.2 * len(panels) + 0.6), layout="constrained")
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels, strict=True):
        for line in panel.lines:
            (drawn,) = ax.plot(line.xs, line.ys, label=line.label, linewidth=1.2,
                               color=palette(line.color % palette.N))
            drawn.set_gid(line.gid)
        ax.set_title(panel.metric)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if log_y:
            ax.set_yscale("log")
        if any(line.label for line in panel.lines):
            # "best" tries each place against every point: seconds for a hundred runs
            points = sum(len(line.xs) for line in panel.lines)
            ax.legend(fontsize="small", loc="best" if points <= BEST_LEGEND_POINTS else
                      "upper right")
    figure.savefig(path, dpi=DPI)


def _colors(panels: Sequence[Panel]) -> int:
    return len({line.color for panel in panels for line in panel.lines})
