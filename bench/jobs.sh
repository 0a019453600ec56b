#!/bin/sh
# bench/jobs: jobs through the whole path (client -> supervisor -> worker ->
# back), beside Node.js cluster exchanging the same messages by
# process.send, in the same run.
#  0. the yardstick: one nng REQ/REP round trip over ipc here (bench/nng-rtt),
#     requests 200 us apart, and 1 ms apart for the 1000/s row (a machine
#     idle longer between requests wakes more slowly)
#  1. peak echo throughput (ECHO_WORKERS workers, default one per CPU),
#     closed loop with 256 in flight: one job per
#     request, and 64 per request (corral-load --batch 64); Node pipelined
#  2. latency p50/p99, open loop, at half of corral's batched peak and at a
#     light 1000/s, corral (--batch 64: the jobs due together share a
#     request) and Node at the same rates
#  3. chaos: CHAOS_SECONDS (default 60) at half peak, a worker SIGKILLed 5
#     times a second, on echo and on sleepy: lost, duplicates, errors, p99
#  4. fib(FIB_N, default 30) jobs, 1 worker vs 2 (FIB_WORKERS; one pool
#     thread each), closed loop with batches of 16, FIB_ROUNDS times (1),
#     each round with the plain-thread ceiling
# Usage: sh bench/jobs.sh   (CORRAL_BUILDDIR, NODE, CORRAL_BENCH_DIR,
#        JOBS_SECONDS, CHAOS_SECONDS, FIB_N, FIB_WORKERS, FIB_ROUNDS, and
#        FIB_ONLY=1 to run section 4 alone)
set -u
B=${CORRAL_BUILDDIR:-.}
BENCH=${CORRAL_BENCH_DIR:-bench}
NODE=${NODE:-node}
SECS=${JOBS_SECONDS:-5}
CHAOS=${CHAOS_SECONDS:-60}
FIBN=${FIB_N:-30}
FIBW=${FIB_WORKERS:-1 2}
FIBR=${FIB_ROUNDS:-1}
W=${ECHO_WORKERS:-$(nproc)}
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
# Open loop: room for every job in flight, so that only corral sets the pace.
open_load() { load --concurrency 16384 "$@"; }
num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }
lat() { sed -n 's/.*"latency_us":{"p50":\([0-9.]*\),[^}]*"p99":\([0-9.]*\)[,}].*/\1 \2/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
node_echo() { # env assignments...
	if command -v "$NODE" >/dev/null 2>&1; then
		env WORKERS="$W" SECONDS="$SECS" "$@" "$NODE" "$BENCH/node/jobs-echo.js"
	else
		echo '{"throughput":0,"latency_us":{"p50":0,"p99":0}}'
	fi
}

if [ "${FIB_ONLY:-0}" != 1 ]; then
	RTT=$("$B/bench/nng-rtt" 3000 | sed -n 's/.*"p50":\([0-9.]*\).*/\1/p')
	RTT1K=$("$B/bench/nng-rtt" 1000 1000 | sed -n 's/.*"p50":\([0-9.]*\).*/\1/p')
	printf '0. nng REQ/REP round trip over ipc here: p50 %.0f us (2 round trips: %.0f us); 1 ms apart: %.0f us\n' \
		"$RTT" "$(awk -v r="$RTT" 'BEGIN { print 2 * r }')" "$RTT1K"

	echo "jobs: echo through the whole path, $W workers, payload 64 B"
	start echo -w "$W"
	C1=$(load --rate max --concurrency 256 --duration "${SECS}s" | num throughput)
	CT=$(load --rate max --concurrency 256 --batch 64 --duration "${SECS}s" | num throughput)
	HALF=$(awk -v t="$CT" 'BEGIN { printf "%d", t / 2 }')
	CL=$(open_load --rate "$HALF" --batch 64 --duration "${SECS}s" | lat)
	CLOW=$(open_load --rate 1000 --batch 64 --duration "${SECS}s" | lat)
	stop
	NT=$(node_echo CONCURRENCY=256 | num throughput)
	NL=$(node_echo RATE="$HALF" | lat)
	NLOW=$(node_echo RATE=1000 | lat)
	printf '1. peak throughput      corral %8.0f jobs/s one job per request, %8.0f jobs/s 64 per request   node %8.0f msgs/s   ratio %sx / %sx (goal >= 1)\n' \
		"$C1" "$CT" "$NT" "$(ratio "$C1" "$NT")" "$(ratio "$CT" "$NT")"
	set -- $CL; CP50=$1 CP99=$2
	set -- $NL; NP50=$1 NP99=$2
	printf '2. latency at %d/s  corral p50 %6.0f us (%s round trips) p99 %6.0f us   node p50 %8.0f us p99 %8.0f us (goal: p50 <= 2 round trips)\n' \
		"$HALF" "$CP50" "$(ratio "$CP50" "$RTT")" "$CP99" "$NP50" "$NP99"
	set -- $CLOW; CP50=$1 CP99=$2
	set -- $NLOW; NP50=$1 NP99=$2
	printf '   latency at 1000/s    corral p50 %6.0f us (%s round trips) p99 %6.0f us   node p50 %8.0f us p99 %8.0f us\n' \
		"$CP50" "$(ratio "$CP50" "$RTT1K")" "$CP99" "$NP50" "$NP99"

	for p in echo sleepy; do
		# Chaos tests jobs, not the crash-loop policy: let every kill restart
		# at once (no backoff: any uptime resets the delay).
		# Sleepy holds each job 5 ms: room for HALF/s of them in flight.
		extra=; [ $p = sleepy ] && extra="--set delay=5 --max-inflight 4096"
		start $p -w "$W" --max-restarts 1000 --restart-window 1s --min-uptime 1ms $extra
		R=$(open_load --rate "$HALF" --batch 64 --duration "${CHAOS}s" --chaos-kill 5 --chaos-signal KILL)
		stop
		F=$(echo "$R" | sed -n 's/.*"failed":{\([^}]*\)}.*/\1/p' | tr -d '"' | tr ',' '\n' |
			awk -F: '{ s += $2 } END { print s + 0 }')
		printf '3. chaos %-6s %ds at %d/s, 5 SIGKILL/s: sent %s ok %s errors %s lost %s duplicates %s restarts %s, p99 %s us\n' \
			$p "$CHAOS" "$HALF" "$(echo "$R" | num sent)" "$(echo "$R" | num ok)" "$F" \
			"$(echo "$R" | num lost)" "$(echo "$R" | num duplicates)" \
			"$(echo "$R" | num restarts)" "$(echo "$R" | lat | cut -d' ' -f2)"
	done
fi

echo "$FIBN" > "$T/fib"
for round in $(seq "$FIBR"); do
	# What the cores allow: fib in plain threads, nothing else running.
	CEIL=$("$B/bench/cpu-scale" "$FIBN" $FIBW | num scaling | tr '\n' ' ')
	echo "4. ceiling: fib($FIBN) in plain threads ($FIBW), scaling vs 1: $CEIL"
	F1=0
	for w in $FIBW; do
		start fib -w "$w" --threads 1 --set rate=0
		F=$(load --rate max --concurrency $((64 * w)) --batch 16 --duration "${SECS}s" \
			--payload-file "$T/fib" | num throughput)
		stop
		[ "$F1" = 0 ] && F1=$F
		printf '4. fib(%s) jobs, %2d worker(s): %8.1f jobs/s (x%s vs 1; goal >= 1.9 with 2)\n' \
			"$FIBN" "$w" "$F" "$(ratio "$F" "$F1")"
	done
done
