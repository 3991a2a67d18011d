#!/bin/bash
# Stop the daemons tests/slurm/start.sh started, by the pids it recorded. Packages stay installed.
set -uo pipefail
STATE=${SLURM_CI_STATE:-/tmp/slurm-ci}

# Cancel all jobs first: slurmd does NOT kill running jobs when it exits (their slurmstepd
# processes would outlive it). Wait up to 15 s for them to go.
ids=$(squeue -h -o %i 2>/dev/null)
if [ -n "$ids" ]; then
    scancel $ids 2>/dev/null
    for _ in $(seq 150); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
fi

# stop <name>...: SIGTERM each recorded pid (if it is still that daemon), wait up to 10 s, SIGKILL
stop() {
    local d f pid pids=() alive=()
    for d in "$@"; do
        f="$STATE/pids/$d.pid"
        [ -s "$f" ] || continue
        pid=$(cat "$f"); rm -f "$f"
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$d"; then
            kill -TERM "$pid" && pids+=("$pid")
        fi
    done
    for _ in $(seq 100); do
        alive=()
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
        [ ${#alive[@]} -eq 0 ] && return 0
        sleep 0.1
    done
    for pid in "${alive[@]}"; do echo "pid $pid ignored SIGTERM; SIGKILL" >&2; kill -KILL "$pid"; done
}
stop slurmd slurmctld         # each takes ~1-2 s to exit; stop them together
stop slurmdbd                 # (only if accounting was started)
stop mariadbd munged
echo "slurm-ci stopped"
