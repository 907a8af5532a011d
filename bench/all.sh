#!/usr/bin/env bash
# Runs every side-by-side benchmark of the project, one after the other,
# each bounded in time, and prints one table of the figures they report
# (their BENCH result lines, see bench/README.md): for each figure the
# peer, the command, the number of alternating runs, median and min–max on
# both sides, the speed-up ratio (above 1: xpboot is better) and a verdict
# against the goal the project claims: "meets", "misses", or "noisy" when
# the runs spread wider than the distance between the ratio and the goal
# (the figure cannot be claimed either way from this run). The load
# average is printed before and after; run it on a quiet machine.
#
#   sudo bench/all.sh                 # everything (root: iSCSI and boot benchmarks)
#   ONLY="hive image-put" bench/all.sh
#   BUDGET=900 bench/all.sh           # seconds for the whole run (default 1740)
#   KEEP=1 bench/all.sh               # keep every benchmark's log
#   XPBOOT=/path/to/xpboot bench/all.sh  # use this binary instead of building one
#
# Benchmarks and the parameters used here (each script's own defaults are
# larger; override with the variables the script documents):
#   hive       bench/hive/run.sh         RUNS=9
#   convert    bench/convert/run.sh      SIZE_GIB=5 RUNS=3
#   capture    bench/capture/run.sh      RUNS=3
#   image-put  bench/image-put.sh        FILES=800 RUNS=3 (mcopy is quadratic: 4,000 files take it ~1,000 s a run)
#   ntfs-put   bench/ntfs/put.sh         (when present)
#   iscsi      bench/iscsi/bench.sh      SECS=5 RUNS=3 (root)
#   boot       bench/serve/boot.sh       RUNS=3 (root)
#   overlay    bench/serve/overlay.sh    SECS=3 RUNS=3 (root)
#   iso-NAME   bench/iso/NAME.sh         (each one present)
# A benchmark that is absent, needs root, lacks a tool (exit status 2) or
# runs out of time is listed as skipped with the reason.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUDGET=${BUDGET:-1740}
WORK=$(mktemp -d /tmp/xpboot-all.XXXXXX)
cleanup() {
	if [ -n "${KEEP:-}" ]; then
		echo "# logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
START=$(date +%s)
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

echo "# bench/all.sh: $(date -u +%FT%TZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+changes'), $(nproc) CPUs"
echo "# load average before: $(loadavg)"
if [ -z "${XPBOOT:-}" ]; then
	echo "# building xpboot"
	(cd "$ROOT" && CGO_ENABLED=0 go build -tags urfave_cli_no_docs -o "$WORK/xpboot" ./cmd/xpboot) || { echo "bench/all.sh: build failed" >&2; exit 1; }
	XPBOOT=$WORK/xpboot
fi
export XPBOOT # the scripts that take a binary use this one

# name|script|time cap in seconds|root|environment
LIST=(
	"hive|bench/hive/run.sh|240|no|RUNS=9"
	"convert|bench/convert/run.sh|480|no|SIZE_GIB=5 RUNS=3"
	"capture|bench/capture/run.sh|600|no|RUNS=3"
	"image-put|bench/image-put.sh|300|no|FILES=800 RUNS=3"
	"ntfs-put|bench/ntfs/put.sh|240|yes|RUNS=3"
	"iscsi|bench/iscsi/bench.sh|300|yes|SECS=5 RUNS=3"
	"boot|bench/serve/boot.sh|420|yes|RUNS=3"
	"overlay|bench/serve/overlay.sh|300|yes|SECS=3 RUNS=3"
	"lab|bench/serve/lab.sh|240|yes|CLIENTS=16 ROUNDS=1"
)
for s in "$ROOT"/bench/iso/*.sh; do
	[ -e "$s" ] && LIST+=("iso-$(basename "$s" .sh)|bench/iso/$(basename "$s")|180|no|")
done

SKIPS=()
: >"$WORK/results"
for entry in "${LIST[@]}"; do
	IFS='|' read -r name script cap root envs <<<"$entry"
	if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
		continue
	fi
	if [ ! -f "$ROOT/$script" ]; then
		SKIPS+=("$name: $script is not there (yet)")
		continue
	fi
	if [ "$root" = yes ] && [ "$(id -u)" != 0 ]; then
		SKIPS+=("$name: needs root")
		continue
	fi
	left=$((BUDGET - ($(date +%s) - START)))
	if [ "$left" -lt 30 ]; then
		SKIPS+=("$name: out of the time budget (BUDGET=$BUDGET s)")
		continue
	fi
	limit=$((cap < left ? cap : left))
	echo "# $name: $envs $script (at most $limit s; load average $(loadavg))"
	t0=$(date +%s)
	# shellcheck disable=SC2086
	(cd "$ROOT" && env $envs timeout --kill-after=15 "$limit" bash "$script") >"$WORK/$name.log" 2>&1
	rc=$?
	t1=$(date +%s)
	lines=$(grep '^BENCH ' "$WORK/$name.log" || true)
	if [ -n "$lines" ]; then
		while read -r l; do
			echo "$l cmd=$(echo "$envs $script" | sed 's/^ *//; s/ /,/g') seconds=$((t1 - t0))" >>"$WORK/results"
		done <<<"$lines"
	fi
	case $rc in
	0) ;;
	124 | 137) SKIPS+=("$name: stopped after $limit s (time cap)") ;;
	2) SKIPS+=("$name: not run: $(grep -v '^#' "$WORK/$name.log" | tail -1)") ;;
	*) SKIPS+=("$name: failed (exit $rc): $(tail -1 "$WORK/$name.log")") ;;
	esac
	if [ "$rc" = 0 ] && [ -z "$lines" ]; then
		SKIPS+=("$name: printed no BENCH line (see bench/README.md)")
	fi
done

echo
echo "# load average after: $(loadavg); $(($(date +%s) - START)) s in all"
awk '
function num(s) { return s + 0 }
{
	delete v
	for (i = 2; i <= NF; i++) { k = $i; sub(/=.*/, "", k); x = $i; sub(/^[^=]*=/, "", x); v[k] = x }
	r = num(v["ratio"]); goal = v["goal"]
	xs = num(v["xpboot_median"]) > 0 ? (num(v["xpboot_max"]) - num(v["xpboot_min"])) / num(v["xpboot_median"]) : 1
	ps = num(v["peer_median"]) > 0 ? (num(v["peer_max"]) - num(v["peer_min"])) / num(v["peer_median"]) : 1
	spread = xs + ps
	if (goal == "-" || goal == "") verdict = "info"
	else {
		margin = r / num(goal) - 1; if (margin < 0) margin = -margin
		if (spread > margin) verdict = "noisy"
		else if (r >= num(goal)) verdict = "meets"
		else verdict = "misses"
	}
	cmd = v["cmd"]; gsub(/,/, " ", cmd) # spaces were written as commas
	printf "| %s | %s | `%s` | %s | %s %s (%s–%s) | %s %s (%s–%s) | %.2f× | %s | %s (spread %.0f%%) |\n",
		v["figure"], v["peer"], cmd, v["runs"], v["xpboot_median"], v["unit"], v["xpboot_min"], v["xpboot_max"],
		v["peer_median"], v["unit"], v["peer_min"], v["peer_max"], r, (goal == "-" ? "none" : goal "×"), verdict, spread * 100
}
BEGIN {
	print "| figure | peer | command | runs | xpboot median (min–max) | peer median (min–max) | ratio | goal | verdict |"
	print "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
}' "$WORK/results"
echo
echo "ratio: speed-up of xpboot over the peer from the medians (peer/xpboot for times, xpboot/peer for rates)."
echo "noisy: the relative spreads (max-min)/median of both sides add up to more than |ratio/goal - 1|."
for s in "${SKIPS[@]:-}"; do
	[ -n "$s" ] && echo "skipped: $s"
done
echo
echo "# result lines:"
cat "$WORK/results"
