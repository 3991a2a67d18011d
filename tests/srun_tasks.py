"""The tasks of a multi-task Slurm run for the tests (no torch): `srun` starts one per rank.

Each rank counts its own steps: its state is the sum of step * (rank + 1) over the steps it
trained, so resuming from anything but that rank's own file of one checkpoint gives a wrong
total. Every `checkpoint_every` steps each rank saves its own file of one sharded checkpoint
(`all_ranks=True`); rank 0 logs. On SIGUSR2 (the signal Slurm sends before the time limit:
to xpm, which forwards it to srun, which forwards it to every task) a rank saves its state
at the end of the step it is in, and exits 0. Config `train.KEY`: steps, checkpoint_every,
step_delay.
"""

import json
import signal
import sys
import time

import xpm

run = xpm.current_run()
if run is None:
    sys.exit("start me with xpm run")
cfg = run.config.train
state = {"step": 0, "total": 0}
if run.checkpoint is not None:
    state = json.loads(run.checkpoint.read_text())
    print(f"rank {run.rank} of {run.world_size} resumes from {run.checkpoint.name} "
          f"(step {state['step']})", flush=True)
else:
    print(f"rank {run.rank} of {run.world_size} starts", flush=True)


def save():
    with run.saving(state["step"], ".json", all_ranks=True) as path:
        path.write_text(json.dumps(state))


stop = []  # the signal that asked this rank to stop; acted on between steps
signal.signal(signal.SIGUSR2, lambda signum, frame: stop.append(signum))
while state["step"] < cfg.steps:
    step = state["step"] + 1
    state = {"step": step, "total": state["total"] + step * (run.rank + 1)}
    run.log(step=step, total=state["total"])
    if step % cfg.checkpoint_every == 0 or step == cfg.steps or stop:
        save()
    if stop:
        print(f"rank {run.rank} saved step {step} on {signal.Signals(stop[0]).name}",
              flush=True)
        sys.exit(0)
    time.sleep(cfg.step_delay)
print(f"rank {run.rank} done at step {state['step']} total {state['total']}", flush=True)
