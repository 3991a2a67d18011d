"""A scheduler's job for tests: take a prepared run through the life cycle with a
Scheduler whose signal is SIGUSR2 and whose requeue writes a marker file.

    python scheduled_job.py RUN_DIR MARKER MAX_REQUEUES
"""

import signal
import sys
from pathlib import Path

from xpm.errors import stop_on_termination
from xpm.launch import lifecycle


def main() -> int:
    run_dir, marker, max_requeues = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])

    def requeue() -> None:
        with open(marker, "a") as f:
            f.write("requeued\n")

    stop_on_termination()
    scheduler = lifecycle.Scheduler(signal.SIGUSR2, requeue, job_id="4242")
    return lifecycle.take_prepared(run_dir, purpose="test job", scheduler=scheduler,
                                   max_requeues=max_requeues)


if __name__ == "__main__":
    sys.exit(main())
