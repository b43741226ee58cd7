#!/usr/bin/env bash
# Runs a command with the background training paused (SIGSTOP), so that a
# benchmark measures the machine and not the two sharing it; the training
# continues (SIGCONT) when the command ends, however it ends.
#   bench/quiet.sh bench/bench-element.sh 300 5
set -uo pipefail
pids=$(pgrep -f 'models/train/train\.py' || true)
[ -n "$pids" ] && kill -STOP $pids
trap '[ -n "$pids" ] && kill -CONT $pids 2>/dev/null' EXIT
"$@"
