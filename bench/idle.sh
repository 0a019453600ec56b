#!/bin/sh
# bench/idle: what idle costs.  CPU of N idle `hello` workers and of their
# supervisor (N = 1, 8, 32, 64; the default standby worker counted apart),
# beside a Node.js cluster primary with 64 idle workers, in the same run.
#
# Both sides are measured the same way: every process's utime + stime
# from /proc/PID/stat (clock ticks) and, finer, the run time of all its
# threads from /proc/PID/task/*/schedstat (ns), read at the start and the
# end of an IDLE_SECONDS window that begins 2 s after the last worker is
# up.  CPU is given in % of one core; "per worker" divides by the number
# of workers.  The goal is judged on schedstat (a tick is 10 ms: over a
# 10 s window one process's stat figure moves in steps of 0.1 %).  Runs
# alternate corral and Node, IDLE_REPS rounds; each figure is the median
# of the rounds, with the range.
# Usage: sh bench/idle.sh   (CORRAL_BUILDDIR, NODE, CORRAL_BENCH_DIR,
#        IDLE_SECONDS (10), IDLE_REPS (3), IDLE_WORKERS ("1 8 32 64"),
#        NODE_WORKERS (64))
set -u
B=${CORRAL_BUILDDIR:-.}
BENCH=${CORRAL_BENCH_DIR:-bench}
NODE=${NODE:-node}
SECS=${IDLE_SECONDS:-10}
REPS=${IDLE_REPS:-3}
COUNTS=${IDLE_WORKERS:-1 8 32 64}
NW=${NODE_WORKERS:-64}
TCK=$(getconf CLK_TCK)
T=$(mktemp -d /tmp/corral-idle-XXXXXX)
SUP= NPID=
trap 'kill -9 $SUP $NPID 2>/dev/null; rm -rf "$T"' EXIT

# Waits (bounded, 20 s) until FILE has N lines matching PATTERN.
wait_for() {
	i=0
	while c=$(grep -c -e "$2" "$1" 2>/dev/null); [ "${c:-0}" -lt "$3" ]; do
		i=$((i + 1)); [ $i -gt 2000 ] && return 1; sleep 0.01
	done
}

# "TICKS NS" summed over the pids given: utime+stime, and thread run time.
cpu() {
	for p in "$@"; do
		t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }')
		n=$(cat /proc/"$p"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
		echo "${t:-0} ${n:-0}"
	done | awk '{ t += $1; n += $2 } END { printf "%d %.0f\n", t, n }'
}
now_ns() { date +%s%N; }

# Measures the groups (space-separated pid lists, one per argument) over
# the window; prints "PCT_STAT PCT_SCHED" per group, in % of one core.
measure() {
	i=0
	for g in "$@"; do i=$((i + 1)); cpu $g >"$T/a$i"; done
	t0=$(now_ns)
	sleep "$SECS"
	t1=$(now_ns)
	i=0
	for g in "$@"; do
		i=$((i + 1))
		cpu $g | awk -v a="$(cat "$T/a$i")" -v w=$((t1 - t0)) -v tck="$TCK" '{
			split(a, x, " ")
			printf "%.4f %.4f\n", ($1 - x[1]) / tck * 1e9 / w * 100,
				($2 - x[2]) / w * 100 }'
	done
}

corral_round() { # n
	n=$1
	rm -rf "$T/run"
	"$B/corral" -w "$n" --rundir "$T/run" "$B/examples/hello.so" 2>"$T/corral.log" &
	SUP=$!
	wait_for "$T/corral.log" "-> running" "$n" || { cat "$T/corral.log"; exit 1; }
	wait_for "$T/corral.log" "standby pid .*: ready" 1 || true
	sleep 2
	W=$(sed -n 's/.*slot [0-9]* pid \([0-9]*\): .*-> running.*/\1/p' "$T/corral.log" | tr '\n' ' ')
	S=$(sed -n 's/.*standby pid \([0-9]*\): ready.*/\1/p' "$T/corral.log" | tail -1)
	set -- $(measure "$SUP" "$W" "${S:-}" | tr '\n' ' ')
	# measure printed: supervisor (stat, sched), workers, standby; kept
	# as per worker (stat, sched), supervisor (stat, sched), standby (sched)
	awk -v n="$n" -v ss="$1" -v sn="$2" -v ws="$3" -v wn="$4" -v bn="${6:-0}" \
		'BEGIN { printf "%.4f %.4f %.4f %.4f %.4f\n", ws / n, wn / n, ss, sn, bn }' \
		>>"$T/corral-$n"
	kill -TERM $SUP; wait $SUP 2>/dev/null; SUP=
}

node_round() {
	WORKERS=$NW "$NODE" "$BENCH/node/cluster-idle.js" >"$T/node.log" 2>&1 &
	NPID=$!
	wait_for "$T/node.log" "online" "$NW" || { cat "$T/node.log"; exit 1; }
	sleep 2
	W=$(sed -n 's/online \([0-9]*\)/\1/p' "$T/node.log" | tr '\n' ' ')
	set -- $(measure "$NPID" "$W" | tr '\n' ' ')
	awk -v n="$NW" -v ss="$1" -v sn="$2" -v ws="$3" -v wn="$4" \
		'BEGIN { printf "%.4f %.4f %.4f %.4f\n", ws / n, wn / n, ss, sn }' >>"$T/node"
	kill -TERM $NPID; wait $NPID 2>/dev/null; NPID=
}

# Median and range of column c of file f: "MED [LO-HI]".
col() {
	sort -g -k"$2,$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END {
		printf "%.4f [%.4f-%.4f]", v[int((NR + 1) / 2)], v[1], v[NR] }'
}

HAVE_NODE=0
command -v "$NODE" >/dev/null 2>&1 && HAVE_NODE=1
for r in $(seq "$REPS"); do
	for n in $COUNTS; do corral_round "$n"; done
	[ $HAVE_NODE = 1 ] && node_round
done

echo "idle: CPU in % of one core over ${SECS} s windows, median [range] of $REPS rounds;"
echo "  schedstat (thread run time, ns), and /proc/PID/stat utime+stime (ticks of 1/$TCK s)"
printf '  %-26s %-30s %-30s %-30s %s\n' "" "per worker: schedstat" "supervisor: schedstat" "supervisor per worker" "per worker: stat"
ok=1
for n in $COUNTS; do
	f="$T/corral-$n"
	awk -v n="$n" '{ print $0, $4 / n }' "$f" >"$f.x"
	printf '  %-26s %-30s %-30s %-30s %s\n' "corral, $n hello worker(s)" \
		"$(col "$f" 2)" "$(col "$f" 4)" "$(col "$f.x" 6)" "$(col "$f" 1)"
	w=$(col "$f" 2 | cut -d' ' -f1); s=$(col "$f.x" 6 | cut -d' ' -f1)
	ok=$(awk -v ok="$ok" -v w="$w" -v s="$s" 'BEGIN { print (ok && w <= 0.02 && s <= 0.01) ? 1 : 0 }')
done
printf '  %-26s %s\n' "corral standby worker" "$(col "$T/corral-$(echo $COUNTS | awk '{ print $NF }')" 5)"
if [ $HAVE_NODE = 1 ]; then
	awk -v n="$NW" '{ print $0, $4 / n }' "$T/node" >"$T/node.x"
	printf '  %-26s %-30s %-30s %-30s %s\n' "node cluster, $NW workers" \
		"$(col "$T/node" 2)" "$(col "$T/node" 4)" "$(col "$T/node.x" 5)" "$(col "$T/node" 1)"
fi
echo "  goal: a worker <= 0.02 %, the supervisor <= 0.01 % per worker, at every N: $([ "$ok" = 1 ] && echo met || echo NOT met)"
