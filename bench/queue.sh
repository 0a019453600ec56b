#!/bin/sh
# bench/queue: the job queue's memory and its limits, with 1 KiB and 64 KiB
# payloads, QUEUE_REPS rounds (3) alternating the sections, each figure the
# median [range] of the rounds.
#  1. throughput: echo, ECHO_WORKERS workers (one per CPU), closed loop
#     with 256 jobs in flight, one job per call (the client library
#     coalesces what is pending at the same moment), QUEUE_SECONDS (5);
#     beside Node.js cluster exchanging the same payloads by process.send,
#     pipelined 256 deep (bench/node/jobs-echo.js), in the same round.
#     The supervisor's peak RSS and the busy answers (none expected: 256
#     in flight never fill the queue).
#  2. a burst, open loop for BURST_SECONDS (3), at one sleepy worker (64
#     in flight): 1 KiB payloads (up to 4 KiB) at 5000/s, 50 ms each
#     (1280 jobs/s), so that queue_limit (10,000 jobs) binds; 64 KiB ones
#     at 1000/s, 200 ms each (320 jobs/s), so that queue_limit_bytes
#     (64 MiB) binds: the queue fills and the rest is answered "busy".
#     The supervisor's RSS before the burst (after one warm-up call), at
#     its peak (VmHWM), and 5 s after the queue has drained (status:
#     nothing queued or in flight); jobs ok, busy, lost.
# The supervisor's limits are its defaults; QUEUE_ARGS adds options to
# every corral started (e.g. QUEUE_ARGS="--queue-limit-bytes 16M"), and
# CORRAL_BUILDDIR picks the build, so that an older build (without
# queue_limit_bytes) runs the same rounds.
# Usage: sh bench/queue.sh   (CORRAL_BUILDDIR, NODE, CORRAL_BENCH_DIR,
#        QUEUE_REPS, QUEUE_SECONDS, ECHO_WORKERS, BURST_SECONDS,
#        QUEUE_ARGS, QUEUE_PAYLOADS ("1024 65536"))
set -u
B=${CORRAL_BUILDDIR:-.}
BENCH=${CORRAL_BENCH_DIR:-bench}
NODE=${NODE:-node}
SECS=${QUEUE_SECONDS:-5}
REPS=${QUEUE_REPS:-3}
W=${ECHO_WORKERS:-$(nproc)}
BSECS=${BURST_SECONDS:-3}
ARGS=${QUEUE_ARGS:-}
SIZES=${QUEUE_PAYLOADS:-1024 65536}
T=$(mktemp -d /tmp/corral-queue-XXXXXX)
SUP=
trap 'kill -9 $SUP 2>/dev/null; rm -rf "$T"' EXIT

start() { # plugin, extra args...
	plug=$1; shift
	rm -rf "$T/run"
	# shellcheck disable=SC2086
	"$B/corral" --rundir "$T/run" $ARGS "$@" "$B/examples/$plug.so" 2>"$T/corral.log" &
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
num() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" | head -1; }
# /proc/PID/status figure in MiB (VmRSS, VmHWM).
mem() { awk -v k="$1:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$SUP/status"; }
HAVE_NODE=0
command -v "$NODE" >/dev/null 2>&1 && HAVE_NODE=1
node_echo() { # env assignments...
	if [ $HAVE_NODE = 1 ]; then
		env WORKERS="$W" SECONDS="$SECS" "$@" "$B/bench/slack" "$NODE" \
			"$BENCH/node/jobs-echo.js"
	else
		echo '{"throughput":0}'
	fi
}
put() { echo "$2" >>"$T/v.$1"; }
med() {
	sort -g "$T/v.$1" | awk -v f="${2:-%.0f}" '{ v[NR] = $1 } END {
		printf f " [" f "-" f "]", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
m() { sort -g "$T/v.$1" | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }
# Waits until nothing is queued or in flight (up to 120 s).
drained() {
	i=0
	until "$B/corralctl" --rundir "$T/run" status --json 2>/dev/null |
		grep -q '"queued":0,"inflight":0'; do
		i=$((i + 1)); [ $i -gt 1200 ] && { echo "never drained" >&2; return 1; }; sleep 0.1
	done
}

echo "queue: $B, $REPS rounds, median [range]; corral ${ARGS:-(defaults)}"
for r in $(seq "$REPS"); do
	for sz in $SIZES; do
		start echo -w "$W"
		R=$(load --rate max --concurrency 256 --payload "$sz" --duration "${SECS}s")
		put "t$sz" "$(echo "$R" | num throughput)"
		put "tbusy$sz" "$(echo "$R" | num busy)"
		put "thwm$sz" "$(mem VmHWM)"
		stop
		put "n$sz" "$(node_echo CONCURRENCY=256 PAYLOAD="$sz" | num throughput)"

		if [ "$sz" -le 4096 ]; then rate=5000 delay=50; else rate=1000 delay=200; fi
		start sleepy -w 1 --standby 0 --max-inflight 64 --job-timeout 120s --set delay=$delay
		"$B/corralctl" --rundir "$T/run" call warm >/dev/null
		put "b0$sz" "$(mem VmRSS)"
		R=$(load --rate "$rate" --concurrency 1000000 --payload "$sz" --duration "${BSECS}s" --job-timeout 120s)
		drained
		put "bpeak$sz" "$(mem VmHWM)"
		sleep 5
		put "b5$sz" "$(mem VmRSS)"
		put "bok$sz" "$(echo "$R" | num ok)"
		put "bbusy$sz" "$(echo "$R" | num busy)"
		put "blost$sz" "$(echo "$R" | num lost)"
		stop
	done
done
for sz in $SIZES; do
	printf '1. %6d B echo, 256 in flight: corral %s jobs/s   node %s msgs/s   ratio %sx; corral busy %s, supervisor peak RSS %s MiB\n' \
		"$sz" "$(med "t$sz")" "$(med "n$sz")" "$(ratio "$(m "t$sz")" "$(m "n$sz")")" \
		"$(med "tbusy$sz")" "$(med "thwm$sz" %.1f)"
done
for sz in $SIZES; do
	if [ "$sz" -le 4096 ]; then rate=5000 cap=1280; else rate=1000 cap=320; fi
	printf '2. %6d B burst, %d/s for %ss at %d jobs/s: ok %s busy %s lost %s; supervisor RSS before %s MiB, peak %s MiB, 5 s after the drain %s MiB\n' \
		"$sz" "$rate" "$BSECS" "$cap" "$(med "bok$sz")" "$(med "bbusy$sz")" "$(med "blost$sz")" \
		"$(med "b0$sz" %.1f)" "$(med "bpeak$sz" %.1f)" "$(med "b5$sz" %.1f)"
done
