"""Finding checkpoints: steps, ties, unfinished files, TensorFlow's multi-file layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from xpm.runs.checkpoints import find, newest, step_of


@pytest.mark.parametrize("name, step", [
    ("model.ckpt-1000", 1000), ("epoch=3-step=500.ckpt", 500), ("step-00000050.json", 50),
    ("ckpt_100.pth.tar", 100), ("last.ckpt", None), ("model.safetensors", None),
    ("weights-100.h5", 100), ("weights-99.hdf5", 99), ("checkpoint-1000", 1000),
])
def test_step_of(name: str, step: int | None) -> None:
    assert step_of(name) == step


def write(path: Path, data: str = "x", mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_highest_step_wins_over_modification_time(tmp_path: Path) -> None:
    write(tmp_path / "checkpoints" / "step-200.pt", mtime=1000)
    write(tmp_path / "checkpoints" / "step-100.pt", mtime=2000)
    found = newest(tmp_path)
    assert found is not None and found.path.name == "step-200.pt"


def test_ties_broken_by_modification_time(tmp_path: Path) -> None:
    write(tmp_path / "checkpoints" / "a-100.pt", mtime=2000)
    write(tmp_path / "checkpoints" / "b-100.pt", mtime=1000)
    found = newest(tmp_path)
    assert found is not None and found.path.name == "a-100.pt"


def test_unfinished_files_never_count(tmp_path: Path) -> None:
    write(tmp_path / "checkpoints" / "step-100.pt")
    write(tmp_path / "checkpoints" / "step-400.pt", data="")  # empty: torn
    write(tmp_path / "checkpoints" / "step-300.pt.tmp")
    write(tmp_path / "checkpoints" / "step-500.pt.partial")
    write(tmp_path / "checkpoints" / "step-600.pt~")
    write(tmp_path / "checkpoints" / ".step-700.pt.1234.tmp")
    (tmp_path / "checkpoints" / "step-800").mkdir()  # an empty folder
    assert [c.path.name for c in find(tmp_path)] == ["step-100.pt"]


def test_folder_checkpoints(tmp_path: Path) -> None:
    write(tmp_path / "checkpoints" / "step-10" / "weights.bin")
    write(tmp_path / "checkpoints" / "step-20" / "weights.bin")
    found = newest(tmp_path)
    assert found is not None and found.path == tmp_path / "checkpoints" / "step-20"


def test_tensorflow_multi_file_layout_resolves_to_its_prefix(tmp_path: Path) -> None:
    for step in (1000, 2000):
        for suffix in (".index", ".data-00000-of-00001", ".meta"):
            write(tmp_path / f"model.ckpt-{step}{suffix}")
    write(tmp_path / "model.ckpt-3000.data-00000-of-00001")  # no .index yet: unfinished
    assert [(c.step, c.path.name) for c in find(tmp_path)] == [
        (1000, "model.ckpt-1000"), (2000, "model.ckpt-2000")]


def test_top_level_framework_files(tmp_path: Path) -> None:
    write(tmp_path / "epoch=1-step=10.ckpt")
    write(tmp_path / "model_30.pth")
    write(tmp_path / "weights-20.safetensors")
    write(tmp_path / "config.yaml")
    write(tmp_path / "metrics.jsonl")
    assert [c.step for c in find(tmp_path)] == [10, 20, 30]


def test_custom_patterns(tmp_path: Path) -> None:
    write(tmp_path / "ckpt" / "s5.bin")
    write(tmp_path / "checkpoints" / "s9.bin")
    assert [c.path.name for c in find(tmp_path, ["ckpt/*.bin"])] == ["s5.bin"]


def test_no_integer_counts_as_oldest(tmp_path: Path) -> None:
    write(tmp_path / "checkpoints" / "last.ckpt", mtime=3000)
    write(tmp_path / "checkpoints" / "step-5.ckpt", mtime=1000)
    assert [c.path.name for c in find(tmp_path)] == ["last.ckpt", "step-5.ckpt"]



@pytest.mark.parametrize("pattern", [
    "{neighbour}/*", "/abs/*", "~/x", "..", "../*", "../2/*", "../**/*.pt", "a/../../*", "",
    ".", "./", "x**", "**x/*.pt", "bad\0name/*",
])
def test_a_pattern_never_raises_nor_reaches_out(tmp_path: Path, pattern: str) -> None:
    run_dir = tmp_path / "results" / "a" / "1"
    neighbour = tmp_path / "results" / "a" / "2"
    write(run_dir / "checkpoints" / "step-7" / "w.bin")
    write(neighbour / "step-9.pt")
    pattern = pattern.format(neighbour=neighbour)
    found = find(run_dir, [pattern, "checkpoints/*"])
    assert [c.path for c in found] == [run_dir / "checkpoints" / "step-7"]
    assert newest(run_dir, [pattern]) is None


def test_the_run_folder_itself_is_never_a_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "5"
    write(run_dir / "checkpoints" / "step-7.pt")
    assert [c.path for c in find(run_dir, ["**"])] == [run_dir / "checkpoints"]
    assert [c.path for c in find(run_dir, ["**/*.pt", "**/"])] == [
        run_dir / "checkpoints", run_dir / "checkpoints" / "step-7.pt"]


def test_the_run_folders_own_files_are_never_checkpoints(tmp_path: Path) -> None:
    for name in ("run.json", "config.yaml", "environment.json", "output.log", "metrics.jsonl",
                 "git.patch", "configs/model.yaml", "model-3.bin"):
        write(tmp_path / name)
    assert [c.path.name for c in find(tmp_path, ["*", "configs/*"])] == ["model-3.bin"]


def test_a_sharded_checkpoint_counts_once_and_only_whole(tmp_path: Path) -> None:
    from xpm.runs.checkpoints import files_of, shard_of

    folder = tmp_path / "checkpoints"
    for step in (100, 200):
        for rank in (0, 1):
            write(folder / f"step-{step:08d}.rank-{rank}-of-2.pt")
    write(folder / "step-00000300.rank-0-of-2.pt")  # rank 1 never saved step 300
    write(folder / "step-00000400.rank-0-of-2.pt")
    write(folder / "step-00000400.rank-1-of-2.pt", data="")  # rank 1 torn mid-save
    write(folder / ".step-00000500.rank-1-of-2.77.tmp.pt")
    write(folder / "step-00000500.rank-0-of-2.pt")
    found = find(tmp_path)
    assert [(c.step, c.path.name) for c in found] == [(100, "step-00000100.pt"),
                                                      (200, "step-00000200.pt")]
    whole = folder / "step-00000200.pt"
    assert files_of(whole) == [folder / "step-00000200.rank-0-of-2.pt",
                               folder / "step-00000200.rank-1-of-2.pt"]
    assert shard_of(whole, 1, 2) == folder / "step-00000200.rank-1-of-2.pt"
    assert shard_of(whole, 1, 4) is None
    assert shard_of(folder / "step-00000300.pt", 1, 2) is None


def test_shards_of_another_world_size_and_whole_files(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    write(folder / "step-10.rank-0-of-1.ckpt")  # a set of one
    write(folder / "step-20.ckpt")  # saved whole: its stray shard changes nothing
    write(folder / "step-20.rank-0-of-2.ckpt")
    for rank in range(3):  # world size changed between attempts: the complete set counts
        write(folder / f"step-30.rank-{rank}-of-3.ckpt", mtime=1000)
    write(folder / "step-30.rank-0-of-4.ckpt", mtime=2000)
    assert [(c.step, c.path.name) for c in find(tmp_path)] == [
        (10, "step-10.ckpt"), (20, "step-20.ckpt"), (30, "step-30.ckpt")]
    found = newest(tmp_path)
    assert found is not None and found.mtime == 1000
