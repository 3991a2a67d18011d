"""The API in a distributed run: each rank knows itself; rank 0 logs and keeps checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import xpm
from tests.conftest import run_xpm
from xpm.api import Run
from xpm.ranks import Rank


@pytest.fixture
def run_dir(project: Path) -> Path:
    assert run_xpm("run", "-n", "d", "--", sys.executable, "-c", "pass").code == 0
    return project / "results" / "d" / "1"


def ranks(run_dir: Path, world: int = 2) -> list[Run]:
    return [Run(run_dir, rank=Rank(r, r, world)) for r in range(world)]


def test_current_run_knows_its_rank_from_torchruns_variables(
        run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XPM_RUN_DIR", str(run_dir))
    for name, value in {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(xpm.api, "_current", None)
    run = xpm.current_run()
    assert run is not None and run.id == "d/1"
    assert (run.rank, run.local_rank, run.world_size, run.is_main) == (1, 1, 2, False)


def test_a_run_of_one_process_is_rank_0_of_1(run_dir: Path) -> None:
    run = xpm.load_run(run_dir)
    assert (run.rank, run.local_rank, run.world_size, run.is_main) == (0, 0, 1, True)


def test_only_rank_0_logs_unless_all_ranks(run_dir: Path) -> None:
    main, other = ranks(run_dir)
    for run in (main, other):
        run.log(step=1, loss=0.5)
        run.log(step=1, all_ranks=True, grad_norm=float(run.rank))
        run.close()
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(row["attempt"] == 1 for row in rows)  # every line carries its attempt
    assert [{k: v for k, v in row.items() if k not in ("time", "attempt")} for row in rows] == [
        {"step": 1, "loss": 0.5},
        {"step": 1, "rank": 0, "grad_norm": 0.0},
        {"step": 1, "rank": 1, "grad_norm": 1.0}]
    listed = json.loads(run_xpm("ls", "--json").out)
    # `rank` is no metric, and the run's metrics are rank 0's
    assert listed[0]["metrics"] == {"loss": 0.5, "grad_norm": 0.0}
    loaded = xpm.load_run(run_dir)
    assert [r.get("grad_norm") for r in loaded.metrics()] == [None, 0.0]
    assert [r["grad_norm"] for r in loaded.metrics(rank=1)] == [1.0]
    assert len(loaded.metrics(rank=None)) == 3
    shown = run_xpm("show", "d/1").out
    assert "grad_norm" in shown and "1.0" not in shown.split("grad_norm", 1)[1].split("\n")[0]
    table = run_xpm("metrics", "d/1").out.splitlines()
    assert table[0] == "step,time,attempt,rank,loss,grad_norm"
    assert [line.split(",")[3:] for line in table[1:]] == [["", "0.5", ""], ["0", "", "0.0"],
                                                            ["1", "", "1.0"]]


def test_saving_on_another_rank_is_discarded(run_dir: Path) -> None:
    main, other = ranks(run_dir)
    with other.saving(10, ".pt") as path:
        assert path.name.startswith(".") and path.name.endswith(".pt")
        path.write_text("rank 1's copy")
    assert not any((run_dir / "checkpoints").iterdir())
    with main.saving(10, ".pt") as path:
        path.write_text("rank 0's copy")
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-00000010.pt"]
    assert other.checkpoint == main.checkpoint == run_dir / "checkpoints" / "step-00000010.pt"


def test_sharded_checkpoint_one_file_per_rank(run_dir: Path) -> None:
    main, other = ranks(run_dir)
    with main.saving(20, ".pt", all_ranks=True) as path:
        path.write_text("shard 0")
    # rank 1 has not saved yet: the set is not a checkpoint
    assert main.checkpoint is None and main.checkpoints() == []
    with other.saving(20, ".pt", all_ranks=True) as path:
        path.write_text("shard 1")
    folder = run_dir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == [
        "step-00000020.rank-0-of-2.pt", "step-00000020.rank-1-of-2.pt"]
    assert main.checkpoints() == [(20, folder / "step-00000020.pt")]
    assert main.checkpoint == folder / "step-00000020.rank-0-of-2.pt"
    assert other.checkpoint == folder / "step-00000020.rank-1-of-2.pt"
    handed = Run(run_dir, rank=Rank(1, 1, 2), handed_checkpoint=str(folder / "step-00000020.pt"))
    assert handed.checkpoint is not None and handed.checkpoint.read_text() == "shard 1"
