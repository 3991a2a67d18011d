"""Fit y = w·x + b with minibatch SGD, in pure Python. Start it with `xpm run`.

It reads its frozen config from the run, logs the loss to metrics.jsonl, saves a
checkpoint every `train.checkpoint_every` steps, and when resumed continues from the
checkpoint xpm hands over, so that an interrupted and resumed run ends with exactly
the model an uninterrupted run would have.

Ctrl-C (SIGINT), SIGTERM and SIGUSR2 (Slurm's warning before the time limit, which xpm
passes on) make it save a checkpoint after the current step and exit: `xpm resume`, or
the requeued Slurm job, loses no step.
"""

import json
import random
import signal
import sys
import time

import xpm

STOP = []  # the signal that asked the run to stop, once one came


def ask_to_stop(signum, frame):
    STOP.append(signum)


def make_data(cfg, seed):
    rng = random.Random(seed)
    true_w = [rng.uniform(-1, 1) for _ in range(cfg.features)]
    xs, ys = [], []
    for _ in range(cfg.samples):
        x = [rng.gauss(0, 1) for _ in range(cfg.features)]
        xs.append(x)
        ys.append(sum(w * v for w, v in zip(true_w, x)) + 0.5 + rng.gauss(0, cfg.noise))
    return xs, ys


def mse(weights, bias, xs, ys, rows):
    return sum((sum(w * v for w, v in zip(weights, xs[i])) + bias - ys[i]) ** 2
               for i in rows) / len(rows)


def main():
    run = xpm.current_run()
    if run is None:
        sys.exit("start me with `xpm run` (see README.md)")
    cfg = run.config
    xs, ys = make_data(cfg.data, run.seed)

    state = {"step": 0, "weights": [0.0] * cfg.data.features, "bias": 0.0,
             "rng": random.Random(run.seed + 1).getstate()}
    if run.checkpoint is not None:
        state = json.loads(run.checkpoint.read_text())
        print(f"resuming from {run.checkpoint.name} (step {state['step']})")
    rng = random.Random()
    version, internal, gauss = state["rng"]
    rng.setstate((version, tuple(internal), gauss))
    weights, bias = state["weights"], state["bias"]
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
        signal.signal(signum, ask_to_stop)

    for step in range(state["step"] + 1, cfg.train.steps + 1):
        rows = [rng.randrange(len(xs)) for _ in range(cfg.model.batch_size)]
        grad_w = [0.0] * len(weights)
        grad_b = 0.0
        for i in rows:
            err = sum(w * v for w, v in zip(weights, xs[i])) + bias - ys[i]
            for j, v in enumerate(xs[i]):
                grad_w[j] += 2 * err * v / len(rows)
            grad_b += 2 * err / len(rows)
        weights = [w - cfg.model.lr * g for w, g in zip(weights, grad_w)]
        bias -= cfg.model.lr * grad_b

        if step % cfg.train.log_every == 0:
            loss = mse(weights, bias, xs, ys, range(len(xs)))
            run.log(step=step, loss=loss)
            print(f"step {step:5d}  loss {loss:.5f}")
        if step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps or STOP:
            with run.saving(step, ".json") as path:
                path.write_text(json.dumps({"step": step, "weights": weights, "bias": bias,
                                            "rng": rng.getstate()}))
        if STOP:
            name = signal.Signals(STOP[0]).name
            print(f"{name}: checkpoint saved at step {step}; `xpm resume` continues from it")
            sys.exit(128 + STOP[0])
        time.sleep(cfg.train.step_delay)

    print(f"done: loss {mse(weights, bias, xs, ys, range(len(xs))):.5f}")


if __name__ == "__main__":
    main()
