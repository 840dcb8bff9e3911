# Shared by national.sh and scaling.sh (sourced, not run). Every function
# writes under $workdir only; the repository is read, never written.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

die() {
	echo "bench: $*" >&2
	exit 1
}

# need_time makes GNU time available as /usr/bin/time (Debian package
# `time`), installing it when missing and running as root.
need_time() {
	if /usr/bin/time -f %e true >/dev/null 2>&1; then
		return
	fi
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "installing /usr/bin/time (apt-get install time)" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null ||
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null; }
	fi
	/usr/bin/time -f %e true >/dev/null 2>&1 || die "GNU time is needed as /usr/bin/time (apt-get install time)"
}

# machine prints the processor count, model and memory.
machine() {
	local model mem
	model=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/^[^:]*: *//' || true)
	mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "machine: $(nproc) cores (${model:-unknown model}), ${mem} RAM, $(uname -sr)"
	echo "tools:   $(go version | cut -d' ' -f3-), node $(node --version 2>/dev/null || echo missing)"
	load
}

# load prints the load average: other work on the machine skews the times.
load() {
	echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) on $(nproc) cores"
}

# build_cpi builds the cpi binary into $workdir/cpi, or copies the one
# given with --cpi ($cpi_bin).
build_cpi() {
	if [[ -n ${cpi_bin:-} ]]; then
		echo "using $cpi_bin → $workdir/cpi" >&2
		cp "$cpi_bin" "$workdir/cpi.tmp" && mv "$workdir/cpi.tmp" "$workdir/cpi" || die "cannot copy $cpi_bin"
	else
		echo "building cpi → $workdir/cpi" >&2
		(cd "$repo" && go build -o "$workdir/cpi" ./cmd/cpi) || die "go build failed"
	fi
	echo "cpi:     $("$workdir/cpi" --version 2>&1 | head -n1)"
}

# synth_once N DIR writes the canonical study of N participants into DIR,
# unless DIR already holds the one this cpi binary writes (the generator is
# deterministic, seed 1; a different binary may write other files).
synth_once() {
	local n=$1 dir=$2 stamp
	stamp="$n $(sha256sum "$workdir/cpi" | cut -c1-16)"
	if [[ -f $dir/.participants && $(cat "$dir/.participants") == "$stamp" ]]; then
		echo "reusing the canonical study of $n participants in $dir" >&2
		return
	fi
	rm -rf "$dir"
	echo "cpi synth --canonical --participants $n --out $dir" >&2
	/usr/bin/time -f "%e %M" -o "$dir.time" "$workdir/cpi" synth --canonical --participants "$n" --out "$dir" >"$dir.synth.log" ||
		die "cpi synth failed: see $dir.synth.log"
	echo "$stamp" >"$dir/.participants"
	read -r s kb <"$dir.time"
	echo "  synth: ${s} s, $((kb / 1024)) MiB; $(du -sh --exclude=.participants "$dir" | cut -f1) of CSV, $(($(cat "$dir"/*_participants_*.csv | wc -l) - $(ls "$dir"/*_participants_*.csv | wc -l))) interview rows" >&2
}

# timed LOG TIMEFILE CMD... runs CMD with GNU time (elapsed seconds, peak
# RSS in KiB, user and system CPU seconds into TIMEFILE), stdout and stderr
# into LOG, and returns its exit status.
timed() {
	local log=$1 tf=$2
	shift 2
	local rc=0
	/usr/bin/time -f "%e %M %U %S" -o "$tf" "$@" >"$log" 2>&1 || rc=$?
	return "$rc"
}

# run_cpi IN WAREHOUSE LOGPREFIX: cpi ingest (fresh warehouse) then cpi
# score, each under GNU time. Prints "seconds peak_MiB responses_rows
# participants_rows scores_rows cpu_seconds": the sum of the two wall
# times, the larger of the two peaks, the CPU time (user + system) of both. Exit status 3 from ingest (something rejected) is
# accepted and reported in the log.
run_cpi() {
	local in=$1 wh=$2 lp=$3 rc
	rm -rf "$wh"
	rc=0
	timed "$lp.ingest.log" "$lp.ingest.time" "$workdir/cpi" ingest --warehouse "$wh" "$in" || rc=$?
	if [[ $rc -ne 0 && $rc -ne 3 ]]; then
		tail -n 20 "$lp.ingest.log" >&2
		die "cpi ingest exited $rc: see $lp.ingest.log"
	fi
	[[ $rc -eq 3 ]] && echo "  note: cpi ingest exited 3 (rows rejected or files quarantined): see $lp.ingest.log" >&2
	rc=0
	timed "$lp.score.log" "$lp.score.time" "$workdir/cpi" score --warehouse "$wh" || rc=$?
	if [[ $rc -ne 0 ]]; then
		tail -n 20 "$lp.score.log" >&2
		die "cpi score exited $rc: see $lp.score.log"
	fi
	local s1 k1 u1 y1 s2 k2 u2 y2
	read -r s1 k1 u1 y1 <"$lp.ingest.time"
	read -r s2 k2 u2 y2 <"$lp.score.time"
	"$workdir/cpi" tables --warehouse "$wh" >"$lp.tables.log" 2>&1 || die "cpi tables failed: see $lp.tables.log"
	local resp part scores
	resp=$(table_rows "$lp.tables.log" responses)
	part=$(table_rows "$lp.tables.log" participants)
	scores=$(table_rows "$lp.tables.log" scores)
	echo "  cpi ingest: ${s1} s, $((k1 / 1024)) MiB; cpi score: ${s2} s, $((k2 / 1024)) MiB" >&2
	awk -v s1="$s1" -v s2="$s2" -v k1="$k1" -v k2="$k2" -v r="$resp" -v p="$part" -v sc="$scores" -v c="$u1 $y1 $u2 $y2" \
		'BEGIN { k = k1 > k2 ? k1 : k2; split(c, x, " "); printf "%.2f %.0f %s %s %s %.2f\n", s1 + s2, k / 1024, r, p, sc, x[1] + x[2] + x[3] + x[4] }'
}

# run_rest WAREHOUSE LOGPREFIX: the stages after score, in the warehouse
# run_cpi left (cpi fidelity, cpi compare, cpi report fidelity --all, cpi
# report study), each under GNU time. Prints "seconds peak_MiB" for each,
# in that order, on one line.
run_rest() {
	local wh=$1 lp=$2 out="" name rc s k u y
	local -a stages=(fidelity compare report-fidelity report-study)
	for name in "${stages[@]}"; do
		local -a cmd
		case $name in
		fidelity) cmd=(fidelity --warehouse "$wh") ;;
		compare) cmd=(compare --warehouse "$wh") ;;
		report-fidelity) cmd=(report fidelity --all --warehouse "$wh" --out-dir "$wh.reports") ;;
		report-study) cmd=(report study --warehouse "$wh" --out "$wh.reports/study-report.html") ;;
		esac
		mkdir -p "$wh.reports"
		rc=0
		timed "$lp.$name.log" "$lp.$name.time" "$workdir/cpi" "${cmd[@]}" || rc=$?
		if [[ $rc -ne 0 ]]; then
			tail -n 20 "$lp.$name.log" >&2
			die "cpi ${cmd[*]} exited $rc: see $lp.$name.log"
		fi
		read -r s k u y <"$lp.$name.time"
		out+="$s $((k / 1024)) "
	done
	rm -rf "$wh.reports"
	echo "${out% }"
}

# run_whole IN WAREHOUSE LOGPREFIX: the whole `cpi run` (every stage, as
# the study team runs it) into a fresh warehouse, under /usr/bin/time -v.
# Prints "seconds peak_MiB cpu_seconds". Exit status 3 (something
# rejected) is accepted and reported in the log.
run_whole() {
	local in=$1 wh=$2 lp=$3 rc=0
	rm -rf "$wh"
	/usr/bin/time -v -o "$lp.run.time" "$workdir/cpi" run --warehouse "$wh" --inbox "$in" >"$lp.run.log" 2>&1 || rc=$?
	if [[ $rc -ne 0 && $rc -ne 3 ]]; then
		tail -n 20 "$lp.run.log" >&2
		die "cpi run exited $rc: see $lp.run.log"
	fi
	[[ $rc -eq 3 ]] && echo "  note: cpi run exited 3 (rows rejected or files quarantined): see $lp.run.log" >&2
	awk -F': ' '
		/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i] }
		/Maximum resident set size/ { k = $2 }
		/User time \(seconds\)/ { u = $2 }
		/System time \(seconds\)/ { y = $2 }
		END { printf "%.2f %.0f %.2f\n", s, k / 1024, u + y }' "$lp.run.time"
}

# table_rows LOG NAME: the row count `cpi tables` gives for a table.
table_rows() {
	local n
	n=$(sed -n "s/^$2 — \([0-9]*\) rows.*/\1/p" "$1")
	echo "${n:-?}"
}

# median: the median of the numbers on stdin, one per line.
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# positive_int NAME VALUE fails unless VALUE is a positive integer.
positive_int() {
	[[ $2 =~ ^[1-9][0-9]*$ ]] || { echo "bench: $1 must be a positive integer, not '$2'" >&2; exit 2; }
}
