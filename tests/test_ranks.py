"""Which rank a process is, from the variables torchrun and srun set."""

from __future__ import annotations

import pytest

from xpm.ranks import SINGLE, Rank, of_process

BATCH_SHELL = {"SLURM_JOB_ID": "7", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
               "SLURM_NTASKS": "2"}  # what sbatch's shell sees: no job step


@pytest.mark.parametrize("env, rank", [
    ({}, SINGLE),
    ({"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2"}, Rank(1, 1, 2)),
    ({"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8"}, Rank(5, 1, 8)),
    (BATCH_SHELL, SINGLE),  # the batch shell is not a task of a step
    ({**BATCH_SHELL, "SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_LOCALID": "1",
      "SLURM_STEP_NUM_TASKS": "2"}, Rank(1, 1, 2)),
    ({**BATCH_SHELL, "SLURM_STEP_ID": "0", "SLURM_PROCID": "3", "SLURM_LOCALID": "1",
      "SLURM_NTASKS": "4"}, Rank(3, 1, 4)),
    # torchrun started by srun, one per node: torchrun's global rank wins
    ({**BATCH_SHELL, "SLURM_STEP_ID": "0", "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2",
      "RANK": "6", "LOCAL_RANK": "2", "WORLD_SIZE": "8"}, Rank(6, 2, 8)),
    ({"RANK": "2", "WORLD_SIZE": "2"}, SINGLE),  # nonsense: one process
    ({"RANK": "x", "WORLD_SIZE": "2"}, SINGLE),
    ({"RANK": "0", "WORLD_SIZE": "1"}, SINGLE),
])
def test_rank_from_the_launchers_variables(env: dict[str, str], rank: Rank) -> None:
    assert of_process(env) == rank
    assert rank.is_main == (rank.rank == 0)
