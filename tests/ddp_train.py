"""A tiny data-parallel training run for the tests: `xpm run -- torchrun ... ddp_train.py`.

Each rank draws its own batches (from a generator of its own, seeded by the run's seed and
its rank), DistributedDataParallel averages the gradients (gloo), and rank 0 logs. Config
(`-s train.KEY=VALUE`): steps, checkpoint_every, step_delay (seconds), sharded (every rank
saves its own file, with its generator, `all_ranks=True`; else rank 0 keeps the one file,
the other ranks' saves are discarded), crash_rank and crash_step (that rank exits 3 there).
Each rank writes its pid to `<run>/pids/rank-<R>` and prints a line per step; on SIGINT,
SIGTERM or SIGUSR2 it writes the signal's name to `<run>/signals/rank-<R>` and exits.
"""

import os
import signal
import sys
import time

import torch
import torch.distributed as dist
from torch import nn

import xpm

run = xpm.current_run()
if run is None:
    sys.exit("start me with xpm run")
cfg = run.config.train
distributed = "WORLD_SIZE" in os.environ
if distributed:
    dist.init_process_group("gloo")
    assert (run.rank, run.world_size) == (dist.get_rank(), dist.get_world_size())


def on_signal(signum, frame):
    folder = run.dir / "signals"
    folder.mkdir(exist_ok=True)
    (folder / f"rank-{run.rank}").write_text(signal.Signals(signum).name)
    os._exit(0)


for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
    signal.signal(signum, on_signal)
pids = run.dir / "pids"
pids.mkdir(exist_ok=True)
(pids / f"rank-{run.rank}").write_text(str(os.getpid()))
print(f"rank {run.rank} of {run.world_size} (local {run.local_rank}) in {run.id}", flush=True)

torch.manual_seed(run.seed)
model = nn.Linear(4, 1)
net = nn.parallel.DistributedDataParallel(model) if distributed else model
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
generator = torch.Generator().manual_seed(run.seed * 1000 + run.rank)
true_w = torch.tensor([[1.0, -2.0, 0.5, 3.0]])

start = 0
if run.checkpoint is not None:
    state = torch.load(run.checkpoint)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if cfg.sharded:
        generator.set_state(state["generator"])
    start = state["step"]
    print(f"rank {run.rank} resumes from {run.checkpoint.name} (step {start})", flush=True)

for step in range(start + 1, cfg.steps + 1):
    if not cfg.sharded:  # the generator's state is not saved: derive it from the step
        generator.manual_seed(run.seed * 1000 + run.rank * 100 + step)
    x = torch.randn(8, 4, generator=generator)
    loss = ((net(x) - x @ true_w.T) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if run.rank == cfg.crash_rank and step == cfg.crash_step:
        print(f"rank {run.rank} crashes at step {step}", flush=True)
        sys.exit(3)
    run.log(step=step, loss=loss)
    print(f"rank {run.rank} step {step} loss {loss.item():.4f}", flush=True)
    if step % cfg.checkpoint_every == 0:
        state = {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict()}
        if cfg.sharded:
            state["generator"] = generator.get_state()
        with run.saving(step, ".pt", all_ranks=cfg.sharded) as path:
            torch.save(state, path)
    time.sleep(cfg.step_delay)

if distributed:
    dist.destroy_process_group()
print(f"rank {run.rank} done", flush=True)
