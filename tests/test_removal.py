"""xpm/removal.py: staying inside results_dir, removing links as links, claiming runs."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from xpm import times
from xpm.cleaning.removal import claimed, is_real_folder, remove, status_while_held, within
from xpm.errors import RunBusyError
from xpm.machine import hostname
from xpm.runs.lock import RunLock
from xpm.runs.record import Attempt, RunRecord, write_record


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    (root / "a" / "1" / "checkpoints").mkdir(parents=True)
    (root / "a" / "1" / "checkpoints" / "m_1.pt").write_text("1")
    (tmp_path / "outside" / "data").mkdir(parents=True)
    (tmp_path / "outside" / "data" / "f").write_text("precious")
    return root


def test_within_accepts_what_is_below(results: Path) -> None:
    real = Path(os.path.realpath(results))
    assert within(results, results / "a" / "1") == real / "a" / "1"
    assert within(results, results / "a" / "1" / "checkpoints" / "m_1.pt") == (
        real / "a" / "1" / "checkpoints" / "m_1.pt")
    assert within(results, results / "a" / "9") == real / "a" / "9"  # need not exist


def test_within_refuses_what_is_not(results: Path, tmp_path: Path) -> None:
    (results / "a" / "1" / "out").symlink_to(tmp_path / "outside" / "data")
    (results / "linked").symlink_to(tmp_path / "outside")
    assert within(results, results) is None
    assert within(results, results / "a" / ".." / ".." / "outside") is None
    assert within(results, tmp_path / "outside" / "data") is None
    assert within(results, Path("/")) is None
    assert within(results, results / "a" / "1" / "out" / "f") is None  # through a link
    assert within(results, results / "linked" / "data") is None
    assert within(results, results / "a" / "1" / "checkpoints" / "m_1.pt" / "x") is None
    # the last part may itself be a link: removing it removes the link only
    assert within(results, results / "a" / "1" / "out") is not None


def test_within_a_linked_results_dir(results: Path, tmp_path: Path) -> None:
    link = tmp_path / "results-link"
    link.symlink_to(results)
    real = Path(os.path.realpath(results))
    assert within(link, link / "a" / "1") == real / "a" / "1"
    assert within(link, results / "a" / "1") == real / "a" / "1"


def test_remove_unlinks_links_and_never_their_targets(results: Path, tmp_path: Path) -> None:
    run = results / "a" / "1"
    (run / "file_link").symlink_to(tmp_path / "outside" / "data" / "f")
    (run / "dir_link").symlink_to(tmp_path / "outside" / "data")
    remove(run / "dir_link")
    remove(run / "file_link")
    assert not os.path.lexists(run / "dir_link") and not os.path.lexists(run / "file_link")
    (run / "dir_link").symlink_to(tmp_path / "outside" / "data")
    remove(run)
    assert not os.path.lexists(run)
    assert (tmp_path / "outside" / "data" / "f").read_text() == "precious"
    assert is_real_folder(results / "a") and not is_real_folder(tmp_path / "nothing")


def _record(run_dir: Path, status: str, host: str, heartbeat_ago: float = 0.0) -> None:
    beat = times.iso(times.now() - timedelta(seconds=heartbeat_ago))
    write_record(run_dir, RunRecord(
        name="a", number=1, status=status, command=("true",), cwd="/", created=beat, seed=0,
        config={}, host=host, user="u", platform="linux", python="3", xpm_version="0",
        python_executable=sys.executable, started=beat, heartbeat=beat,
        attempts=(Attempt(1, "start", beat, host, 4242, ("true",)),),
    ))


def test_claimed_refuses_a_held_lock(results: Path) -> None:
    run = results / "a" / "1"
    _record(run, "failed", hostname())
    holder = RunLock(run)
    assert holder.try_acquire("xpm test")
    try:
        with pytest.raises(RunBusyError, match=f"in use by xpm test \\(pid {os.getpid()} "), \
                claimed(run, "a/1"):
            raise AssertionError("must not get here")
    finally:
        holder.release()
    with claimed(run, "a/1") as status:
        assert status == "failed"
        other = RunLock(run)
        assert not other.try_acquire()  # held while the caller works
    assert other.try_acquire()
    other.release()


def test_status_while_held(results: Path) -> None:
    run = results / "a" / "1"
    assert status_while_held(run) == "corrupt"
    _record(run, "running", hostname())
    assert status_while_held(run) == "lost"  # we hold the lock: nothing runs it here
    _record(run, "running", "gpu-node-7")
    assert status_while_held(run) == "running"  # its heartbeat is fresh
    with pytest.raises(RunBusyError, match="gpu-node-7"), claimed(run, "a/1"):
        pass
    _record(run, "running", "gpu-node-7", heartbeat_ago=3600)
    assert status_while_held(run) == "lost"
