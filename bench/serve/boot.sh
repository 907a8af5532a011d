#!/usr/bin/env bash
# Boot time of an iPXE SAN boot: `xpboot serve --dhcp full` against tgt +
# dnsmasq serving the same disk with the same DHCP answer.
#
# In a network namespace this script creates (and always deletes), QEMU with
# Debian's iPXE ROM (e1000) boots the disk of test (a) of TestServeE2E: a boot
# sector that reads sectors 1..512 through INT 13h and prints SUM=<checksum>
# on COM1. One boot is the time from starting QEMU until that line is on
# COM1. The two servers take turns, RUNS boots each, interleaved (xpboot
# first in odd rounds, tgt first in even ones); the servers are started
# before QEMU and are not part of the time. Each round also shows when the
# DHCP lease was acknowledged (both servers' logs) and when iPXE logged into
# xpboot's target, in seconds after QEMU started.
#
#   sudo bench/serve/boot.sh             # RUNS=5
#   sudo RUNS=3 bench/serve/boot.sh
#   sudo KEEP=1 RUNS=1 bench/serve/boot.sh  # keep the servers' logs and COM1 output
#   sudo ACCEL=kvm bench/serve/boot.sh   # KVM; the default is TCG, since a
#                                        # /dev/kvm that opens can still hang guests
#
# Both sides hand out the same DHCP answer to iPXE: an address from
# .100–.110, no gateway, root-path iscsi:10.79.0.1::::IQN (tgt: LUN 1, as
# tgt keeps LUN 0 for its controller), the initiator IQN in option 203 and
# 175.176 (no ProxyDHCP wait).
#
# Needs: go, root, iproute2, qemu-system-x86, ipxe-qemu, tgt, dnsmasq-base.
set -euo pipefail

RUNS=${RUNS:-5}
TIMEOUT=${TIMEOUT:-180} # seconds per boot
ACCEL=${ACCEL:-tcg}
ROM=/usr/lib/ipxe/qemu/pxe-e1000.rom
NS=xpbboot$$
NET=10.79.0
MAC=52:54:00:79:00:01
IQN=iqn.2026-01.org.xpboot.bench:boot
INITIATOR=iqn.2026-01.org.xpboot:client-52-54-00-79-00-01
TGT_CTL=${TGT_CTL:-3291}

# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
bench_init bench bootbench
bench_on_exit() { ip netns del "$NS" 2>/dev/null || true; }

need_root "network namespace, tap device"
need_tools go ip qemu-system-x86_64 tgtd tgtadm dnsmasq
[ -f "$ROM" ] || die "$ROM not found (Debian package ipxe-qemu)"

echo "# building xpboot and the test (a) disk"
build_xpboot
# The disk and its expected COM1 line come from the e2e test's own generator.
(cd "$ROOT" && XPBOOT_BENCH_DISK="$WORK/disk.img" go test -count=1 -run '^TestBenchDisk$' ./cmd/xpboot/ >/dev/null)
WANT=$(cat "$WORK/disk.img.sum")
cat "$WORK/disk.img" >/dev/null # page cache

ip netns add "$NS"
# nsx runs a short command in the namespace. Background processes are
# started with ip netns exec directly (it execs them), so that $! is the
# process itself and kill reaches it.
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
nsx ip tuntap add tap0 mode tap
nsx ip addr add "$NET.1/24" dev tap0
nsx ip link set tap0 up
mkdir -p "$WORK/ipxe" # the ROM is iPXE already: nothing is chainloaded

IN_NS=(ip netns exec "$NS") # for wait_port and tgt_start

# boot LABEL: one QEMU boot; sets T to the seconds until the SUM line.
# (No command substitution around these functions: every process must be
# started by the main shell, so that the EXIT trap can kill it.)
boot() {
	local serial=$WORK/serial-$1.log start now line
	rm -f "$serial"
	start=$(date +%s.%N)
	START=$start
	ip netns exec "$NS" qemu-system-x86_64 -machine pc -accel "$ACCEL" -m 128 -display none -no-reboot -boot n \
		-serial "file:$serial" -monitor none -parallel none \
		-netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
		-device "e1000,netdev=n0,mac=$MAC,romfile=$ROM" >"$WORK/qemu-$1.log" 2>&1 &
	local qpid=$!
	track "$qpid"
	while :; do
		now=$(date +%s.%N)
		if line=$(grep -a -o 'SUM=[0-9a-f]\{8\}' "$serial" 2>/dev/null | head -1) && [ -n "$line" ]; then
			break
		fi
		if grep -aq 'INT13 ERROR' "$serial" 2>/dev/null; then
			echo "bench: $1: INT 13h error in the guest: $(cat "$serial")" >&2
			return 1
		fi
		if awk -v a="$now" -v b="$start" -v t="$TIMEOUT" 'BEGIN { exit !(a - b > t) }'; then
			echo "bench: $1: no SUM line within ${TIMEOUT}s" >&2
			return 1
		fi
		sleep 0.05
	done
	kill -9 "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	if [ "$line" != "$WANT" ]; then
		echo "bench: $1: guest printed $line, want $WANT" >&2
		return 1
	fi
	T=$(awk -v a="$now" -v b="$start" 'BEGIN { printf "%.2f", a - b }')
}

run_xpboot() { # round
	local log=$WORK/xpboot-$1.log pid
	rm -rf "$WORK/state"
	ip netns exec "$NS" "$XP" serve --image "$WORK/disk.img" --iqn "$IQN" --listen "$NET.1:3260" \
		--dhcp full --interface tap0 --dhcp-range "$NET.100-$NET.110" --no-gateway \
		--ipxe-dir "$WORK/ipxe" --state-dir "$WORK/state" >"$log" 2>&1 &
	pid=$!
	track "$pid"
	wait_log "$log" 'iSCSI target listening' || { echo "bench: xpboot did not start: $(cat "$log")" >&2; return 1; }
	boot "xpboot-$1" || { cat "$log" >&2; return 1; }
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	# Where the time goes, from serve's log: the DHCP lease and the iSCSI
	# login, in seconds after QEMU started.
	LEASE=$(since "$(sed -n 's/^time=\([^ ]*\) .*state=bound.*/\1/p' "$log" | head -1)")
	LOGIN=$(since "$(sed -n 's/^time=\([^ ]*\) .*msg="iSCSI login".*session=Normal.*/\1/p' "$log" | head -1)")
}

stamp() { # prefix each line with the time it arrived (dnsmasq's own log has none)
	local l
	while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done
}

since() { # RFC 3339 time -> seconds after START
	[ -n "$1" ] || { echo "?"; return; }
	awk -v a="$(date -d "$1" +%s.%N)" -v b="$START" 'BEGIN { printf "%.1f", a - b }'
}

run_tgt() { # round
	local dpid
	tgt_start "$TGT_CTL" "$NET.1" 3260 "$WORK/disk.img" "$IQN" "$WORK/tgtd-$1.log"
	rm -f "$WORK/dnsmasq.leases"
	ip netns exec "$NS" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --port=0 \
		--user=root --interface=tap0 --bind-interfaces \
		--dhcp-range="$NET.100,$NET.110,255.255.255.0,1h" \
		--dhcp-option=3 --dhcp-option=6 \
		--dhcp-option=17,"iscsi:$NET.1:::1:$IQN" \
		--dhcp-option=203,"$INITIATOR" \
		--dhcp-option=encap:175,176,1 \
		--dhcp-leasefile="$WORK/dnsmasq.leases" --pid-file="$WORK/dnsmasq.pid" \
		--log-dhcp --log-facility=- 2> >(stamp >"$WORK/dnsmasq-$1.log") >/dev/null &
	dpid=$!
	track "$dpid"
	wait_log "$WORK/dnsmasq-$1.log" 'DHCP, IP range' 5 || true
	boot "tgt-$1" || { cat "$WORK/dnsmasq-$1.log" "$WORK/tgtd-$1.log" >&2; return 1; }
	TLEASE=$(awk -v b="$START" '/DHCPACK/ { printf "%.1f", $1 - b; exit }' "$WORK/dnsmasq-$1.log")
	tgt_stop "$dpid" "$TGT_PID"
}

echo "# $RUNS boots each, interleaved; QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}'), $(nproc) CPUs, accelerator $ACCEL"
XS=() TS=()
for r in $(seq 1 "$RUNS"); do
	if [ $((r % 2)) = 1 ]; then
		run_xpboot "$r"; x=$T
		run_tgt "$r"; g=$T
	else
		run_tgt "$r"; g=$T
		run_xpboot "$r"; x=$T
	fi
	XS+=("$x") TS+=("$g")
	printf 'round %d: xpboot %6.2f s (lease at %4s s, login at %4s s)   tgt+dnsmasq %6.2f s (lease at %4s s)\n' "$r" "$x" "$LEASE" "$LOGIN" "$g" "${TLEASE:-?}"
done

stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1; s += $1 } END { printf "%.2f %.2f %.2f\n", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), s / NR }'; }
read -r XMIN XMED XAVG < <(stats "${XS[@]}")
read -r TMIN TMED TAVG < <(stats "${TS[@]}")
echo
echo "boot time, QEMU start to \"$WANT\" on COM1 ($RUNS boots each)"
printf '%-22s %8s %8s %8s\n' server min median mean
printf '%-22s %8s %8s %8s\n' "xpboot serve" "$XMIN" "$XMED" "$XAVG"
printf '%-22s %8s %8s %8s\n' "tgt + dnsmasq" "$TMIN" "$TMED" "$TAVG"
awk -v x="$XMED" -v t="$TMED" 'BEGIN { printf "ratio tgt/xpboot (median): %.2f\n", t / x }'
