"""`xpm ls`: listing, filtering, sorting, output shapes, liveness, corrupt folders."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    child,
    git,
    git_commit,
    pid_alive,
    record,
    run_in_pty,
    run_xpm,
    spawn_xpm,
    tree,
    wait_for,
    xpm_argv,
)
from tests.records import WRONG_FIELDS, write_run, write_wrong
from xpm import times
from xpm.cli import main
from xpm.runs.record import GitState

LOG_METRICS = ("import xpm\nrun = xpm.current_run()\n"
               "for step in range(1, 4):\n"
               "    run.log(step=step, loss=1 / step, acc=step / 4)\n")


def ls(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["ls", *args])
    out, err = capsys.readouterr()
    return code, out, err


def ls_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, out, err = ls(capsys, "--json", *args)
    assert code == 0, err
    data: list[dict[str, Any]] = json.loads(out)
    return data


def ids(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    return [r["id"] for r in ls_json(capsys, *args)]


def table(out: str) -> list[list[str]]:
    """The plain table's cells, cut at the header's column starts."""
    lines = out.splitlines()
    header = lines[0]
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [[line[a:b].strip() for a, b in bounds] for line in lines]


def test_lists_real_runs_newest_first(project: Path) -> None:
    assert run_xpm("run", "-n", "exp", "-t", "base", "-s", "lr=0.1", "--",
                   sys.executable, "-c", LOG_METRICS).code == 0
    assert run_xpm("run", "-n", "exp", "-s", "lr=0.01", "--", *child("exit=3")).code == 3
    assert run_xpm("run", "-n", "other", "-s", "lr=0.1", "--", *child()).code == 0
    result = run_xpm("ls")  # a pipe: plain rows
    assert result.code == 0, result
    rows = table(result.out)
    assert rows[0][:4] == ["id", "status", "started", "duration"]
    assert [r[:2] for r in rows[1:]] == [["other/1", "completed"], ["exp/2", "failed"],
                                         ["exp/1", "completed"]]
    header = result.out.splitlines()[0]
    assert "tags" in header and "loss" in header and "acc" in header and "lr" in header
    assert "\x1b[" not in result.out  # no colors in a pipe
    assert rows[1][2].endswith(" ago") and rows[1][3].endswith("s")
    line = next(x for x in result.out.splitlines() if x.startswith("exp/1"))
    assert " base " in line and " 0.3333 " in line and " 0.75 " in line
    assert result.err == ""


def test_json_has_every_field(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "train.py").write_text("print('changed')\n")  # a dirty tree
    assert run_xpm("run", "-n", "j", "-t", "a", "-m", "a note", "-s", "model.lr=0.5",
                   "--seed", "3", "--", sys.executable, "-c", LOG_METRICS).code == 0
    [run] = ls_json(capsys)
    rec = record(repo, "j/1")
    assert run["id"] == "j/1" and run["name"] == "j" and run["number"] == 1
    assert run["status"] == "completed" and run["exit_code"] == 0 and run["problem"] is None
    assert run["started"] == rec["started"] and run["ended"] == rec["ended"]
    assert run["duration"] == rec["duration"] and run["attempts"] == 1
    assert run["tags"] == ["a"] and run["note"] == "a note" and run["seed"] == 3
    assert run["git"] == {"commit": git(repo, "rev-parse", "HEAD"), "branch": "main",
                          "dirty": True}
    assert run["config"] == {"model": {"lr": 0.5}, "seed": 3}
    assert run["metrics"] == {"loss": 1 / 3, "acc": 0.75}
    assert run["path"] == str(repo / "results" / "j" / "1")
    out = ls(capsys)[1]
    assert git(repo, "rev-parse", "--short=7", "HEAD") + "*" in out


def test_csv_for_pandas(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "c", config={"model": {"lr": 0.1, "layers": [8, 16]}}, tags=("x", "y"),
              metrics=[{"step": 1, "loss": 0.5}])
    write_run(project, "c", config={"model": {"lr": 0.2}}, metrics=[{"step": 1, "acc": 1}])
    code, out, err = ls(capsys, "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["id"] for r in rows] == ["c/2", "c/1"]
    assert rows[1]["config.model.lr"] == "0.1" and rows[1]["config.model.layers[1]"] == "16"
    assert rows[0]["config.model.layers[1]"] == ""
    assert rows[1]["metrics.loss"] == "0.5" and rows[0]["metrics.acc"] == "1"
    assert rows[1]["tags"] == "x,y" and rows[1]["status"] == "completed"
    assert rows[1]["git.dirty"] == "" and rows[1]["duration"] == "10.0"
    code, out, _ = ls(capsys, "--csv", "--columns", "id,config.model.lr,metrics.loss")
    assert out.splitlines() == ["id,config.model.lr,metrics.loss", "c/2,0.2,", "c/1,0.1,0.5"]


def test_only_the_config_keys_that_differ_are_columns(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for lr in (0.1, 0.01):
        write_run(project, "v", config={"model": {"lr": lr, "width": 64}, "data": "mnist"})
    header = table(ls(capsys)[1])[0]
    assert "model.lr" in header
    assert "model.width" not in header and "data" not in header
    write_run(project, "v", config={"model": {"lr": 0.1, "width": 32}})  # no `data`
    header = table(ls(capsys)[1])[0]
    assert {"model.lr", "model.width", "data"} <= set(header)
    header = table(ls(capsys, "--limit", "1")[1])[0]  # one run: nothing differs
    assert not any(h.startswith(("model.", "data")) for h in header)


def test_newest_thirty_by_default_with_a_footer(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = times.now() - timedelta(days=10)
    for n in range(35):
        write_run(project, "many", started=start + timedelta(minutes=n))
    code, out, err = ls(capsys)
    assert code == 0
    rows = table(out)[1:]
    assert len(rows) == 30 and rows[0][0] == "many/35" and rows[-1][0] == "many/6"
    assert "30 of 35 runs shown; -a shows all" in err
    assert len(table(ls(capsys, "-a")[1])) == 36
    assert ids(capsys, "--limit", "3") == ["many/35", "many/34", "many/33"]
    assert ids(capsys, "--limit", "2", "-r") == ["many/1", "many/2"]
    _, out, err = ls(capsys, "--json", "--limit", "2")
    assert len(json.loads(out)) == 2 and "2 of 35 runs shown" in err


def test_filters(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = times.now()
    write_run(project, "f", status="completed", config={"lr": 0.1}, tags=("baseline",),
              metrics=[{"acc": 0.95}], started=now - timedelta(days=5))
    write_run(project, "f", status="failed", config={"lr": 0.001}, tags=("baseline", "x"),
              metrics=[{"acc": 0.5}], started=now - timedelta(hours=3))
    write_run(project, "f", status="interrupted", config={"lr": 0.005}, note="warm-up",
              started=now - timedelta(minutes=5))
    write_run(project, "g", status="completed", config={"lr": 0.001})
    assert ids(capsys, "--status", "failed,interrupted") == ["f/3", "f/2"]
    assert ids(capsys, "--status", "failed", "--status", "interrupted") == ["f/3", "f/2"]
    assert ids(capsys, "--tag", "baseline") == ["f/2", "f/1"]
    assert ids(capsys, "--tag", "baseline", "--tag", "x") == ["f/2"]
    assert set(ids(capsys, "--since", "4h")) == {"f/3", "f/2", "g/1"}
    assert ids(capsys, "-w", "config.lr<0.01", "f") == ["f/3", "f/2"]
    assert ids(capsys, "-w", "config.lr<0.01", "-w", "status=failed") == ["f/2"]
    assert ids(capsys, "-w", "metrics.acc>=0.9") == ["f/1"]
    assert ids(capsys, "--where", "tag=baseline", "--where", "metrics.acc<0.9") == ["f/2"]
    assert ids(capsys, "-w", "note~warm") == ["f/3"]
    assert ids(capsys, "-w", "status!=completed", "f") == ["f/3", "f/2"]
    assert ids(capsys, "g") == ["g/1"]
    assert ids(capsys, "?") == ["f/3", "g/1", "f/2", "f/1"]
    assert set(ids(capsys, "[fg]")) == {"f/1", "f/2", "f/3", "g/1"}
    assert ids(capsys, "-w", "config.lr>1") == []


def test_sorting(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = times.now() - timedelta(days=1)
    write_run(project, "s", config={"lr": 0.1}, metrics=[{"loss": 0.3}], duration=50,
              started=start)
    write_run(project, "s", config={"lr": 0.01}, metrics=[{"loss": 0.1}], duration=5,
              started=start + timedelta(hours=1))
    write_run(project, "s", config={}, duration=500, started=start + timedelta(hours=2))
    assert ids(capsys) == ["s/3", "s/2", "s/1"]
    assert ids(capsys, "-r") == ["s/1", "s/2", "s/3"]
    assert ids(capsys, "--sort", "config.lr") == ["s/2", "s/1", "s/3"]
    assert ids(capsys, "--sort", "config.lr", "-r") == ["s/1", "s/2", "s/3"]
    assert ids(capsys, "--sort", "metrics.loss") == ["s/2", "s/1", "s/3"]
    assert ids(capsys, "--sort", "duration") == ["s/2", "s/1", "s/3"]
    assert ids(capsys, "--sort", "started") == ["s/1", "s/2", "s/3"]


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: NaN and Infinity are not numbers there."""
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_standard_in_json_and_csv(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start = times.now() - timedelta(hours=5)
    for n, loss in enumerate((0.5, float("nan"), float("inf"), float("-inf"))):
        write_run(project, "d", metrics=[{"step": 1, "loss": 1.0}, {"step": 2, "loss": loss}],
                  config={"clip": float("inf") if n == 2 else 1.0},
                  started=start + timedelta(minutes=n))
    code, out, err = ls(capsys, "--json")
    assert code == 0, err
    runs = {r["id"]: r for r in strict_json(out)}
    assert [runs[f"d/{n}"]["metrics"]["loss"] for n in (1, 2, 3, 4)] == [0.5, "nan", "inf",
                                                                         "-inf"]
    assert runs["d/3"]["config"] == {"clip": "inf", "seed": 7}
    assert strict_json(ls(capsys, "--json")[1]) == strict_json(out)  # now from the cache
    code, out, _ = ls(capsys, "--csv", "--columns", "id,metrics.loss,config.clip")
    assert out.splitlines() == ["id,metrics.loss,config.clip", "d/4,-inf,1.0", "d/3,inf,inf",
                                "d/2,nan,1.0", "d/1,0.5,1.0"]
    rows = {r[0]: r for r in table(ls(capsys)[1])}
    assert rows["d/2"][4] == "nan" and rows["d/3"][4] == "inf" and rows["d/4"][4] == "-inf"
    # nan has no order: it sorts with the runs that lack the metric, last either way
    assert ids(capsys, "--sort", "metrics.loss") == ["d/4", "d/1", "d/3", "d/2"]
    assert ids(capsys, "--sort", "metrics.loss", "-r") == ["d/3", "d/1", "d/4", "d/2"]
    assert ids(capsys, "-w", "metrics.loss=nan") == ["d/2"]
    assert ids(capsys, "-w", "metrics.loss>100") == ["d/3"]
    assert ids(capsys, "-w", "config.clip=inf") == ["d/3"]


def test_relative_times_and_durations(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "t", started=times.now() - timedelta(hours=3, minutes=1), duration=125)
    write_run(project, "t", started=times.now() - timedelta(days=40), duration=3 * 86400)
    rows = table(ls(capsys)[1])
    assert rows[1] == ["t/1", "completed", "3h ago", "2m05s"]
    old = (times.now() - timedelta(days=40)).strftime("%Y-%m-%d")
    assert rows[2] == ["t/2", "completed", old, "3d00h"]


def test_corrupt_folders_are_listed_not_fatal(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "ok")
    bad = project / "results" / "bad"
    (bad / "1").mkdir(parents=True)  # no run.json
    (bad / "2").mkdir()
    (bad / "2" / "run.json").write_text('{"schema_version": 1, "name": "bad", "numb')
    (bad / "3").mkdir()
    (bad / "3" / "run.json").write_text('{"hello": "world"}')
    (bad / "notes").mkdir()  # not a number: not a run
    trash = project / "results" / ".trash" / "ok" / "9"
    trash.mkdir(parents=True)
    code, out, err = ls(capsys)
    assert code == 0
    listed = {r[0]: r[1] for r in table(out)[1:]}
    assert listed == {"ok/1": "completed", "bad/1": "corrupt", "bad/2": "corrupt",
                      "bad/3": "corrupt"}
    assert "warning: bad/1 is corrupt: `" in err and "run.json` is missing" in err
    assert "bad/2 is corrupt:" in err and "is not valid JSON" in err
    assert "bad/3 is corrupt:" in err and "is not a run record" in err
    problems = {r["id"]: r["problem"] for r in ls_json(capsys, "bad")}
    assert all(problems.values()) and len(problems) == 3
    assert ids(capsys, "--status", "corrupt") == ["bad/3", "bad/2", "bad/1"]


@pytest.mark.parametrize(("fields", "field"), WRONG_FIELDS)
def test_a_wrongly_typed_record_is_corrupt_naming_the_field(
        project: Path, capsys: pytest.CaptureFixture[str], fields: dict[str, Any],
        field: str) -> None:
    write_run(project, "ok", config={"lr": 0.1})
    write_wrong(project, "bad", fields)
    write_run(project, "ok", config={"lr": 0.2})
    says = f"is not a run record (`{field}` is"
    code, out, err = ls(capsys)
    assert code == 0, err
    assert {r[0]: r[1] for r in table(out)[1:]} == {"ok/2": "completed", "bad/1": "corrupt",
                                                   "ok/1": "completed"}
    assert f"warning: bad/1 is corrupt: `{project / 'results' / 'bad' / '1' / 'run.json'}` " \
        f"{says}" in err and err.count("\n") == 1
    runs = {r["id"]: r for r in ls_json(capsys)}
    assert runs["bad/1"]["status"] == "corrupt" and says in runs["bad/1"]["problem"]
    assert runs["bad/1"]["config"] == {} and runs["bad/1"]["started"] is None
    code, out, err = ls(capsys, "--csv")
    assert code == 0 and {r["id"]: r["status"] for r in csv.DictReader(io.StringIO(out))} == {
        "ok/2": "completed", "bad/1": "corrupt", "ok/1": "completed"}
    for where in ("status=completed", "config.lr>0", "started>2000-01-01", "tag!=x"):
        code, out, err = ls(capsys, "--json", "-w", where)
        assert code == 0, (where, err)
    assert ids(capsys, "--sort", "started") == ["ok/1", "ok/2", "bad/1"]
    assert ids(capsys, "--since", "1d") == ["ok/2", "ok/1"]
    assert ids(capsys, "--status", "corrupt") == ["bad/1"]


def test_a_cache_from_before_wrong_types_were_corrupt_is_not_believed(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_json = write_wrong(project, "bad", {"started": 5}) / "run.json"
    # What an earlier xpm cached for that run (its fields as they were, started 5) under
    # the identity of its run.json: it listed the runs, then failed on them.
    st = run_json.stat()
    fields: list[Any] = ["completed", None, "2024-05-01T10:00:00.000+00:00", 5, None, 10.0,
                         0, None, 1, [], None, 7, "host", "user", None, None, None, [], {}]
    row = [1, [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns], None, fields]
    cache = project / "results" / ".cache" / "ls" / "bad.jsonl"
    cache.parent.mkdir(parents=True)
    cache.write_text(json.dumps({"format": 1, "sections": []}) + "\n" + json.dumps(row) + "\n")
    code, out, err = ls(capsys)
    assert code == 0 and table(out)[1][:2] == ["bad/1", "corrupt"], err


@pytest.mark.slow
def test_a_killed_supervisor_is_listed_lost_never_running(project: Path) -> None:
    marker = project / "started"
    proc = spawn_xpm("run", "-n", "k", "--", *child(f"touch={marker}", "sleep=60"))
    wait_for(marker.exists, what="the command to start")
    result = run_xpm("ls", "--json")
    [run] = json.loads(result.out)
    assert run["status"] == "running" and run["duration"] > 0
    child_pid = json.loads((project / "results" / "k" / "1" / "run.json").read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert child_pid["attempts"][0]["pid"] == proc.pid
    result = run_xpm("ls")
    assert result.code == 0, result
    assert table(result.out)[1][:2] == ["k/1", "lost"]
    assert record(project, "k/1")["status"] == "lost"  # corrected on disk by the reader
    wait_for(lambda: not pid_alive(proc.pid), what="the supervisor to be gone")


def test_runs_on_another_host_follow_the_heartbeat(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = times.now()
    write_run(project, "h", status="running", host="gpu-node-7", heartbeat=now,
              started=now - timedelta(minutes=10))
    write_run(project, "h", status="running", host="gpu-node-7",
              heartbeat=now - timedelta(hours=1), started=now - timedelta(hours=2))
    runs = {r["id"]: r for r in ls_json(capsys)}
    assert runs["h/1"]["status"] == "running"
    assert runs["h/1"]["duration"] >= 600  # live: counted up to now
    assert runs["h/2"]["status"] == "lost"


def test_listing_cache_never_disagrees_with_the_folders(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(project, "c", metrics=[{"step": 1, "loss": 0.5}])
    write_run(project, "c")
    assert ls_json(capsys)[1]["metrics"] == {"loss": 0.5}
    cache = project / "results" / ".cache" / "ls" / "c.jsonl"
    assert cache.is_file()
    assert ls_json(capsys)[1]["metrics"] == {"loss": 0.5}  # from the cache
    with open(run_dir / "metrics.jsonl", "a") as f:  # logged after the run ended
        f.write('{"step": 2, "loss": 0.25}\n')
    assert ls_json(capsys)[1]["metrics"] == {"loss": 0.25}
    data = json.loads((run_dir / "run.json").read_text())
    data.update(status="failed", note="rewritten in place")
    with open(run_dir / "run.json", "r+") as f:  # same inode, same size or not
        f.write(json.dumps(data, indent=2))
        f.truncate()
    assert ls_json(capsys)[1]["status"] == "failed"
    import shutil

    shutil.rmtree(project / "results" / "c" / "2")
    assert ids(capsys) == ["c/1"]
    from xpm.reading.listing import FORMAT

    cache.write_text(f'{{"format": {FORMAT}, "sections": []}}\nnot json\n'
                     '[1, "x", null, ["garbage"]]\n')  # an unreadable line, a stale one
    assert ls_json(capsys)[0]["note"] == "rewritten in place"
    assert "not json" not in cache.read_text() and "garbage" not in cache.read_text()
    cache.write_bytes(b"\x00\xff")
    assert ls_json(capsys)[0]["status"] == "failed"
    assert (project / "results" / ".cache").is_dir() and ids(capsys, "-a") == ["c/1"]


def test_runs_under_a_linked_name_folder_are_listed(
        project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scratch = tmp_path / "scratch" / "big"
    scratch.mkdir(parents=True)
    (project / "results").mkdir()
    (project / "results" / "big").symlink_to(scratch)  # runs kept on a bigger disk
    (project / "results" / "gone").symlink_to(tmp_path / "nowhere")  # a dangling link
    (project / "results" / "loop").symlink_to(project / "results" / "loop")
    assert run_xpm("run", "-n", "big", "--", *child()).code == 0
    assert (scratch / "1" / "run.json").is_file()
    write_run(project, "small")
    assert ids(capsys) == ["big/1", "small/1"]
    [run] = ls_json(capsys, "big")
    assert run["status"] == "completed" and run["path"] == str(project / "results/big/1")
    assert ids(capsys, "b*") == ["big/1"]
    code, out, err = ls(capsys)
    assert code == 0 and "big/1" in out and err == ""


def test_names_must_exist_and_be_names(project: Path) -> None:
    write_run(project, "exp")
    before = tree(project)
    for args, code, says in [
        (["ls", "nope"], 1, "no run named `nope`"),
        (["ls", "exp/1"], 2, "takes run names or globs, not `exp/1`; `xpm show exp/1`"),
        (["ls", "--status", "done"], 2, "--status `done` is not a status"),
        (["ls", "--status", ","], 2, "--status `,` names no status"),
        (["ls", "-w", "config.lr<<3"], 2, "did you mean --where 'config.lr<3'?"),
        (["ls", "-w", "config.lr<"], 2, "--where `config.lr<` has no value after `<`"),
        (["ls", "--where", "config.lr"], 2, "is not FIELD OP VALUE"),
        (["ls", "--where", "lr<1"], 2, "unknown field `lr`"),
        (["ls", "--sort", "speed"], 2, "--sort `speed`: unknown field `speed`"),
        (["ls", "--since", "yesterday"], 2, "--since `yesterday` is not an age"),
        (["ls", "--json", "--csv"], 2, "either --json or --csv"),
        (["ls", "-a", "--limit", "3"], 2, "either -a (every run) or --limit N"),
        (["ls", "--limit", "0"], 2, "0 is not in the range"),
        (["ls", "--columns", "id,bogus"], 2, "--columns `bogus`: unknown field"),
    ]:
        result = run_xpm(*args)
        assert result.code == code, (args, result)
        assert says in result.err, (args, result.err)
        assert result.err.count("\n") == 1 and "Traceback" not in result.err
        assert result.out == ""
    assert tree(project) == before  # nothing written, not even the cache


def test_an_empty_tree_says_so(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = ls(capsys)
    assert code == 0 and out == "" and "no runs yet in" in err
    assert ls_json(capsys) == []
    write_run(project, "e")
    code, out, err = ls(capsys, "--status", "failed")
    assert out == "" and "no runs match (of 1 run)" in err


def test_a_pipe_gets_whole_values(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long_tag = "a-very-long-tag-" * 8
    write_run(project, "w", tags=(long_tag,), config={"path": "/data/" + "x" * 150})
    write_run(project, "w", config={"path": "/elsewhere"})
    out = ls(capsys)[1]
    assert long_tag in out and "/data/" + "x" * 150 in out


def test_a_terminal_gets_a_fitted_colored_table(project: Path) -> None:
    write_run(project, "tty", status="failed", config={"lr": 0.1, "desc": "z" * 200})
    write_run(project, "tty", config={"lr": 0.2, "desc": "y"})
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["COLUMNS"] = "70"
    code, shown = run_in_pty(xpm_argv("ls"), env=env, stderr=subprocess.DEVNULL)
    assert code == 0
    out = shown.decode()
    assert "\x1b[31mfailed" in out  # failed in red
    import re

    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert all(len(line) <= 70 for line in plain.splitlines())
    assert "tty/2" in plain and "tty/1" in plain


def test_an_80_column_terminal_never_splits_ids_statuses_or_times(project: Path) -> None:
    commit = GitState(commit="54e94ea1b2c3d4e5f60718293a4b5c6d7e8f9012", branch="main",
                      dirty=True)
    statuses = ["completed", "failed", "interrupted", "completed", "killed"]
    for n, status in enumerate(statuses):
        write_run(project, "sweep-learning-rate", status=status, git=commit,
                  tags=("baseline", "long-run") if n % 2 else ("sweep",),
                  config={"model": {"lr": 10 ** -n, "width": 64 * (n + 1)},
                          "data": {"path": f"/datasets/imagenet/train-{n}", "batch": 32 * n},
                          "optimizer": ["adam", "sgd"][n % 2], "warmup_steps": 100 * n},
                  metrics=[{"step": 1, "loss": 1 / (n + 1), "acc": 0.5 + n / 10,
                            "val_loss": 0.7 / (n + 1)}])
    env = {**os.environ, "COLUMNS": "80"}
    code, shown = run_in_pty(xpm_argv("ls"), env=env, stderr=subprocess.DEVNULL)
    assert code == 0
    lines = re.sub(r"\x1b\[[0-9;]*m", "", shown.decode()).replace("\r", "").splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    header = lines[0].split()
    assert header[:5] == ["id", "status", "started", "duration", "commit"], lines
    for n, status in enumerate(statuses):
        row = next(line for line in lines if line.startswith(f"sweep-learning-rate/{n + 1} "))
        assert row.split()[1:5] == [status, "1h", "ago", "10.0s"] and " 54e94ea* " in row
    # 5 + tags + 3 metrics + 6 config keys that differ; those that do not fit are named
    hidden = 15 - len(header)
    assert hidden > 0
    note = " ".join(" ".join(lines[6:]).split())
    assert f"{hidden} columns hidden to fit (" in note and "--columns, --json" in note
    # Whatever is cut ends in an ellipsis; a pipe still gets every column whole.
    assert "tags" not in header or re.search(r" baseline,(long-run|\S*…) ", lines[2])
    result = run_xpm("ls")
    assert len(table(result.out)[0]) == 15 and "/datasets/imagenet/train-4" in result.out


def test_picked_columns_are_fitted_too(project: Path) -> None:
    write_run(project, "fit", status="interrupted", config={"path": "/data/" + "x" * 80})
    env = {**os.environ, "COLUMNS": "50"}
    code, shown = run_in_pty(xpm_argv("ls", "--columns", "id,status,config.path,duration"),
                             env=env, stderr=subprocess.DEVNULL)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", shown.decode()).replace("\r", "").splitlines()
    assert code == 0 and all(len(line) <= 50 for line in lines), lines
    assert lines[0].split() == ["id", "status", "config.path", "duration"]
    assert lines[1].startswith("fit/1  interrupted  /data/xx")
    assert lines[1].rstrip().endswith("…  10.0s")
    assert len(lines) == 2


def test_committed_runs_show_short_commits(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_xpm("run", "-n", "g", "--", *child()).code == 0
    (repo / "new.py").write_text("x = 1\n")
    commit = git_commit(repo, "second")
    assert run_xpm("run", "-n", "g", "--", *child()).code == 0
    rows = table(ls(capsys)[1])
    assert rows[0][4] == "commit" and rows[1][4] == commit[:7]


def test_the_cache_is_written_only_when_something_changed(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "w")
    write_run(project, "w", status="running", host="gpu-node-7", heartbeat=times.now())
    assert {r["id"]: r["status"] for r in ls_json(capsys)} == {"w/1": "completed",
                                                               "w/2": "running"}
    cache = project / "results" / ".cache" / "ls" / "w.jsonl"
    written = cache.stat()
    lines = cache.read_text().splitlines()
    assert len(lines) == 3  # header, the ended run, the running run's metrics tally
    assert json.loads(lines[2].split("\t")[0])[1] is None  # read every time
    ls_json(capsys)
    again = cache.stat()
    assert (again.st_ino, again.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)
    write_run(project, "w")
    ls_json(capsys)
    assert len(cache.read_text().splitlines()) == 4


def test_every_metric_ever_logged_is_listed(project: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"step": 0, "test_score": 0.6}] + [{"step": s, "loss": 1 / s} for s in range(1, 3000)]
    write_run(project, "sparse", metrics=rows)
    [run] = ls_json(capsys)
    assert run["metrics"] == {"test_score": 0.6, "loss": 1 / 2999}
    code, out, _ = ls(capsys, "-w", "metrics.test_score>0.1", "--columns", "id,metrics.test_score")
    assert code == 0 and "sparse/1" in out and "0.6" in out
    [again] = ls_json(capsys)  # from the cache this time
    assert again["metrics"] == run["metrics"]


def test_a_running_run_is_read_from_where_the_last_listing_stopped(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(project, "live", status="running", host="gpu-node-7",
                        heartbeat=times.now(),
                        metrics=[{"step": 0, "val": 0.25}, {"step": 1, "loss": 0.6},
                                 {"step": 2, "loss": 0.5}])
    [run] = ls_json(capsys)
    assert run["status"] == "running" and run["metrics"] == {"val": 0.25, "loss": 0.5}
    path = run_dir / "metrics.jsonl"
    text = path.read_text()
    path.write_text(text.replace('"val": 0.25', '"val": 0.75'))  # same size, same end
    with open(path, "a") as f:
        f.write(json.dumps({"step": 3, "loss": 0.4, "acc": 0.9}) + "\n")
    [run] = ls_json(capsys)
    # only the added line was read: the first line's change (which nothing real would
    # make) is not seen, the new metric is
    assert run["metrics"] == {"val": 0.25, "loss": 0.4, "acc": 0.9}
    path.write_text(json.dumps({"step": 0, "other": 1.0}) + "\n")  # rewritten: read anew
    [run] = ls_json(capsys)
    assert run["metrics"] == {"other": 1.0}
