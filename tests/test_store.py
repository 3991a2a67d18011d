"""The results tree: allocating numbers, the high-water mark, resolving references."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

from xpm.runs.tree import HIGHEST_FILE, allocate, allocate_locked, record_highest


def _allocate_many(results: str, count: int) -> list[int]:
    return [allocate(Path(results), "race").number for _ in range(count)]


def _raise_mark(name_dir: str, worker: int) -> None:
    for i in range(80):
        record_highest(Path(name_dir), i * 8 + worker)


def test_concurrent_raises_of_the_mark_keep_the_highest(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(8) as pool:
        for round_ in range(5):  # a lost update shows up in most rounds without the lock
            name_dir = tmp_path / str(round_)
            name_dir.mkdir()
            pool.starmap(_raise_mark, [(str(name_dir), w) for w in range(8)])
            assert (name_dir / HIGHEST_FILE).read_text().strip() == str(79 * 8 + 7)


def test_high_water_mark_never_goes_down_under_concurrency(tmp_path: Path) -> None:
    results = tmp_path / "results"
    with multiprocessing.get_context("fork").Pool(8) as pool:
        numbers = [n for part in pool.starmap(_allocate_many, [(str(results), 4)] * 8)
                   for n in part]
    assert sorted(numbers) == list(range(1, 33))
    assert (results / "race" / HIGHEST_FILE).read_text().strip() == "32"
    for n in range(10, 33):  # remove the newest folders: their numbers stay taken
        shutil.rmtree(results / "race" / str(n))
    assert allocate(results, "race").number == 33


def test_allocate_locked_without_mark_leaves_the_mark_to_its_caller(tmp_path: Path) -> None:
    """A Slurm sweep makes all its trials' folders unmarked, then raises the mark once."""
    results = tmp_path / "results"
    ref, lock = allocate_locked(results, "m")
    lock.release()
    assert (results / "m" / HIGHEST_FILE).read_text().strip() == "1"
    made = []
    for _ in range(3):
        ref, lock = allocate_locked(results, "m", mark=False)
        lock.release()
        made.append(ref.number)
    assert made == [2, 3, 4]  # the folders themselves keep their numbers taken
    assert (results / "m" / HIGHEST_FILE).read_text().strip() == "1"
    record_highest(results / "m", max(made))
    for n in made:  # the newest folders gone: their numbers stay taken
        shutil.rmtree(results / "m" / str(n))
    assert allocate(results, "m").number == 5


def test_a_run_folder_gets_the_mode_the_umask_allows(tmp_path: Path) -> None:
    """Made under a hidden name first, it is not private to its maker as a temporary
    folder would be: others read runs as the umask lets them."""
    import os
    import stat

    for umask, mode in ((0o022, 0o755), (0o027, 0o750)):
        old = os.umask(umask)
        try:
            ref, lock = allocate_locked(tmp_path / "results", "modes")
        finally:
            os.umask(old)
        lock.release()
        assert stat.S_IMODE(ref.path.stat().st_mode) == mode
