"""Fit y = w·x + b with minibatch SGD, in pure Python. Start it with `xpm run`.

It reads its frozen config from the run, logs the loss to metrics.jsonl, saves a
checkpoint every `train.checkpoint_every` steps, and when resumed continues from the
checkpoint xpm hands over, so that an interrupted and resumed run ends with exactly
the model an uninterrupted run would have.
"""

import json
import random
import sys
import time

import xpm


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
        if step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps:
            with run.saving(step, ".json") as path:
                path.write_text(json.dumps({"step": step, "weights": weights, "bias": bias,
                                            "rng": rng.getstate()}))
        time.sleep(cfg.train.step_delay)

    print(f"done: loss {mse(weights, bias, xs, ys, range(len(xs))):.5f}")


if __name__ == "__main__":
    main()
