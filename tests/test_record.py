"""run.json: the one declaration, the upgrade chain (on folders written by xpm 0.1.0, in
tests/fixtures/v1), keys this xpm does not know, and records from a newer xpm."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_json, run_xpm
from xpm.reading.query import COLUMNS, RunInfo
from xpm.runs.record import (
    SCHEMA_VERSION,
    CorruptRecord,
    NewerRecord,
    RunRecord,
    read_record,
    upgrade,
)
from xpm.runs.schema import schema_of

V1 = Path(__file__).resolve().parent / "fixtures" / "v1"
V1_RUNS = ["mnist/1", "mnist/2", "other/1", "other/2", "stale/1", "stale/2"]


@pytest.fixture
def v1(project: Path) -> Path:
    """The project's results folder: a copy of the version-1 run folders."""
    shutil.copytree(V1, project / "results", ignore=shutil.ignore_patterns("README.md"))
    return project / "results"


def ls_json(*args: str) -> dict[str, dict[str, Any]]:
    result = run_xpm("ls", "-a", "--json", *args)
    assert result.code == 0, result
    return {run["id"]: run for run in json.loads(result.out)}


def test_the_fixtures_are_version_1() -> None:
    for run_id in V1_RUNS:
        assert read_json(V1 / run_id / "run.json")["schema_version"] == 1


def test_version_1_records_read_as_written(v1: Path) -> None:
    rec = read_record(v1 / "mnist" / "1")
    assert rec.schema_version == SCHEMA_VERSION == 2
    assert (rec.id, rec.status, rec.tags, rec.note, rec.seed) == (
        "mnist/1", "completed", ("baseline",), "first try", 3)
    assert rec.command == ("python3", "train.py") and rec.config["train"]["steps"] == 20
    assert rec.git is not None and rec.git.dirty and rec.git.patch == "git.patch"
    assert rec.git.commit == "a0bd4217256f94d21055e8475de9c92133afe483"
    assert len(rec.attempts) == 1 and rec.attempts[0].reason == "exit 0"
    assert rec.extra == {}  # every version-1 key is a field (id is derived)
    killed = read_record(v1 / "other" / "2")
    assert (killed.status, killed.exit_code, killed.signal) == ("killed", 137, 9)
    # What version 2 writes of a version-1 record keeps every key and value it had, and
    # gives the fields added since their defaults.
    defaults = {s.key: s.default for s in schema_of(RunRecord).specs}
    for run_id in V1_RUNS:
        data = read_json(v1 / run_id / "run.json")
        written = read_record(v1 / run_id).to_json()
        assert written.pop("schema_version") == 2 and data.pop("schema_version") == 1
        if isinstance(data.get("git"), dict):  # git fields added since: their defaults
            added = set(written["git"]) - set(data["git"])
            assert added == {"untracked_archive"}
            assert [written["git"].pop(k) for k in added] == [None]
        assert {k: v for k, v in written.items() if k in data} == data
        assert {k: v for k, v in written.items() if k not in data} == \
            {k: defaults[k] for k in written if k not in data}


def test_version_1_folders_list_show_and_resume(v1: Path) -> None:
    before = (v1 / "mnist" / "1" / "run.json").read_bytes()
    runs = ls_json()
    assert {i: r["status"] for i, r in runs.items()} == {
        "mnist/1": "completed", "mnist/2": "failed", "other/1": "completed",
        "other/2": "killed", "stale/1": "lost", "stale/2": "lost"}
    assert round(runs["mnist/1"]["metrics"]["loss"], 5) == 0.04169
    assert runs["mnist/1"]["tags"] == ["baseline"] and runs["other/1"]["tags"] == ["a", "b"]
    assert runs["mnist/1"]["git"]["dirty"] is True
    # Listing reads a version-1 record without rewriting it; the lost one is rewritten,
    # upgraded, with all it had.
    assert (v1 / "mnist" / "1" / "run.json").read_bytes() == before
    stale = read_json(v1 / "stale" / "2" / "run.json")
    assert stale["schema_version"] == 2 and stale["status"] == "lost"
    old = read_json(V1 / "stale" / "2" / "run.json")
    assert set(stale) >= set(old) and stale["config"] == old["config"]
    assert run_xpm("show", "mnist/1").code == 0
    resumed = run_xpm("resume", "mnist/2", "--", "python", "-c", "pass")
    assert resumed.code == 0, resumed
    again = read_json(v1 / "mnist" / "2" / "run.json")
    assert again["schema_version"] == 2 and again["status"] == "completed"
    assert [a["kind"] for a in again["attempts"]] == ["start", "resume"]


def test_unknown_keys_survive_every_rewrite(v1: Path) -> None:
    path = v1 / "stale" / "2" / "run.json"
    data = read_json(path)
    data["sweep_of_the_future"] = {"id": "x@1", "trial": [1, 2]}
    data["git"]["lfs"] = True
    data["attempts"][0]["gpu"] = "A100"
    path.write_text(json.dumps(data))
    assert ls_json()["stale/2"]["status"] == "lost"  # reconciled: rewritten
    lost = read_json(path)
    assert lost["status"] == "lost" and lost["schema_version"] == 2
    assert lost["sweep_of_the_future"] == {"id": "x@1", "trial": [1, 2]}
    assert lost["git"]["lfs"] is True and lost["attempts"][0]["gpu"] == "A100"
    result = run_xpm("resume", "stale/2", "--force", "--", "python", "-c", "pass")
    assert result.code == 0, result
    done = read_json(path)
    assert done["status"] == "completed" and len(done["attempts"]) == 2
    assert done["sweep_of_the_future"] == {"id": "x@1", "trial": [1, 2]}
    assert done["git"]["lfs"] is True and done["attempts"][0]["gpu"] == "A100"


def test_a_record_from_a_newer_xpm_is_listed_as_such_and_never_changed(v1: Path) -> None:
    path = v1 / "stale" / "2" / "run.json"  # says running, and nothing holds its lock
    data = read_json(path)
    data["schema_version"] = 3
    path.write_text(json.dumps(data))
    before = path.read_bytes()
    result = run_xpm("ls", "-a")
    assert result.code == 0, result
    rows = {line.split()[0]: line.split()[1] for line in result.out.splitlines()[1:]}
    assert rows["stale/2"] == "newer" and rows["mnist/1"] == "completed"
    assert "stale/2: `" in result.err and "written by a newer xpm (schema_version 3; " \
        "this xpm reads up to 2); upgrade xpm-runs" in result.err
    assert "corrupt" not in result.out + result.err
    assert ls_json("--status", "newer").keys() == {"stale/2"}
    assert ls_json()["stale/2"]["problem"].endswith("upgrade xpm-runs to read it")
    shown = run_xpm("show", "stale/2")
    assert "written by a newer xpm" in shown.err
    cleaned = run_xpm("clean", "-y")
    assert cleaned.code == 0, cleaned
    assert path.read_bytes() == before
    with pytest.raises(NewerRecord, match="newer xpm"):
        read_record(path.parent)
    with pytest.raises(ValueError, match="newer"):
        upgrade({"schema_version": 3})


@pytest.mark.parametrize("version", [None, 0, "1", True])
def test_a_record_without_a_version_is_corrupt(project: Path, version: Any) -> None:
    run_dir = project / "results" / "x" / "1"
    shutil.copytree(V1 / "mnist" / "1", run_dir)
    data = read_json(run_dir / "run.json")
    data["schema_version"] = version
    (run_dir / "run.json").write_text(json.dumps(data))
    with pytest.raises(CorruptRecord, match="no schema_version") as caught:
        read_record(run_dir)
    assert not isinstance(caught.value, NewerRecord)


def test_listing_fields_come_from_the_declaration() -> None:
    listed = [f.name for f in RunRecord.__dataclass_fields__.values()
              if f.metadata.get("listed")]
    assert listed == ["created", "started", "ended", "duration", "exit_code", "signal",
                      "attempts", "tags", "note", "seed", "host", "user", "rerun_of", "git",
                      "config"]
    assert [c.key for c in COLUMNS] == [
        "created", "started", "ended", "duration", "exit_code", "signal", "attempts", "tags",
        "note", "seed", "host", "user", "rerun_of", "git.commit", "git.branch", "git.dirty",
        "config"]
    info = RunInfo.of("a", 1, "/r/a", "completed", tags=("x",), git_commit="abc")
    assert info.get("git.commit") == "abc" and info.tags == ("x",)
    for cls in (RunRecord, *(s.nested for s in schema_of(RunRecord).specs if s.nested)):
        assert schema_of(cls).specs  # every annotation is a kind the schema knows


def test_records_round_trip(v1: Path) -> None:
    for run_id in V1_RUNS:
        rec = read_record(v1 / run_id)
        assert RunRecord.from_json(rec.to_json()) == rec
