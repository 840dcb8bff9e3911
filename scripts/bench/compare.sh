#!/usr/bin/env bash
# cpi compare at national scale (issue 14): the study's analysis plan, and
# the same plan without the ITT analyses (itt_mi, itt_delta), timed on
# copies of one warehouse.
#
#   scripts/bench/compare.sh --warehouse W [--repeat K] [--workdir DIR] [--cpi BIN]
#
# W is a warehouse that cpi run has built (national.sh leaves one at
# DIR/warehouse-run). W is copied twice into DIR, never written. The plan
# without ITT is schemas/study.yaml with itt_mi and itt_delta taken out of
# analysis.analyses. Its copy is re-scored with that study first, outside
# the timing, because the study's hash is in every table. Then K times each
# (default 3), alternating, `cpi compare` runs on its copy under GNU time.
# It prints wall time, CPU (user + system) and peak RSS, and their medians.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

repeat=3
workdir=/tmp/cpi-bench
wh=
while [[ $# -gt 0 ]]; do
	case $1 in
	--warehouse) wh=${2:?--warehouse W}; shift 2 ;;
	--repeat) repeat=${2:?--repeat K}; shift 2 ;;
	--workdir) workdir=${2:?--workdir DIR}; shift 2 ;;
	--cpi) cpi_bin=${2:?--cpi BIN}; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
[[ -n $wh && -d $wh/tables ]] || die "--warehouse W: a warehouse cpi run has built"
positive_int --repeat "$repeat"
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)
need_time
machine
build_cpi

study=$workdir/study-no-itt.yaml
sed 's/^\(  analyses: \[.*\)itt_mi, itt_delta, /\1/' "$repo/schemas/study.yaml" >"$study"
grep -q '^  analyses: \[.*itt_' "$study" && die "could not take itt_mi and itt_delta out of $repo/schemas/study.yaml"
runs=$workdir/compare-runs
rm -rf "$runs" "$workdir/compare-plan" "$workdir/compare-no-itt"
mkdir -p "$runs"
cp -a "$wh" "$workdir/compare-plan"
cp -a "$wh" "$workdir/compare-no-itt"
for st in score fidelity; do
	"$workdir/cpi" "$st" --warehouse "$workdir/compare-no-itt" --study "$study" >"$runs/no-itt.$st.log" 2>&1 ||
		die "cpi $st --study on the copy failed: see $runs/no-itt.$st.log"
done

: >"$runs/plan.tsv"
: >"$runs/no-itt.tsv"
for ((i = 1; i <= repeat; i++)); do
	echo "run $i/$repeat ($(load))" >&2
	for kind in plan no-itt; do
		args=(compare --warehouse "$workdir/compare-$kind")
		[[ $kind == no-itt ]] && args+=(--study "$study")
		timed "$runs/$kind-$i.log" "$runs/$kind-$i.time" "$workdir/cpi" "${args[@]}" ||
			die "cpi ${args[*]} failed: see $runs/$kind-$i.log"
		read -r s k u y <"$runs/$kind-$i.time"
		cpu=$(awk -v u="$u" -v y="$y" 'BEGIN { printf "%.2f", u + y }')
		printf '%s\t%s\t%s\n' "$s" "$cpu" "$((k / 1024))" >>"$runs/$kind.tsv"
		echo "  cpi compare ($kind): ${s} s (CPU ${cpu} s), peak $((k / 1024)) MiB"
	done
done
echo
{
	echo "cpi compare, median of $repeat; $(load)"
	printf '%-34s %10s %10s %14s\n' "" "seconds" "CPU s" "peak RSS MiB"
	for kind in plan no-itt; do
		label="the study's plan"
		[[ $kind == no-itt ]] && label="without itt_mi and itt_delta"
		printf '%-34s %10s %10s %14s\n' "$label" "$(cut -f1 "$runs/$kind.tsv" | median)" "$(cut -f2 "$runs/$kind.tsv" | median)" "$(cut -f3 "$runs/$kind.tsv" | median)"
	done
} | tee "$runs/summary.txt"
rm -rf "$workdir/compare-plan" "$workdir/compare-no-itt"
echo "runs and logs: $runs"
