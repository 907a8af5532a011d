#!/usr/bin/env bash
# Compare xpboot's iSCSI target with Debian's tgt (tgtd) on loopback.
#
# Both serve the same page-cached raw image. Both daemons run for the whole
# script, but only one is ever under load: the runs alternate (tgt, xpboot,
# tgt, xpboot, ...), so a noisy neighbour slows both alike. Each benchmark
# runs RUNS times per target; the best run counts. Prints a table and the
# xpboot/tgt ratios.
#
#   bench/iscsi/bench.sh            # defaults: 256 MiB image, 10 s runs, 3 runs
#   SIZE_MB=512 SECS=5 RUNS=3 XPBOOT_FLAGS=--unsolicited-data bench/iscsi/bench.sh
#   WORKLOADS=write RUNS=5 bench/iscsi/bench.sh   # only some of: rand seq write
#   BASE_SERVE="/tmp/old/xpboot --log-level warn serve" bench/iscsi/bench.sh
#       # also runs an older build in the same rotation (tgt, base,
#       # xpboot, ...) and prints xpboot/base: a before/after comparison
#       # under the same conditions
#
# Needs: go, tgt (tgtd, tgtadm), libiscsi-bin (iscsi-perf), qemu-utils with
# qemu-block-extra (qemu-img with the iscsi driver). Run as root (tgtd).
# Listens on 127.0.0.1 only.
set -euo pipefail

SIZE_MB=${SIZE_MB:-256}
SECS=${SECS:-10}
RUNS=${RUNS:-3}
QEMU_COUNT=${QEMU_COUNT:-200000}
TGT_PORT=${TGT_PORT:-3271}
TGT_CTL=${TGT_CTL:-3272}
XP_PORT=${XP_PORT:-3273}
XPBOOT_FLAGS=${XPBOOT_FLAGS:-}
BASE_SERVE=${BASE_SERVE:-}
BASE_PORT=${BASE_PORT:-3274}
WORKLOADS=${WORKLOADS:-rand seq write}
IQN_TGT=iqn.2026-01.org.xpboot.bench:tgt
IQN_XP=iqn.2026-01.org.xpboot.bench:xp

# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
bench_init bench
need_tools tgtd tgtadm iscsi-perf qemu-img

# XPBOOT_SERVE overrides the serve command (e.g. an installed binary:
# XPBOOT_SERVE="xpboot --log-level warn serve").
[ -n "${XPBOOT_SERVE:-}" ] || echo "# building xpboot"
xpboot_serve

IMG=$WORK/disk.img
dd if=/dev/urandom of="$IMG" bs=1M count="$SIZE_MB" status=none
cat "$IMG" >/dev/null # page cache

# perf URL ARGS...: "iops average" of one iscsi-perf run.
perf() {
	local url=$1 v
	shift
	v=$(timeout $((SECS + 30)) iscsi-perf -t "$SECS" "$@" "$url" 2>&1 | tr '\r' '\n' |
		sed -n 's/^iops average \([0-9]*\).*/\1/p' | tail -1)
	echo "${v:-0}"
}

# qwrite URL: 4 KiB write ops/s of one qemu-img bench run.
qwrite() {
	local secs
	secs=$(timeout 300 qemu-img bench -f raw -w -d 32 -s 4k -c "$QEMU_COUNT" "$1" 2>&1 |
		sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
	awk -v c="$QEMU_COUNT" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%d", c / s; else print 0 }'
}

one() { # workload URL
	case $1 in
	rand) perf "$2" -r -m 32 -b 8 ;;
	seq) perf "$2" -m 16 -b 2048 ;;
	write) qwrite "$2" ;;
	esac
}

echo "# tgt (tgtd $(tgtd -V 2>/dev/null || true)) on 127.0.0.1:$TGT_PORT"
tgt_start "$TGT_CTL" 127.0.0.1 "$TGT_PORT" "$IMG" "$IQN_TGT" "$WORK/tgtd.log"
TGT_URL="iscsi://127.0.0.1:$TGT_PORT/$IQN_TGT/1"

echo "# xpboot serve $XPBOOT_FLAGS on 127.0.0.1:$XP_PORT"
# shellcheck disable=SC2086
$XPBOOT_SERVE --image "$IMG" --iqn "$IQN_XP" --listen "127.0.0.1:$XP_PORT" $XPBOOT_FLAGS >"$WORK/xpboot.log" 2>&1 &
XP_PID=$!
track "$XP_PID"
wait_port 127.0.0.1 "$XP_PORT"
XP_URL="iscsi://127.0.0.1:$XP_PORT/$IQN_XP/0"

BASE_URL=
if [ -n "$BASE_SERVE" ]; then
	echo "# base: $BASE_SERVE $XPBOOT_FLAGS on 127.0.0.1:$BASE_PORT"
	# Its own copy: serve locks the image it serves.
	cp "$IMG" "$WORK/base.img"
	cat "$WORK/base.img" >/dev/null
	# shellcheck disable=SC2086
	$BASE_SERVE --image "$WORK/base.img" --iqn "$IQN_XP" --listen "127.0.0.1:$BASE_PORT" $XPBOOT_FLAGS >"$WORK/base.log" 2>&1 &
	BASE_PID=$!
	track "$BASE_PID"
	wait_port 127.0.0.1 "$BASE_PORT"
	BASE_URL="iscsi://127.0.0.1:$BASE_PORT/$IQN_XP/0"
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
declare -A NAME=(
	[rand]="iscsi-perf -r -m 32 -b 8 (4 KiB rand read IOPS)"
	[seq]="iscsi-perf -m 16 -b 2048 (1 MiB seq read IOPS)"
	[write]="qemu-img bench -w -d 32 -s 4k (write ops/s)"
)
declare -A TBEST XBEST BBEST
declare -A TV=() XV=() # every run, for the result lines
for w in $WORKLOADS; do
	[ -n "${NAME[$w]:-}" ] || die "unknown workload $w (rand, seq, write)"
	tb=0 xb=0 bb=0
	for i in $(seq 1 "$RUNS"); do
		t=$(one "$w" "$TGT_URL")
		b=0
		if [ -n "$BASE_URL" ]; then
			b=$(one "$w" "$BASE_URL")
		fi
		x=$(one "$w" "$XP_URL")
		echo "# $w run $i: tgt $t${BASE_URL:+ base $b} xpboot $x"
		TV[$w]+=" $t" XV[$w]+=" $x"
		[ "$t" -gt "$tb" ] && tb=$t
		[ "$b" -gt "$bb" ] && bb=$b
		[ "$x" -gt "$xb" ] && xb=$x
	done
	TBEST[$w]=$tb XBEST[$w]=$xb BBEST[$w]=$bb
done

tgt_stop
kill "$XP_PID"
wait "$XP_PID" 2>/dev/null || true
if [ -n "$BASE_URL" ]; then
	kill "$BASE_PID"
	wait "$BASE_PID" 2>/dev/null || true
fi

echo
echo "best of $RUNS alternating runs, ${SECS}s each (qemu-img: $QEMU_COUNT requests), ${SIZE_MB} MiB page-cached image, $(nproc) CPUs"
if [ -z "$BASE_URL" ]; then
	printf '%-44s %12s %12s %8s\n' benchmark tgt xpboot ratio
	for w in $WORKLOADS; do
		printf '%-44s %12s %12s %8s\n' "${NAME[$w]}" "${TBEST[$w]}" "${XBEST[$w]}" "$(ratio "${XBEST[$w]}" "${TBEST[$w]}")"
	done
else
	printf '%-44s %12s %12s %12s %8s %8s\n' benchmark tgt base xpboot xp/tgt xp/base
	for w in $WORKLOADS; do
		printf '%-44s %12s %12s %12s %8s %8s\n' "${NAME[$w]}" "${TBEST[$w]}" "${BBEST[$w]}" "${XBEST[$w]}" \
			"$(ratio "${XBEST[$w]}" "${TBEST[$w]}")" "$(ratio "${XBEST[$w]}" "${BBEST[$w]}")"
	done
fi

# Result lines for bench/all.sh (bench/README.md).
declare -A UNIT=([rand]=IOPS [seq]=IOPS [write]=ops/s)
for w in $WORKLOADS; do
	bench_result "iscsi-$w" tgt "${UNIT[$w]}" higher 1 "${XV[$w]}" "${TV[$w]}"
done
