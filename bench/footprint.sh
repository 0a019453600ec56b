#!/bin/sh
# bench/footprint: RSS and PSS of the corral supervisor, of one idle
# `hello` worker and of the standby worker it keeps by default (a second
# process, counted in the total), beside a Node.js cluster primary and one
# idle worker, in the same run.  Reads /proc/PID/status (VmRSS) and
# /proc/PID/smaps_rollup.
# Usage: bench/footprint.sh   (CORRAL_BUILDDIR, NODE, CORRAL_BENCH_DIR)
set -u
B=${CORRAL_BUILDDIR:-.}
BENCH=${CORRAL_BENCH_DIR:-bench}
NODE=${NODE:-node}
T=$(mktemp -d /tmp/corral-fp-XXXXXX)
trap 'kill -9 $SUP $NPID 2>/dev/null; rm -rf "$T"' EXIT
SUP= NPID=

kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/$3"; }

# Waits (bounded) until FILE has N lines matching PATTERN.
wait_for() {
	i=0
	while c=$(grep -c -e "$2" "$1" 2>/dev/null); [ "${c:-0}" -lt "$3" ]; do
		i=$((i + 1)); [ $i -gt 500 ] && return 1; sleep 0.01
	done
}

"$B/corral" -w 1 --rundir "$T/run" "$B/examples/hello.so" 2>"$T/corral.log" &
SUP=$!
wait_for "$T/corral.log" "-> running" 1 || { cat "$T/corral.log"; exit 1; }
wait_for "$T/corral.log" "standby pid .*: ready" 1 || { cat "$T/corral.log"; exit 1; }
# settle: let the first health report allocate what it needs
sleep 1.5
WPID=$(sed -n 's/.*slot 0 pid \([0-9]*\): starting -> running.*/\1/p' "$T/corral.log")
SPID=$(sed -n 's/.*standby pid \([0-9]*\): ready.*/\1/p' "$T/corral.log" | tail -1)

printf 'footprint: one supervisor + one idle worker (+ corral'"'"'s default standby worker)\n'
printf '  %-30s %10s %10s\n' "" "RSS" "PSS"
row() { printf '  %-30s %7s kB %7s kB\n' "$1" "$(kb "$2" VmRSS status)" "$(kb "$2" Pss smaps_rollup)"; }
sum() { # label pids...
	l=$1; shift
	r=0 p=0
	for x in "$@"; do
		r=$((r + $(kb "$x" VmRSS status))); p=$((p + $(kb "$x" Pss smaps_rollup)))
	done
	printf '  %-30s %7s kB %7s kB\n' "$l" "$r" "$p"
}
row "corral supervisor" "$SUP"
row "corral worker (hello)" "$WPID"
row "corral standby worker" "$SPID"
sum "corral total (3 processes)" "$SUP" "$WPID" "$SPID"
C_SUP=$(kb "$SUP" VmRSS status); C_W=$(kb "$WPID" VmRSS status)
C_T=$((C_SUP + C_W + $(kb "$SPID" VmRSS status)))
kill -TERM $SUP; wait $SUP 2>/dev/null; SUP=

if command -v "$NODE" >/dev/null 2>&1; then
	WORKERS=1 "$NODE" "$BENCH/node/cluster-idle.js" >"$T/node.log" 2>&1 &
	NPID=$!
	wait_for "$T/node.log" "online" 1 || { cat "$T/node.log"; exit 1; }
	sleep 1.5
	NW=$(sed -n 's/online \([0-9]*\)/\1/p' "$T/node.log" | head -1)
	row "node cluster primary" "$NPID"
	row "node cluster worker" "$NW"
	sum "node total (2 processes)" "$NPID" "$NW"
	N_SUP=$(kb "$NPID" VmRSS status); N_W=$(kb "$NW" VmRSS status)
	kill -TERM $NPID; wait $NPID 2>/dev/null; NPID=
	awk -v a="$N_SUP" -v b="$C_SUP" -v c="$N_W" -v d="$C_W" -v e="$C_T" 'BEGIN {
		printf "  ratio node/corral RSS: supervisor %.1fx, worker %.1fx, total %.1fx\n", a/b, c/d, (a+c)/e }'
fi
awk -v s="$C_SUP" -v w="$C_W" 'BEGIN {
	printf "  goal: worker RSS <= 5 MB, supervisor <= 6 MB: %s\n",
		(w <= 5*1024 && s <= 6*1024) ? "met" : "NOT met" }'
