"""The Python API: the run a process was started in, and any run read back from disk."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from .config import load_file
from .errors import XpmError
from .ranks import SINGLE, Rank
from .ranks import of_process as _rank_of_process
from .runs import checkpoints as _checkpoints
from .runs import metrics as _metrics
from .runs.record import CHECKPOINTS_DIR, CONFIG_FILE, METRICS_FILE, RunRecord, read_record


class Config(dict[str, Any]):
    """A nested config with key and attribute access: `config.model.lr == config["model"]["lr"]`."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        super().__init__({k: _wrap(v) for k, v in (data or {}).items()})

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"config has no key `{key}`") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = _wrap(value)

    def to_dict(self) -> dict[str, Any]:
        return {k: _unwrap(v) for k, v in self.items()}


def _wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, Config):
        return Config(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def _scalar(value: Any) -> Any:
    """numpy/torch scalars and 0-d tensors → plain Python numbers for JSON."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, dict):
        return {k: _scalar(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scalar(v) for v in value]
    return float(value)


class Run:
    """A run folder. Its id is where it is (results/NAME/N, as `xpm ls` lists it; a folder
    not named by a number takes its run.json's), everything else (seed, config) comes from
    its run.json, and paths from where the folder is now, so a copied folder still works.

    In a distributed run (torchrun, srun) every process has its own Run, knowing its rank:
    only the main one (rank 0) logs and keeps checkpoints, unless told `all_ranks=True`."""

    def __init__(self, run_dir: Path, *, attempt: int | None = None, resumed: bool | None = None,
                 handed_checkpoint: str | None = None, rank: Rank = SINGLE) -> None:
        self.dir = Path(run_dir).resolve()
        self._meta = read_record(self.dir)
        self._attempt = attempt
        self._resumed = resumed
        self._handed = handed_checkpoint
        self._rank = rank
        self._config: Config | None = None
        self._metrics_file: IO[str] | None = None

    def __repr__(self) -> str:
        return f"<xpm.Run {self.id} at {self.dir}>"

    # ---------------------------------------------------------------- identity
    def _read(self) -> RunRecord:
        from .runs.lock import reconcile

        self._meta = reconcile(self.dir, read_record(self.dir))
        return self._meta

    @property
    def record(self) -> RunRecord:
        """The run record, read afresh, liveness applied (never `running` when nothing runs
        it)."""
        return self._read()

    @property
    def meta(self) -> dict[str, Any]:
        """run.json as a dict, read afresh, liveness applied."""
        return self._read().to_json()

    @property
    def id(self) -> str:
        """NAME/N by where the folder is (as `xpm ls` lists it); for a folder not named by a
        number (a copy at backup/best), its run.json's."""
        return f"{self.name}/{self.number}"

    @property
    def name(self) -> str:
        return self.dir.parent.name if self.dir.name.isdigit() else self._meta.name

    @property
    def number(self) -> int:
        return int(self.dir.name) if self.dir.name.isdigit() else self._meta.number

    @property
    def copy_of(self) -> str | None:
        """The id its run.json records, when the folder is a copy placed elsewhere."""
        from .runs.tree import copy_of

        return copy_of(self._meta, self.dir)

    @property
    def seed(self) -> int:
        return self._meta.seed

    @property
    def status(self) -> str:
        """The status with liveness applied: never `running` when nothing runs it."""
        return self._read().status

    @property
    def attempt(self) -> int:
        return self._attempt if self._attempt is not None else max(len(self._meta.attempts), 1)

    @property
    def resumed(self) -> bool:
        return self._resumed if self._resumed is not None else self.attempt > 1

    # ---------------------------------------------------------------- ranks
    @property
    def rank(self) -> int:
        """This process's rank among the run's processes (torchrun's RANK, srun's
        SLURM_PROCID); 0 in a run of one process."""
        return self._rank.rank

    @property
    def local_rank(self) -> int:
        """Its rank on this machine (LOCAL_RANK, SLURM_LOCALID): which GPU it takes."""
        return self._rank.local_rank

    @property
    def world_size(self) -> int:
        """How many processes the run has (WORLD_SIZE, the job step's tasks); 1 without a
        launcher."""
        return self._rank.world_size

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that logs and keeps checkpoints."""
        return self._rank.is_main

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = Config(load_file(self.dir / CONFIG_FILE) or {})
        return self._config

    # ---------------------------------------------------------------- checkpoints
    def _patterns(self) -> tuple[str, ...]:
        """The checkpoint patterns of the run's project when it is at hand, else those
        recorded in run.json (a folder copied elsewhere), else the defaults."""
        from .project import DEFAULT_CHECKPOINT_PATTERNS, find_root, load_project

        cwd = Path(self._meta.cwd) if self._meta.cwd else None
        if cwd is not None and find_root(cwd) == cwd:
            try:
                return load_project(cwd).settings.checkpoints
            except XpmError:
                pass
        return self._meta.checkpoint_patterns or DEFAULT_CHECKPOINT_PATTERNS

    def checkpoints(self) -> list[tuple[int | None, Path]]:
        """Finished checkpoints as (step, path), oldest first."""
        return [(c.step, c.path) for c in _checkpoints.find(self.dir, self._patterns())]

    @property
    def checkpoint(self) -> Path | None:
        """The checkpoint to continue from: the one xpm handed over, else the newest. Of a
        sharded checkpoint (saved with `all_ranks=True`), this rank's own file."""
        if self._handed:
            path: Path | None = Path(self._handed)
        else:
            found = _checkpoints.newest(self.dir, self._patterns())
            path = found.path if found else None
        if path is not None:
            path = _checkpoints.shard_of(path, self.rank, self.world_size) or path
        return path

    def checkpoint_path(self, step: int, suffix: str = ".ckpt") -> Path:
        """Where to save the checkpoint for `step`: checkpoints/step-<step><suffix>."""
        folder = self.dir / CHECKPOINTS_DIR
        folder.mkdir(exist_ok=True)
        return folder / f"step-{int(step):08d}{suffix}"

    @contextmanager
    def saving(self, step: int, suffix: str = ".ckpt", all_ranks: bool = False
               ) -> Iterator[Path]:
        """Yield a temporary path; on success it is renamed to checkpoint_path(step).

        A crash mid-save leaves only a `.tmp` entry, which is never taken for a checkpoint.
        On a rank other than 0 what is saved there is discarded, unless `all_ranks`: then
        every rank keeps its own file, `<stem>.rank-<R>-of-<N><suffix>`, and the set counts
        as one checkpoint of that step once every rank's file is there.
        """
        final = self.checkpoint_path(step, suffix)
        # hidden and marked .tmp (never taken for a checkpoint), yet ending in `suffix`, for
        # libraries that insist on their extension (numpy.save, Keras' .weights.h5)
        stem = final.name[: len(final.name) - len(suffix)]
        if all_ranks:
            stem = _checkpoints.shard_name(stem, "", self.rank, self.world_size)
            final = final.with_name(stem + suffix)
        keep = all_ranks or self.is_main
        # ranks on several machines may share the folder, and a pid: the rank tells them apart
        mark = "" if all_ranks or self.world_size == 1 else f".rank{self.rank}"
        tmp = final.with_name(f".{stem}{mark}.{os.getpid()}.tmp{suffix}")
        try:
            yield tmp
            if not keep:
                return
            if not tmp.exists():
                raise XpmError(f"nothing was saved to {tmp} inside run.saving({step})")
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            elif tmp.exists() or tmp.is_symlink():
                tmp.unlink()

    def checkpoint_at(self, step: int) -> Path | None:
        """The checkpoint of `step`, else the nearest one before it (a warning says so);
        None when there is none at or before it."""
        before = [c for c in _checkpoints.find(self.dir, self._patterns())
                  if c.step is not None and c.step <= step]
        if not before:
            return None
        chosen = before[-1]
        if chosen.step != step:
            from . import console

            console.warn(f"{self.id} has no checkpoint of step {step}; using the nearest "
                         f"before it, step {chosen.step} ({chosen.path.name})")
        return chosen.path

    # ---------------------------------------------------------------- loading
    def load(self, path: str | os.PathLike[str], *args: Any, exact: bool = False,
             **kwargs: Any) -> Any:
        """Call `load(config, *args, **kwargs)` of the run's own frozen copy of the Python
        config `path` (configs/ in the run folder), with the run's config: the model of an
        old run rebuilt without today's code.

        The modules that config imports from beside it are today's (from the folder the
        config came from, when it is still there); with `exact=True` they are the run's
        own: its recorded code (commit, git.patch, captured untracked files) is rebuilt
        once, read-only, in results/.cache/code/ of the project.
        """
        copy, source = self._frozen_copy(Path(path))
        beside = copy.parent
        if exact:
            beside = self._exact_folder(copy, source)
        elif source is not None and source.parent.is_dir():
            beside = source.parent
        return _call_load(copy, beside, (self.config, *args), kwargs)

    def _frozen_copy(self, given: Path) -> tuple[Path, Path | None]:
        """The run's copy of a config file named like `given`, and where it came from
        (absolute; None when unknown)."""
        record = self._meta
        copies = [self.dir / c for c in record.config_files]
        cwd = Path(record.cwd) if record.cwd else None
        sources = _config_sources(record, cwd)
        wanted = given if given.is_absolute() or cwd is None else cwd / given
        guess = wanted if wanted.is_file() else None
        for copy, source in zip(copies, sources, strict=True):
            if copy == self.dir / given:
                return copy, source or guess
            if source is not None and os.path.normpath(source) == os.path.normpath(wanted):
                return copy, source
        named = [i for i, c in enumerate(copies) if c.name == given.name]
        if len(named) == 1:
            return copies[named[0]], sources[named[0]] or guess
        known = ", ".join(record.config_files) or "none"
        raise XpmError(f"run {self.id} has no frozen copy of `{given}` (its configs: {known}); "
                       "name one of them, e.g. run.load(\"configs/model.py\")")

    def _exact_folder(self, copy: Path, source: Path | None) -> Path:
        """The folder of `source` in the run's recorded code, rebuilt in the cache."""
        from .project import load_project
        from .vcs import rebuild

        record = self._meta
        here = Path(record.cwd) if record.cwd and Path(record.cwd).is_dir() else Path.cwd()
        code = rebuild.locate(record, self.dir, here)
        tree = rebuild.materialise(code, load_project(here).results_dir)
        project = tree / code.project
        if source is None:
            return _same_file(copy, project) or project
        if not record.cwd:
            return project
        try:
            return project / source.parent.relative_to(record.cwd)
        except ValueError:
            raise XpmError(f"`{source}` is outside the project of {self.id}, so it is not "
                           "part of its recorded code; load it without exact=True") from None

    # ---------------------------------------------------------------- metrics
    def log(self, step: int | None = None, all_ranks: bool = False, **metrics: Any) -> None:
        """Append one line to metrics.jsonl: {"step": ..., "time": ..., "attempt": ...,
        **metrics}, standard JSON (nan, inf and -inf as null plus a `nonfinite` marker,
        read back as what they were).

        Only rank 0 writes, unless `all_ranks`: then every rank writes, with a `rank` field."""
        taken = sorted(set(metrics) & {_metrics.ATTEMPT, _metrics.NONFINITE})
        if taken:
            raise XpmError(f"run.log: `{taken[0]}` is a name xpm writes itself in "
                           f"{METRICS_FILE}; log that metric under another name")
        if not (all_ranks or self.is_main):
            return
        entry: dict[str, Any] = {}
        if step is not None:
            entry["step"] = int(step)
        entry["time"] = round(time.time(), 3)
        entry["attempt"] = self.attempt
        if all_ranks:
            entry["rank"] = self.rank
        entry.update({k: _scalar(v) for k, v in metrics.items()})
        if self._metrics_file is None:
            self._metrics_file = open(self.dir / METRICS_FILE, "a", encoding="utf-8")  # noqa: SIM115
        self._metrics_file.write(_metrics.encode(entry) + "\n")
        self._metrics_file.flush()

    def metrics(self, rank: int | None = 0) -> list[dict[str, Any]]:
        """The run's metrics, one dict per line of metrics.jsonl, in order: non-finite values
        read back as float nan/inf, the lines a resumed attempt superseded (those past the
        checkpoint it resumed from) left out, torn and malformed lines skipped.

        Lines logged with `all_ranks=True` carry their `rank`: the run's metrics are rank
        0's (and the lines without a rank); `rank=N` gives rank N's lines, `rank=None` all."""
        return _metrics.read(self.dir, read_record(self.dir).attempts, rank)

    def close(self) -> None:
        if self._metrics_file is not None:
            self._metrics_file.close()
            self._metrics_file = None


def _same_file(copy: Path, tree: Path) -> Path | None:
    """The folder in `tree` holding a file of the copy's name and content (where the copy
    came from, when the record does not say), nearest the top first."""
    content = copy.read_bytes()
    found = sorted(tree.rglob(copy.name), key=lambda p: (len(p.parts), str(p)))
    return next((p.parent for p in found if p.is_file() and p.read_bytes() == content), None)


def _config_sources(record: RunRecord, cwd: Path | None) -> list[Path | None]:
    """Where each frozen config came from, absolute, in the order of config_files (None
    where the record does not say)."""
    recorded = getattr(record, "config_sources", None) or ()
    out: list[Path | None] = []
    for index in range(len(record.config_files)):
        if index < len(recorded) and recorded[index]:
            source = Path(recorded[index])
            out.append(source if source.is_absolute() or cwd is None else cwd / source)
        else:
            out.append(None)
    return out


_current: Run | None = None


def current_run() -> Run | None:
    """The run this process was started in by `xpm run`/`xpm resume`, or None."""
    global _current
    run_dir = os.environ.get("XPM_RUN_DIR")
    if not run_dir:
        return None
    if _current is None or str(_current.dir) != str(Path(run_dir).resolve()):
        _current = Run(
            Path(run_dir),
            attempt=int(os.environ.get("XPM_ATTEMPT", "1")),
            resumed=os.environ.get("XPM_RESUME") == "1",
            handed_checkpoint=os.environ.get("XPM_CHECKPOINT") or None,
            rank=_rank_of_process(),
        )
    return _current


def load_run(run: str | os.PathLike[str]) -> Run:
    """A run by reference (`NAME/N`, `NAME`, `NAME/-1`) or by any run folder's path."""
    path = Path(run)
    if path.is_dir() and (path / "run.json").exists():
        return Run(path)
    from .project import load_project
    from .runs.tree import resolve

    return Run(resolve(load_project().results_dir, str(run)).path)


def load(path: str | os.PathLike[str], *args: Any, **kwargs: Any) -> Any:
    """A Python config file's `load(*args, **kwargs)` (forge convention: `load(config, ...)`),
    or a YAML/JSON file as a nested Config."""
    file = Path(path)
    if file.suffix == ".py":
        if not file.is_file():
            raise XpmError(f"config file `{file}` does not exist; check the path")
        return _call_load(file, file.resolve().parent, args, kwargs)
    if args or kwargs:
        raise XpmError(f"`{file}` is not a Python config file; it takes no arguments")
    return Config(load_file(file) or {})


def _call_load(file: Path, beside: Path, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> Any:
    """Import `file` and call its `load(*args, **kwargs)`; the modules it imports from
    beside it are looked up in `beside` and forgotten afterwards, so that loading two runs
    never hands one of them the other's helper modules."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"xpm_config_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise XpmError(f"cannot import `{file}`")
    module = importlib.util.module_from_spec(spec)
    folder = str(beside)
    local = {entry.stem if entry.suffix == ".py" else entry.name
             for entry in (beside.iterdir() if beside.is_dir() else ())
             if entry.suffix == ".py" or (entry / "__init__.py").is_file()}
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules)
              if name.partition(".")[0] in local}
    before = set(sys.modules)
    sys.path.insert(0, folder)  # it may import the modules beside it
    try:
        spec.loader.exec_module(module)
        function = getattr(module, "load", None)
        if not callable(function):
            raise XpmError(f"`{file}` has no `load(config, ...)` function; define one")
        return function(*args, **kwargs)
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
        for name in set(sys.modules) - before:
            if name.partition(".")[0] in local:
                del sys.modules[name]
        sys.modules.update(hidden)


def seed_everything(seed: int) -> int:
    """Seed random, and numpy and torch when they are installed; returns the seed."""
    import importlib.util
    import random

    random.seed(seed)
    if importlib.util.find_spec("numpy") is not None:
        import numpy  # type: ignore[import-not-found,unused-ignore]

        numpy.random.seed(seed % 2**32)
    if importlib.util.find_spec("torch") is not None:
        import torch  # type: ignore[import-not-found,unused-ignore]

        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    return seed
