#!/usr/bin/env bash
# The cost of `xpboot serve --overlay-dir` (per-client copy-on-write VMDK
# deltas) against serving the same VMDK base directly, with the throughput
# workloads of bench/iscsi/bench.sh, on loopback. A raw copy of the same data
# is served too, for reference.
#
#   bench/serve/overlay.sh                 # 256 MiB image, 5 s runs, 5 rounds
#   SIZE_MB=512 SECS=10 RUNS=3 bench/serve/overlay.sh
#
# Workloads, each on all three servers: iscsi-perf 4 KiB random reads at
# QD32 and 1 MiB sequential reads (QD16), twice: through an empty overlay
# (the client's overlay deleted before each run, so every read goes to the
# base) and through a full one (after a sequential 1 MiB write at QD1 over
# the whole disk into a fresh overlay, so its grains lie in disk order;
# that write is a row too). Then qemu-img bench 4 KiB random writes at
# QD32, twice: into a fresh overlay (deleted just before, so each write
# allocates grains and copies the rest of each 64 KiB grain from the base)
# and into an overlay that already holds those grains (the fresh run's).
# Without overlays, reads of both kinds read the same image, and the write
# rows write into the served image itself.
#
# An overlay is opened at login and closed when the session ends: every
# iscsi-perf and qemu-img run is one session, so the client's overlay file
# is deleted between runs, with no session open. All runs use the same
# initiator name (CLIENT), hence the same overlay file.
#
# The three servers (raw, VMDK, VMDK with --overlay-dir over a copy of the
# VMDK) run side by side, idle unless measured, and every round measures
# each workload on all three back to back, in a rotating order, so that a
# busy machine's load falls on all of them alike. The table shows the best
# of RUNS rounds and the median of the per-round overlay/VMDK ratios.
#
# Needs: go, libiscsi-bin (iscsi-perf), qemu-utils with qemu-block-extra
# (qemu-img with the iscsi driver). Listens on 127.0.0.1 only.
set -euo pipefail

SIZE_MB=${SIZE_MB:-256}
SECS=${SECS:-5}
RUNS=${RUNS:-5}
QEMU_COUNT=${QEMU_COUNT:-50000}
PORT=${PORT:-3275} # and the next two
IQN=iqn.2026-01.org.xpboot.bench:overlay
CLIENT=iqn.2026-01.org.xpboot.bench:client # the initiator name of every run

# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
bench_init bench overlaybench
need_tools go iscsi-perf qemu-img

echo "# building xpboot and a ${SIZE_MB} MiB image (raw and VMDK)"
build_xpboot
dd if=/dev/urandom of="$WORK/disk.img" bs=1M count="$SIZE_MB" status=none
"$XP" --quiet image convert --to vmdk "$WORK/disk.img" "$WORK/base.vmdk" >/dev/null
cp "$WORK/base.vmdk" "$WORK/ovbase.vmdk" # the plain server locks base.vmdk for writing
mkdir -p "$WORK/overlays"
cat "$WORK/disk.img" "$WORK/base.vmdk" "$WORK/ovbase.vmdk" >/dev/null # page cache

NAMES=(raw vmdk overlay)
start() { # index serve-args...
	local i=$1
	shift
	"$XP" --log-level warn serve --iqn "$IQN" --listen "127.0.0.1:$((PORT + i))" "$@" >"$WORK/${NAMES[$i]}.log" 2>&1 &
	track "$!"
	wait_port 127.0.0.1 $((PORT + i))
	echo "# ${NAMES[$i]}: xpboot serve $* (port $((PORT + i)))"
}
start 0 --image "$WORK/disk.img"
start 1 --image "$WORK/base.vmdk"
start 2 --image "$WORK/ovbase.vmdk" --overlay-dir "$WORK/overlays"

url() { echo "iscsi://127.0.0.1:$((PORT + $1))/$IQN/0"; }
# the same LUN for qemu-img --image-opts, logging in as CLIENT
qopts() { echo "driver=iscsi,transport=tcp,portal=127.0.0.1:$((PORT + $1)),target=$IQN,lun=0,initiator-name=$CLIENT"; }
# CLIENT's overlay file (serve.go overlayName: lower case, '_' for others)
OVERLAY=$WORK/overlays/$(printf '%s' "$CLIENT" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9.-]/_/g').vmdk

perf() { # index args...: iops of one iscsi-perf run
	local u v
	u=$(url "$1")
	shift
	v=$(timeout $((SECS + 30)) iscsi-perf -i "$CLIENT" -t "$SECS" "$@" "$u" 2>&1 | tr '\r' '\n' |
		sed -n 's/^iops average \([0-9]*\).*/\1/p' | tail -1)
	echo "${v:-0}"
}

qbench() { # index count args...: ops/s of one qemu-img bench -w run of count requests
	local i=$1 c=$2 secs
	shift 2
	secs=$(timeout 300 qemu-img bench -w -c "$c" "$@" --image-opts "$(qopts "$i")" 2>&1 |
		sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p')
	awk -v c="$c" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%d", c / s; else print 0 }'
}
qwrite() { qbench "$1" "$QEMU_COUNT" -d 32 -s 4k; } # index: 4 KiB random write ops/s
# index: 1 MiB sequential writes at QD1 over the whole disk (MiB/s), pattern
# 0xa5 so that no grain is all zeros
qfill() { qbench "$1" "$SIZE_MB" -d 1 -s 1M --pattern=165; }

# reset: delete CLIENT's overlay. No session is open between runs (each run
# logs out when it ends); the pause lets the server finish closing it.
reset() {
	sleep 0.2
	rm -f "$OVERLAY"
}

# R[workload,server] collects one figure per round.
declare -A R
WORKLOADS=(rand0 seq0 fill rand1 seq1 wfresh wpresent)
for r in $(seq 1 "$RUNS"); do
	order=$(( (r - 1) % 3 ))
	for w in "${WORKLOADS[@]}"; do
		for k in 0 1 2; do
			i=$(( (k + order) % 3 ))
			case $w in
			rand0 | seq0 | fill | wfresh) [ "$i" = 2 ] && reset ;;
			esac
			case $w in
			rand0 | rand1) v=$(perf "$i" -r -m 32 -b 8) ;;
			seq0 | seq1) v=$(perf "$i" -m 16 -b 2048) ;;
			fill) v=$(qfill "$i") ;;
			wfresh | wpresent) v=$(qwrite "$i") ;;
			esac
			R[$w,$i]="${R[$w,$i]:-} $v"
		done
		if [ "$w" = seq0 ] && [ -e "$OVERLAY" ]; then
			# reads allocate nothing: the overlay must still be empty
			echo "# round $r: overlay after the empty-overlay reads: $(du -k "$OVERLAY" | cut -f1) KiB allocated"
		fi
		if [ "$w" = seq1 ]; then
			echo "# round $r: full overlay: $(du -k "$OVERLAY" | cut -f1) KiB allocated"
		fi
	done
	line="# round $r raw/vmdk/overlay:"
	for w in "${WORKLOADS[@]}"; do
		line+=" $w ${R[$w,0]##* }/${R[$w,1]##* }/${R[$w,2]##* }"
	done
	echo "$line"
done
ls -l "$WORK"/overlays/ | sed 's/^/# /'

best() { printf '%s\n' $1 | sort -n | tail -1; }
# median of the per-round ratios overlay/vmdk
medratio() {
	paste <(printf '%s\n' $1) <(printf '%s\n' $2) |
		awk '{ if ($2 > 0) print $1 / $2 }' | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "best of $RUNS interleaved rounds, ${SECS}s each (qemu-img: $QEMU_COUNT requests), ${SIZE_MB} MiB page-cached image, $(nproc) CPUs"
printf '%-48s %9s %9s %9s %14s %14s\n' benchmark raw vmdk overlay "overlay/vmdk" "median ratio"
row() { # label workload
	local a b c
	a=$(best "${R[$2,0]}") b=$(best "${R[$2,1]}") c=$(best "${R[$2,2]}")
	printf '%-48s %9s %9s %9s %14s %14s\n' "$1" "$a" "$b" "$c" "$(ratio "$c" "$b")" "$(medratio "${R[$2,2]}" "${R[$2,1]}")"
}
row "4 KiB rand read IOPS, empty overlay" rand0
row "1 MiB seq read IOPS, empty overlay" seq0
row "1 MiB seq write MiB/s, QD1, whole disk (fill)" fill
row "4 KiB rand read IOPS, full overlay (in order)" rand1
row "1 MiB seq read IOPS, full overlay (in order)" seq1
row "4 KiB rand write ops/s, fresh overlay" wfresh
row "4 KiB rand write ops/s, grains present" wpresent
echo "reads: iscsi-perf -r -m 32 -b 8 / -m 16 -b 2048; fill: qemu-img bench -w -d 1 -s 1M --pattern=165 -c $SIZE_MB;"
echo "writes: qemu-img bench -w -d 32 -s 4k -c $QEMU_COUNT. Without overlays, the empty and full rows read the same image."

# Result lines for bench/all.sh (bench/README.md): the overlay against the
# same VMDK served without one (no claim: the cost of the overlay).
declare -A UNIT=([rand0]=IOPS [seq0]=IOPS [fill]=MiB/s [rand1]=IOPS [seq1]=IOPS [wfresh]=ops/s [wpresent]=ops/s)
for w in "${WORKLOADS[@]}"; do
	bench_result "overlay-$w" xpboot-vmdk "${UNIT[$w]:-ops/s}" higher - "${R[$w,2]}" "${R[$w,1]}"
done
