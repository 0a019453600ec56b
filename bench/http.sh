#!/bin/bash
# bench/http.sh - HTTP/1.1 keep-alive serving, corral beside its anchors in
# the same run on the same machine, servers interleaved (the order rotates
# every repetition), the same tiny body ("Hello, world!\n"), wrk the client:
#   corral   examples/http.so, WORKERS workers on one shared listener
#   node     Node's cluster, WORKERS workers (bench/node/http-cluster.js)
#   pm2      PM2 -i WORKERS running bench/node/http-app.js (PM2 from npm)
#   nginx    worker_processes WORKERS, `return 200` (the C ceiling)
# Rows:
#  1. throughput and p99: wrk -t2 -c64 -d${SECS}s --latency, REPS reps
#  2. crash under load: a worker SIGKILLed every 2 s during a CRASH_SECS
#     run; before each kill, `ss` counts the connections that worker holds;
#     errors per kill against connections held, connect errors, timeouts
#  3. rolling reload under load: two reloads (at 30 % and 65 %) during a
#     RELOAD_SECS run: corralctl reload (skipped if corralctl lacks it),
#     pm2 reload, Node's fork-new/disconnect-old (SIGHUP to
#     http-cluster.js), nginx -s reload; errors per run and per reload,
#     and each reload's duration: the reload command's own time (corralctl
#     and pm2 answer when done; SIGHUP and nginx -s reload return at once)
#     and the time until every worker serving before it has exited
# Every figure: median of REPS, [min-max].
# Usage: bash bench/http.sh   (run from the source tree; CORRAL_BUILDDIR
#        (default ./build), REPS=3, SECS=10, CRASH_SECS=20, RELOAD_SECS=20,
#        WORKERS=2, CONNS=64, ROWS="1 2 3", SERVERS="corral node pm2 nginx",
#        KEEP=1 keeps the temporary directory: wrk outputs, corral.log)
# Time: about 3 + REPS * (4 * (SECS + CRASH_SECS + RELOAD_SECS + 4) +
#        RELOAD_SECS) seconds; the defaults: about 13 minutes.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
B=${CORRAL_BUILDDIR:-$HERE/../build}
B=$(cd "$B" && pwd)
REPS=${REPS:-3}
SECS=${SECS:-10}
CRASH_SECS=${CRASH_SECS:-20}
RELOAD_SECS=${RELOAD_SECS:-20}
W=${WORKERS:-2}
CONNS=${CONNS:-64}
ROWS=${ROWS:-1 2 3}
SERVERS=${SERVERS:-corral node pm2 nginx}
NODE=${NODE:-node}
PM2="$HERE/node/node_modules/.bin/pm2"
APP=corral-bench-http
T=$(mktemp -d /tmp/corral-http-XXXXXX)
export PM2_HOME="$T/pm2"
CORRAL_PID= NODE_PID= NGINX_PID=

for tool in wrk nginx jq curl ss "$NODE"; do
	command -v "$tool" >/dev/null ||
		{ echo "bench/http: $tool not found (apt-get install wrk nginx-light jq curl iproute2 nodejs)"; exit 1; }
done
[ -x "$B/corral" ] && [ -f "$B/examples/http.so" ] ||
	{ echo "bench/http: build first (no $B/corral or $B/examples/http.so)"; exit 1; }
if [ ! -x "$PM2" ]; then
	echo "bench/http: installing PM2 into bench/node/node_modules (npm)"
	npm install --prefix "$HERE/node" --no-audit --no-fund >/dev/null 2>&1 ||
		{ echo "bench/http: npm install failed"; exit 1; }
fi

cleanup() {
	{
		[ -n "$CORRAL_PID" ] && kill -TERM "$CORRAL_PID"
		[ -n "$NODE_PID" ] && kill -TERM "$NODE_PID"
		[ -n "$NGINX_PID" ] && kill -QUIT "$NGINX_PID"
		"$PM2" kill >/dev/null
		wait
	} 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "bench/http: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

# Four free ports, away from other benchmarks on this machine.
base=$((20000 + $$ % 20000))
port_free() { ! ss -Htln "( sport = :$1 )" | grep -q .; }
while ! { port_free $base && port_free $((base + 1)) &&
	port_free $((base + 2)) && port_free $((base + 3)); }; do
	base=$((base + 4))
done
declare -A PORT=([corral]=$base [node]=$((base + 1)) [pm2]=$((base + 2))
	[nginx]=$((base + 3)))

wait_up() { # name
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:${PORT[$1]}/" >/dev/null && return 0
		sleep 0.1
	done
	echo "bench/http: $1 did not come up on port ${PORT[$1]}"
	exit 1
}

start_servers() {
	for s in $SERVERS; do
		case $s in
		corral)
			"$B/corral" --rundir "$T/run" -w "$W" \
				--listen "http=tcp://127.0.0.1:${PORT[corral]}" \
				"$B/examples/http.so" 2>"$T/corral.log" &
			CORRAL_PID=$! ;;
		node)
			PORT=${PORT[node]} WORKERS=$W "$NODE" \
				"$HERE/node/http-cluster.js" >"$T/node.log" 2>&1 &
			NODE_PID=$! ;;
		pm2)
			PORT=${PORT[pm2]} "$PM2" start "$HERE/node/http-app.js" \
				-i "$W" --name "$APP" >"$T/pm2.log" 2>&1 ;;
		nginx)
			mkdir -p "$T/nginx/logs"
			cat >"$T/nginx/nginx.conf" <<-EOF
			worker_processes $W;
			daemon off;
			pid $T/nginx/nginx.pid;
			error_log $T/nginx/error.log warn;
			events { worker_connections 4096; }
			http {
			  access_log off;
			  keepalive_requests 1000000;
			  client_body_temp_path $T/nginx/body;
			  proxy_temp_path $T/nginx/proxy;
			  fastcgi_temp_path $T/nginx/fastcgi;
			  uwsgi_temp_path $T/nginx/uwsgi;
			  scgi_temp_path $T/nginx/scgi;
			  server {
			    listen 127.0.0.1:${PORT[nginx]};
			    location / {
			      default_type text/plain;
			      return 200 "Hello, world!\n";
			    }
			  }
			}
			EOF
			nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" \
				2>"$T/nginx/stderr" &
			NGINX_PID=$! ;;
		esac
	done
	for s in $SERVERS; do wait_up "$s"; done
}

workers() { # name -> pids of its serving workers, one per line
	case $1 in
	corral) "$B/corralctl" --rundir "$T/run" status --json |
		jq -r '.workers[] | select(.state == "running") | .pid' ;;
	node) pgrep -P "$NODE_PID" ;;
	pm2) "$PM2" jlist 2>/dev/null | jq -r ".[] | select(.name == \"$APP\") | .pid" ;;
	nginx) pgrep -P "$NGINX_PID" ;;
	esac
}

reload() { # name
	case $1 in
	corral) "$B/corralctl" --rundir "$T/run" reload >"$T/reload.out" 2>&1 ;;
	node) kill -HUP "$NODE_PID" ;;
	pm2) "$PM2" reload "$APP" >/dev/null 2>&1 ;;
	nginx) nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" -s reload 2>/dev/null ;;
	esac
}

# sleep_until T0_NS MS: sleeps until MS milliseconds after T0_NS
sleep_until() {
	local d=$((($1 + $2 * 1000000 - $(date +%s%N)) / 1000000))
	[ "$d" -gt 0 ] && sleep "$(awk -v d="$d" 'BEGIN { print d / 1000 }')"
}

# reload_timed NAME OUT T0_NS: reloads NAME; appends "command_ms done_ms
# end_ms" to OUT, done = every worker that served before the reload has
# exited (polled every 50 ms, at most 60 s), end = when that was, in ms
# after T0_NS (the start of the run).
reload_timed() {
	local old t0 t1 p alive
	mapfile -t old < <(workers "$1")
	t0=$(date +%s%N)
	reload "$1"
	t1=$(date +%s%N)
	for _ in $(seq 1200); do
		alive=
		for p in "${old[@]}"; do
			kill -0 "$p" 2>/dev/null && { alive=1; break; }
		done
		[ -z "$alive" ] && break
		sleep 0.05
	done
	local t2 said=-
	t2=$(date +%s%N)
	# corral: the supervisor's own figure too ("... done in N ms";
	# corralctl's time adds its start and a 250 ms wait for the last
	# steps' events)
	[ "$1" = corral ] &&
		said=$(grep -o 'done in [0-9]* ms' "$T/reload.out" | grep -o '[0-9]*' | tail -1)
	echo "$(((t1 - t0) / 1000000)) $(((t2 - t0) / 1000000))" \
		"$(((t2 - $3) / 1000000)) ${said:--}" >>"$2"
}

corral_has_reload() {
	"$B/corralctl" --help 2>&1 | grep -q '^ *reload'
}

# wrk OUTFILE SECONDS NAME: runs wrk against NAME.
run_wrk() {
	wrk -t2 -c"$CONNS" -d"$2"s --latency "http://127.0.0.1:${PORT[$3]}/" \
		>"$1" 2>&1
}

# Figures from a wrk output: rps p99_ms connect read write timeout non2xx
wrk_figures() {
	awk '
	/Requests\/sec:/ { rps = $2 }
	/^ +99%/ { v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u)
	           p99 = (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : v }
	/Socket errors:/ { gsub(",", ""); c = $4; r = $6; w = $8; t = $10 }
	/Non-2xx/ { n = $5 }
	END { printf "%s %s %d %d %d %d %d\n", rps, p99, c, r, w, t, n }' "$1"
}

# median and range of the numbers on stdin: "MED [MIN-MAX]"
stat3() {
	sort -g | awk -v f="${1:-%.1f}" '{ v[NR] = $1 }
	END { if (!NR) { print "-"; exit }
	      printf f " [" f "-" f "]", v[int((NR + 1) / 2)], v[1], v[NR] }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : 0 }'; }

rotate() { # rep -> the servers, rotated by rep
	local a=($SERVERS) n i out=()
	n=${#a[@]}
	for ((i = 0; i < n; i++)); do out+=("${a[$(((i + $1) % n))]}"); done
	echo "${out[@]}"
}

echo "bench/http: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $W workers each," \
	"wrk -t2 -c$CONNS, $REPS reps; ports ${PORT[*]}"
echo "versions: $("$B/corral" --version | head -1); node $("$NODE" -v);" \
	"pm2 $("$PM2" -v 2>/dev/null | tail -1); $(nginx -v 2>&1 | sed 's/.*: //');" \
	"$(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
start_servers
for s in $SERVERS; do # warm-up (JIT, page faults)
	wrk -t2 -c"$CONNS" -d2s "http://127.0.0.1:${PORT[$s]}/" >/dev/null 2>&1
done

# ---- row 1 ----
if [[ " $ROWS " == *" 1 "* ]]; then
	for rep in $(seq "$REPS"); do
		for s in $(rotate "$rep"); do
			run_wrk "$T/r1.$s.$rep" "$SECS" "$s"
			wrk_figures "$T/r1.$s.$rep" >"$T/f1.$s.$rep"
		done
	done
	echo
	echo "1. throughput, wrk -t2 -c$CONNS -d${SECS}s, GET / keep-alive: median [min-max] of $REPS"
	printf "   %-7s %-26s %-22s %s\n" server "requests/s" "p99 ms" "errors"
	for s in $SERVERS; do
		rps=$(cat "$T"/f1.$s.* | awk '{ print $1 }' | stat3 %.0f)
		p99=$(cat "$T"/f1.$s.* | awk '{ print $2 }' | stat3 %.2f)
		errs=$(cat "$T"/f1.$s.* | awk '{ e += $3 + $4 + $5 + $6 + $7 } END { print e + 0 }')
		printf "   %-7s %-26s %-22s %s\n" "$s" "$rps" "$p99" "$errs"
	done
	if [[ " $SERVERS " == *" corral "* ]]; then
		c=$(cat "$T"/f1.corral.* | awk '{ print $1 }' | median)
		for s in $SERVERS; do
			[ "$s" = corral ] && continue
			o=$(cat "$T"/f1.$s.* | awk '{ print $1 }' | median)
			awk -v c="$c" -v o="$o" -v s="$s" \
				'BEGIN { printf "   corral / %s: %.2fx\n", s, c / o }'
		done
	fi
fi

# ---- row 2 ----
# killer NAME SECONDS OUT: every 2 s, counts what one worker holds, kills it
killer() {
	local i=0 end=$((SECONDS + $2 - 1)) pids pid held
	sleep 2
	while [ "$SECONDS" -lt "$end" ]; do
		mapfile -t pids < <(workers "$1")
		if [ "${#pids[@]}" -gt 0 ]; then
			pid=${pids[$((i % ${#pids[@]}))]}
			held=$(ss -Htnp state established "( sport = :${PORT[$1]} )" |
				grep -c "pid=$pid,")
			kill -9 "$pid" 2>/dev/null && echo "$held" >>"$3"
		fi
		i=$((i + 1))
		sleep 2
	done
}

if [[ " $ROWS " == *" 2 "* ]]; then
	for rep in $(seq "$REPS"); do
		for s in $(rotate "$rep"); do
			: >"$T/held.$s.$rep"
			killer "$s" "$CRASH_SECS" "$T/held.$s.$rep" &
			kp=$!
			run_wrk "$T/r2.$s.$rep" "$CRASH_SECS" "$s"
			wait "$kp"
			read -r _ _ c r w t n < <(wrk_figures "$T/r2.$s.$rep")
			k=$(wc -l <"$T/held.$s.$rep")
			h=$(awk '{ h += $1 } END { print h + 0 }' "$T/held.$s.$rep")
			echo "$k $h $c $((r + w + t)) $t $n" >"$T/f2.$s.$rep"
			sleep 1 # replacements up before the next server's run
		done
	done
	echo
	echo "2. crash under load: a worker SIGKILLed every 2 s, ${CRASH_SECS}s runs: median [min-max] of $REPS"
	printf "   %-7s %-6s %-18s %-18s %-8s %-8s %s\n" server kills \
		"held/kill" "errors/kill" connect timeout "non-2xx"
	for s in $SERVERS; do
		kills=$(cat "$T"/f2.$s.* | awk '{ print $1 }' | median)
		held=$(cat "$T"/f2.$s.* | awk '$1 { print $2 / $1 }' | stat3 %.1f)
		errs=$(cat "$T"/f2.$s.* | awk '$1 { print $4 / $1 }' | stat3 %.1f)
		conn=$(cat "$T"/f2.$s.* | awk '{ c += $3 } END { print c + 0 }')
		tmo=$(cat "$T"/f2.$s.* | awk '{ c += $5 } END { print c + 0 }')
		n2=$(cat "$T"/f2.$s.* | awk '{ c += $6 } END { print c + 0 }')
		printf "   %-7s %-6s %-18s %-18s %-8s %-8s %s\n" "$s" "$kills" \
			"$held" "$errs" "$conn" "$tmo" "$n2"
	done
	echo "   (connect, timeout, non-2xx: totals over every run; errors = read + write + timeout)"
fi

# ---- row 3 ----
if [[ " $ROWS " == *" 3 "* ]]; then
	skip_corral=
	if [[ " $SERVERS " == *" corral "* ]] && ! corral_has_reload; then
		skip_corral=1
	fi
	for rep in $(seq "$REPS"); do
		for s in $(rotate "$rep"); do
			[ "$s" = corral ] && [ -n "$skip_corral" ] && continue
			(
				# at 30 % and 65 % of the run from its start, however
				# long the first reload took, so that both (and the
				# drains they cause) fall inside the run
				t0=$(date +%s%N)
				for pct in 30 65; do
					sleep_until "$t0" $((RELOAD_SECS * pct * 10))
					reload_timed "$s" "$T/dur.$s.$rep" "$t0"
				done
			) &
			rp=$!
			run_wrk "$T/r3.$s.$rep" "$RELOAD_SECS" "$s"
			wait "$rp"
			read -r rps _ c r w t n < <(wrk_figures "$T/r3.$s.$rep")
			echo "$((c + r + w + t + n)) $c $n $rps" >"$T/f3.$s.$rep"
			sleep 2 # old workers gone before the next run
		done
		# Beside it (not the reload): each corral worker in turn gets
		# SIGTERM, i.e. graceful stop (the drain a reload will use),
		# and the supervisor replaces it.
		if [[ " $SERVERS " == *" corral "* ]]; then
			(
				mapfile -t pids < <(workers corral)
				sleep $((RELOAD_SECS * 30 / 100))
				kill -TERM "${pids[0]}"
				sleep $((RELOAD_SECS * 35 / 100))
				kill -TERM "${pids[1]:-${pids[0]}}"
			) &
			rp=$!
			run_wrk "$T/r3t.$rep" "$RELOAD_SECS" corral
			wait "$rp"
			read -r rps _ c r w t n < <(wrk_figures "$T/r3t.$rep")
			echo "$((c + r + w + t + n)) $c $n $rps" >"$T/f3.corral-term.$rep"
			sleep 1
		fi
	done
	echo
	echo "3. rolling reload under load: two reloads in ${RELOAD_SECS}s runs: median [min-max] of $REPS"
	printf "   %-11s %-22s %-16s %-10s %-10s %-20s %-20s %s\n" server "errors per run" \
		"per reload" connect "non-2xx" "requests/s" "reload cmd ms" "old gone ms"
	r3=$SERVERS
	[[ " $SERVERS " == *" corral "* ]] && r3="$SERVERS corral-term"
	for s in $r3; do
		if [ "$s" = corral ] && [ -n "$skip_corral" ]; then
			printf "   %-11s skipped: corralctl reload does not exist yet (the supervisor reshape brings it)\n" corral
			continue
		fi
		errs=$(cat "$T"/f3.$s.* | awk '{ print $1 }' | stat3 %.0f)
		per=$(cat "$T"/f3.$s.* | awk '{ print $1 / 2 }' | stat3 %.1f)
		conn=$(cat "$T"/f3.$s.* | awk '{ c += $2 } END { print c + 0 }')
		n2=$(cat "$T"/f3.$s.* | awk '{ c += $3 } END { print c + 0 }')
		rps=$(cat "$T"/f3.$s.* | awk '{ print $4 }' | stat3 %.0f)
		dc=- dd=-
		if ls "$T"/dur.$s.* >/dev/null 2>&1; then
			dc=$(cat "$T"/dur.$s.* | awk '{ print $1 }' | stat3 %.0f)
			dd=$(cat "$T"/dur.$s.* | awk '{ print $2 }' | stat3 %.0f)
		fi
		printf "   %-11s %-22s %-16s %-10s %-10s %-20s %-20s %s\n" "$s" "$errs" "$per" "$conn" \
			"$n2" "$rps" "$dc" "$dd"
	done
	echo "   (errors: connect + read + write + timeout + non-2xx; connect, non-2xx: totals over every run)"
	echo "   (reload cmd, old gone: over every reload (2 per run); cmd = the reload command's own time,"
	echo "    old gone = until every worker serving before it has exited)"
	[ -n "$(ls "$T"/dur.corral.* 2>/dev/null)" ] &&
		echo "   (corral reloads, the supervisor's own 'done in': $(cat "$T"/dur.corral.* |
			awk '$4 != "-" { print $4 }' | stat3 %.0f) ms)"
	late=$(cat "$T"/dur.*.* 2>/dev/null | awk -v l=$((RELOAD_SECS * 1000)) '$3 > l' | wc -l)
	[ "$late" = 0 ] ||
		echo "   ($late reload(s) finished after their wrk run had ended: not all under load)"
	[[ " $SERVERS " == *" corral "* ]] &&
		echo "   (corral-term: not a reload; each worker in turn gets SIGTERM, drains and is replaced)"
fi
