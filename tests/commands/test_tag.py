"""`xpm tag RUN... +TAG -TAG` and `xpm note RUN TEXT`: changed after the fact, under the
record's lock, and listed at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from tests.conftest import child, record, run_xpm, spawn_xpm, wait_for
from tests.records import write_run
from xpm.runs.update import update_record


def test_tags_are_added_and_removed_and_listed_at_once(project: Path) -> None:
    write_run(project, "a", tags=("draft",))
    write_run(project, "a")
    assert run_xpm("ls", "--json").code == 0  # the listing cache now holds both runs
    result = run_xpm("tag", "a/1", "a/2", "+best", "-draft", "+z")
    assert result.code == 0, result
    assert record(project, "a/1")["tags"] == ["best", "z"]
    assert record(project, "a/2")["tags"] == ["best", "z"]
    listed = json.loads(run_xpm("ls", "--json").out)
    assert [r["tags"] for r in listed] == [["best", "z"], ["best", "z"]]
    result = run_xpm("tag", "a/1", "-best")
    assert result.code == 0 and record(project, "a/1")["tags"] == ["z"]


def test_tag_order_is_the_same_in_ls_and_diff(project: Path) -> None:
    write_run(project, "a", tags=("zeta", "alpha"))
    write_run(project, "a", tags=("beta",))
    table = run_xpm("ls", "--columns", "id,tags").out
    assert "alpha, zeta" in table or "alpha,zeta" in table, table
    shown = run_xpm("diff", "a/1", "a/2", "--all").out
    assert "alpha" in shown and shown.index("alpha") < shown.index("zeta"), shown


def test_a_note_is_set_and_removed(project: Path) -> None:
    write_run(project, "a", note="old")
    assert run_xpm("note", "a/1", "diverged at step 900").code == 0
    assert record(project, "a/1")["note"] == "diverged at step 900"
    listed = json.loads(run_xpm("ls", "--json").out)
    assert listed[0]["note"] == "diverged at step 900"
    assert run_xpm("note", "a", "").code == 0
    assert record(project, "a/1")["note"] is None


def test_tagging_a_running_run_keeps_what_its_supervisor_writes(project: Path) -> None:
    go, done = project / "go", project / "done"
    proc = spawn_xpm("run", "-n", "a", "--", *child(f"touch={go}", f"wait={done}"))
    wait_for(go.exists, what="the run to start")
    assert run_xpm("tag", "a/1", "+live").code == 0
    assert run_xpm("note", "a/1", "watching").code == 0
    done.write_text("")
    assert proc.wait(timeout=60) == 0
    data = record(project, "a/1")
    assert data["status"] == "completed" and data["tags"] == ["live"]
    assert data["note"] == "watching"


def test_concurrent_tags_lose_nothing(project: Path) -> None:
    folder = write_run(project, "a")
    threads = [threading.Thread(target=lambda t=t: run_xpm("tag", "a/1", f"+t{t}"))
               for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(record(project, "a/1")["tags"]) == [f"t{t}" for t in range(6)]
    assert update_record(folder, lambda r: r).tags  # still a whole record


def test_unknown_fields_are_kept(project: Path) -> None:
    folder = write_run(project, "a")
    data = json.loads((folder / "run.json").read_text())
    data["from_a_newer_xpm"] = {"x": 1}
    (folder / "run.json").write_text(json.dumps(data))
    assert run_xpm("tag", "a/1", "+x").code == 0
    assert record(project, "a/1")["from_a_newer_xpm"] == {"x": 1}


def test_bad_tag_commands_are_one_line(project: Path) -> None:
    write_run(project, "a")
    for args, code in ((["tag", "a/1"], 2), (["tag", "+x"], 2), (["tag", "a/1", "+"], 2),
                       (["tag", "a/1", "+x", "-x"], 2), (["tag", "zzz", "+x"], 1),
                       (["tag", "a/1", "+a,b"], 2), (["note", "a/1"], 2),
                       (["note", "zzz", "hi"], 1)):
        result = run_xpm(*args)
        assert result.code == code and result.err.count("\n") == 1, (args, result)
    assert record(project, "a/1")["tags"] == []


def test_a_corrupt_record_is_not_tagged(project: Path) -> None:
    folder = write_run(project, "a")
    (folder / "run.json").write_text("{")
    result = run_xpm("tag", "a/1", "+x")
    assert result.code == 1 and "cannot change run `a/1`" in result.err, result
    assert (folder / "run.json").read_text() == "{"
