"""The Python API: current_run inside a real run, load_run on copies, load, seeds."""

from __future__ import annotations

import json
import random
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

import xpm
from tests.conftest import read_json, run_xpm
from tests.records import write_run

SCRIPT = textwrap.dedent("""
    import json, sys
    import xpm

    run = xpm.current_run()
    out = {"id": run.id, "name": run.name, "number": run.number, "seed": run.seed,
           "attempt": run.attempt, "resumed": run.resumed, "lr": run.config.model.lr,
           "layers": run.config["model"]["layers"], "status": run.status,
           "checkpoint": str(run.checkpoint) if run.checkpoint else None}
    for step in (1, 2, 3):
        run.log(step=step, loss=1.0 / step, acc=step * 0.1)
    with run.saving(run.attempt * 10, ".json") as path:
        path.write_text(json.dumps({"attempt": run.attempt}))
    try:
        with run.saving(99) as path:
            path.write_text("half")
            raise RuntimeError("crash mid-save")
    except RuntimeError:
        pass
    json.dump(out, open(sys.argv[1], "w"))
    sys.exit(int(sys.argv[2]))
""")


@pytest.fixture
def api_run(project: Path, tmp_path: Path) -> tuple[Path, Path]:
    (project / "script.py").write_text(SCRIPT)
    (project / "c.yaml").write_text("model:\n  lr: 0.01\n  layers: [8, 8]\n")
    out = tmp_path / "out.json"
    result = run_xpm("run", "-n", "api", "-c", "c.yaml", "--seed", "4", "--", sys.executable,
                     "script.py", str(out), "1")
    assert result.code == 1, result
    return project / "results" / "api" / "1", out


def test_current_run_inside_a_run(api_run: tuple[Path, Path]) -> None:
    run_dir, out = api_run
    seen = read_json(out)
    assert seen == {"id": "api/1", "name": "api", "number": 1, "seed": 4, "attempt": 1,
                    "resumed": False, "lr": 0.01, "layers": [8, 8], "status": "running",
                    "checkpoint": None}
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in lines] == [(1, 1.0), (2, 0.5), (3, 1 / 3)]
    assert all(isinstance(r["time"], float) for r in lines)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-00000010.json"]


def test_resumed_run_sees_its_checkpoint(api_run: tuple[Path, Path], project: Path) -> None:
    run_dir, out = api_run
    assert run_xpm("resume", "api", "--", sys.executable, "script.py", str(out), "0").code == 0
    seen = read_json(out)
    assert seen["attempt"] == 2 and seen["resumed"] is True
    assert seen["checkpoint"] == str(run_dir / "checkpoints" / "step-00000010.json")


def test_load_run_reads_a_copied_folder(api_run: tuple[Path, Path], tmp_path: Path) -> None:
    run_dir, _ = api_run
    copy = tmp_path / "elsewhere" / "whatever"
    shutil.copytree(run_dir, copy)
    run = xpm.load_run(copy)
    assert run.id == "api/1" and run.name == "api" and run.number == 1  # from run.json
    assert run.dir == copy.resolve()  # paths from where it is
    assert run.status == "failed" and run.seed == 4 and run.attempt == 1
    assert run.config.model.layers == [8, 8]
    assert run.checkpoint == copy.resolve() / "checkpoints" / "step-00000010.json"
    assert run.checkpoints() == [(10, run.checkpoint)]
    assert [m["step"] for m in run.metrics()] == [1, 2, 3]
    assert run.meta["exit_code"] == 1


def test_load_run_by_reference(api_run: tuple[Path, Path]) -> None:
    for ref in ("api", "api/1", "api/-1"):
        assert xpm.load_run(ref).id == "api/1"
    with pytest.raises(xpm.XpmError, match="no run named"):
        xpm.load_run("missing/1")


def test_current_run_outside_a_run() -> None:
    assert xpm.current_run() is None


def test_config_attribute_and_key_access() -> None:
    config = xpm.Config({"model": {"lr": 0.1, "blocks": [{"width": 4}]}})
    assert config.model.lr == config["model"]["lr"] == 0.1
    assert config.model.blocks[0].width == 4
    with pytest.raises(AttributeError, match="no key `missing`"):
        _ = config.missing
    config.model.lr = 0.2
    assert config.to_dict() == {"model": {"lr": 0.2, "blocks": [{"width": 4}]}}


def test_load_python_config_file(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(
        "def load(config, dataset, scale=1):\n"
        "    return {'width': config['width'] * scale, 'data': dataset}\n")
    result = xpm.load(tmp_path / "model.py", {"width": 3}, "mnist", scale=2)
    assert result == {"width": 6, "data": "mnist"}


def test_load_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("model: {lr: 0.5}\n")
    (tmp_path / "b.json").write_text('{"x": [1, 2]}')
    assert xpm.load(tmp_path / "a.yaml").model.lr == 0.5
    assert xpm.load(tmp_path / "b.json").x == [1, 2]
    with pytest.raises(xpm.XpmError, match="has no `load"):
        (tmp_path / "nofunc.py").write_text("x = 1\n")
        xpm.load(tmp_path / "nofunc.py")


def test_seed_everything_makes_random_repeatable() -> None:
    xpm.seed_everything(123)
    first = [random.random() for _ in range(3)]
    xpm.seed_everything(123)
    assert [random.random() for _ in range(3)] == first


def test_api_does_not_need_torch() -> None:
    import subprocess

    code = ("import sys; import xpm; xpm.current_run(); xpm.Config({}); "
            "print('torch' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False False", out.stderr


def test_saving_keeps_the_suffix_at_the_end_of_the_temporary_path(project: Path,
                                                                 tmp_path: Path) -> None:
    script = project / "save.py"
    script.write_text(textwrap.dedent("""
        import sys
        import xpm

        run = xpm.current_run()
        with run.saving(10, ".weights.h5") as path:
            assert path.name.endswith(".weights.h5") and path.name.startswith("."), path
            path.write_text("w")
        print(run.checkpoint.name)
    """))
    result = run_xpm("run", "-n", "sfx", "--", sys.executable, "save.py")
    assert result.code == 0, result
    assert result.out.strip() == "step-00000010.weights.h5"


def test_copied_folder_keeps_its_projects_checkpoint_patterns(project: Path,
                                                              tmp_path: Path) -> None:
    (project / "xpm.yaml").write_text("checkpoints: ['ckpt/*.bin']\n")
    script = "import os, pathlib; d = pathlib.Path(os.environ['XPM_RUN_DIR']) / 'ckpt'; " \
             "d.mkdir(); (d / 's5.bin').write_text('x')"
    assert run_xpm("run", "-n", "pat", "--", sys.executable, "-c", script).code == 0
    run_dir = project / "results" / "pat" / "1"
    assert xpm.load_run(run_dir).checkpoint == run_dir / "ckpt" / "s5.bin"
    copy = tmp_path / "copy" / "1"
    shutil.copytree(run_dir, copy)
    shutil.rmtree(project)  # the project is gone: the record still knows the patterns
    assert xpm.load_run(copy).checkpoint == copy / "ckpt" / "s5.bin"


def test_meta_and_record_apply_liveness(project: Path) -> None:
    from dataclasses import replace

    from xpm.runs.record import read_record, write_record

    assert run_xpm("run", "-n", "m", "--", sys.executable, "-c", "pass").code == 0
    run_dir = project / "results" / "m" / "1"
    write_record(run_dir, replace(read_record(run_dir), status="running"))
    run = xpm.load_run(run_dir)
    assert run.meta["status"] == "lost"
    assert run.record.status == "lost"


def test_load_python_config_can_import_its_neighbours(tmp_path: Path) -> None:
    (tmp_path / "helper_mod_xpm.py").write_text("WIDTH = 7\n")
    (tmp_path / "net.py").write_text(
        "import helper_mod_xpm\n\ndef load(config):\n    return helper_mod_xpm.WIDTH\n")
    assert xpm.load(tmp_path / "net.py", {}) == 7
    assert str(tmp_path) not in sys.path


def test_the_api_page_training_loop_runs(project: Path) -> None:
    readme = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    section = readme[readme.index("## Overview"):]
    start = section.index("```python\n") + len("```python\n")
    code = section[start:section.index("\n```", start)]
    (project / "train.py").write_text(code)
    result = run_xpm("run", "-n", "readme", "-s", "train.steps=200", "-s", "train.lr=0.1",
                     "--", sys.executable, "train.py")
    assert result.code == 0, result
    run = xpm.load_run(project / "results" / "readme" / "1")
    assert [m["step"] for m in run.metrics()][-1] == 200
    assert [step for step, _ in run.checkpoints()] == [50, 100, 150, 200]
    last = [line for line in result.out.splitlines() if line.startswith("w = ")][-1]
    assert abs(float(last.split("=")[1]) - 3) < 0.5


def test_seed_everything_seeds_numpy_too() -> None:
    numpy = pytest.importorskip("numpy")
    assert xpm.seed_everything(2**40 + 5) == 2**40 + 5  # beyond numpy's 32 bits: wrapped
    first = numpy.random.rand(3).tolist()
    xpm.seed_everything(2**40 + 5)
    assert numpy.random.rand(3).tolist() == first
    xpm.seed_everything(6)
    assert numpy.random.rand(3).tolist() != first


def test_seed_everything_seeds_torch_too() -> None:
    torch = pytest.importorskip("torch")
    xpm.seed_everything(11)
    first = torch.rand(3).tolist()
    xpm.seed_everything(11)
    assert torch.rand(3).tolist() == first
    xpm.seed_everything(12)
    assert torch.rand(3).tolist() != first


def test_log_turns_numpy_and_torch_values_into_plain_numbers(project: Path) -> None:
    numpy = pytest.importorskip("numpy")
    folder = write_run(project, "a")
    run = xpm.load_run(str(folder))
    values: dict[str, object] = {
        "f32": numpy.float32(0.5), "i64": numpy.int64(7), "zero_d": numpy.array(2.5),
        "nested": {"a": numpy.float64(1.25), "b": [numpy.int32(3), 4]}, "flag": True,
    }
    try:
        torch = __import__("torch")
        values["tensor"] = torch.tensor(0.75)
    except ImportError:
        pass
    run.log(step=numpy.int64(3), **values)
    run.close()
    row = json.loads((folder / "metrics.jsonl").read_text())
    assert row["step"] == 3 and type(row["step"]) is int
    assert row["f32"] == 0.5 and row["i64"] == 7 and type(row["i64"]) is int
    assert row["zero_d"] == 2.5 and row["nested"] == {"a": 1.25, "b": [3, 4]}
    assert row["flag"] is True
    if "tensor" in values:
        assert row["tensor"] == 0.75
