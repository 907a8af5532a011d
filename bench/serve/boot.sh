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
# A third column runs tgt + dnsmasq + radvd: radvd answers iPXE's router
# solicitation the way `serve --ipv6-ra` does (no default router, no
# prefix, M and O clear), so it shows what the IPv6 wait alone costs.
#
# Each boot is also captured on tap0 (tcpdump in the namespace), which
# gives the same phases for every server, in seconds after QEMU started:
# lease (the DHCPACK), ra (the first router advertisement after iPXE's
# first router solicitation), login (iPXE's TCP connection to port 3260)
# and first read (iPXE's first READ command). A table of the per-phase
# medians follows the rounds.
#
# All sides hand out the same DHCP answer to iPXE: an address from
# .100–.110, no gateway, root-path iscsi:10.79.0.1::::IQN (tgt: LUN 1, as
# tgt keeps LUN 0 for its controller), the initiator IQN in option 203 and
# 175.176 (no ProxyDHCP wait).
#
# Needs: go, root, iproute2, qemu-system-x86, ipxe-qemu, tgt, dnsmasq-base,
# radvd, tcpdump.
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
need_tools go ip qemu-system-x86_64 tgtd tgtadm dnsmasq radvd tcpdump
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
	cap_start "$1"
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
	cap_stop "$1"
	if [ "$line" != "$WANT" ]; then
		echo "bench: $1: guest printed $line, want $WANT" >&2
		return 1
	fi
	T=$(awk -v a="$now" -v b="$start" 'BEGIN { printf "%.2f", a - b }')
}

# cap_start LABEL / cap_stop LABEL: capture the boot's DHCP replies, IPv6
# router solicitations and advertisements, iPXE's SYN to the target and its
# READ(10) commands (iSCSI opcode 0x01, CDB byte 0x28) on tap0; cap_stop
# sets P_LEASE P_RA P_LOGIN P_READ (seconds after START, "-" if absent):
# the DHCPACK, the first RA after iPXE's first RS, the connection to the
# target (the login follows at once) and the first READ.
cap_start() {
	ip netns exec "$NS" tcpdump -i tap0 -n -tt -l -U \
		'(udp src port 67) or (icmp6 and (ip6[40] == 133 or ip6[40] == 134)) or (tcp dst port 3260 and tcp[tcpflags] & tcp-syn != 0) or (tcp dst port 3260 and (tcp[((tcp[12] & 0xf0) >> 2)] & 0x3f) == 1 and tcp[((tcp[12] & 0xf0) >> 2) + 32] == 0x28)' \
		>"$WORK/cap-$1.txt" 2>"$WORK/cap-$1.err" &
	CAP_PID=$!
	track "$CAP_PID"
	wait_log "$WORK/cap-$1.err" 'listening on' 5 || true
}
cap_stop() {
	local f=$WORK/cap-$1.txt
	sleep 0.2
	kill -INT "$CAP_PID" 2>/dev/null || true
	wait "$CAP_PID" 2>/dev/null || true
	# iPXE's DISCOVER/REQUEST get OFFER then ACK: the lease is the 2nd reply.
	P_LEASE=$(awk -v b="$START" '$1 >= b && /BOOTP\/DHCP, Reply/ { if (++n == 2) { printf "%.1f", $1 - b; exit } }' "$f")
	P_RA=$(awk -v b="$START" '$1 >= b && /router solicitation/ { rs = 1 } rs && /router advertisement/ { printf "%.1f", $1 - b; exit }' "$f")
	P_LOGIN=$(awk -v b="$START" '$1 >= b && /\.3260: Flags \[S\]/ { printf "%.1f", $1 - b; exit }' "$f")
	P_READ=$(awk -v b="$START" '$1 >= b && /\.3260: Flags \[[^S]*\]/ { printf "%.1f", $1 - b; exit }' "$f")
	P_LEASE=${P_LEASE:--} P_RA=${P_RA:--} P_LOGIN=${P_LOGIN:--} P_READ=${P_READ:--}
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

run_tgt() { # round [radvd]
	local dpid rpid="" label=tgt-$1
	[ "${2:-}" = radvd ] && label=tgtra-$1
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
	if [ -n "${2:-}" ]; then
		# What `serve --ipv6-ra` sends: no default router, no prefix, no
		# DHCPv6. radvd wants forwarding on (a namespace-local setting).
		ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.forwarding=1
		printf 'interface tap0 {\n\tAdvSendAdvert on;\n\tAdvDefaultLifetime 0;\n\tAdvManagedFlag off;\n\tAdvOtherConfigFlag off;\n\tMinRtrAdvInterval 3;\n\tMaxRtrAdvInterval 10;\n};\n' >"$WORK/radvd.conf"
		ip netns exec "$NS" radvd -n -C "$WORK/radvd.conf" -p "$WORK/radvd-$1.pid" -m stderr >"$WORK/radvd-$1.log" 2>&1 &
		rpid=$!
		track "$rpid"
	fi
	boot "$label" || { cat "$WORK/dnsmasq-$1.log" "$WORK/tgtd-$1.log" >&2; return 1; }
	TLEASE=$(awk -v b="$START" '/DHCPACK/ { printf "%.1f", $1 - b; exit }' "$WORK/dnsmasq-$1.log")
	tgt_stop "$dpid" "$TGT_PID" $rpid
	[ -z "$rpid" ] || ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.forwarding=0
}

echo "# $RUNS boots each, interleaved; QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}'), $(nproc) CPUs, accelerator $ACCEL"
XS=() TS=() RS=()
declare -A PH # PH[server,phase]: that phase's times of every round
# one SERVER ROUND: boot once, keep the total and the captured phases.
one() {
	case $1 in
	xpboot) run_xpboot "$2"; X=$T ;;
	tgt) run_tgt "$2"; X=$T ;;
	tgtra) run_tgt "$2" radvd; X=$T ;;
	esac
	local p v
	for p in lease ra login read; do
		case $p in lease) v=$P_LEASE ;; ra) v=$P_RA ;; login) v=$P_LOGIN ;; read) v=$P_READ ;; esac
		PH[$1,$p]+="$v "
	done
	PH[$1,marker]+="$X "
	printf '  %-12s %6.2f s  (lease %4s, ra %4s, login %4s, first read %4s)\n' "$1" "$X" "$P_LEASE" "$P_RA" "$P_LOGIN" "$P_READ"
}
for r in $(seq 1 "$RUNS"); do
	echo "round $r"
	# The order rotates each round, so no server always boots first.
	case $((r % 3)) in
	1) one xpboot "$r"; x=$X; one tgt "$r"; g=$X; one tgtra "$r"; a=$X ;;
	2) one tgt "$r"; g=$X; one tgtra "$r"; a=$X; one xpboot "$r"; x=$X ;;
	0) one tgtra "$r"; a=$X; one xpboot "$r"; x=$X; one tgt "$r"; g=$X ;;
	esac
	XS+=("$x") TS+=("$g") RS+=("$a")
done

median() { # median of the numeric words given ("-" ignored)
	printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else printf "%.1f\n", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
echo
echo "median seconds after QEMU start, per phase (tcpdump on tap0; $RUNS boots each)"
printf '%-26s %6s %6s %6s %11s %7s\n' server lease ra login "first read" marker
for s in xpboot tgt tgtra; do
	case $s in xpboot) n="xpboot serve" ;; tgt) n="tgt + dnsmasq" ;; tgtra) n="tgt + dnsmasq + radvd" ;; esac
	# shellcheck disable=SC2086
	printf '%-26s %6s %6s %6s %11s %7s\n' "$n" "$(median ${PH[$s,lease]})" "$(median ${PH[$s,ra]})" \
		"$(median ${PH[$s,login]})" "$(median ${PH[$s,read]})" "$(median ${PH[$s,marker]})"
done

stats() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1; s += $1 } END { printf "%.2f %.2f %.2f\n", v[1], (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2), s / NR }'; }
read -r XMIN XMED XAVG < <(stats "${XS[@]}")
read -r TMIN TMED TAVG < <(stats "${TS[@]}")
read -r RMIN RMED RAVG < <(stats "${RS[@]}")
echo
echo "boot time, QEMU start to \"$WANT\" on COM1 ($RUNS boots each)"
printf '%-22s %8s %8s %8s\n' server min median mean
printf '%-22s %8s %8s %8s\n' "xpboot serve" "$XMIN" "$XMED" "$XAVG"
printf '%-22s %8s %8s %8s\n' "tgt + dnsmasq" "$TMIN" "$TMED" "$TAVG"
printf '%-22s %8s %8s %8s\n' "tgt + dnsmasq + radvd" "$RMIN" "$RMED" "$RAVG"
awk -v x="$XMED" -v t="$TMED" -v r="$RMED" 'BEGIN { printf "xpboot / tgt+dnsmasq (median): %.2f (target at most 0.35); xpboot / tgt+dnsmasq+radvd: %.2f (target at most 1)\n", x / t, x / r }'
awk -v x="$XMED" -v t="$TMED" 'BEGIN { printf "ratio tgt/xpboot (median): %.2f\n", t / x }'

# Result line for bench/all.sh (bench/README.md).
bench_result sanboot-boot tgt+dnsmasq s lower 1 "${XS[*]}" "${TS[*]}"
