"""Train a small MLP on two spirals with PyTorch. Start it with `xpm run`.

It reads its frozen config from the run, logs loss and accuracy to metrics.jsonl, saves
a checkpoint (model, optimizer, random state) every `train.checkpoint_every` steps, and
when resumed continues from the checkpoint xpm hands over.
"""

import math
import sys
import time

import torch
from torch import nn

import xpm


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


def main():
    run = xpm.current_run()
    if run is None:
        sys.exit("start me with `xpm run` (see README.md)")
    cfg = run.config
    xpm.seed_everything(run.seed)
    x, y = spirals(cfg.data.samples, cfg.data.noise, torch.Generator().manual_seed(run.seed))

    model = build(cfg.model.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.model.lr)
    generator = torch.Generator().manual_seed(run.seed + 1)
    start = 0
    if run.checkpoint is not None:
        state = torch.load(run.checkpoint, weights_only=True)  # a plain state dict
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start = state["step"]
        print(f"resuming from {run.checkpoint.name} (step {start})")

    loss_fn = nn.CrossEntropyLoss()
    for step in range(start + 1, cfg.train.steps + 1):
        rows = torch.randint(len(x), (cfg.model.batch_size,), generator=generator)
        loss = loss_fn(model(x[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        if step % cfg.train.log_every == 0:
            with torch.no_grad():
                logits = model(x)
                accuracy = (logits.argmax(1) == y).float().mean()
                full_loss = loss_fn(logits, y)
            run.log(step=step, loss=full_loss, accuracy=accuracy)
            print(f"step {step:5d}  loss {full_loss.item():.4f}  accuracy {accuracy.item():.3f}")
        if step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps:
            with run.saving(step, ".pt") as path:
                torch.save({"step": step, "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "generator": generator.get_state()}, path)
        time.sleep(cfg.train.step_delay)

    print("done")


if __name__ == "__main__":
    main()
