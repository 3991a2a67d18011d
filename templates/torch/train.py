"""Train a small MLP on two spirals with PyTorch. Start it with `xpm run`.

It reads its frozen config from the run, logs loss and accuracy to metrics.jsonl, saves
a checkpoint (model, optimizer, random state) every `train.checkpoint_every` steps, and
when resumed continues from the checkpoint xpm hands over.

Started by torchrun (`xpm run -- torchrun --nproc-per-node 2 train.py`) it trains with
DistributedDataParallel (gloo on CPUs, nccl on GPUs): every rank draws the same batch and
trains on its own slice of it, so N ranks train as one process would; rank 0 logs and
saves. Started otherwise it is one process.

Ctrl-C (SIGINT), SIGTERM and SIGUSR2 (Slurm's warning before the time limit, which xpm
passes on) make it save a checkpoint after the current step and exit: `xpm resume`, or
the requeued Slurm job, loses no step. The ranks agree on the step to stop at.
"""

import math
import os
import signal
import sys
import time

import torch
import torch.distributed as dist
from torch import nn

import xpm

STOP = []  # the signal that asked the run to stop, once one came


def ask_to_stop(signum, frame):
    STOP.append(signum)


def spirals(samples, noise, generator):
    n = samples // 2
    t = torch.rand(n, generator=generator) * 3 * math.pi
    arm = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / (3 * math.pi)
    x = torch.cat([arm, -arm]) + noise * 0.1 * torch.randn(2 * n, 2, generator=generator)
    y = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    return x, y


def build(hidden):
    layers, width = [], 2
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, 2))
    return nn.Sequential(*layers)


def join(run):
    """Join the process group when torchrun started this process; returns the device."""
    if "WORLD_SIZE" not in os.environ:
        return torch.device("cpu")
    if torch.cuda.is_available():
        torch.cuda.set_device(run.local_rank)
        dist.init_process_group("nccl")
        return torch.device("cuda", run.local_rank)
    dist.init_process_group("gloo")
    return torch.device("cpu")


def stopping(device):
    """Whether to stop after this step: a signal came to any rank."""
    if not dist.is_initialized():
        return bool(STOP)
    flag = torch.tensor([1.0 if STOP else 0.0], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag.item() > 0


def main():
    run = xpm.current_run()
    if run is None:
        sys.exit("start me with `xpm run` (see README.md)")
    cfg = run.config
    device = join(run)
    xpm.seed_everything(run.seed)
    x, y = spirals(cfg.data.samples, cfg.data.noise, torch.Generator().manual_seed(run.seed))
    x, y = x.to(device), y.to(device)

    model = build(cfg.model.hidden).to(device)
    net = nn.parallel.DistributedDataParallel(model) if dist.is_initialized() else model
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.model.lr)
    generator = torch.Generator().manual_seed(run.seed + 1)  # the same batches on every rank
    start = 0
    if run.checkpoint is not None:
        state = torch.load(run.checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"].cpu())
        start = state["step"]
        if run.is_main:
            print(f"resuming from {run.checkpoint.name} (step {start})")

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
        signal.signal(signum, ask_to_stop)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(start + 1, cfg.train.steps + 1):
        rows = torch.randint(len(x), (cfg.model.batch_size,), generator=generator)
        mine = rows[run.rank::run.world_size].to(device)  # this rank's slice of the batch
        loss = loss_fn(net(x[mine]), y[mine])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        stop = stopping(device)

        if step % cfg.train.log_every == 0 and run.is_main:
            with torch.no_grad():
                logits = model(x)
                accuracy = (logits.argmax(1) == y).float().mean()
                full_loss = loss_fn(logits, y)
            run.log(step=step, loss=full_loss, accuracy=accuracy)
            print(f"step {step:5d}  loss {full_loss.item():.4f}  accuracy {accuracy.item():.3f}")
        if (step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps or stop) \
                and run.is_main:
            with run.saving(step, ".pt") as path:
                torch.save({"step": step, "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "generator": generator.get_state()}, path)
        if stop:
            name = signal.Signals(STOP[0]).name if STOP else "a signal to another rank"
            if run.is_main:
                print(f"{name}: checkpoint saved at step {step}; `xpm resume` continues "
                      "from it")
            if dist.is_initialized():
                dist.barrier()  # no rank leaves before rank 0 has saved
                dist.destroy_process_group()
            sys.exit(128 + STOP[0] if STOP else 1)
        time.sleep(cfg.train.step_delay)

    if dist.is_initialized():
        dist.destroy_process_group()
    if run.is_main:
        print("done")


if __name__ == "__main__":
    main()
