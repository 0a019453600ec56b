#!/bin/sh
# bench/jobs: jobs through the whole path (client -> supervisor -> worker ->
# back), beside Node.js cluster exchanging the same messages by
# process.send, in the same run.  Sections 0-2 run JOBS_REPS rounds (3),
# corral and Node alternating, and print the median [range].
#  0. the yardstick: one nng REQ/REP round trip over ipc here (bench/nng-rtt),
#     requests 200 us apart, and 1 ms apart for the 1000/s row (a machine
#     idle longer between requests wakes more slowly); and the transport's
#     own rate for one job per request: a plain nng REQ client with 64
#     contexts against a bare nng REP echo with 64 contexts
#     (bench/nng-load), and the same client sending one CALL per request
#     to corral (goal: >= 0.9x bare)
#  1. peak echo throughput (ECHO_WORKERS workers, default one per CPU),
#     closed loop with 256 in flight: one job per request (the client
#     library coalesces what is pending at the same moment), and 64 per
#     request (corral-load --batch 64); Node pipelined.  The same with
#     4 KiB payloads, one job per request.
#  2. latency p50/p99, open loop, at half of corral's batched peak and at a
#     light 1000/s, corral (--batch 64: the jobs due together share a
#     request; and at 1000/s also one job per request) and Node at the same
#     rates and payload.  Neither side spins: corral-load sleeps until each
#     job is due, Node's pacer thread sleeps in Atomics.wait (at most every
#     100 us, as corral-load with --batch), both with a timer slack of 1 ns
#     (corral-load sets its own; Node runs under bench/slack); both count
#     latency from the due time.  Node's own pacing lateness is printed
#     beside it.
#  3. chaos: CHAOS_SECONDS (default 60) at half peak, a worker SIGKILLed 5
#     times a second, on echo and on sleepy: lost, duplicates, errors, p99
#  4. fib(FIB_N, default 30) jobs, 1 worker vs 2 (FIB_WORKERS; one pool
#     thread each), closed loop with batches of 16, FIB_ROUNDS times (1),
#     each round with the plain-thread ceiling
# Usage: sh bench/jobs.sh   (CORRAL_BUILDDIR, NODE, CORRAL_BENCH_DIR,
#        JOBS_SECONDS, JOBS_REPS, CHAOS_SECONDS, FIB_N, FIB_WORKERS,
#        FIB_ROUNDS, FIB_ONLY=1 to run section 4 alone, CHAOS_SECONDS=0
#        to skip section 3)
set -u
B=${CORRAL_BUILDDIR:-.}
BENCH=${CORRAL_BENCH_DIR:-bench}
NODE=${NODE:-node}
SECS=${JOBS_SECONDS:-5}
REPS=${JOBS_REPS:-3}
CHAOS=${CHAOS_SECONDS:-60}
FIBN=${FIB_N:-30}
FIBW=${FIB_WORKERS:-1 2}
FIBR=${FIB_ROUNDS:-1}
W=${ECHO_WORKERS:-$(nproc)}
T=$(mktemp -d /tmp/corral-jobs-XXXXXX)
SUP= BARE=
trap 'kill -9 $SUP $BARE 2>/dev/null; rm -rf "$T"' EXIT

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
num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | head -1; }
lat() { sed -n 's/.*"latency_us":{"p50":\([0-9.]*\),[^}]*"p99":\([0-9.]*\)[,}].*/\1 \2/p'; }
pacing() { sed -n 's/.*"pacing_us":{"p50":\([0-9.]*\),.*/\1/p'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
HAVE_NODE=0
command -v "$NODE" >/dev/null 2>&1 && HAVE_NODE=1
node_echo() { # env assignments...
	if [ $HAVE_NODE = 1 ]; then
		env WORKERS="$W" SECONDS="$SECS" "$@" "$B/bench/slack" "$NODE" \
			"$BENCH/node/jobs-echo.js"
	else
		echo '{"throughput":0,"latency_us":{"p50":0,"p99":0},"pacing_us":{"p50":0,"p99":0}}'
	fi
}
# Values of one figure, one per round, in $T/v.NAME: put NAME VALUE;
# med NAME prints "MEDIAN [LOW-HIGH]" (printf format $2, default %.0f).
put() { echo "$2" >>"$T/v.$1"; }
med() {
	sort -g "$T/v.$1" | awk -v f="${2:-%.0f}" '{ v[NR] = $1 } END {
		printf f " [" f "-" f "]", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
m() { sort -g "$T/v.$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

if [ "${FIB_ONLY:-0}" != 1 ]; then
	RTT=$("$B/bench/nng-rtt" 3000 | sed -n 's/.*"p50":\([0-9.]*\).*/\1/p')
	RTT1K=$("$B/bench/nng-rtt" 1000 1000 | sed -n 's/.*"p50":\([0-9.]*\).*/\1/p')
	printf '0. nng REQ/REP round trip over ipc here: p50 %.0f us (2 round trips: %.0f us); 1 ms apart: %.0f us\n' \
		"$RTT" "$(awk -v r="$RTT" 'BEGIN { print 2 * r }')" "$RTT1K"

	echo "jobs: echo through the whole path, $W workers, payload 64 B unless said, $REPS rounds: median [range]"
	HALF=
	for r in $(seq "$REPS"); do
		"$B/bench/nng-load" serve "ipc://$T/bare" 64 &
		BARE=$!
		i=0; until [ -S "$T/bare" ]; do i=$((i + 1)); [ $i -gt 500 ] && exit 1; sleep 0.01; done
		put nbare "$("$B/bench/nng-load" load "ipc://$T/bare" "$SECS" 64 64 | num throughput)"
		kill -TERM $BARE; wait $BARE 2>/dev/null; BARE=; rm -f "$T/bare"

		start echo -w "$W"
		put ncall "$("$B/bench/nng-load" load "ipc://$T/run/jobs" "$SECS" 64 64 call | num throughput)"
		put c1 "$(load --rate max --concurrency 256 --duration "${SECS}s" | num throughput)"
		put ct "$(load --rate max --concurrency 256 --batch 64 --duration "${SECS}s" | num throughput)"
		put c4k "$(load --rate max --concurrency 256 --payload 4096 --duration "${SECS}s" | num throughput)"
		[ -z "$HALF" ] && HALF=$(awk -v t="$(m ct)" 'BEGIN { printf "%d", t / 2 }')
		set -- $(open_load --rate "$HALF" --batch 64 --duration "${SECS}s" | lat)
		put clp50 "$1"; put clp99 "$2"
		set -- $(open_load --rate 1000 --batch 64 --duration "${SECS}s" | lat)
		put cwp50 "$1"; put cwp99 "$2"
		set -- $(open_load --rate 1000 --duration "${SECS}s" | lat)
		put c1p50 "$1"; put c1p99 "$2"
		stop

		put nt "$(node_echo CONCURRENCY=256 | num throughput)"
		put n4k "$(node_echo CONCURRENCY=256 PAYLOAD=4096 | num throughput)"
		R=$(node_echo RATE="$HALF")
		set -- $(echo "$R" | lat); put nlp50 "$1"; put nlp99 "$2"
		put nlpace "$(echo "$R" | pacing)"
		R=$(node_echo RATE=1000)
		set -- $(echo "$R" | lat); put nwp50 "$1"; put nwp99 "$2"
		put nwpace "$(echo "$R" | pacing)"
	done
	printf '0. one job per request, 64 contexts: plain nng REQ client -> corral %s jobs/s   bare nng REQ/REP %s round trips/s   ratio %sx (goal >= 0.9)\n' \
		"$(med ncall)" "$(med nbare)" "$(ratio "$(m ncall)" "$(m nbare)")"
	printf '1. peak throughput      corral %s jobs/s one job per request, %s jobs/s 64 per request   node %s msgs/s   ratio %sx / %sx (goal >= 1)\n' \
		"$(med c1)" "$(med ct)" "$(med nt)" "$(ratio "$(m c1)" "$(m nt)")" "$(ratio "$(m ct)" "$(m nt)")"
	printf '   4 KiB payloads, one job per request: corral %s jobs/s   node %s msgs/s   ratio %sx (goal >= 1)\n' \
		"$(med c4k)" "$(med n4k)" "$(ratio "$(m c4k)" "$(m n4k)")"
	printf '2. latency at %d/s  corral p50 %s us (%s round trips) p99 %s us   node p50 %s us p99 %s us (its pacer late by %s us at p50) (goal: p50 <= 2 round trips)\n' \
		"$HALF" "$(med clp50)" "$(ratio "$(m clp50)" "$RTT")" "$(med clp99)" "$(med nlp50)" "$(med nlp99)" "$(med nlpace)"
	printf '   latency at 1000/s    corral p50 %s us (%s round trips) p99 %s us; one job per request p50 %s us p99 %s us   node p50 %s us p99 %s us (pacer late by %s us at p50)\n' \
		"$(med cwp50)" "$(ratio "$(m cwp50)" "$RTT1K")" "$(med cwp99)" "$(med c1p50)" "$(med c1p99)" "$(med nwp50)" "$(med nwp99)" "$(med nwpace)"

	[ "$CHAOS" = 0 ] && PLUGINS= || PLUGINS="echo sleepy"
	for p in $PLUGINS; do
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
