#!/usr/bin/env bash
# xpboot's hive editor against hivex, whole processes side by side on the
# same generated 10 MB hive (1.5, 10,000 keys, 60,000 values; written by
# TestWriteBenchFiles in hive/bench_test.go):
#
#   hive-edit  1,000 key creations + 10,000 value sets, then save:
#              `xpboot hive import HIVE edit.reg` against
#              `hivexsh -w -f edit.hivexsh HIVE` followed by `sync HIVE`
#              (xpboot's save is durable; hivex writes without fsync).
#   hive-set   one REG_DWORD set in an existing key: `xpboot hive set`
#              against `hivexsh -w` (setval + commit), no fsync for hivex.
#   hive-get   reading one value: `xpboot hive get` against `hivexget`
#              (informational: no goal is claimed).
#
# Each run starts from a fresh copy of the hive, flushed to disk before
# the clock starts. Runs alternate (xpboot first in odd rounds, hivex
# first in even ones) so both see the same machine load. Prints each
# round, a summary and BENCH result lines (bench/README.md); the claimed
# goal is xpboot at most half of hivex's time (ratio ≥ 2).
#
#   bench/hive/run.sh            # RUNS=9
#   RUNS=5 XPBOOT=/path/to/xpboot bench/hive/run.sh
#
# Needs go, libhivex-bin (hivexsh, hivexget), coreutils sync with file
# arguments. The in-process comparison (no process start-up on xpboot's
# side) is `XPBOOT_BENCH=1 go test -run TestSpeedVsHivex -v ./hive/`.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
bench_init hive
need_tools hivexsh hivexget sync go
RUNS=${RUNS:-9}
build_xpboot

(cd "$ROOT" && XPBOOT_BENCH_OUT=$WORK go test -count=1 -run '^TestWriteBenchFiles$' ./hive/ >/dev/null)
KEY='Top05\Mid07\Leaf03'
printf 'cd \\%s\nsetval 1\nStart\ndword:0x00000003\ncommit\n' "$KEY" >"$WORK/one.hivexsh"
H=$WORK/run.hiv

fresh() { # a fresh, flushed copy of the base hive, no log
	cp "$WORK/base.hiv" "$H"
	rm -f "$H.LOG"
	sync "$H"
}

# timed CMD...: runs CMD, prints its wall time in ms (bash's clock: no fork
# around the command).
timed() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$@" >/dev/null
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) * 1000 }'
}

hivex_edit() { hivexsh -w -f "$WORK/edit.hivexsh" "$H" && sync "$H"; }
xp_edit() { "$XP" --quiet hive import "$H" "$WORK/edit.reg"; }
hivex_set() { hivexsh -w -f "$WORK/one.hivexsh" "$H"; }
xp_set() { "$XP" --quiet hive set -t dword "$H" "$KEY" Start 3; }
hivex_get() { hivexget "$H" "\\$KEY" Value2; }
xp_get() { "$XP" --quiet hive get "$H" "$KEY" Value2; }

# verify WHO FIGURE: the result holds the edit (and xpboot's checks clean).
verify() {
	local want
	case $2 in
	edit) want=$(hivexget "$H" '\Top19\Mid24\NewKey0999' V9) ;;
	set) want=$(hivexget "$H" "\\$KEY" Start) ;;
	get) want=$("xp_get") ;;
	esac
	case $2 in
	edit) [ "$want" = "$((9 * 999))" ] || die "$1 $2: NewKey0999\\V9 is '$want'" ;;
	set) [ "$want" = 3 ] || die "$1 $2: Start is '$want'" ;;
	get) [ "$want" = "0x00000026 (38)" ] && [ "$(hivex_get)" = 38 ] || die "$1 $2: Value2 is '$want' / '$(hivex_get)'" ;;
	esac
	if [ "$1" = xpboot ]; then
		"$XP" --quiet hive check "$H" >/dev/null || die "xpboot $2: hive check failed"
	fi
}

declare -A V
for fig in edit set get; do
	V[xp,$fig]="" V[peer,$fig]=""
done
echo "# $(date -u +%FT%TZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), hivex $(dpkg-query -W -f '${Version}' libhivex-bin 2>/dev/null || echo '?'), $RUNS rounds"
for r in $(seq 1 "$RUNS"); do
	line="round $r:"
	for fig in edit set get; do
		order="xp peer"
		[ $((r % 2)) = 0 ] && order="peer xp"
		for who in $order; do
			fresh
			if [ "$who" = xp ]; then
				t=$(timed "xp_$fig")
				[ "$r" = 1 ] && verify xpboot "$fig"
			else
				t=$(timed "hivex_$fig")
				[ "$r" = 1 ] && verify hivex "$fig"
			fi
			V[$who,$fig]+=" $t"
			line+=" $fig/$who $t ms"
		done
	done
	echo "# $line"
done
echo
bench_result hive-edit hivexsh+sync ms lower 2 "${V[xp,edit]}" "${V[peer,edit]}" | tee "$WORK/edit.result"
bench_result hive-set hivexsh ms lower 2 "${V[xp,set]}" "${V[peer,set]}" | tee "$WORK/set.result"
bench_result hive-get hivexget ms lower - "${V[xp,get]}" "${V[peer,get]}" | tee "$WORK/get.result"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for fig in edit set get; do
	awk -v fig="$fig" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
		END { printf "%-9s xpboot median %s ms (%s–%s), hivex median %s ms (%s–%s): hivex/xpboot %.2f×\n",
			fig, v["xpboot_median"], v["xpboot_min"], v["xpboot_max"], v["peer_median"], v["peer_min"], v["peer_max"], v["ratio"] }' "$WORK/$fig.result"
done
