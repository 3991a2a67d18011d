"""`xpm plot`: curves of real runs, in the terminal at a fixed size and as PNG and SVG
images read back (one path per run)."""

from __future__ import annotations

import os
import re
import shutil
import struct
import sys
from pathlib import Path

import pytest

from tests.commands.test_metrics import resumed  # noqa: F401 (a fixture)
from tests.conftest import run_xpm, spawn_xpm, wait_for
from xpm.reading import curves
from xpm.runs.tree import resolve

TRAIN = """\
import os, sys, time
import xpm

run = xpm.current_run()
cfg = run.config
for step in range(0, 200, 10):
    run.log(step=step, loss=cfg["lr"] * 100 / (step + 1), acc=step / 200)
    if step == 100 and os.environ.get("HOLD"):
        open(os.environ["HOLD"] + ".ready", "w").close()
        while not os.path.exists(os.environ["HOLD"] + ".go"):
            time.sleep(0.02)
"""


@pytest.fixture
def three(project: Path) -> Path:
    (project / "train.py").write_text(TRAIN)
    for lr, opt in (("0.1", "sgd"), ("0.2", "adam"), ("0.3", "sgd")):
        result = run_xpm("run", "-n", "lr", "-s", f"lr={lr}", "-s", f"opt={opt}", "--",
                         "python3", "train.py")
        assert result.code == 0, result
    return project


pytest.importorskip("matplotlib")


def svg_curves(path: Path) -> dict[str, str]:
    """Run id → the path data of its line in an SVG made by `xpm plot`."""
    text = path.read_text()
    return dict(re.findall(r'<g id="run ([^"]+)">\s*<path d="([^"]+)"', text))


def test_svg_has_one_path_per_run_labelled_by_what_varies(three: Path) -> None:
    result = run_xpm("plot", "lr", "-m", "loss", "-o", "out.svg")
    assert result.code == 0, result
    assert "wrote out.svg: 3 runs, loss" in result.err
    found = svg_curves(three / "out.svg")
    assert sorted(found) == ["lr/1", "lr/2", "lr/3"]
    assert all(d.count("L") >= 5 for d in found.values())
    text = (three / "out.svg").read_text()
    for label in ("lr=0.1, opt=sgd", "lr=0.2, opt=adam", "lr=0.3, opt=sgd"):
        assert f"<!-- {label} -->" in text


def test_panels_per_metric_and_groups_by_a_key(three: Path) -> None:
    result = run_xpm("plot", "lr/*", "-m", "loss", "-m", "acc", "--by", "config.opt",
                     "-o", "by.svg", "--smooth", "3", "--log-y")
    assert result.code == 0, result
    text = (three / "by.svg").read_text()
    assert len(re.findall(r'<g id="run lr/1">', text)) == 2  # one line in each panel
    assert text.count("<!-- opt=sgd -->") == 2 and text.count("<!-- opt=adam -->") == 2
    assert "<!-- loss (smoothed over 3) -->" in text and "<!-- acc (smoothed over 3) -->" in text


def test_png_is_a_valid_image(three: Path) -> None:
    result = run_xpm("plot", "lr/1", "lr/3", "-o", "out.png", "--x", "time")
    assert result.code == 0, result
    data = (three / "out.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 500 and height > 300  # two panels (loss first), one above the other
    assert height > width / 2 and len(data) > 20_000


def test_terminal_plot_fits_a_fixed_size(three: Path) -> None:
    env = {**os.environ, "COLUMNS": "72", "LINES": "30"}
    result = run_xpm("plot", "lr", env=env)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert "\x1b[" not in result.out  # piped, NO_COLOR: plain text
    assert max(len(line) for line in lines) <= 72
    assert 24 <= len(lines) <= 30
    assert lines[0].strip() == "loss" and any(line.strip() == "acc" for line in lines)
    assert sum("lr=0.2, opt=adam" in line for line in lines) == 2  # a legend in each panel
    assert any("190" in line for line in lines)  # the x axis reaches the last step


def test_without_matplotlib_one_line_names_the_extra(three: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked" / "matplotlib"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('matplotlib is not installed')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(blocked.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = run_xpm("plot", "lr", "-o", "x.png", env=env)
    assert result.code == 1
    assert result.err.splitlines() == [
        "xpm: error: writing an image needs matplotlib: pip install 'xpm-runs[plot]' (or "
        "leave out -o to plot in the terminal)"]
    assert not (three / "x.png").exists()
    assert run_xpm("plot", "lr", env=env).code == 0  # the terminal needs no matplotlib


def test_running_run_and_copied_folder(three: Path, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    proc = spawn_xpm("run", "-n", "live", "-s", "lr=0.5", "--", "python3", "train.py",
                     env={**os.environ, "HOLD": str(hold)})
    try:
        wait_for(Path(f"{hold}.ready").exists, what="the run to reach step 100")
        result = run_xpm("plot", "live", "-o", "live.svg")
        assert result.code == 0, result
        assert sorted(svg_curves(three / "live.svg")) == ["live/1"]
        ref = resolve(three / "results", "live")
        assert curves.load(ref).curves["loss"].xs[-1] == 100  # the curve so far
    finally:
        Path(f"{hold}.go").touch()
        proc.wait(timeout=30)
    copy = tmp_path / "elsewhere" / "7"
    shutil.copytree(three / "results" / "lr" / "2", copy)
    result = run_xpm("plot", str(copy), "-o", str(tmp_path / "copy.svg"), cwd=tmp_path)
    assert result.code == 0, result
    assert sorted(svg_curves(tmp_path / "copy.svg")) == ["elsewhere/7"]


def test_superseded_stretch_is_one_curve(resumed: Path) -> None:  # noqa: F811
    loaded = curves.load(resolve(resumed.parent.parent, "fit/1"))
    assert loaded.curves["loss"].xs == [10, 20, 30, 40, 50, 60]
    assert loaded.curves["acc"].xs == [10, 20, 40, 50, 60]  # nan has no place on a plot
    assert curves.default_metrics([loaded]) == ["loss", "acc", "val_acc"]
    assert run_xpm("plot", "fit").code == 0


def test_plot_errors(three: Path) -> None:
    assert run_xpm("plot", "lr", "-o", "out.txt").code == 2
    assert run_xpm("plot", "lr", "--smooth", "0").code == 2
    result = run_xpm("plot", "lr", "-m", "nope")
    assert result.code == 1 and "no run given logs `nope`" in result.err
    assert run_xpm("plot", "zzz*").code == 1
    assert run_xpm("plot", "lr", "--by", "bogus").code == 2
    assert sys.executable


def test_decimation_keeps_every_spike_and_the_ends() -> None:
    xs = [float(i) for i in range(100_000)]
    ys = [1.0] * 100_000
    ys[31_337], ys[77_777] = 50.0, -20.0
    dx, dy = curves.decimate(xs, ys, 500)
    assert len(dx) <= 1002 and dx == sorted(dx)
    assert (dx[0], dx[-1]) == (0.0, 99_999.0)
    assert max(dy) == 50.0 and min(dy) == -20.0 and (31_337.0, 50.0) in zip(dx, dy, strict=True)
    assert curves.decimate(xs[:100], ys[:100], 500) == (xs[:100], ys[:100])


def test_curves_are_cached_by_the_metrics_files_identity(three: Path, tmp_path: Path) -> None:
    cache = three / "results" / ".cache"
    ref = resolve(three / "results", "lr/2")
    first = curves.load(ref, cache_dir=cache)
    kept = sorted(p.name for p in (cache / "curves" / "lr").iterdir())
    assert kept == ["2.step.r0.bin"]
    assert curves.load(ref, cache_dir=cache) == first  # read back from the cache
    assert curves.load(ref, wanted=["acc"], cache_dir=cache).curves.keys() == {"acc"}
    with open(ref.path / "metrics.jsonl", "a") as f:  # a line added: read anew
        f.write('{"step": 500, "attempt": 1, "loss": 0.001, "acc": 1.0}\n')
    assert curves.load(ref, cache_dir=cache).curves["loss"].xs[-1] == 500
    assert curves.load(ref).curves["loss"].xs[-1] == 500  # the same without the cache
    # only -m acc read: a later plot of every metric reads the file again
    only = resolve(three / "results", "lr/3")
    assert curves.load(only, wanted=["acc"], cache_dir=cache).curves.keys() == {"acc"}
    assert curves.load(only, cache_dir=cache).curves.keys() == {"loss", "acc"}
    # a damaged cache file is read past
    (cache / "curves" / "lr" / "2.step.r0.bin").write_bytes(b"garbage")
    assert curves.load(ref, cache_dir=cache).curves["loss"].xs[-1] == 500
    # a copied run folder elsewhere is never cached
    copy = tmp_path / "elsewhere" / "7"
    shutil.copytree(ref.path, copy)
    assert run_xpm("plot", str(copy), "-o", str(tmp_path / "copy.svg"), cwd=three).code == 0
    assert not (cache / "curves" / "elsewhere").exists()


def test_plot_shows_rank_0_unless_told_another(project: Path) -> None:
    (project / "train.py").write_text(
        "import xpm\nfrom xpm.api import Run\nfrom xpm.ranks import Rank\n"
        "run = xpm.current_run()\n"
        "for r in range(2):\n"
        "    other = Run(run.dir, rank=Rank(r, r, 2))\n"
        "    for s in range(5):\n"
        "        other.log(step=s, all_ranks=True, grad=float(10 * r + s))\n"
        "    other.close()\n")
    assert run_xpm("run", "-n", "ddp", "--", sys.executable, "train.py").code == 0
    ref = resolve(project / "results", "ddp/1")
    assert curves.load(ref).curves["grad"].ys == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert curves.load(ref, rank=1).curves["grad"].ys == [10.0, 11.0, 12.0, 13.0, 14.0]
    result = run_xpm("plot", "ddp/1", "--rank", "1", env={**os.environ, "COLUMNS": "60",
                                                          "LINES": "20", "NO_COLOR": "1"})
    assert result.code == 0 and "14" in result.out, result
    assert run_xpm("plot", "ddp/1", "--rank", "-1").code == 2
