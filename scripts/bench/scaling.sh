#!/usr/bin/env bash
# Scaling benchmark (issues 7 and 14): cpi ingest + cpi score, and the
# whole cpi run, on the canonical synthetic study at two sizes, for the
# linearity and bounded-memory targets.
#
#   scripts/bench/scaling.sh [--small N] [--large N] [--repeat K] [--workdir DIR] [--cpi BIN] [--no-run]
#
# Defaults: 100,000 and 1,000,000 participants, 1 run each (K runs: medians).
# Builds cpi (or takes the binary BIN), writes each study once (reused by a
# later run, and shared with national.sh when the workdir is the same), runs
# cpi ingest into a fresh warehouse then cpi score under GNU time, and
# prints the wall and CPU seconds and peak RSS at each size, the time ratio large/small
# against size ratio × 1.1 (10× participants ≤ 11× time), the RSS ratio
# (within 10%) and the 500 MiB bound. Then (unless --no-run) the whole
# `cpi run` into a fresh warehouse at each size under /usr/bin/time -v: its
# wall time and peak RSS, the peak ratio large/small (target: within 15%)
# and the 500 MiB bound. Everything goes under DIR (default
# /tmp/cpi-bench).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

small=100000
large=1000000
repeat=1
workdir=/tmp/cpi-bench
whole=1
while [[ $# -gt 0 ]]; do
	case $1 in
	--small) small=${2:?--small N}; shift 2 ;;
	--large) large=${2:?--large N}; shift 2 ;;
	--repeat) repeat=${2:?--repeat K}; shift 2 ;;
	--workdir) workdir=${2:?--workdir DIR}; shift 2 ;;
	--cpi) cpi_bin=${2:?--cpi BIN}; shift 2 ;;
	--no-run) whole=0; shift ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "scaling.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
positive_int --small "$small"
positive_int --large "$large"
positive_int --repeat "$repeat"
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)

need_time
machine
build_cpi

declare -A secs mib rows cpus rsecs rmib
for n in "$small" "$large"; do
	in=$workdir/in-$n
	synth_once "$n" "$in"
	runs=$workdir/scaling-$n
	rm -rf "$runs"
	mkdir -p "$runs"
	: >"$runs/cpi.tsv"
	for ((i = 1; i <= repeat; i++)); do
		echo "participants $n, run $i/$repeat" >&2
		read -r s m resp part scores cpu < <(run_cpi "$in" "$workdir/warehouse-scaling" "$runs/cpi-$i")
		printf '%s\t%s\t%s\t%s\n' "$s" "$m" "$resp" "$cpu" >>"$runs/cpi.tsv"
		echo "  cpi ingest+score at $n: ${s} s (CPU ${cpu} s), peak ${m} MiB; responses $resp rows ($(load))"
	done
	if [[ $whole -eq 1 ]]; then
		: >"$runs/run.tsv"
		for ((i = 1; i <= repeat; i++)); do
			read -r ws wm wc < <(run_whole "$in" "$workdir/warehouse-scaling-run" "$runs/cpi-$i")
			printf '%s\t%s\t%s\n' "$ws" "$wm" "$wc" >>"$runs/run.tsv"
			echo "  cpi run (whole) at $n: ${ws} s (CPU ${wc} s), peak ${wm} MiB ($(load))"
		done
		rsecs[$n]=$(cut -f1 "$runs/run.tsv" | median)
		rmib[$n]=$(cut -f2 "$runs/run.tsv" | median)
		rm -rf "$workdir/warehouse-scaling-run"
	fi
	secs[$n]=$(cut -f1 "$runs/cpi.tsv" | median)
	mib[$n]=$(cut -f2 "$runs/cpi.tsv" | median)
	rows[$n]=$(cut -f3 "$runs/cpi.tsv" | sort -u | paste -sd/)
	cpus[$n]=$(cut -f4 "$runs/cpi.tsv" | median)
done
rm -rf "$workdir/warehouse-scaling"

echo
{
	echo "scaling: cpi ingest + score, median of $repeat; $(load)"
	printf '%-14s %10s %10s %14s %16s\n' "participants" "seconds" "CPU s" "peak RSS MiB" "responses rows"
	printf '%-14s %10s %10s %14s %16s\n' "$small" "${secs[$small]}" "${cpus[$small]}" "${mib[$small]}" "${rows[$small]}"
	printf '%-14s %10s %10s %14s %16s\n' "$large" "${secs[$large]}" "${cpus[$large]}" "${mib[$large]}" "${rows[$large]}"
	awk -v n1="$small" -v n2="$large" -v s1="${secs[$small]}" -v s2="${secs[$large]}" -v m1="${mib[$small]}" -v m2="${mib[$large]}" \
		-v c1="${cpus[$small]}" -v c2="${cpus[$large]}" 'BEGIN {
		size = n2 / n1; t = s2 / s1; m = m2 / m1
		printf "time ratio %.2f for %.0fx the participants (target <= %.1f): %s (CPU time ratio %.2f)\n", t, size, 1.1 * size, (t <= 1.1 * size ? "met" : "NOT met"), c2 / c1
		printf "peak RSS ratio %.2f (target within 10%%: 0.90 to 1.10): %s\n", m, (m >= 0.9 && m <= 1.1 ? "met" : "NOT met")
		printf "peak RSS at %d under 500 MiB: %s\n", n2, (m2 < 500 ? "met" : "NOT met")
	}'
	if [[ $whole -eq 1 ]]; then
		echo
		echo "scaling: the whole cpi run, median of $repeat"
		printf '%-14s %10s %14s\n' "participants" "seconds" "peak RSS MiB"
		printf '%-14s %10s %14s\n' "$small" "${rsecs[$small]}" "${rmib[$small]}"
		printf '%-14s %10s %14s\n' "$large" "${rsecs[$large]}" "${rmib[$large]}"
		awk -v n2="$large" -v m1="${rmib[$small]}" -v m2="${rmib[$large]}" 'BEGIN {
			m = m2 / m1
			printf "cpi run peak RSS ratio %.2f (target within 15%%: 0.85 to 1.15): %s\n", m, (m >= 0.85 && m <= 1.15 ? "met" : "NOT met")
			printf "cpi run peak RSS at %d under 500 MiB: %s\n", n2, (m2 < 500 ? "met" : "NOT met")
		}'
	fi
} | tee "$workdir/scaling-summary.txt"
