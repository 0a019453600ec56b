#!/bin/bash
# bench/observe.sh - the cost of observing: the supervisor's CPU with
# WORKERS idle workers (examples/hello.so; each reports its health once a
# second), measured over windows of SECS seconds that alternate between
# not scraped and scraped (GET /metrics every second on one kept-alive
# connection, as a Prometheus with scrape_interval 1s does: curl --rate
# 1/s), the order swapped every
# repetition.  The supervisor's CPU is the sum over its threads (the loop
# and nng's) of /proc/PID/task/*/schedstat, nanoseconds on a CPU; curl's
# own CPU is not counted.
# Prints each window, then median [min-max] of both, in ms of CPU per
# second, and the difference; plus the size of one exposition and the
# time one scrape takes.
# Usage: bash bench/observe.sh   (from the source tree; CORRAL_BUILDDIR
#        (default ./build), WORKERS=8, SECS=20, REPS=5)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
B=${CORRAL_BUILDDIR:-$HERE/../build}
B=$(cd "$B" && pwd)
W=${WORKERS:-8}
SECS=${SECS:-20}
REPS=${REPS:-5}
T=$(mktemp -d /tmp/corral-observe-XXXXXX)
PID=

for tool in curl ss awk; do
	command -v "$tool" >/dev/null ||
		{ echo "bench/observe: $tool not found (apt-get install curl iproute2 gawk)"; exit 1; }
done
[ -x "$B/corral" ] && [ -f "$B/examples/hello.so" ] ||
	{ echo "bench/observe: build first (no $B/corral or $B/examples/hello.so)"; exit 1; }

cleanup() {
	[ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# ns on a CPU, every thread of $PID
cpu_ns() {
	cat /proc/"$PID"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

"$B/corral" --rundir "$T/run" -w "$W" --http 127.0.0.1:0 "$B/examples/hello.so" \
	2>"$T/log" &
PID=$!
for _ in $(seq 100); do
	[ "$(grep -c -- '-> running' "$T/log")" -ge "$W" ] && break
	sleep 0.1
done
[ "$(grep -c -- '-> running' "$T/log")" -ge "$W" ] ||
	{ echo "bench/observe: $W workers did not start"; cat "$T/log"; exit 1; }
PORT=$(ss -Hltnp | awk -v p="pid=$PID," 'index($0, p) { n = split($4, a, ":"); print a[n]; exit }')
[ -n "$PORT" ] || { echo "bench/observe: no HTTP port"; exit 1; }
URL="http://127.0.0.1:$PORT/metrics"
sleep 2 # the first health reports and the standby settle
BYTES=$(curl -s "$URL" | wc -c)
SCRAPE_MS=$(curl -s -o /dev/null -w '%{time_total}' "$URL" | awk '{ printf "%.2f", $1 * 1000 }')

# One window: mode 0 idle, 1 scraped every second.  Prints CPU ms/s.
window() {
	local mode=$1 a b t0 t1
	a=$(cpu_ns)
	t0=$(date +%s%N)
	if [ "$mode" = 1 ]; then
		# one connection, kept alive, a request a second: Prometheus
		curl -s --rate 1/s $(for _ in $(seq "$SECS"); do echo "$URL"; done) >/dev/null
	else
		sleep "$SECS"
	fi
	b=$(cpu_ns)
	t1=$(date +%s%N)
	awk -v c=$((b - a)) -v t=$((t1 - t0)) 'BEGIN { printf "%.3f\n", c / t * 1000 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f [%.3f-%.3f]\n", m, v[1], v[NR] }'; }

echo "corral pid $PID, $W workers of hello.so, /metrics on port $PORT: $BYTES bytes, one scrape $SCRAPE_MS ms"
: >"$T/idle"
: >"$T/scraped"
for r in $(seq "$REPS"); do
	if [ $((r % 2)) = 1 ]; then order="0 1"; else order="1 0"; fi
	for m in $order; do
		v=$(window "$m")
		if [ "$m" = 1 ]; then
			echo "$v" >>"$T/scraped"
			echo "rep $r: scraped every 1 s: $v ms CPU per s"
		else
			echo "$v" >>"$T/idle"
			echo "rep $r: not scraped:       $v ms CPU per s"
		fi
	done
done
I=$(median <"$T/idle")
S=$(median <"$T/scraped")
echo "supervisor CPU, ms per second, median [min-max] of $REPS windows of ${SECS}s:"
echo "  not scraped:          $I"
echo "  scraped every second: $S"
awk -v i="${I%% *}" -v s="${S%% *}" 'BEGIN { printf "  difference: %+.3f ms/s (%+.4f%% of one CPU)\n", s - i, (s - i) / 10 }'
