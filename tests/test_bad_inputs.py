"""The bad-input table: every command, option and xpm.yaml key given something wrong.

Each case runs xpm as a real process in a project with runs and config files of every
kind, and checks three things: the exit code (1 an xpm error, 2 a usage error), stderr
being one line with no traceback, and the results tree being byte for byte what it was
(checksum of every path, content and mode under results/).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import run_xpm
from tests.records import write_run

DEEP = "[" * 100_000 + "]" * 100_000


class Case(NamedTuple):
    args: tuple[str, ...]
    code: int
    yaml: str | None = None  # xpm.yaml's text for this case (default: results_dir only)
    said: str = ""  # a piece of the message


def c(code: int, *args: str, yaml: str | None = None, said: str = "") -> Case:
    return Case(tuple(args), code, yaml, said)


# Files in the project for the cases to name (never inside results/).
FILES = {
    "good.yaml": "lr: 0.1\nmodel:\n  layers: [64, 64]\n",
    "anchor.yaml": "a: &a [*a]\n",
    "anchor_map.yaml": "a: &a {b: *a}\n",
    "deep.json": '{"a": ' + DEEP + "}",
    "deep.yaml": "a: " + "[" * 5_000 + "]" * 5_000 + "\n",
    "intkey.yaml": "names:\n  1: one\n",
    "nullkey.yaml": "~: one\n",
    "boolkey.yaml": "true: one\n",
    "list.yaml": "- 1\n- 2\n",
    "scalar.json": "5",
    "malformed.yaml": "a: [1\n",
    "malformed.json": '{"a": }',
    "tabs.yaml": "a:\n\t- 1\n",
    "binary.yaml": "a: !!binary aGVsbG8=\n",
    "set.yaml": "a: !!set {x, y}\n",
    "date.yaml": "a: !!timestamp 2024-01-01\n",
    "python_tag.yaml": "a: !!python/object:os.system [ls]\n",
    "latin1.yaml": b"a: caf\xe9\n",
    "text.txt": "lr: 0.1\n",
    "trials_bad.yaml": "- lr: 1\n- 5\n",
    "trials_map.yaml": "lr: 1\n",
    "trials_empty.yaml": "[]\n",
}


def _make_files(root: Path) -> None:
    for name, content in FILES.items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    (root / "folder.yaml").mkdir()
    (root / "train.py").write_text("print('hello')\n")


CASES: list[Case] = [
    # ---- the command line itself
    c(2, "frob", said="No such command 'frob'; see `xpm --help`"),
    c(2, "--frob"),
    c(2, "-x"),
    c(2, "ls", "--frob"),
    c(2, "ls", "-Z"),
    c(2, "show", "a/1", "extra"),
    # ---- run
    c(2, "run", "-x", said="No such option '-x'; see `xpm run --help`"),
    c(2, "run", "--seed", "abc", said="is not a valid integer; see"),
    c(2, "run", "--seed", "1.5"),
    c(2, "run", "--seed", ""),
    c(2, "run", "--seed"),
    c(2, "run", said="no command to run"),
    c(2, "run", "--", "", said="the command is empty"),
    c(2, "run", "-n"),
    c(1, "run", "-n", "", "--", "true", said="run name `` is not valid"),
    c(1, "run", "-n", ".hidden", "--", "true"),
    c(1, "run", "-n", "a/b", "--", "true"),
    c(1, "run", "-n", "..", "--", "true"),
    c(1, "run", "-n", "a b", "--", "true"),
    c(1, "run", "-n", "a\nb", "--", "true", said="a\\nb"),
    c(1, "run", "-n", "a\n", "--", "true"),
    c(1, "run", "-n", "ü", "--", "true"),
    c(1, "run", "-n", "x" * 300, "--", "true"),
    c(1, "run", "-c", "missing.yaml", "--", "true", said="does not exist"),
    c(1, "run", "-c", "folder.yaml", "--", "true", said="is a folder"),
    c(1, "run", "-c", "anchor.yaml", "--", "true", said="nested more than 100 levels"),
    c(1, "run", "-c", "anchor_map.yaml", "--", "true", said="nested more than 100 levels"),
    c(1, "run", "-c", "deep.json", "--", "true", said="nested too deeply"),
    c(1, "run", "-c", "deep.yaml", "--", "true"),
    c(1, "run", "-c", "intkey.yaml", "--", "true", said="key 1 under `names`"),
    c(1, "run", "-c", "nullkey.yaml", "--", "true", said="key null"),
    c(1, "run", "-c", "boolkey.yaml", "--", "true", said="key True"),
    c(1, "run", "-c", "list.yaml", "--", "true", said="not a mapping"),
    c(1, "run", "-c", "scalar.json", "--", "true", said="not a mapping"),
    c(1, "run", "-c", "malformed.yaml", "--", "true", said="malformed YAML"),
    c(1, "run", "-c", "malformed.json", "--", "true", said="malformed JSON"),
    c(1, "run", "-c", "tabs.yaml", "--", "true", said="malformed YAML"),
    c(1, "run", "-c", "binary.yaml", "--", "true", said="bytes value"),
    c(1, "run", "-c", "set.yaml", "--", "true"),
    c(1, "run", "-c", "date.yaml", "--", "true"),
    c(1, "run", "-c", "python_tag.yaml", "--", "true", said="malformed YAML"),
    c(1, "run", "-c", "latin1.yaml", "--", "true", said="cannot be read"),
    c(1, "run", "-c", "text.txt", "--", "true", said="not YAML, JSON or Python"),
    c(1, "run", "-c", "missing.py", "--", "true"),
    c(1, "run", "-c", "", "--", "true"),
    c(2, "run", "-s", "novalue", "--", "true", said="is not KEY=VALUE"),
    c(2, "run", "-s", "=1", "--", "true"),
    c(2, "run", "-s", "a..b=1", "--", "true", said="empty part"),
    c(2, "run", "-s", "a[x]=1", "--", "true", said="malformed index"),
    c(2, "run", "-s", "[0]=1", "--", "true"),
    c(2, "run", "-s", "a=[1", "--", "true", said="not a YAML value"),
    c(2, "run", "-s", "a={b: 1", "--", "true"),
    c(1, "run", "-s", "a=" + "[" * 5000 + "]" * 5000, "--", "true"),
    c(2, "run", "-c", "good.yaml", "-s", "lr.x=1", "--", "true", said="indexes into"),
    c(2, "run", "-c", "good.yaml", "-s", "model.layers[5]=1", "--", "true",
      said="out of range"),
    c(1, "run", "-s", "a=!!binary aGVsbG8=", "--", "true"),
    c(1, "run", "-s", "a={1: x}", "--", "true", said="key 1"),
    c(1, "run", "-s", "a=&x [*x]", "--", "true"),
    c(1, "run", "--", "{checkpoint}", said="only known when resuming"),
    c(1, "run", "--require-clean", "--", "true", said="not in a git repository"),
    c(2, "run", "--detach"),
    # ---- resume
    c(1, "resume", "zzz", said="no run named `zzz`"),
    c(1, "resume", "a/1", said="use --force"),
    c(1, "resume", "a/99"),
    c(1, "resume", "a/-9"),
    c(1, "resume", ""),
    c(2, "resume", "a/1", "--frob"),
    c(2, "resume", "a/1", "a/2"),
    # ---- ls
    c(2, "ls", "--since", "abc", said="is not an age"),
    c(2, "ls", "--since", "5y"),
    c(2, "ls", "--since", "-1d"),
    c(2, "ls", "--since", "1e5d"),
    c(2, "ls", "--since", "99999999999w", said="more than 100 years"),
    c(2, "ls", "--since", "9" * 400 + "s"),
    c(2, "ls", "--since", ""),
    c(2, "ls", "--status", "bogus", said="is not a status"),
    c(2, "ls", "--status", ""),
    c(2, "ls", "--status", ","),
    c(2, "ls", "-w", ""),
    c(2, "ls", "-w", "x"),
    c(2, "ls", "-w", "config.lr<"),
    c(2, "ls", "-w", "<1"),
    c(2, "ls", "-w", "bogus=1"),
    c(2, "ls", "-w", "metrics.=1"),
    c(2, "ls", "-w", "config.=1"),
    c(2, "ls", "-w", "config.a[x]=1"),
    c(2, "ls", "-w", "started>yesterday"),
    c(2, "ls", "-w", "duration<abc"),
    c(2, "ls", "-w", "config.lr~["),
    c(2, "ls", "--sort", "", said="unknown field"),
    c(2, "ls", "--sort", "bogus"),
    c(2, "ls", "--sort", "config."),
    c(2, "ls", "--sort", "metrics."),
    c(2, "ls", "--limit", "0"),
    c(2, "ls", "--limit", "-1"),
    c(2, "ls", "--limit", "x"),
    c(2, "ls", "--columns", ""),
    c(2, "ls", "--columns", "bogus"),
    c(2, "ls", "--json", "--csv"),
    c(1, "ls", "zzz@1"),
    # ---- show
    c(2, "show"),
    c(1, "show", "zzz", said="no run named `zzz`"),
    c(1, "show", "a/99", said="does not exist"),
    c(1, "show", "a/-9", said="has only"),
    c(1, "show", "a/0"),
    c(1, "show", ""),
    c(1, "show", "/nonexistent/run"),
    c(1, "show", "good.yaml"),
    c(1, "show", "folder.yaml"),
    c(1, "show", "a/1/../../../.."),
    c(1, "show", "a\nb"),
    c(2, "show", "a/1", "--frob"),
    # ---- log
    c(2, "log"),
    c(1, "log", "zzz"),
    c(1, "log", "a/99"),
    c(2, "log", "a/1", "-n", "-1"),
    c(2, "log", "a/1", "-n", "x"),
    c(2, "log", "a/1", "-f", "-f", "-x"),
    # ---- diff
    c(2, "diff", said="needs two runs"),
    c(2, "diff", "a/1"),
    c(1, "diff", "a/1", "zzz"),
    c(1, "diff", "a/1", "a/99"),
    c(2, "diff", "a/1", "a/2", "--only", "bogus"),
    c(2, "diff", "a/1", "a/2", "--only", ""),
    c(2, "diff", "a/1", "a/2", "--tolerance", "-1"),
    c(2, "diff", "a/1", "a/2", "--tolerance", "x"),
    c(2, "diff", "a/1", "a/2", "--tolerance", "nan"),
    c(1, "diff", "a/1", "zzz@1"),
    # ---- clean
    c(2, "clean", "--status", "bogus"),
    c(2, "clean", "--status", "corrupt"),
    c(2, "clean", "--keep-last", "-1"),
    c(2, "clean", "--keep-last", "x"),
    c(2, "clean", "--older-than", "x"),
    c(2, "clean", "--older-than", "99999999999w"),
    c(2, "clean", "--older-than", ""),
    c(2, "clean", "--keep", "2"),
    c(2, "clean", "--checkpoints", "--keep", "-1"),
    c(2, "clean", "--checkpoints", "--keep-best", ""),
    c(2, "clean", "--checkpoints", "--keep-best", "loss:up"),
    c(2, "clean", "--checkpoints", "--keep-every", "0"),
    c(2, "clean", "--checkpoints", "--keep-every", "-3"),
    c(2, "clean", "--checkpoints", "--purge"),
    c(1, "clean", "--empty-trash", "a/1", said="not a run in the trash"),
    c(1, "clean", "zzz"),
    c(1, "clean", "a/99"),
    c(1, "clean", "zzz@1"),
    # ---- restore
    c(1, "restore", "zzz"),
    c(1, "restore", "a/1"),
    c(1, "restore", ""),
    # ---- init
    c(2, "init", "--template", "jax", said="'default', 'torch'; see `xpm init --help`"),
    c(2, "init", "good.yaml"),
    c(2, "init", "--frob"),
    c(1, "init", "/proc/xpm-demo"),
    # ---- sweep
    c(2, "sweep", "--", "true"),
    c(2, "sweep", "-s", "lr=", "--", "true"),
    c(2, "sweep", "-s", "lr=range(0)", "--", "true"),
    c(2, "sweep", "-s", "lr=range(1,5,0)", "--", "true"),
    c(2, "sweep", "-s", "lr=range(a,b)", "--", "true"),
    c(2, "sweep", "-s", "lr=choice()", "--", "true"),
    c(2, "sweep", "-s", "lr=interval(1)", "--", "true"),
    c(2, "sweep", "-s", "lr=interval(2,1)", "--random", "3", "--", "true"),
    c(2, "sweep", "-s", "lr=log_interval(0,1)", "--random", "3", "--", "true"),
    c(2, "sweep", "-s", "lr=1,2", "--random", "0", "--", "true"),
    c(2, "sweep", "-s", "lr=1,2", "--random", "-1", "--", "true"),
    c(2, "sweep", "-s", "lr=1,2", "--random", "x", "--", "true"),
    c(2, "sweep", "-s", "lr=1,2", "-j", "0", "--", "true"),
    c(2, "sweep", "-s", "lr=1,2", "--sweep-seed", "x", "--", "true"),
    c(2, "sweep", "-s", "lr=1,2", "-s", "b=1,2,3", "--zip", "--", "true"),
    c(2, "sweep", "--trials", "missing.yaml", "--", "true"),
    c(2, "sweep", "--trials", "anchor.yaml", "--", "true"),
    c(2, "sweep", "--trials", "trials_bad.yaml", "--", "true"),
    c(2, "sweep", "--trials", "trials_map.yaml", "--", "true"),
    c(2, "sweep", "--trials", "trials_empty.yaml", "--", "true"),
    c(1, "sweep", "--resume", "zzz@1"),
    c(1, "sweep", "--resume", "bogus", said="is not a sweep"),
    c(2, "sweep", "-s", "lr=1,2", "--retry-failed", "--", "true"),
    c(1, "sweep", "-n", "a b", "-s", "lr=1,2", "--", "true"),
    c(1, "sweep", "-c", "anchor.yaml", "-s", "lr=1,2", "--", "true"),
    # ---- tag, note, wait
    c(2, "tag", "a/1", said="say what to change"),
    c(2, "tag", "+x", said="name the runs"),
    c(2, "tag"),
    c(2, "tag", "a/1", "+"),
    c(2, "tag", "a/1", "-"),
    c(2, "tag", "a/1", "+x", "-x", said="both added and removed"),
    c(2, "tag", "a/1", "+a,b"),
    c(2, "tag", "a/1", "+a\nb"),
    c(1, "tag", "zzz", "+x"),
    c(1, "tag", "a/1", "a/99", "+x"),
    c(1, "tag", "zzz@1", "+x"),
    c(2, "note"),
    c(2, "note", "a/1"),
    c(1, "note", "zzz", "hi"),
    c(2, "note", "a/1", "x", "y"),
    c(2, "wait"),
    c(1, "wait", "zzz"),
    c(1, "wait", "a/99"),
    c(1, "wait", "a/1", "zzz"),
    c(1, "wait", "zzz@1"),
    c(2, "wait", "a/1", "--frob"),
    # ---- xpm.yaml, key by key
    *[c(1, "ls", yaml=text, said="xpm.yaml") for text in [
        "results_dir: ''\n", "results_dir: []\n", "results_dir: {a: 1}\n",
        "results_dir: true\n", "name: []\n", "name: ''\n", "command: []\n",
        "command: 5\n", "command: \"python 'unterminated\"\n", "command: [[1]]\n",
        "configs: 5\n", "configs: [1]\n", "checkpoints: /abs/*.pt\n",
        "checkpoints: ../x/*.pt\n", "checkpoints: 'a**/b'\n", "checkpoints: [5]\n",
        "git: 5\n", "git: {require_clean: 1}\n", "git: {other: true}\n",
        "grace_period: .nan\n", "grace_period: .inf\n", "grace_period: -1\n",
        "grace_period: 0\n", "grace_period: '5'\n", "grace_period: true\n",
        "grace_period: 1e9\n", "grace_period: []\n", "heartbeat_interval: .nan\n",
        "heartbeat_interval: .inf\n", "heartbeat_interval: -.inf\n",
        "heartbeat_interval: -5\n", "heartbeat_interval: 0\n",
        "heartbeat_interval: 'often'\n", "heartbeat_interval: 1e300\n",
        "env: 5\n", "env: [1]\n", "slurm: 5\n", "slurm: [1]\n", "unknown_key: 1\n",
        "1: x\n", "- results_dir\n", "just text\n", "a: [1\n", "env: &a [*a]\n",
        "results_dir: !!binary aGVsbG8=\n", "git: &g {require_clean: *g}\n",
    ]],
    c(1, "run", "--", "true", yaml="name: 'a/b'\n", said="run name `a/b` is not valid"),
    c(1, "run", yaml="results_dir: results\ncommand: ''\n"),
    c(1, "run", yaml="results_dir: results\nconfigs: [missing.yaml]\ncommand: [true]\n"),
    c(1, "run", yaml="results_dir: results\nconfigs: [anchor.yaml]\ncommand: [true]\n"),
]

IDS = [" ".join(case.args)[:60] + (f" [{case.yaml.strip()[:30]}]" if case.yaml else "")
       for case in CASES]


def checksum(root: Path) -> str:
    """Every path under root with its type, mode and content."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(folder, name)
            st = path.lstat()
            digest.update(f"{path.relative_to(root)}\0{st.st_mode}\0".encode())
            if path.is_file() and not path.is_symlink():
                digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with runs of every status and the files the cases name."""
    root = tmp_path_factory.mktemp("bench") / "proj"
    root.mkdir()
    (root / "xpm.yaml").write_text("results_dir: results\n")
    _make_files(root)
    write_run(root, "a", config={"lr": 0.1}, metrics=[{"step": 1, "loss": 0.5}],
              output=b"hello\n")
    write_run(root, "a", status="failed", config={"lr": 0.2})
    write_run(root, "b", status="interrupted", tags=("x",))
    for lock in ("a/1", "a/2", "b/1"):  # as every run has
        (root / "results" / lock / ".lock").write_text("")
    return root


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 150, len(CASES)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input(bench: Path, case: Case) -> None:
    project_file = bench / "xpm.yaml"
    if case.yaml is not None:
        project_file.write_text(case.yaml)
    before = checksum(bench / "results")
    try:
        result = run_xpm(*case.args, cwd=bench, timeout=60)
        after = checksum(bench / "results")
    finally:
        project_file.write_text("results_dir: results\n")
    assert result.code == case.code, result
    assert result.out == "", result
    assert result.err.count("\n") == 1 and result.err.startswith("xpm: error: "), result
    assert "Traceback" not in result.err, result
    assert case.said in result.err, result
    assert after == before, "the results tree changed"
