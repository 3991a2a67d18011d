"""Which of a run's processes this one is: its rank, from the launcher's standard variables.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE in every worker. srun sets SLURM_PROCID,
SLURM_LOCALID and SLURM_STEP_NUM_TASKS in every task of a job step; the batch shell of a
job has SLURM_PROCID=0 and SLURM_NTASKS too, but no step, so Slurm's variables count only
where SLURM_STEP_ID says srun started this process. torchrun's win when both are set
(torchrun started by srun, one per node: RANK is the global rank, SLURM_PROCID the node's).
Anything else is one process: rank 0 of 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple


class Rank(NamedTuple):
    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Rank(0, 0, 1)


def _integer(env: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        try:
            return int(env[name])
        except (KeyError, ValueError):
            continue
    return None


def of_process(env: Mapping[str, str] | None = None) -> Rank:
    """This process's rank among the run's processes (os.environ unless `env` is given)."""
    env = os.environ if env is None else env
    rank = _integer(env, "RANK")
    world = _integer(env, "WORLD_SIZE")
    if rank is not None and world is not None:
        return _checked(rank, _integer(env, "LOCAL_RANK"), world)
    if "SLURM_STEP_ID" in env:
        rank = _integer(env, "SLURM_PROCID")
        world = _integer(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")
        if rank is not None and world is not None:
            return _checked(rank, _integer(env, "SLURM_LOCALID"), world)
    return SINGLE


def _checked(rank: int, local_rank: int | None, world: int) -> Rank:
    if world < 1 or not 0 <= rank < world:
        return SINGLE
    return Rank(rank, rank if local_rank is None or local_rank < 0 else local_rank, world)
