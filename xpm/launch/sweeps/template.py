"""What every trial of a sweep shares (project, name, command, config files, git state,
environment, tags), and making one trial's run folder from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...project import Project
from ...runs.lock import RunLock
from ...runs.record import ENVIRONMENT_FILE, RunRecord
from ...runs.sweeps import TrialEntry as Trial
from ...runs.tree import RunRef
from ..preparation import Plan, configure, create_run, merged_files, plan_run


@dataclass
class RunTemplate:
    plan: Plan  # name, command, config files and git state, checked once
    base_config: dict[str, Any]  # the config files merged, before any -s
    seed: int | None  # --seed, else each trial's config seed or a fresh one
    tags: tuple[str, ...]
    note: str | None
    _host: dict[str, Any] | None = field(default=None, repr=False)
    _host_file: Path | None = field(default=None, repr=False)  # a trial's environment.json
    _patch_file: Path | None = field(default=None, repr=False)  # a trial's git.patch

    @classmethod
    def build(cls, project: Project, command: tuple[str, ...], name: str | None,
              configs: tuple[str, ...], seed: int | None, require_clean: bool,
              tags: tuple[str, ...], note: str | None) -> RunTemplate:
        plan = plan_run(project, command, name, configs, (), seed, require_clean)
        return cls(plan, merged_files(plan.config_files), seed, tags, note)

    @property
    def name(self) -> str:
        return self.plan.name

    def options(self) -> dict[str, Any]:
        """The run options as the manifest keeps them (enough to rebuild the template)."""
        return {"configs": [str(p) for p in self.plan.config_files], "seed": self.seed,
                "tags": list(self.tags), "note": self.note}

    def trial_plan(self, trial: Trial, sweep: str | None = None) -> Plan:
        """The plan of one trial; UsageError when its assignments do not apply."""
        config, seed = configure(self.base_config, trial.assignments, self.seed)
        return self.plan._replace(config=config, seed=seed, sweep=sweep, trial=trial.index,
                                  assignments=trial.assignments)

    def check(self, trials: list[Trial]) -> None:
        """Every trial's assignments apply to the config (before anything is made)."""
        for trial in trials:
            self.trial_plan(trial)

    def make(self, trial: Trial, sweep: str, mark: bool = True
             ) -> tuple[RunRef, RunRecord, RunLock]:
        """The trial's run folder, `queued`, its lock held (the caller releases it);
        `mark`: see tree.allocate. The trials share one environment.json and one
        git.patch (hard links), as they share the git state captured once."""
        if self._host is None:
            from .. import environment

            self._host = environment.capture(self.plan.project.settings.env,
                                             self.plan.command, self.plan.project.root)
        made = create_run(self.trial_plan(trial, sweep), self.tags, self.note, self._host,
                          mark, self._host_file, patch_file=self._patch_file)
        if self._host_file is None:
            self._host_file = made[0].path / ENVIRONMENT_FILE
        if self._patch_file is None and made[1].git is not None and made[1].git.patch:
            self._patch_file = made[0].path / made[1].git.patch
        return made
