"""`xpm plot RUN|NAME|GLOB|NAME@K... [-m METRIC]... [--x step|time] [--smooth N] [--log-y]
[--by KEY] [-o FILE.png|FILE.svg]`: runs' curves overlaid, in the terminal or as an image."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import console
from ..errors import UsageError, XpmError
from ..project import load_project
from ..reading import curves as reading
from ..reading.listing import CACHE_DIR
from ..reading.picking import pick
from ..reading.plots import (
    IMAGE_COLUMNS,
    IMAGE_SUFFIXES,
    LEGEND_MAX,
    Line,
    Panel,
    image,
    terminal,
)
from ..reading.query import as_text, parse_field

PANEL_ROWS = 12  # the fewest terminal rows a panel gets


def plot(runs: tuple[str, ...], wanted: tuple[str, ...], x: str, smooth: int, log_y: bool,
         by: str | None, output: str | None, rank: int = 0) -> int:
    if smooth < 1:
        raise UsageError(f"--smooth {smooth}: give a number of points, 1 or more")
    if output is not None and Path(output).suffix.lower() not in IMAGE_SUFFIXES:
        raise UsageError(f"-o {output}: write a .png or .svg file, e.g. -o curves.png")
    if output is not None and not Path(output).absolute().parent.is_dir():
        raise XpmError(f"-o {output}: the folder {Path(output).parent} does not exist; "
                       "make it first or write elsewhere")
    field = parse_field(by, f"--by `{by}`") if by else None
    project = load_project()
    refs = pick(project.results_dir, runs)
    cache_dir = project.results_dir / CACHE_DIR
    loaded = reading.load_many(refs, x, wanted, rank, cache_dir)
    for run in loaded:
        if run.problem:
            console.warn(run.problem)
    metrics = list(wanted) or reading.default_metrics(loaded)
    if not metrics:
        ids = ", ".join(r.id for r in loaded[:3]) + (", ..." if len(loaded) > 3 else "")
        raise XpmError(f"{ids}: no metrics logged yet (none in metrics.jsonl); log some "
                       "with run.log(step=..., loss=...)")
    absent = [m for m in metrics if not any(m in r.curves for r in loaded)]
    if absent:
        raise XpmError(f"-m {absent[0]}: no run given logs `{absent[0]}`; `xpm show RUN` "
                       "lists a run's metrics")

    labels = reading.labels(loaded)
    colors = list(range(len(loaded)))
    if field is not None:
        values = [as_text(field.get(run.info)) for run in loaded]
        groups = list(dict.fromkeys(values))
        colors = [groups.index(v) for v in values]
        key = field.text.removeprefix("config.")
        labels = [f"{key}={v}" for v in values]
    unit, scale = "", 1.0
    if x == "time":
        largest = max((c.xs[-1] for r in loaded for c in r.curves.values()), default=0.0)
        unit, scale = reading.time_unit(largest)
    size = shutil.get_terminal_size((100, 30))
    # A stretch of x a pixel (image) or two cells (terminal: plotext's cost is per point)
    columns = IMAGE_COLUMNS if output is not None else max(size.columns // 2, 20)
    panels = []
    for metric in metrics:
        lines: list[Line] = []
        named: set[str] = set()
        for run, label, color in zip(loaded, labels, colors, strict=True):
            curve = run.curves.get(metric)
            if curve is None:
                continue
            xs, ys = curve.xs, reading.smooth(curve.ys, smooth)
            if log_y:
                xs, ys = _positive(xs, ys)
            # Each stretch of x as its lowest and highest points: what the plot can show
            xs, ys = reading.decimate(xs, ys, columns)
            if scale != 1.0:
                xs = [v / scale for v in xs]
            shown = label if label not in named and len(named) < LEGEND_MAX else None
            named.add(label)
            lines.append(Line(shown, color, xs, ys, f"run {run.id}"))
        panels.append(Panel(metric + (f" (smoothed over {smooth})" if smooth > 1 else ""),
                            lines))
    xlabel = "step" if x == "step" else f"time ({unit})"
    if output is not None:
        image(panels, xlabel, log_y, Path(output))
        console.info(f"wrote {output}: {console.plural(len(loaded), 'run')}, "
                     f"{', '.join(metrics)}")
        return 0
    height = max(size.lines - 2, PANEL_ROWS * len(panels))
    console.out(terminal(panels, xlabel, log_y, size.columns, height,
                         console.stdout_in_color()).rstrip("\n"))
    return 0


def _positive(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """The points a log scale can show."""
    kept = [(a, b) for a, b in zip(xs, ys, strict=True) if b > 0]
    return [a for a, _ in kept], [b for _, b in kept]
