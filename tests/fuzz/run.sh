#!/bin/sh
# run.sh SRCDIR SECONDS TARGET... - `make fuzz`: runs each libFuzzer
# target (built as ./fuzz/TARGET) for SECONDS, on a working corpus in
# fuzz/corpus/TARGET seeded from SRCDIR/tests/fuzz/TARGET, and prints one
# line per target: executions, crashes (new files in fuzz/crashes/TARGET)
# and time.  FUZZ_ARGS adds libFuzzer options.  Exit 1 if any target
# crashed.  libFuzzer adds what it finds to the first corpus directory
# only, so SRCDIR stays as it was.
srcdir=$1
secs=$2
shift 2
status=0
mkdir -p fuzz/corpus fuzz/crashes
for t in "$@"; do
	mkdir -p "fuzz/corpus/$t" "fuzz/crashes/$t"
	set --
	case $t in
	config) set -- "-dict=$srcdir/tests/fuzz/config.dict" ;;
	*) set -- "-dict=$srcdir/tests/fuzz/ipc.dict" ;;
	esac
	case $t in
	config) maxlen=16384 ;;  # long lines and values
	*) maxlen=8192 ;;
	esac
	start=$(date +%s)
	touch "fuzz/crashes/$t.stamp"
	# shellcheck disable=SC2086
	"./fuzz/$t" -max_total_time="$secs" -print_final_stats=1 \
		-max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="fuzz/crashes/$t/" "$@" $FUZZ_ARGS \
		"fuzz/corpus/$t" "$srcdir/tests/fuzz/$t" >"fuzz/$t.log" 2>&1
	rc=$?
	end=$(date +%s)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/$t.log" | tail -1)
	[ -n "$execs" ] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "fuzz/$t.log" | tail -1)
	crashes=$(find "fuzz/crashes/$t" -type f -newer "fuzz/crashes/$t.stamp" | wc -l)
	printf '%-8s %12s execs %3d crashes %6d s (libFuzzer exit %d, log fuzz/%s.log)\n' \
		"$t" "${execs:-?}" "$crashes" $((end - start)) "$rc" "$t"
	if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
		status=1
		find "fuzz/crashes/$t" -type f -newer "fuzz/crashes/$t.stamp" | sed 's/^/  crash: /'
	fi
done
exit $status
