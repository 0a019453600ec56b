#!/bin/sh
# bench/jobs: jobs through the whole path (client -> supervisor -> worker ->
# back), beside Node.js cluster exchanging the same messages by
# process.send, in the same run.
#  1. peak echo throughput (closed loop, 256 in flight), corral vs Node
#  2. latency p50/p99 at half of corral's peak rate, both
#  3. chaos: CHAOS_SECONDS (default 60) at half peak, a worker SIGKILLed 5
#     times a second, on echo and on sleepy: lost, duplicates, errors, p99
#  4. fib(27) jobs, 1 worker vs 2 (one pool thread each)
# Usage: sh bench/jobs.sh   (CORRAL_BUILDDIR, NODE, CORRAL_BENCH_DIR)
set -u
B=${CORRAL_BUILDDIR:-.}
BENCH=${CORRAL_BENCH_DIR:-bench}
NODE=${NODE:-node}
SECS=${JOBS_SECONDS:-5}
CHAOS=${CHAOS_SECONDS:-60}
W=$(nproc)
T=$(mktemp -d /tmp/corral-jobs-XXXXXX)
SUP=
trap 'kill -9 $SUP 2>/dev/null; rm -rf "$T"' EXIT

start() { # plugin, extra args...
	p=$1; shift
	rm -rf "$T/run"
	"$B/corral" --rundir "$T/run" "$@" "$B/examples/$p.so" 2>"$T/corral.log" &
	SUP=$!
	i=0
	until [ -S "$T/run/jobs" ] && "$B/corralctl" --rundir "$T/run" status --json 2>/dev/null |
		grep -q '"state":"running"'; do
		i=$((i + 1)); [ $i -gt 500 ] && { cat "$T/corral.log"; exit 1; }; sleep 0.01
	done
	sleep 0.3
}
stop() { kill -TERM $SUP; wait $SUP 2>/dev/null; SUP=; }
load() { "$B/corral-load" --rundir "$T/run" --json "$@"; }
num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
lat() { sed -n 's/.*"latency_us":{"p50":\([0-9.]*\),[^}]*"p99":\([0-9.]*\)[,}].*/\1 \2/p'; }

echo "jobs: echo through the whole path, $W workers, payload 64 B"
start echo -w "$W"
C=$(load --rate max --concurrency 256 --duration "${SECS}s")
CT=$(echo "$C" | num throughput)
HALF=$(awk -v t="$CT" 'BEGIN { printf "%d", t / 2 }')
CL=$(load --rate "$HALF" --duration "${SECS}s" | lat)
stop
if command -v "$NODE" >/dev/null 2>&1; then
	N=$(WORKERS=$W SECONDS=$SECS CONCURRENCY=256 "$NODE" "$BENCH/node/jobs-echo.js")
	NT=$(echo "$N" | num throughput)
	NL=$(WORKERS=$W SECONDS=$SECS RATE=$HALF "$NODE" "$BENCH/node/jobs-echo.js" | lat)
else
	NT=0 NL="0 0"
fi
printf '1. peak throughput      corral %10.0f jobs/s   node %10.0f msgs/s   ratio %.2fx (goal >= 1)\n' \
	"$CT" "$NT" "$(awk -v a="$CT" -v b="$NT" 'BEGIN { print b ? a / b : 0 }')"
printf '2. latency at %d/s      corral p50 %6.0f us p99 %6.0f us   node p50 %6.0f us p99 %6.0f us (goal: p50 <= 2 nng round trips, ~266 us)\n' \
	"$HALF" $CL $NL

for p in echo sleepy; do
	extra=; [ $p = sleepy ] && extra="--set delay=5"
	# Chaos tests jobs, not the crash-loop limit: let every kill restart.
	start $p -w "$W" --max-restarts 1000 --restart-window 1s $extra
	R=$(load --rate "$HALF" --duration "${CHAOS}s" --chaos-kill 5 --chaos-signal KILL)
	stop
	printf '3. chaos %-6s %ds at %d/s, 5 SIGKILL/s: sent %s ok %s lost %s duplicates %s restarts %s, p99 %s us\n' \
		$p "$CHAOS" "$HALF" "$(echo "$R" | num sent)" "$(echo "$R" | num ok)" \
		"$(echo "$R" | num lost)" "$(echo "$R" | num duplicates)" \
		"$(echo "$R" | num restarts)" "$(echo "$R" | lat | cut -d' ' -f2)"
done

echo 27 > "$T/fib27"
F1=0
for w in 1 2; do
	start fib -w $w --threads 1 --set rate=0
	F=$(load --rate max --concurrency 64 --duration "${SECS}s" --payload-file "$T/fib27" | num throughput)
	stop
	[ $w = 1 ] && F1=$F
	printf '4. fib(27) jobs, %d worker(s): %8.1f jobs/s (x%.2f; goal >= 1.9 with 2)\n' \
		$w "$F" "$(awk -v a="$F" -v b="$F1" 'BEGIN { print b ? a / b : 0 }')"
done
