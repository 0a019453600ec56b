#!/bin/bash
# bench/health.sh - health that acts, timed from the supervisor's own
# records (`corralctl events --json`, `corralctl status --json`), not from
# log wording.  Two parts, REPS repetitions each, a fresh corral every run:
#  a. leak detection: one worker of examples/leak.so growing LEAK_RATE
#     bytes/s (1 MB/s) from its init, corral with --leak-window 1m
#     --leak-min-growth 32M --health-interval 1s (leak_action warn): the
#     time from the worker's READY (event kind slot, to running) until the
#     event kind health, to leaking, for that pid; with the slope the
#     status reports.  What healthwatch.c requires before it flags: the
#     samples cover 80 % of the window (48 s), the fitted growth over the
#     window reaches leak_min_growth, r^2 >= 0.9; so about 49 s is the
#     floor at 1 MB/s, whatever the rate above 0.53 MB/s.
#  b. --max-memory under load: WORKERS workers of leak.so growing MEM_RATE
#     bytes/s (2 MB/s) with --max-memory MAX_MEM (24M), corral-load sending
#     echo jobs at LOAD_RATE (2000/s) for LOAD_SECS (30 s) through them:
#     replacements (status `.workers[].restarts_by.memory`, summed, and the
#     events kind health to memory), lost, failed, duplicates, p99.
#     Goal: 0 lost, 0 failed.
# Prints every run, then median [min-max].  Exit 1 when part b lost,
# failed or duplicated a job, or part a never flagged.
# Usage: bash bench/health.sh   (from the source tree; CORRAL_BUILDDIR
#        (default: the source tree if corral was built there, else
#        ./build), REPS=3, PARTS="a b", LEAK_RATE=1048576, LEAK_LIMIT=90
#        (seconds to wait for the flag), LEAK_WINDOW=1m, LEAK_MIN=32M,
#        MEM_RATE=2097152, MAX_MEM=24M,
#        WORKERS=2, LOAD_RATE=2000, LOAD_SECS=30)
# Time: about REPS * (52 + LOAD_SECS + 4) seconds (the defaults: about
#       4.5 min).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "${CORRAL_BUILDDIR:-}" ]; then B=$CORRAL_BUILDDIR
elif [ -x "$HERE/../corral" ]; then B=$HERE/..
else B=$HERE/../build; fi
B=$(cd "$B" && pwd)
REPS=${REPS:-3}
PARTS=${PARTS:-a b}
LEAK_RATE=${LEAK_RATE:-1048576}
LEAK_WINDOW=${LEAK_WINDOW:-1m}
LEAK_MIN=${LEAK_MIN:-32M}
LEAK_LIMIT=${LEAK_LIMIT:-90}
MEM_RATE=${MEM_RATE:-2097152}
MAX_MEM=${MAX_MEM:-24M}
W=${WORKERS:-2}
LOAD_RATE=${LOAD_RATE:-2000}
LOAD_SECS=${LOAD_SECS:-30}
T=$(mktemp -d /tmp/corral-health-XXXXXX)
PID=
fail=0

for tool in jq awk; do
	command -v "$tool" >/dev/null ||
		{ echo "bench/health: $tool not found (apt-get install jq gawk)"; exit 1; }
done
for f in corral corralctl corral-load examples/leak.so; do
	[ -e "$B/$f" ] || { echo "bench/health: build first (no $B/$f)"; exit 1; }
done

stop_corral() {
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
		PID=
	fi
}
cleanup() { stop_corral; rm -rf "$T"; }
trap cleanup EXIT

ctl() { timeout 30 "$B/corralctl" --rundir "$T/run" "$@"; }

# start_corral N ARGS...: a fresh corral of N leak.so workers, all running
start_corral() {
	local n=$1
	shift
	rm -rf "$T/run"
	"$B/corral" --rundir "$T/run" -w "$n" "$@" "$B/examples/leak.so" \
		2>"$T/corral.log" &
	PID=$!
	for _ in $(seq 100); do
		[ "$(ctl status --json 2>/dev/null |
			jq '[.workers[] | select(.state == "running")] | length')" = "$n" ] &&
			return 0
		sleep 0.1
	done
	echo "bench/health: $n workers did not start"
	cat "$T/corral.log"
	exit 1
}

stat3() {
	sort -g | awk -v f="${1:-%.0f}" '{ v[NR] = $1 }
	END { if (!NR) { print "-"; exit }
	      printf f " [" f "-" f "]", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

echo "bench/health: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $REPS reps"

# ---- a. leak detection ----
if [[ " $PARTS " == *" a "* ]]; then
	echo
	echo "a. leak detection: leak.so rate=$LEAK_RATE, --leak-window $LEAK_WINDOW" \
		"--leak-min-growth $LEAK_MIN --health-interval 1s (--standby 0)"
	printf "   %-4s %-8s %-18s %-16s %-12s %s\n" rep pid "READY->leaking s" \
		"slope MB/s" "RSS MB" "the event's why"
	: >"$T/a"
	for rep in $(seq "$REPS"); do
		start_corral 1 --standby 0 --leak-window "$LEAK_WINDOW" --leak-min-growth "$LEAK_MIN" \
			--health-interval 1s --set "rate=$LEAK_RATE" --set max=1000000000
		end=$((SECONDS + LEAK_LIMIT))
		flagged=
		while [ "$SECONDS" -lt "$end" ]; do
			if ctl status --json | jq -e '.workers[0].leaking' >/dev/null; then
				flagged=1
				break
			fi
			sleep 0.5
		done
		st=$(ctl status --json)
		ctl events --json >"$T/events"
		pid=$(jq -r '.workers[0].pid' <<<"$st")
		t_ready=$(jq -r --argjson p "$pid" 'select(.kind == "slot" and .pid == $p
			and .to == "running") | .t_ms' "$T/events" | head -1)
		t_flag=$(jq -r --argjson p "$pid" 'select(.kind == "health" and .pid == $p
			and .to == "leaking") | .t_ms' "$T/events" | head -1)
		why=$(jq -r --argjson p "$pid" 'select(.kind == "health" and .pid == $p
			and .to == "leaking") | .why' "$T/events" | head -1)
		slope=$(jq -r '.workers[0].leak_bytes_per_s / 1048576' <<<"$st")
		rss=$(jq -r '.workers[0].rss_bytes / 1048576' <<<"$st")
		if [ -n "$flagged" ] && [ -n "$t_ready" ] && [ -n "$t_flag" ]; then
			s=$(awk -v a="$t_ready" -v b="$t_flag" 'BEGIN { printf "%.2f", (b - a) / 1000 }')
			echo "$s $slope" >>"$T/a"
		else
			s="not within ${LEAK_LIMIT}s"
			fail=1
		fi
		printf "   %-4s %-8s %-18s %-16.3f %-12.1f %s\n" "$rep" "$pid" "$s" \
			"$slope" "$rss" "${why:--}"
		stop_corral
	done
	echo "   READY -> flagged leaking: $(awk '{ print $1 }' "$T/a" | stat3 %.2f) s;" \
		"slope $(awk '{ print $2 }' "$T/a" | stat3 %.3f) MB/s (median [min-max])"
fi

# ---- b. max_memory under load ----
if [[ " $PARTS " == *" b "* ]]; then
	echo
	echo "b. --max-memory $MAX_MEM, $W workers of leak.so rate=$MEM_RATE," \
		"corral-load --rate $LOAD_RATE --duration ${LOAD_SECS}s"
	printf "   %-4s %-13s %-14s %-8s %-7s %-5s %-5s %-8s %-8s %s\n" rep \
		"replacements" "health events" sent failed lost dups "p50 us" \
		"p99 us" "max us"
	: >"$T/b"
	for rep in $(seq "$REPS"); do
		start_corral "$W" --max-memory "$MAX_MEM" --leak-window 0 \
			--set "rate=$MEM_RATE" --set max=1000000000
		"$B/corral-load" --rundir "$T/run" --rate "$LOAD_RATE" \
			--duration "${LOAD_SECS}s" --json >"$T/load" 2>"$T/load.err" ||
			{ echo "bench/health: corral-load failed"; cat "$T/load.err"; exit 1; }
		st=$(ctl status --json)
		ctl events --json >"$T/events"
		repl=$(jq '[.workers[].restarts_by.memory] | add' <<<"$st")
		hev=$(jq -s '[.[] | select(.kind == "health" and .to == "memory")] | length' \
			"$T/events")
		crash=$(jq '[.workers[].restarts_by.crash] | add' <<<"$st")
		read -r sent failed lost dups p50 p99 max < <(jq -r '[.sent,
			([.failed[]] | add), .lost, .duplicates, .latency_us.p50,
			.latency_us.p99, .latency_us.max] | @tsv' "$T/load")
		echo "$repl $sent $failed $lost $dups $p50 $p99 $max $hev $crash" >>"$T/b"
		printf "   %-4s %-13s %-14s %-8s %-7s %-5s %-5s %-8s %-8s %s\n" "$rep" \
			"$repl" "$hev" "$sent" "$failed" "$lost" "$dups" "$p50" "$p99" "$max"
		[ "$crash" = 0 ] || echo "   (crash restarts: $crash)"
		[ $((failed + lost + dups)) = 0 ] || fail=1
		stop_corral
	done
	col() { awk -v c="$1" '{ print $c }' "$T/b" | stat3; }
	echo "   median [min-max]: replacements $(col 1), lost $(col 4), failed $(col 3)," \
		"duplicates $(col 5), p99 $(col 7) us, p50 $(col 6) us"
	if awk '$3 + $4 + $5 { bad = 1 } END { exit bad }' "$T/b"; then
		echo "   goal (0 lost, 0 failed): met"
	else
		echo "   goal (0 lost, 0 failed): NOT met"
	fi
fi
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$fail"
