"""A test command for `xpm run`: records what it saw, then does what it is told.

    python child.py [ACTION ...]

It first writes {argv, env, cwd, pid, isatty} as JSON to $CHILD_REPORT (when set), then
runs each action in order:
    exit=N          exit with code N
    print=TEXT      print TEXT on stdout;  eprint=TEXT on stderr
    sleep=S         sleep S seconds
    wait=PATH       wait until PATH exists (two minutes at most)
    signal=NAME     kill itself with signal NAME
    trap=NAME:PATH  on signal NAME, write PATH and exit 0 (handlers set before anything else)
    ignore=NAME     ignore signal NAME
    burst=N:SEED    write N pseudo-random bytes to stdout (deterministic in SEED)
    touch=PATH      create PATH
    checkpoint=STEP save a checkpoint of STEP through the xpm API
"""

import json
import os
import random
import signal
import sys
import time


def trap(spec):
    name, path = spec.split(":", 1)

    def handler(signum, frame):
        with open(path, "w") as f:
            f.write(signal.Signals(signum).name)
        sys.exit(0)

    signal.signal(getattr(signal, name), handler)


def has_controlling_terminal():
    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
    except OSError:
        return False
    return True


def main():
    actions = sys.argv[1:]
    for action in actions:
        if action.startswith("trap="):
            trap(action[5:])
        elif action.startswith("ignore="):
            signal.signal(getattr(signal, action[7:]), signal.SIG_IGN)
    report = os.environ.get("CHILD_REPORT")
    if report:
        data = {"argv": sys.argv, "env": dict(os.environ), "cwd": os.getcwd(), "pid": os.getpid(),
                "isatty": os.isatty(1), "ctty": has_controlling_terminal()}
        tmp = report + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, report)
    for action in actions:
        key, _, value = action.partition("=")
        if key == "exit":
            sys.exit(int(value))
        elif key == "print":
            print(value, flush=True)
        elif key == "eprint":
            print(value, file=sys.stderr, flush=True)
        elif key == "sleep":
            time.sleep(float(value))
        elif key == "wait":  # at most two minutes: a failed test must not leave it behind
            deadline = time.monotonic() + 120
            while not os.path.exists(value):
                if time.monotonic() > deadline:
                    sys.exit("gave up waiting for " + value)
                time.sleep(0.01)
        elif key == "signal":
            os.kill(os.getpid(), getattr(signal, value))
            time.sleep(5)
        elif key == "burst":
            size, seed = (int(v) for v in value.split(":"))
            rng = random.Random(seed)
            out = sys.stdout.buffer
            left = size
            while left:
                n = min(left, 1 << 20)
                out.write(rng.randbytes(n))
                left -= n
            out.flush()
        elif key == "touch":
            open(value, "w").close()
        elif key == "checkpoint":
            import xpm

            run = xpm.current_run()
            with run.saving(int(value)) as path:
                path.write_text(value)


if __name__ == "__main__":
    main()
