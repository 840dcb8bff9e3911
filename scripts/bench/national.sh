#!/usr/bin/env bash
# National-scale benchmark (issues 7 and 14): cpi against DuckDB on the same files.
#
#   scripts/bench/national.sh [--participants N] [--repeat K] [--workdir DIR] [--cpi BIN] [--no-run]
#
# Builds cpi (or takes the binary BIN), installs DuckDB's Node package into
# DIR (npm install, the only network use), writes the canonical synthetic study of
# N participants (default 1,000,000: five trusts, two waves, about 1.8
# million interviews and 105 million item responses) once, then K times
# each (default 3), alternating:
#   cpi     cpi ingest into a fresh warehouse, then cpi score: the sum of the
#           two wall times, the larger of the two peak RSS; then, in the
#           same warehouse, cpi fidelity, cpi compare, cpi report fidelity
#           --all and cpi report study, each timed on its own (the
#           per-stage times and peaks);
#   cpi run the whole `cpi run` (every stage) into a fresh warehouse, under
#           /usr/bin/time -v: wall time and peak RSS (not with --no-run,
#           which times ingest + score only);
#   duckdb  scripts/duckdb/ingest_long.mjs in its own Node process: the same
#           participants CSV files read with explicit types, the item columns
#           unpivoted to the long table (study_id, wave, item, value) of the
#           interviews, written as zstd Parquet partitioned by trust. Blank
#           answers stay as nulls and only items asked at the wave are kept,
#           so its rows are those of cpi's responses table. DuckDB's
#           settings are its defaults (threads = cores).
# and prints the medians, their ratio cpi/DuckDB and the rows each wrote.
# Wall time, peak RSS and CPU time (user + system) come from GNU time
# (/usr/bin/time -f "%e %M %U %S"); the load average is printed with each
# run, since other work on the machine skews wall times.
# Everything is written under DIR (default /tmp/cpi-bench); the last run's
# warehouse and DuckDB output are left there. Smoke test:
#
#   scripts/bench/national.sh --participants 100000 --repeat 1
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

participants=1000000
repeat=3
workdir=/tmp/cpi-bench
whole=1
while [[ $# -gt 0 ]]; do
	case $1 in
	--participants) participants=${2:?--participants N}; shift 2 ;;
	--repeat) repeat=${2:?--repeat K}; shift 2 ;;
	--workdir) workdir=${2:?--workdir DIR}; shift 2 ;;
	--cpi) cpi_bin=${2:?--cpi BIN}; shift 2 ;;
	--no-run) whole=0; shift ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "national.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
positive_int --participants "$participants"
positive_int --repeat "$repeat"
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)

need_time
command -v node >/dev/null || die "node is needed (apt-get install nodejs npm)"
command -v npm >/dev/null || die "npm is needed (apt-get install npm)"
machine
build_cpi

# DuckDB's Node package, at the exact version package.json pins, installed
# into the workdir (the repository's own node_modules is left alone). No
# lock file: npm ci rejects one that lacks the other platforms' optional
# bindings (npm/cli#9846).
duck=$workdir/duckdb
mkdir -p "$duck"
cp "$repo/scripts/duckdb/package.json" "$repo/scripts/duckdb/ingest_long.mjs" "$duck/"
echo "npm install (@duckdb/node-api) in $duck" >&2
(cd "$duck" && npm install --no-audit --no-fund --loglevel=error --no-package-lock >"$duck/npm.log" 2>&1) ||
	{ tail -n 20 "$duck/npm.log" >&2; die "npm install failed: see $duck/npm.log"; }
duckver=$(cd "$duck" && node -e 'import("@duckdb/node-api").then(async ({DuckDBInstance}) => { const c = await (await DuckDBInstance.create(":memory:")).connect(); const r = await c.runAndReadAll("select version() v, current_setting(\x27threads\x27) t"); const o = r.getRowObjects()[0]; console.log(`${o.v}, threads ${o.t}`); })')
echo "duckdb:  $duckver"

in=$workdir/in-$participants
synth_once "$participants" "$in"
runs=$workdir/runs-$participants
rm -rf "$runs"
mkdir -p "$runs"

echo
echo "participants $participants, $repeat repeats each, alternating cpi / duckdb"
: >"$runs/cpi.tsv"
: >"$runs/duckdb.tsv"
: >"$runs/stages.tsv"
: >"$runs/ingest.tsv"
: >"$runs/score.tsv"
: >"$runs/run.tsv"
for ((i = 1; i <= repeat; i++)); do
	echo "run $i/$repeat ($(load))" >&2
	read -r s mib resp part scores cpu < <(run_cpi "$in" "$workdir/warehouse" "$runs/cpi-$i")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$mib" "$resp" "$part" "$scores" "$cpu" >>"$runs/cpi.tsv"
	echo "  cpi ingest+score: ${s} s (CPU ${cpu} s), peak ${mib} MiB; responses $resp rows, participants $part, scores $scores"
	for st in ingest score; do
		read -r a b _ _ <"$runs/cpi-$i.$st.time"
		printf '%s\t%s\n' "$a" "$((b / 1024))" >>"$runs/$st.tsv"
	done
	if [[ $whole -eq 1 ]]; then
		rest=$(run_rest "$workdir/warehouse" "$runs/cpi-$i")
		printf '%s\n' "$rest" | tr ' ' '\t' >>"$runs/stages.tsv"
		read -r fs fm cs_ cm_ rfs rfm rss rsm <<<"$rest"
		echo "  cpi fidelity ${fs} s ${fm} MiB; compare ${cs_} s ${cm_} MiB; report fidelity ${rfs} s ${rfm} MiB; report study ${rss} s ${rsm} MiB"
		read -r ws wm wc < <(run_whole "$in" "$workdir/warehouse-run" "$runs/cpi-$i")
		printf '%s\t%s\t%s\n' "$ws" "$wm" "$wc" >>"$runs/run.tsv"
		echo "  cpi run (whole): ${ws} s (CPU ${wc} s), peak ${wm} MiB"
	fi

	rm -rf "$workdir/duckdb-long"
	rc=0
	(cd "$duck" && timed "$runs/duckdb-$i.log" "$runs/duckdb-$i.time" node ingest_long.mjs "$in" "$workdir/duckdb-long") || rc=$?
	[[ $rc -eq 0 ]] || { cat "$runs/duckdb-$i.log" >&2; die "DuckDB run exited $rc"; }
	read -r ds dk du dy <"$runs/duckdb-$i.time"
	dcpu=$(awk -v u="$du" -v y="$dy" 'BEGIN { printf "%.2f", u + y }')
	drows=$(sed -n 's/.*"rows":\([0-9-]*\).*/\1/p' "$runs/duckdb-$i.log")
	printf '%s\t%s\t%s\t%s\n' "$ds" "$((dk / 1024))" "${drows:-?}" "$dcpu" >>"$runs/duckdb.tsv"
	echo "  duckdb long table: ${ds} s (CPU ${dcpu} s), peak $((dk / 1024)) MiB; rows ${drows:-?}"
done

cs=$(cut -f1 "$runs/cpi.tsv" | median)
cm=$(cut -f2 "$runs/cpi.tsv" | median)
cc=$(cut -f6 "$runs/cpi.tsv" | median)
ds=$(cut -f1 "$runs/duckdb.tsv" | median)
dm=$(cut -f2 "$runs/duckdb.tsv" | median)
dc=$(cut -f4 "$runs/duckdb.tsv" | median)
crows=$(cut -f3 "$runs/cpi.tsv" | sort -u | paste -sd/)
drows=$(cut -f3 "$runs/duckdb.tsv" | sort -u | paste -sd/)
echo
{
	echo "national benchmark: $participants participants, median of $repeat; $(load)"
	printf '%-26s %10s %10s %14s %16s\n' "" "seconds" "CPU s" "peak RSS MiB" "long-table rows"
	printf '%-26s %10s %10s %14s %16s\n' "cpi ingest + score" "$cs" "$cc" "$cm" "$crows"
	printf '%-26s %10s %10s %14s %16s\n' "duckdb (long table)" "$ds" "$dc" "$dm" "$drows"
	awk -v cs="$cs" -v ds="$ds" -v cc="$cc" -v dc="$dc" -v cm="$cm" -v dm="$dm" 'BEGIN {
		printf "%-26s %10.2f %10.2f %14.2f\n", "ratio cpi / duckdb", cs / ds, cc / dc, cm / dm
		printf "target ingest + score <= 0.40 x duckdb: %s\n", (cs / ds <= 0.4 ? "met" : "NOT met")
	}'
	if [[ $whole -eq 1 ]]; then
		echo
		echo "per stage (stage by stage in one warehouse), median of $repeat:"
		printf '%-26s %10s %14s\n' "stage" "seconds" "peak RSS MiB"
		printf '%-26s %10s %14s\n' "ingest" "$(cut -f1 "$runs/ingest.tsv" | median)" "$(cut -f2 "$runs/ingest.tsv" | median)"
		printf '%-26s %10s %14s\n' "score" "$(cut -f1 "$runs/score.tsv" | median)" "$(cut -f2 "$runs/score.tsv" | median)"
		col=1
		for name in fidelity compare "report fidelity --all" "report study"; do
			printf '%-26s %10s %14s\n' "$name" "$(cut -f$col "$runs/stages.tsv" | median)" "$(cut -f$((col + 1)) "$runs/stages.tsv" | median)"
			col=$((col + 2))
		done
		rs=$(cut -f1 "$runs/run.tsv" | median)
		rm_=$(cut -f2 "$runs/run.tsv" | median)
		rc_=$(cut -f3 "$runs/run.tsv" | median)
		echo
		printf '%-26s %10s %10s %14s\n' "" "seconds" "CPU s" "peak RSS MiB"
		printf '%-26s %10s %10s %14s\n' "cpi run (whole)" "$rs" "$rc_" "$rm_"
		awk -v rs="$rs" -v ds="$ds" -v rm="$rm_" 'BEGIN {
			printf "%-26s %10.2f\n", "ratio cpi run / duckdb", rs / ds
			printf "target cpi run <= 0.50 x duckdb: %s\n", (rs / ds <= 0.5 ? "met" : "NOT met")
			printf "target cpi run peak < 500 MiB: %s\n", (rm < 500 ? "met" : "NOT met")
		}'
	fi
	if [[ $crows != "$drows" ]]; then
		echo "note: the row counts differ (cpi responses $crows, duckdb $drows)"
	fi
} | tee "$runs/summary.txt"
echo "runs and logs: $runs"
