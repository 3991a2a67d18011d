"""Every example in README.md and docs/ is run, as written, against real projects.

Each fenced block of those pages is one test, chosen by what the block is:
- a synopsis (`xpm CMD [...]`): every option it names is in `xpm CMD --help`, and every
  option of `--help` is in the page's synopsis;
- commands (`xpm ...` lines, a bash block): run by bash, `set -e`, in a fresh project;
- a transcript (`$ xpm ...` then output): the command runs, and the first line of its
  output is the page's (numbers aside); JSON output has the page's fields;
- YAML (an xpm.yaml) is loaded as xpm loads it; JSON is parsed and has the fields the
  real file has; Python runs (fragments with the imports and objects they assume);
- a picture of a folder: every file a real run or sweep makes is named in it.
A block no rule recognises fails `test_every_block_is_checked`, so a new example cannot
slip by untested.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import run_in_pty, wait_for
from xpm.launch.slurm import parse_options
from xpm.project import parse_settings

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository: README.md, docs/slurm.md
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def read_blocks() -> list[Block]:
    found = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        start, lang, body = 0, "", []
        inside = False
        for number, line in enumerate(lines, 1):
            if line.startswith("```"):
                if inside:
                    found.append(Block(str(page.relative_to(ROOT)), start, lang,
                                       "\n".join(body) + "\n"))
                else:
                    start, lang, body = number, line[3:].strip(), []
                inside = not inside
            elif inside:
                body.append(line)
    return found


BLOCKS = read_blocks()

# Blocks that show an idea rather than something to type or a file xpm writes; each
# says why it cannot be run, and what checks the behaviour it pictures.
PICTURES = {
    "attempt 1:": "a diagram of superseded steps; tests/test_metrics.py checks the rule",
    "before                                                 after":
        "benchmarks/ls_bench.py's output before and after, run by hand",
    "startup  (load average": "benchmarks/run_bench.py's output, run by hand",
    "overhead (load average": "benchmarks/run_bench.py's output (its overhead part), by hand",
}
# Blocks run by a test elsewhere, which reads them from the page.
ELSEWHERE = {
    "# train.py — run it with": "tests/test_api.py::test_the_api_page_training_loop_runs",
    "import os\n\nimport torch\nimport torch.distributed": (
        "tests/test_distributed.py::test_the_distributed_page_script_runs_as_one_process"),
    "python3 -m pip install -e '.[test]'": ".ci/run (it is the README's test command)",
    "pip install 'xpm-runs[plot]'": ".ci/run installs the plot extra the same way",
    "xpm run --slurm --slurm-opt ntasks=4": (  # the suite's cluster has one node, no GPU
        "tests/slurm/test_tasks.py::test_two_tasks_are_requeued_together_and_both_resume"),
}
# Blocks whose lines are separate examples (not steps in order): each line runs in a
# fresh copy of the project.
ALTERNATIVES = {"xpm clean                              # failed, lost"}
# Fragments of Python and what they assume is already there, run before them.
PRELUDES = {
    'run = xpm.load_run("results/linear/3")': "import json\nimport xpm\n",
    'run = xpm.load_run("results/mnist/3")\nmodel = run.load("configs/model.py", exact':
        "import torch\nimport xpm\n",
    "import xpm\n\nrun = xpm.load_run": "import torch\ninput_shape = 4\n",
    "import pandas as pd": "",
    "import xpm\n\nrun = xpm.current_run()": "",
    "import os, signal, sys, torch": "",
}


def kind(block: Block) -> str:
    text = block.text
    if any(text.startswith(key) for key in PICTURES):
        return "picture"
    if any(text.startswith(key) for key in ELSEWHERE):
        return "elsewhere"
    if block.lang == "yaml":
        return "yaml"
    if block.lang == "json":
        return "json"
    if block.lang == "python":
        return "python"
    if block.lang in ("zsh", "fish"):
        return "completion"
    if text.startswith("$ "):
        return "transcript"
    if text.startswith("results/"):
        return "folder"
    if text.startswith("xpm: warning:"):
        return "warning"
    firsts = [line for line in block.lines if line and not line.startswith(" ")]
    if firsts and all(line.startswith("xpm ") for line in firsts) and "[" in text \
            and not block.lang:
        return "synopsis"
    if block.lang in ("", "bash"):
        return "commands"
    return "unknown"


def of_kind(name: str) -> list[Block]:
    return [block for block in BLOCKS if kind(block) == name]


def ids(blocks: list[Block]) -> list[str]:
    return [str(block) for block in blocks]


def test_every_block_is_checked() -> None:
    assert len(BLOCKS) > 40
    unknown = [str(block) for block in BLOCKS if kind(block) == "unknown"]
    assert not unknown, f"no test runs these examples: {unknown}"
    for where in ELSEWHERE.values():
        if where.startswith("tests/"):
            path, name = where.split("::")
            assert f"def {name}(" in (ROOT / path).read_text(), where
    used = {key for key in [*PICTURES, *ELSEWHERE, *PRELUDES, *ALTERNATIVES]
            if any(block.text.startswith(key) for block in BLOCKS)}
    assert used == {*PICTURES, *ELSEWHERE, *PRELUDES, *ALTERNATIVES}, "a key matches no block"


# ------------------------------------------------------------------------- projects

TOY = '''\
"""A stand-in for a training script: logs loss and acc, saves a checkpoint every 10
steps, resumes from the one it is handed, and diverges (fails) when lr >= 0.5. In a Slurm
job it takes a minute, as training does, so that there is something left to cancel."""
import os
import sys
import time

import xpm

run = xpm.current_run()
cfg = run.config
steps = cfg["steps"] if "steps" in cfg else 30
lr = cfg.model.lr if "model" in cfg and isinstance(cfg["model"], dict) else 0.01
start = int(run.checkpoint.read_text()) if run.checkpoint is not None else 0
if "SLURM_JOB_ID" in os.environ:
    time.sleep(60)
for step in range(start + 1, steps + 1):
    run.log(step=step, loss=1 / (step * lr * 100 + 1), acc=1 - 1 / (step + 1))
    if step % 10 == 0:
        with run.saving(step, ".pt") as path:
            path.write_text(str(step))
    if lr >= 0.5 and step == steps // 2:
        sys.exit(f"diverged at step {step}")
print("done")
'''


def xpm_env(home: Path, bin_dir: Path) -> dict[str, str]:
    """The environment a user's shell has: `xpm` and `python` on PATH (tiny wrappers of
    this interpreter, so that the code under test is what runs)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, line in (("xpm", '-m xpm "$@"'), ("python", '"$@"'), ("python3", '"$@"')):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" {line}\n')
        script.chmod(0o755)
    env = dict(os.environ)
    home.mkdir(parents=True, exist_ok=True)
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n"
                                     "[user]\n\tname = Ada\n\temail = ada@example.com\n")
    env.update(HOME=str(home), GIT_CONFIG_GLOBAL=str(home / ".gitconfig"),
               GIT_CONFIG_NOSYSTEM="1", NO_COLOR="1", COLUMNS="100")
    for key in [key for key in env if key.startswith("XPM_")]:
        del env[key]
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), env.get("PYTHONPATH", "")] if p)
    return env


def sh(script: str, cwd: Path, env: dict[str, str], timeout: float = 240,
       ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def must(script: str, cwd: Path, env: dict[str, str]) -> str:
    proc = sh("set -euo pipefail\n" + script, cwd, env)
    assert proc.returncode == 0, f"{script}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two projects made once and copied for each block: `linear` (what `xpm init`
    makes, with linear/1..3) and `mnist` (the toy script above, with the runs the pages
    talk about: mnist/1..6, mnist/3 failed, mnist/5 and mnist/6 alike)."""
    base = tmp_path_factory.mktemp("docs")
    env = xpm_env(base / "home", base / "bin")
    linear = base / "linear"
    must(f"xpm init --git {linear} >/dev/null", base, env)
    model = linear / "configs" / "model.yaml"
    model.write_text(model.read_text().replace("step_delay: 0.01", "step_delay: 0.002"))
    must("git commit -qam 'faster steps' && for lr in 0.05 0.02 0.01; do "
         "xpm run -s model.lr=$lr -s train.steps=100; done", linear, env)

    mnist = base / "mnist"
    must(f"xpm init --git {mnist} >/dev/null", base, env)
    (mnist / "train.py").write_text(TOY)
    (mnist / "xpm.yaml").write_text("results_dir: results\ncommand: python3 train.py\n"
                                    "configs: [configs/data.yaml, configs/model.yaml]\n")
    (mnist / "prep.py").write_text("print('prepared')\n")
    (mnist / "trials.yaml").write_text("- {lr: 0.1, layers: [64]}\n- {lr: 0.01}\n")
    (mnist / "configs" / "model.yaml").write_text("model: {lr: 0.01}\n")
    (mnist / "configs" / "data.yaml").write_text("steps: 30\n")
    must("git add -A && git commit -qm toy", mnist, env)
    runs = ["-s model.lr=0.003 -t baseline", "-s model.lr=0.01 -t sweep",
            "-s model.lr=0.5 -t sweep", "-s model.lr=0.0003 --seed 1",
            "-s model.lr=0.001 --seed 1", "-s model.lr=0.001 --seed 1"]
    for options in runs:
        sh(f"xpm run -n mnist {options} -- python train.py", mnist, env)
    must("xpm sweep -n lr -s model.lr=0.01,0.02 -- python train.py", mnist, env)  # lr@1
    return {"linear": linear, "mnist": mnist, "home": base / "home", "bin": base / "bin"}


@dataclass
class Place:
    root: Path
    env: dict[str, str]


def place(made: dict[str, Path], tmp_path: Path, which: str | None) -> Place:
    """A fresh copy of a made project (or an empty folder), and the shell's environment."""
    home = tmp_path / "home"
    env = xpm_env(home, tmp_path / "bin")
    if which is None:
        root = tmp_path / "work"
        root.mkdir()
    else:
        root = tmp_path / which
        shutil.copytree(made[which], root, symlinks=True)
    return Place(root, env)


def project_for(block: Block) -> str | None:
    if block.page == "README.md":
        return None
    return "linear" if "linear" in block.text else "mnist"


def settle(where: Place) -> None:
    """Wait until no run of the project is running (a --detach'ed sweep), so that the
    folder can go."""
    if not (where.root / "results").is_dir():
        return

    def quiet() -> bool:
        out = sh("xpm ls -a --json", where.root, where.env).stdout or "[]"
        return not any(row["status"] in ("running", "queued", "starting")
                       for row in json.loads(out))
    wait_for(quiet, timeout=120)


# ------------------------------------------------------------------------- synopses

def options_of(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", text))  # not -TAG: a value


def help_options(command: str) -> list[set[str]]:
    """The options of `xpm CMD --help`, each as its set of spellings (`-a`, `--all`)."""
    out = subprocess.run([sys.executable, "-m", "xpm", command, "--help"], capture_output=True,
                         text=True, env={**os.environ, "COLUMNS": "200"}, check=True).stdout
    found = []
    for line in out.splitlines():
        match = re.match(r"\s+(-[^ ].*?)(\s{2,}|$)", line)
        if match:
            spellings = options_of(match.group(1)) - {"-h", "--help"}
            if spellings:
                found.append(spellings)
    return found


def synopses() -> dict[str, str]:
    """Each command's synopsis lines, from every page (a command has one)."""
    found: dict[str, str] = {}
    for block in of_kind("synopsis"):
        command = None
        for line in block.lines:
            if line.startswith("xpm "):
                command = line.split()[1]
                found[command] = found.get(command, "") + line.split("#")[0] + "\n"
            elif command:
                found[command] += line + "\n"
    return found


@pytest.mark.parametrize("command", sorted(synopses()))
def test_a_synopsis_names_exactly_the_commands_options(command: str) -> None:
    documented = options_of(synopses()[command])
    real = help_options(command)
    unknown = documented - set().union(*real)
    assert not unknown, f"the docs name options `xpm {command}` lacks: {unknown}"
    missing = [sorted(spellings) for spellings in real if not spellings & documented]
    assert not missing, f"the docs' synopsis of `xpm {command}` misses {missing}"


def test_every_command_has_a_synopsis() -> None:
    out = subprocess.run([sys.executable, "-m", "xpm", "--help"], capture_output=True,
                         text=True, check=True).stdout
    commands = out[out.index("Commands:"):].splitlines()[1:]
    names = {line.split()[0] for line in commands if line.startswith("  ")}
    assert names and names - set(synopses()) == set()


# ------------------------------------------------------------------------- commands

def runnable(block: Block) -> str:
    """The block as a bash script; the README's install line without the install (the
    package under test is already importable)."""
    return block.text.replace("python3 -m pip install . && ", "")


@pytest.mark.parametrize("block", of_kind("commands"), ids=ids(of_kind("commands")))
def test_commands_run(block: Block, made: dict[str, Path], tmp_path: Path) -> None:
    if "--slurm" in block.text and shutil.which("sbatch") is None and not os.environ.get("CI"):
        pytest.skip("no Slurm here (tests/slurm/start.sh starts the suite's cluster)")
    where = place(made, tmp_path, project_for(block))
    script = runnable(block)
    if block.text.startswith(tuple(ALTERNATIVES)):
        lines = [line for line in script.splitlines() if line.strip()]
        script = "".join(f"(cp -a . ../again && cd ../again\n{line}\n) && rm -rf ../again\n"
                         for line in lines)
    ctrl_c = [line for line in script.splitlines() if "press Ctrl-C" in line]
    try:
        if ctrl_c:
            before, line, after = script.partition(ctrl_c[0] + "\n")
            must(before, where.root, where.env)
            interrupt(line, where)
            script = "cd " + str(next(where.root.rglob("xpm.yaml")).parent) + "\n" + after
        if re.search(r"^xpm clean(?!.*(-y|--dry-run))", script, re.M):
            in_terminal(script, where.root, where.env)  # it asks before moving runs
        else:
            must(script, where.root, where.env)
    finally:
        settle(where)


def in_terminal(script: str, cwd: Path, env: dict[str, str]) -> None:
    """Run the script in a terminal of its own, answering `y` to each question."""
    code, out = run_in_pty(["bash", "-c", "set -e\n" + script], cwd=cwd, env=env, answer=b"y\n")
    assert code == 0, out.decode(errors="replace")
    assert b"[y/N]" in out, "the example never asked"


def interrupt(line: str, where: Place) -> None:
    """Run the line as a user would and press Ctrl-C once its first checkpoint is saved."""
    project = next(where.root.rglob("xpm.yaml")).parent
    before = set(project.glob("results/*/*/"))
    proc = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=project, env=where.env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        def started() -> bool:
            return any(any(run.glob("checkpoints/*"))
                       for run in set(project.glob("results/*/*/")) - before)
        wait_for(started, timeout=60)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out


@pytest.mark.parametrize("block", of_kind("completion"), ids=ids(of_kind("completion")))
def test_completion_scripts_are_printed(block: Block, made: dict[str, Path],
                                        tmp_path: Path) -> None:
    where = place(made, tmp_path, None)
    variable = re.search(r"_XPM_COMPLETE=(\w+)", block.text)
    assert variable is not None
    out = must(f"_XPM_COMPLETE={variable.group(1)} xpm", where.root, where.env)
    assert "xpm" in out and len(out.splitlines()) > 5


# ------------------------------------------------------------------------- transcripts

def masked(line: str) -> list[str]:
    return re.sub(r"\d+(\.\d+)?", "N", line).split()


@pytest.mark.parametrize("block", of_kind("transcript"), ids=ids(of_kind("transcript")))
def test_transcripts_match(block: Block, made: dict[str, Path], tmp_path: Path) -> None:
    where = place(made, tmp_path, project_for(block))
    command, *shown = block.lines
    proc = sh(command[2:], where.root, where.env)  # no pipefail: `| head` stops xpm early
    assert proc.returncode == 0 and "error" not in proc.stderr, proc
    out = proc.stdout
    first = out.splitlines()[0] if out.strip() else ""
    assert masked(first) == masked(shown[0]), out
    if shown[0] == "[":
        documented = json.loads("\n".join(shown))[0]
        real = json.loads(out)[0]
        assert sorted(real) == sorted(documented), set(real) ^ set(documented)
        assert sorted(real["git"]) == sorted(documented["git"])


# ------------------------------------------------------------------------- files

@pytest.mark.parametrize("block", of_kind("yaml"), ids=ids(of_kind("yaml")))
def test_yaml_is_a_valid_xpm_yaml(block: Block) -> None:
    settings = parse_settings(yaml.safe_load(block.text), Path("xpm.yaml"))
    assert settings.results_dir == "results"
    slurm = parse_options(settings.slurm)
    assert slurm.time is not None


def test_the_manifest_example_has_the_real_fields(made: dict[str, Path],
                                                  tmp_path: Path) -> None:
    [block] = [b for b in of_kind("json") if '"trials"' in b.text]
    documented = json.loads(block.text)
    where = place(made, tmp_path, "mnist")
    must("xpm sweep -s lr=0.1,0.01 -s layers=[64,64],[128] -- python train.py >/dev/null",
         where.root, where.env)
    [manifest] = (where.root / "results" / "train" / ".sweeps").glob("*.json")
    real = json.loads(manifest.read_text())
    assert sorted(real) == sorted(documented)
    assert sorted(real["trials"][0]) == sorted(documented["trials"][0])
    assert real["trials"][0]["assignments"] == documented["trials"][0]["assignments"]


def test_the_metrics_line_examples_have_the_real_fields(made: dict[str, Path],
                                                       tmp_path: Path) -> None:
    documented = [json.loads(b.text) for b in of_kind("json") if b.page == "docs/metrics.md"]
    where = place(made, tmp_path, "mnist")
    (where.root / "log.py").write_text(
        "import xpm\nrun = xpm.current_run()\n"
        "run.log(step=100, loss=0.3)\nrun.log(step=100, grad_norm=0.8, all_ranks=True)\n")
    must("xpm run -n one -- python log.py && "
         "RANK=1 LOCAL_RANK=1 WORLD_SIZE=2 xpm run -n other -- python log.py",
         where.root, where.env)
    lines = [json.loads(line) for name in ("one", "other") for line in
             (where.root / "results" / name / "1" / "metrics.jsonl").read_text().splitlines()]
    real = {tuple(line) for line in lines}
    assert documented and all(tuple(line) in real for line in documented), real


def test_every_json_block_is_checked() -> None:
    pages = [block.page for block in of_kind("json")]
    assert sorted(pages) == ["docs/metrics.md", "docs/metrics.md", "docs/sweeps.md"]


@pytest.mark.parametrize("block", of_kind("folder"), ids=ids(of_kind("folder")))
def test_a_folder_picture_names_every_file_xpm_makes(block: Block, made: dict[str, Path],
                                                     tmp_path: Path) -> None:
    where = place(made, tmp_path, "mnist")
    named = set(re.findall(r"[\w.-]+(?:/[\w.-]+)*/?", block.text))
    names = {part.rstrip("/") for entry in named for part in entry.split("/")}
    if ".sweeps" in block.text:
        must("xpm sweep -s lr=0.1,0.01 --detach -- python train.py",
             where.root, where.env)
        settle(where)
        made_here = [p.name for p in (where.root / "results" / "train" / ".sweeps").iterdir()]
        made_here = [re.sub(r"^\d+", "K", name) for name in made_here]
    else:
        (where.root / "dirty.txt").write_text("x\n")
        (where.root / "train.py").write_text(TOY + "# changed\n")
        must("xpm run -n big --capture-untracked -s steps=15 -- python train.py", where.root,
             where.env)
        made_here = [p.name for p in (where.root / "results" / "big" / "1").iterdir()]
    if block.page == "README.md":  # the README shows the files a user looks at
        made_here = [name for name in made_here if not name.startswith(".")
                     and name != "untracked.tar.gz"]
    missing = set(made_here) - names
    assert not missing, f"{block} does not name {missing}"


def test_the_skipped_line_warning_is_real(made: dict[str, Path], tmp_path: Path) -> None:
    [block] = of_kind("warning")
    where = place(made, tmp_path, "mnist")
    metrics = where.root / "results" / "mnist" / "3" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines = (lines * 600)[:600]
    lines[522] = "not json"
    metrics.write_text("\n".join(lines) + "\n")
    proc = sh("xpm show mnist/3", where.root, where.env)
    assert proc.returncode == 0, proc
    assert block.text.strip() in proc.stderr.splitlines(), proc.stderr


# ------------------------------------------------------------------------- python

@pytest.mark.parametrize("block", of_kind("python"), ids=ids(of_kind("python")))
def test_python_runs(block: Block, made: dict[str, Path], tmp_path: Path) -> None:
    prelude = next((value for key, value in PRELUDES.items() if block.text.startswith(key)),
                   None)
    assert prelude is not None, f"{block}: say in PRELUDES what this fragment assumes"
    needs = {"torch": "torch", "pandas": "pandas"}
    for word, module in needs.items():
        if re.search(rf"\b{word}\b", block.text):
            pytest.importorskip(module)
    where = place(made, tmp_path, project_for(block))
    if "torch" in block.text and "mnist/3" in block.text:
        make_torch_run(where)
    if "xpm.current_run()" in block.text:
        script = where.root / "snippet.py"
        script.write_text(python_of(block, prelude))
        must("xpm run -n snippet -- python snippet.py", where.root, where.env)
        return
    (where.root / "snippet.py").write_text(python_of(block, prelude))
    must("python snippet.py", where.root, where.env)


def python_of(block: Block, prelude: str) -> str:
    text = block.text
    if "save(model, path)" in text:  # the README's sketch: its save is the user's own
        prelude += "def save(model, path):\n    path.write_text(str(model))\nmodel = 1\n"
    if "train_one_step(model)" in text:  # docs/slurm.md: the user's model and step
        prelude += textwrap.dedent("""\
            import torch as _t
            model, steps = _t.nn.Linear(2, 1), 3
            def train_one_step(model):
                pass
            """)
    return prelude + text


def make_torch_run(where: Place) -> None:
    """mnist/3 as the loading examples expect: a Python config with a `load` building a
    torch model, and a checkpoint of step 20,000 saved with torch."""
    model_py = where.root / "configs" / "model.py"
    model_py.write_text(textwrap.dedent("""\
        import torch

        def load(config, input_shape=4):
            return torch.nn.Linear(input_shape, 1)
        """))
    (where.root / "torch_train.py").write_text(textwrap.dedent("""\
        import torch
        import xpm

        run = xpm.current_run()
        model = torch.nn.Linear(4, 1)
        with run.saving(20_000, ".pt") as path:
            torch.save({"model": model.state_dict()}, path)
        """))
    must("git add -A && git commit -qm torch && rm -rf results/mnist && "
         "xpm run -n mnist -- python -c pass && xpm run -n mnist -- python -c pass && "
         "xpm run -n mnist -c configs/model.py -- python torch_train.py", where.root, where.env)

