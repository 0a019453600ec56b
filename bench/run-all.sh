#!/bin/sh
# Runs every benchmark once; `make bench` calls it.  Each prints its figures
# and ratios against Node.js cluster from the same run.
set -e
BENCH=${1:-bench}
B=${CORRAL_BUILDDIR:-.}
export CORRAL_BENCH_DIR="$BENCH" CORRAL_BUILDDIR="$B"
"$B/bench/restart" "${RESTART_KILLS:-200}"
echo
sh "$BENCH/footprint.sh"
echo
sh "$BENCH/idle.sh"
echo
"$B/bench/shutdown" "${SHUTDOWN_RUNS:-10}"
echo
"$B/bench/pool" ${POOL_THREADS:-1 2 4}
echo
sh "$BENCH/jobs.sh"
echo
sh "$BENCH/queue.sh"
echo
bash "$BENCH/reload-jobs.sh"
echo
bash "$BENCH/health.sh"
