"""`xpm rerun` rebuilds the config the way RUN built it (its config copies, its `-s`
assignments, then the new ones) and records them all; `--detach` runs it in the
background; refusals of launch options that do not fit; a copied run folder's identity."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import xpm
from tests.conftest import read_json, record, run_xpm, wait_for

PRINT_CONFIG = "import xpm; print('config', xpm.current_run().config.to_dict())"


def configs(project: Path) -> None:
    (project / "base.yaml").write_text("model:\n  width: 4\n  depth: 2\nlr: 0.1\n")
    (project / "small.yaml").write_text("model:\n  width: 2\n")


def start(project: Path, *options: str) -> str:
    result = run_xpm("run", "-n", "m", *options, "--", sys.executable, "-c", PRINT_CONFIG)
    assert result.code == 0, result
    return str(record(project, "m/1")["name"]) + "/1"


def rerun(*args: str) -> Any:
    result = run_xpm("rerun", *args)
    assert result.code == 0, result
    return result


def test_rerun_rebuilds_the_config_as_the_original_did_plus_new_overrides(project: Path
                                                                         ) -> None:
    configs(project)
    start(project, "-c", "base.yaml", "-c", "small.yaml", "-s", "model.depth=5",
          "-s", "tags=[a,b]", "--seed", "3")
    first = record(project, "m/1")
    (project / "small.yaml").write_text("model:\n  width: 99\n")  # changed since: unused
    rerun("m/1", "-s", "lr=0.01")
    second = record(project, "m/2")
    assert second["rerun_of"] == "m/1" and second["seed"] == 3
    assert second["config"] == {**first["config"], "lr": 0.01}
    assert second["config"]["model"] == {"width": 2, "depth": 5}
    assert second["assignments"] == ["model.depth=5", "tags=[a,b]", "lr=0.01"]
    assert second["config_sources"] == first["config_sources"] == ["base.yaml", "small.yaml"]
    run_dir = project / "results" / "m" / "2"
    assert sorted(p.name for p in (run_dir / "configs").iterdir()) == ["base.yaml",
                                                                      "small.yaml"]
    assert "width: 2" in (run_dir / "configs" / "small.yaml").read_text()
    # a rerun of the rerun: the same again, the newest override last
    rerun("m/2", "-s", "model.depth=7", "--seed", "4")
    third = record(project, "m/3")
    assert third["assignments"] == [*second["assignments"], "model.depth=7"]
    assert third["config"] == {**second["config"], "model": {"width": 2, "depth": 7},
                               "seed": 4}
    assert third["rerun_of"] == "m/2"


def test_a_record_that_cannot_rebuild_its_config_reruns_its_frozen_config(project: Path
                                                                        ) -> None:
    configs(project)
    start(project, "-c", "base.yaml", "-s", "lr=0.5")
    path = project / "results" / "m" / "1" / "run.json"
    data = read_json(path)
    data["assignments"] = []  # as a run recorded before assignments were
    path.write_text(json.dumps(data))
    rerun("m/1", "-s", "model.width=8")
    second = record(project, "m/2")
    assert second["config"] == {**data["config"], "model": {"width": 8, "depth": 2}}
    assert second["config"]["lr"] == 0.5
    assert second["assignments"] == ["model.width=8"]
    (project / "results" / "m" / "1" / "configs" / "base.yaml").unlink()  # by hand
    rerun("m/1")
    assert record(project, "m/3")["config"] == data["config"]


def test_rerun_detach_runs_in_the_background(project: Path) -> None:
    start(project, "-s", "lr=1")
    result = rerun("m/1", "--detach", "-s", "lr=2")
    assert result.out.strip() == "m/2"
    wait_for(lambda: record(project, "m/2")["status"] == "completed", timeout=60,
             what="the detached rerun to complete")
    second = record(project, "m/2")
    assert second["rerun_of"] == "m/1" and second["launch"]["detach"] is True
    assert "'lr': 2" in (project / "results" / "m" / "2" / "output.log").read_text()


def test_launch_options_that_do_not_fit_are_refused(project: Path) -> None:
    start(project)
    for args, says in ((("--slurm-opt", "time=5"), "--slurm-opt only applies"),
                       (("--slurm", "--detach"), "--detach and --slurm")):
        result = run_xpm("rerun", "m/1", *args)
        assert result.code == 2 and says in result.err, result
    assert not (project / "results" / "m" / "2").exists()


def test_ls_show_and_the_api_name_a_copied_folder_by_where_it_is(project: Path) -> None:
    for _ in range(2):
        start(project)
    original = project / "results" / "m" / "2"
    inside = project / "results" / "x" / "7"
    shutil.copytree(original, inside)
    listed = {row["id"] for row in json.loads(run_xpm("ls", "--json").out)}
    assert listed == {"m/1", "m/2", "x/7"}
    shown = json.loads(run_xpm("show", "x/7", "--json").out)
    assert shown["id"] == xpm.load_run(inside).id == "x/7"
    assert shown["copy_of"] == xpm.load_run(inside).copy_of == "m/2"
    assert "this folder is a copy of m/2" in run_xpm("show", "x/7").out
    assert rerun("x/7").code == 0 and record(project, "x/8")["rerun_of"] == "x/7"
    # a folder not named by a number has no place in the tree: its run.json names it
    outside = project / "backup" / "best"
    shutil.copytree(original, outside)
    shown = json.loads(run_xpm("show", str(outside), "--json").out)
    assert shown["id"] == xpm.load_run(outside).id == "m/2"
    assert shown["copy_of"] == xpm.load_run(outside).copy_of == "m/2"
    assert xpm.load_run(original).copy_of is None
    assert json.loads(run_xpm("show", "m/2", "--json").out)["copy_of"] is None
