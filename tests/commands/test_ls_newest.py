"""Plain `xpm ls` (the newest N) picked through the listing cache's index: the same output
as listing every run, whatever the folders hold."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.records import write_run
from xpm import times
from xpm.cli import main
from xpm.reading.listing import CACHE_DIR, listed, newest, order_listed


def ls(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["ls", *args])
    out, err = capsys.readouterr()
    return code, out, err


def without_index(project: Path) -> None:
    for index in (project / "results" / CACHE_DIR / "ls").glob("*.index"):
        index.unlink()


def same_as_whole_listing(project: Path, capsys: pytest.CaptureFixture[str],
                          *args: str) -> tuple[int, str, str]:
    """`xpm ls ARGS` through the index, checked against the same listing without one."""
    ls(capsys, "-a")  # the cache and its index, up to date
    results = project / "results"
    assert newest(results, None, 30) is not None  # the index answers
    picked = ls(capsys, *args)
    picked_json = ls(capsys, "--json", *args)
    without_index(project)
    assert newest(results, None, 30) is None
    whole = ls(capsys, *args)  # lists every run (and writes the index again)
    without_index(project)
    whole_json = ls(capsys, "--json", *args)
    assert picked == whole
    assert settled(picked_json) == settled(whole_json)
    return picked


def settled(result: tuple[int, str, str]) -> tuple[int, list[dict[str, Any]], str]:
    """A `--json` listing without the durations of running runs (they grow meanwhile)."""
    code, out, err = result
    runs = [r | {"duration": None} if r["status"] == "running" else r for r in json.loads(out)]
    return code, runs, err


def test_numbers_with_gaps_over_several_names(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    start = times.now() - timedelta(days=3)
    for k in range(14):
        write_run(project, f"n{k % 3}", started=start + timedelta(hours=(k * 7) % 11),
                  config={"lr": k / 100})
    for gone in ("n0/2", "n1/3", "n2/1", "n1/4"):
        shutil.rmtree(project / "results" / gone)
    code, _, err = same_as_whole_listing(project, capsys, "--limit", "4")
    assert code == 0 and "4 of 10 runs shown" in err
    same_as_whole_listing(project, capsys, "--limit", "30")
    same_as_whole_listing(project, capsys, "n1", "--limit", "2")


def test_an_old_number_started_last_is_listed_first(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "q", started=times.now() - timedelta(minutes=1))  # queued long
    for hours in range(40, 5, -1):
        write_run(project, "q", started=times.now() - timedelta(hours=hours))
    code, out, _ = same_as_whole_listing(project, capsys)
    assert code == 0 and out.splitlines()[1].startswith("q/1 ")


def test_corrupt_runs_among_the_newest(project: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    for hours in range(12, 0, -1):
        write_run(project, "c", started=times.now() - timedelta(hours=hours))
    for number in (12, 10):
        (project / "results" / "c" / str(number) / "run.json").write_text("{")
    code, _, err = same_as_whole_listing(project, capsys, "--limit", "5")
    assert code == 0 and "5 of 12 runs shown" in err
    code, out, err = same_as_whole_listing(project, capsys, "--limit", "12")
    assert "c/12 is corrupt" in err and "c/10 is corrupt" in err
    assert [line.split()[0] for line in out.splitlines()[-2:]] == ["c/12", "c/10"]


def test_running_runs_are_read_every_time(project: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    for hours in range(6, 0, -1):
        write_run(project, "r", started=times.now() - timedelta(hours=hours))
    write_run(project, "r", status="running", heartbeat=times.now(), host="gpu-node-7",
              started=times.now() - timedelta(hours=9))
    code, out, _ = same_as_whole_listing(project, capsys, "--limit", "7")
    assert code == 0 and "r/7" in out and "running" in out


def test_a_run_changed_or_added_since_is_seen(project: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for hours in range(5, 0, -1):
        write_run(project, "a", started=times.now() - timedelta(hours=hours))
    ls(capsys, "-a")
    assert main(["tag", "a/5", "+fresh"]) == 0  # the newest run, shown, changed
    capsys.readouterr()
    _, out, _ = ls(capsys, "--json", "--limit", "2")
    assert [r["tags"] for r in json.loads(out)] == [["fresh"], []]
    write_run(project, "a", started=times.now())  # not in the cache yet
    assert newest(project / "results", None, 2) is None
    _, out, _ = ls(capsys, "--json", "--limit", "2")
    assert [r["id"] for r in json.loads(out)] == ["a/6", "a/5"]
    assert newest(project / "results", None, 2) is not None  # the listing updated it


def test_where_still_sees_every_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "w", tags=("old",), started=times.now() - timedelta(days=9))
    for hours in range(40, 0, -1):
        write_run(project, "w", started=times.now() - timedelta(hours=hours))
    ls(capsys, "-a")
    code, out, _ = ls(capsys, "--json", "--where", "tag=old", "--limit", "2")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["w/1"]
    code, out, _ = ls(capsys, "--json", "--status", "completed")
    assert len(json.loads(out)) == 30


def test_listed_without_fields_matches_the_runs_fields(project: Path) -> None:
    for hours in range(3, 0, -1):
        write_run(project, "f", started=times.now() - timedelta(hours=hours))
    results = project / "results"
    first = order_listed(list(listed(results)))  # reads the folders, writes the cache
    again = order_listed(list(listed(results, fields=False, rendered=True)))
    assert [i.id for i in first] == [i.id for i in again] == ["f/3", "f/2", "f/1"]
    assert all(i.info is None and i.out is not None for i in again)
    assert [json.loads(i.out or b"") | {"path": i.path} for i in again] == \
        [i.run().to_json() for i in first]


@pytest.mark.parametrize("damage", [b"", b"not json\n", b'{"format": 5}\n[1, 2, 3]\n',
                                    b"[" * 100_000 + b"\n", b"[1, 2.0, 3, 4]\n"],
                         ids=["empty", "not-json", "another-header", "deep", "wrong-types"])
def test_a_damaged_index_lists_every_run(project: Path, capsys: pytest.CaptureFixture[str],
                                         damage: bytes) -> None:
    for hours in range(4, 0, -1):
        write_run(project, "d", started=times.now() - timedelta(hours=hours))
    _, whole, _ = ls(capsys, "--json", "--limit", "2")
    index = project / "results" / CACHE_DIR / "ls" / "d.index"
    first_line = index.read_bytes().split(b"\n")[0] + b"\n"
    index.write_bytes(first_line + damage if damage.startswith(b"[") else damage)
    assert newest(project / "results", None, 2) is None
    _, again, _ = ls(capsys, "--json", "--limit", "2")
    assert again == whole
    assert newest(project / "results", None, 2) is not None  # written again


def test_a_cache_file_cut_short_is_read_and_written_whole(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for hours in range(3, 0, -1):
        write_run(project, "t", started=times.now() - timedelta(hours=hours))
    _, whole, _ = ls(capsys, "--json", "-a")
    cache = project / "results" / CACHE_DIR / "ls" / "t.jsonl"
    cache.write_bytes(cache.read_bytes()[:-1])  # its last newline lost
    write_run(project, "t", started=times.now())  # the cache is written again
    _, again, _ = ls(capsys, "--json", "-a")
    assert json.loads(again)[1:] == json.loads(whole)
    assert all(line.count("\t") == 2 for line in cache.read_text().splitlines()[1:])
    _, third, _ = ls(capsys, "--json", "-a")
    assert third == again
