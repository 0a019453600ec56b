#!/bin/bash
# bench/reload-jobs.sh - rolling reload under job traffic (README's
# benchmark row 4): corral-load sends echo jobs at a fixed RATE for SECS
# seconds (open loop, latency counted from each job's due time) to corral
# running WORKERS echo workers, and either nothing else happens (the
# anchor: the same corral, the same load, no reload) or two
# `corralctl reload`s run during it (at 30 % and 65 % of the run; each
# replaces every worker one slot at a time through reload_gate, the old
# worker draining its jobs).  The two kinds of run alternate, the order
# swapped every repetition, REPS repetitions, all on one corral.
# Prints every run (sent, ok, failed, lost, duplicates, p50/p99/max,
# each reload's exit code, the time corralctl took and the supervisor's
# own "done in"; corralctl's time adds its start and a 250 ms wait for the
# last steps' events), then median [min-max] of each kind.  SECS must
# leave room for both reloads (each takes WORKERS * GATE and a little).  Goal: 0 lost, 0 failed, 0 duplicates with
# reloads.  Exit 1 when a run with reloads lost, failed or duplicated a
# job or a reload failed.
# Usage: bash bench/reload-jobs.sh   (from the source tree; CORRAL_BUILDDIR
#        (default: the source tree if corral was built there, else
#        ./build), RATE=5000 jobs/s, SECS=20, REPS=3, WORKERS=2,
#        GATE=2s (reload_gate), PAYLOAD=64)
# Time: about REPS * 2 * (SECS + 3) seconds (the defaults: about 2.5 min).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -n "${CORRAL_BUILDDIR:-}" ]; then B=$CORRAL_BUILDDIR
elif [ -x "$HERE/../corral" ]; then B=$HERE/..
else B=$HERE/../build; fi
B=$(cd "$B" && pwd)
RATE=${RATE:-5000}
SECS=${SECS:-20}
REPS=${REPS:-3}
W=${WORKERS:-2}
GATE=${GATE:-2s}
PAYLOAD=${PAYLOAD:-64}
T=$(mktemp -d /tmp/corral-reload-jobs-XXXXXX)
PID=

for tool in jq awk; do
	command -v "$tool" >/dev/null ||
		{ echo "bench/reload-jobs: $tool not found (apt-get install jq gawk)"; exit 1; }
done
for f in corral corralctl corral-load examples/echo.so; do
	[ -e "$B/$f" ] || { echo "bench/reload-jobs: build first (no $B/$f)"; exit 1; }
done

cleanup() {
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null
		wait "$PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

ctl() { timeout 60 "$B/corralctl" --rundir "$T/run" "$@"; }

"$B/corral" --rundir "$T/run" -w "$W" --reload-gate "$GATE" \
	"$B/examples/echo.so" 2>"$T/corral.log" &
PID=$!
for _ in $(seq 100); do
	[ "$(ctl status --json 2>/dev/null |
		jq '[.workers[] | select(.state == "running")] | length')" = "$W" ] && break
	sleep 0.1
done
[ "$(ctl status --json | jq '[.workers[] | select(.state == "running")] | length')" = "$W" ] ||
	{ echo "bench/reload-jobs: $W workers did not start"; cat "$T/corral.log"; exit 1; }

# one run: MODE (plain|reload) REP
run() {
	local mode=$1 rep=$2 rp=
	: >"$T/reloads.$mode.$rep"
	if [ "$mode" = reload ]; then
		(
			for pct in 30 65; do
				sleep "$(awk -v s="$SECS" -v p="$pct" -v t0="$(date +%s.%N)" \
					-v st="$3" 'BEGIN { d = st + s * p / 100 - t0; print (d > 0 ? d : 0) }')"
				t0=$(date +%s%N)
				ctl reload >"$T/reload.out" 2>&1
				rc=$?
				ms=$((($(date +%s%N) - t0) / 1000000))
				said=$(grep -o 'done in [0-9]* ms' "$T/reload.out" | grep -o '[0-9]*' | tail -1)
				end=$(awk -v st="$3" -v t="$(date +%s.%N)" 'BEGIN { printf "%.0f", (t - st) * 1000 }')
				echo "$rc $ms ${said:--} $end" >>"$T/reloads.$mode.$rep"
				[ "$rc" = 0 ] || cat "$T/reload.out" >>"$T/reload.failures"
			done
		) &
		rp=$!
	fi
	"$B/corral-load" --rundir "$T/run" --rate "$RATE" --duration "${SECS}s" \
		--payload "$PAYLOAD" --json >"$T/load.$mode.$rep" 2>"$T/load.$mode.$rep.err"
	[ -n "$rp" ] && wait "$rp"
	jq -r --arg m "$mode" --arg r "$rep" '[$m, $r, .sent, .ok,
		([.failed[]] | add), .lost, .duplicates, .latency_us.p50,
		.latency_us.p99, .latency_us.max, .throughput] | @tsv' \
		"$T/load.$mode.$rep" >"$T/fig.$mode.$rep" ||
		{ echo "bench/reload-jobs: corral-load said:"; cat "$T/load.$mode.$rep"*; exit 1; }
}

echo "bench/reload-jobs: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg);" \
	"corral $W echo workers, reload_gate $GATE; corral-load --rate $RATE" \
	"--duration ${SECS}s --payload $PAYLOAD; $REPS reps"
printf "%-7s %-4s %-8s %-8s %-7s %-5s %-5s %-8s %-8s %-9s %s\n" run rep sent ok \
	failed lost dups "p50 us" "p99 us" "max us" "reloads: rc, ms (corralctl), ms (said)"
for rep in $(seq "$REPS"); do
	if [ $((rep % 2)) = 1 ]; then order="plain reload"; else order="reload plain"; fi
	for mode in $order; do
		run "$mode" "$rep" "$(date +%s.%N)"
		read -r _ _ sent ok failed lost dups p50 p99 max _ <"$T/fig.$mode.$rep"
		rl=$(awk '{ printf "%s%s, %s, %s", (NR > 1 ? "; " : ""), $1, $2, $3 }' \
			"$T/reloads.$mode.$rep")
		printf "%-7s %-4s %-8s %-8s %-7s %-5s %-5s %-8s %-8s %-9s %s\n" "$mode" \
			"$rep" "$sent" "$ok" "$failed" "$lost" "$dups" "$p50" "$p99" "$max" "$rl"
		sleep 1
	done
done

stat3() {
	sort -g | awk -v f="${1:-%.0f}" '{ v[NR] = $1 }
	END { if (!NR) { print "-"; exit }
	      printf f " [" f "-" f "]", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
col() { cat "$T"/fig.$1.* | awk -v c="$2" '{ print $c }' | stat3 "${3:-%.0f}"; }
echo
echo "median [min-max] of $REPS runs of ${SECS}s at $RATE jobs/s:"
printf "  %-10s %-22s %-9s %-9s %-11s %-20s %-24s %s\n" "" sent failed lost \
	duplicates "p50 us" "p99 us" "max us"
for mode in plain reload; do
	label=$mode
	[ "$mode" = plain ] && label="no reload"
	[ "$mode" = reload ] && label="2 reloads"
	printf "  %-10s %-22s %-9s %-9s %-11s %-20s %-24s %s\n" "$label" \
		"$(col "$mode" 3)" "$(col "$mode" 5)" "$(col "$mode" 6)" \
		"$(col "$mode" 7)" "$(col "$mode" 8)" "$(col "$mode" 9)" "$(col "$mode" 10)"
done
nrl=$(cat "$T"/reloads.reload.* | wc -l)
bad=$(cat "$T"/reloads.reload.* | awk '$1 != 0' | wc -l)
echo "  reloads: $nrl, failed $bad; corralctl reload took" \
	"$(cat "$T"/reloads.reload.* | awk '{ print $2 }' | stat3) ms" \
	"(the supervisor's 'done in': $(cat "$T"/reloads.reload.* | awk '$3 != "-" { print $3 }' | stat3) ms)"
late=$(cat "$T"/reloads.reload.* | awk -v l=$((SECS * 1000)) '$4 > l' | wc -l)
[ "$late" = 0 ] || echo "  ($late reload(s) finished after their run had ended: raise SECS)"
[ -f "$T/reload.failures" ] && { echo "reload failures:"; cat "$T/reload.failures"; }
tot=$(cat "$T"/fig.reload.* | awk '{ s += $5 + $6 + $7 } END { print s + 0 }')
if [ "$tot" = 0 ] && [ "$bad" = 0 ]; then
	echo "  goal (0 lost, 0 failed, 0 duplicates with reloads): met"
else
	echo "  goal (0 lost, 0 failed, 0 duplicates with reloads): NOT met"
	exit 1
fi
