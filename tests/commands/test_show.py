"""`xpm show RUN`: everything about one run."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import child, record, run_xpm, tree
from tests.records import WRONG_FIELDS, write_run, write_wrong
from xpm.cli import main

TRAIN = """
import xpm
run = xpm.current_run()
for step in range(1, 6):
    run.log(step=step, loss=1 / step, acc=step / 10)
    if step % 2 == 0:
        with run.saving(step) as path:
            path.write_text("weights" * step)
for i in range(15):
    print(f"line {i}")
"""


def show_json(capsys: pytest.CaptureFixture[str], run: str) -> dict[str, Any]:
    assert main(["show", run, "--json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_show_everything_about_a_real_run(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "train.py").write_text("print('changed')\n")  # dirty: a git.patch is saved
    result = run_xpm("run", "-n", "s", "-t", "best", "-m", "the one", "-s", "model.lr=0.1",
                     "--", sys.executable, "-c", TRAIN)
    assert result.code == 0, result
    facts = show_json(capsys, "s/1")
    rec = record(repo, "s/1")
    assert facts["id"] == "s/1" and facts["status"] == "completed"
    assert facts["path"] == str(repo / "results" / "s" / "1")
    assert facts["record"] == rec
    assert facts["git"]["dirty"] is True and facts["git"]["patch_size"] > 0
    assert facts["git"]["commit"] == rec["git"]["commit"]
    assert facts["environment"]["python"] == rec["python"]
    assert facts["environment"]["distributions"] > 3
    cks = facts["checkpoints"]
    assert cks["count"] == 2 and cks["newest"]["step"] == 4
    assert cks["size"] >= 7 * 6  # disk usage: whole blocks
    assert cks["newest"]["path"] == "checkpoints/step-00000004.ckpt"
    assert facts["metrics"]["loss"] == {"last": 0.2, "min": 0.2, "max": 1.0, "samples": 5,
                                        "last_step": 5}
    assert facts["metrics"]["acc"]["max"] == 0.5
    assert facts["output"]["last_lines"] == [f"line {i}" for i in range(5, 15)]
    assert facts["output"]["size"] == len("".join(f"line {i}\n" for i in range(15)))
    assert facts["disk_size"] > cks["size"] > 0

    assert main(["show", "s/1"]) == 0
    text = capsys.readouterr().out
    for expected in ("s/1\n", "status    completed", "tags      best", "note      the one",
                     "\ngit\n", "dirty   yes: git.patch", "\nconfig\n", "model.lr  0.1",
                     "\nattempts\n", "→ completed after", "\ncheckpoints\n",
                     "checkpoints/step-00000004.ckpt (step 4,", "\nmetrics\n",
                     "loss  last 0.2  min 0.2  max 1  (5 values, last at step 5)",
                     "\nenvironment\n", "output.log (", "last 10 lines)", "  line 14\n"):
        assert expected in text, expected


DIVERGES = """
import xpm
run = xpm.current_run()
for step, loss in enumerate([1.0, 0.5, float("inf"), float("nan")], 1):
    run.log(step=step, loss=loss, grad=float("nan"), acc=step / 10)
"""


def test_non_finite_metrics_are_shown(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_xpm("run", "-n", "d", "--", sys.executable, "-c", DIVERGES)
    assert result.code == 0, result
    assert main(["show", "d", "--json"]) == 0

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    facts = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert facts["metrics"] == {
        "loss": {"last": "nan", "min": 0.5, "max": "inf", "samples": 4, "last_step": 4},
        "grad": {"last": "nan", "min": "nan", "max": "nan", "samples": 4, "last_step": 4},
        "acc": {"last": 0.4, "min": 0.1, "max": 0.4, "samples": 4, "last_step": 4},
    }
    assert main(["show", "d"]) == 0
    text = capsys.readouterr().out
    assert "\n  loss  last nan  min 0.5  max inf  (4 values, last at step 4)\n" in text
    assert "\n  grad  last nan  min nan  max nan  (4 values, last at step 4)\n" in text


def test_run_references(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(3):
        write_run(project, "r")
    assert show_json(capsys, "r")["id"] == "r/3"
    assert show_json(capsys, "r/-2")["id"] == "r/2"
    assert show_json(capsys, str(project / "results" / "r" / "1"))["id"] == "r/1"
    assert show_json(capsys, "results/r/2/")["id"] == "r/2"


def test_show_applies_liveness(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "l", status="running")  # this host, nothing holds its lock
    facts = show_json(capsys, "l/1")
    assert facts["status"] == "lost" and facts["record"]["status"] == "lost"


def test_a_corrupt_run_shows_what_is_there(project: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = project / "results" / "c" / "1"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text("{")
    (run_dir / "output.log").write_text("it began\n")
    assert main(["show", "c/1"]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"\n  status +corrupt\n", out) and "it began" in out
    assert "c/1 is corrupt:" in err and "is not valid JSON" in err
    facts = show_json(capsys, "c/1")
    assert facts["record"] is None and "not valid JSON" in facts["problem"]


@pytest.mark.parametrize(("fields", "field"), WRONG_FIELDS)
def test_a_wrongly_typed_record_is_shown_corrupt_naming_the_field(
        project: Path, capsys: pytest.CaptureFixture[str], fields: dict[str, Any],
        field: str) -> None:
    run_dir = write_wrong(project, "w", fields)
    (run_dir / "output.log").write_text("it ran\n")
    says = f"`{run_dir / 'run.json'}` is not a run record (`{field}` is"
    assert main(["show", "w/1"]) == 0
    out, err = capsys.readouterr()
    assert re.search(r"\n  status +corrupt\n", out) and "  it ran\n" in out
    assert re.search(r"\n  problem +" + re.escape(says), out)
    assert err.startswith(f"xpm: warning: w/1 is corrupt: {says}") and err.count("\n") == 1
    facts = show_json(capsys, "w/1")
    assert facts["status"] == "corrupt" and facts["record"] is None
    assert facts["problem"].startswith(says)


def test_an_environment_json_of_other_shapes_is_shown_as_far_as_it_goes(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(project, "e")
    (run_dir / "environment.json").write_text(json.dumps({
        "python": 3.11, "platform": "Linux", "cpu_count": "many", "distributions": "x",
        "gpus": ["A100", {"name": "H100"}], "variables": {"CUDA_VISIBLE_DEVICES": "0",
                                                         "SLURM_JOB_ID": 7}}))
    facts = show_json(capsys, "e")
    assert facts["environment"] == {
        "python": None, "implementation": None, "platform": "Linux", "machine": None,
        "cpu_count": None, "distributions": None, "gpus": [{"name": "H100"}],
        "variables": {"CUDA_VISIBLE_DEVICES": "0"}}
    assert main(["show", "e"]) == 0
    text = capsys.readouterr().out
    assert "\nenvironment\n  platform              Linux\n  gpus                  H100\n" \
        "  CUDA_VISIBLE_DEVICES  0\n" in text
    (run_dir / "environment.json").write_text(json.dumps({"variables": ["x"], "gpus": 5}))
    assert main(["show", "e"]) == 0
    assert "\nenvironment\n  gpus  none\n" in capsys.readouterr().out


def test_a_run_without_output_or_extras(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(project, "q", status="queued")
    facts = show_json(capsys, "q")
    assert facts["status"] == "queued" and facts["output"] == {"size": None, "last_lines": []}
    assert facts["checkpoints"] == {"count": 0, "newest": None, "size": 0}
    assert facts["metrics"] == {} and facts["git"] is None and facts["environment"] is None
    assert main(["show", "q"]) == 0
    assert "output.log\n  size  none yet" in capsys.readouterr().out


@pytest.mark.parametrize(("ref", "says"), [
    ("nope", "no run named `nope`"),
    ("r/9", "run `r/9` does not exist"),
    ("r/-5", "`r` has only 1 runs"),
    ("/no/such/dir", "is not a run"),
])
def test_missing_runs_are_one_line_errors(project: Path, ref: str, says: str) -> None:
    write_run(project, "r")
    before = tree(project)
    result = run_xpm("show", ref)
    assert result.code == 1 and says in result.err and result.out == ""
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert tree(project) == before


def test_show_needs_a_run(project: Path) -> None:
    result = run_xpm("show")
    assert result.code == 2 and "Missing argument 'RUN'" in result.err


def test_show_of_a_failed_real_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_xpm("run", "-n", "f", "--", *child("print=boom", "exit=4")).code == 4
    assert main(["show", "f"]) == 0
    text = capsys.readouterr().out
    assert "status    failed (exit 4)" in text and "  boom\n" in text


def test_a_running_run_on_another_host(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from datetime import timedelta

    from xpm import times

    write_run(project, "r", status="running", host="gpu-node-7", heartbeat=times.now(),
              started=times.now() - timedelta(minutes=5, seconds=30))
    assert main(["show", "r"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"\n  status +running\n", text)
    assert re.search(r"\n  duration +5m3\ds so far\n", text)
    assert "(running), pid 1 on gpu-node-7" in text
