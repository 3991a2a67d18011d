"""A cache of runs' parsed curves, for `xpm plot`: parsing a run's metrics.jsonl is most of
what a plot costs (about a second per hundred megabytes), and a run that has ended no
longer changes.

`results/.cache/curves/NAME/N.AXIS.rRANK.bin` holds one run's curves against one axis for
one rank: a JSON header line (the identity of metrics.jsonl it was read from: inode, size,
modification and change times; the superseding it was read with; the metrics it holds;
the warning its bad lines gave) and then each curve's xs and ys as 8-byte floats. It
answers only for that exact file: anything else (a line added, a resume, another format)
reads the file again and writes the cache anew. It is written atomically and silently not
at all where the tree is read-only; deleting it costs one slower plot. Only runs inside
the results tree are cached (never a copied run folder elsewhere).
"""

from __future__ import annotations

import json
import os
import sys
from array import array
from pathlib import Path
from typing import Any, NamedTuple

from ..runs.atomic import atomic_file
from ..runs.record import METRICS_FILE
from ..runs.tree import RunRef

CURVES_DIR = "curves"
FORMAT = 1


class Stored(NamedTuple):
    curves: dict[str, tuple[list[float], list[float]]]
    problem: str | None


def path_of(cache_dir: Path, ref: RunRef, axis: str, rank: int) -> Path | None:
    """Where a run's curves are kept; None for a run folder outside the results tree."""
    results = cache_dir.parent
    if ref.path.parent != results / ref.name and \
            os.path.realpath(ref.path) != os.path.realpath(results / ref.name / str(ref.number)):
        return None
    return cache_dir / CURVES_DIR / ref.name / f"{ref.number}.{axis}.r{rank}.bin"


def key_of(ref: RunRef, signature: str) -> list[Any] | None:
    """What the cached curves must have been read from: metrics.jsonl's identity and the
    superseding; None without the file."""
    try:
        st = os.stat(ref.path / METRICS_FILE)
    except OSError:
        return None
    return [FORMAT, sys.byteorder, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
            signature]


def load(path: Path, key: list[Any], wanted: set[str]) -> Stored | None:
    """The curves kept at `path` when they were read under `key` and hold `wanted` (all
    metrics when empty); else None."""
    try:
        with open(path, "rb") as f:
            header = json.loads(f.readline())
            if header.get("key") != key:
                return None
            only = header.get("only")
            if only is not None and (not wanted or not wanted <= set(only)):
                return None
            data = f.read()
        curves = {}
        offset = 0
        for name, count in header["metrics"]:
            size = 8 * count
            if not wanted or name in wanted:
                xs, ys = array("d"), array("d")
                xs.frombytes(data[offset:offset + size])
                ys.frombytes(data[offset + size:offset + 2 * size])
                if len(ys) != count:
                    return None
                curves[name] = (xs.tolist(), ys.tolist())
            offset += 2 * size
        problem = header.get("problem")
        return Stored(curves, problem if isinstance(problem, str) else None)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def store(path: Path, key: list[Any], wanted: set[str], stored: Stored) -> None:
    """Keep the curves read under `key` (those of `wanted` metrics, or all when empty)."""
    header = {"key": key, "only": sorted(wanted) if wanted else None,
              "problem": stored.problem,
              "metrics": [[name, len(xs)] for name, (xs, _) in stored.curves.items()]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            f.write(json.dumps(header).encode() + b"\n")
            for xs, ys in stored.curves.values():
                f.write(array("d", xs).tobytes())
                f.write(array("d", ys).tobytes())
    except OSError:  # a read-only tree, a full disk: plotting works without the cache
        pass
