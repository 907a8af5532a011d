#!/usr/bin/env bash
# A lab booting in the morning: CLIENTS QEMU/iPXE clients switched on at the
# same moment boot one VMDK base, each through its own overlay, from one
# `xpboot serve --dhcp full --overlay-dir`, against the same server booting
# one client alone.
#
# In a network namespace this script creates (and always deletes), a bridge
# br0 holds xpboot's address and one tap per client; every client is QEMU
# (TCG unless ACCEL=kvm, MEM MiB) with Debian's iPXE ROM (e1000). The base
# is the one of TestServeLab (cmd/xpboot/lab_test.go, written by its
# generator TestLabDisk): its boot sector (cmd/xpboot/testdata/lab/boot.asm)
# reads 32 runs of 8 KiB spread over the 64 MiB disk through INT 13h,
# writes a per-boot token into its sector WLBA (so into the client's
# overlay), reads it back and prints "SUM=… TOKEN=… OK" on COM1.
#
# A round is a lab boot (CLIENTS clients at once) and a solo boot (one
# client), in alternating order, each from a freshly started serve with an
# empty overlay directory. For each boot the script records per client the
# time from starting its QEMU until the marker is on COM1, and the server's
# peak resident set (VmHWM of /proc/PID/status at the end, and the highest
# VmRSS sampled while the clients boot) and CPU time. After each boot it
# checks that serve flushed its images on SIGTERM, that every client
# printed the base's checksum and a token of its own, that every overlay
# passes `qemu-img check` and holds its client's token at WLBA, and that
# the base is byte-unchanged (SHA-256 before and after); any failure ends
# the script with status 1.
#
#   sudo bench/serve/lab.sh                 # CLIENTS=16 ROUNDS=2
#   sudo CLIENTS=32 ROUNDS=1 bench/serve/lab.sh
#   sudo KEEP=1 bench/serve/lab.sh          # keep serve's logs and every COM1
#   sudo ACCEL=kvm bench/serve/lab.sh       # KVM; the default is TCG, since a
#                                           # /dev/kvm that opens can still hang guests
#
# Output: a table per lab boot (client; seconds after its QEMU started
# until serve logged its lease and its iSCSI login, and until its marker;
# token; overlay size), the minimum, p50, p90, p95 and maximum of those
# times over all lab clients and over the solo boots, serve's peak RSS and
# CPU time per boot, and two informational result lines (bench/README.md,
# goal -): lab-boot (seconds to marker, every lab client against the solo
# boots) and lab-rss (serve's peak RSS in MiB, lab boots against solo
# boots).
#
# Needs: go, root, iproute2, qemu-system-x86, qemu-utils (qemu-img,
# qemu-io), ipxe-qemu, nasm.
set -euo pipefail

CLIENTS=${CLIENTS:-16}
ROUNDS=${ROUNDS:-2}
ACCEL=${ACCEL:-tcg}
MEM=${MEM:-32} # MiB per client
TIMEOUT=${TIMEOUT:-$((60 + 5 * CLIENTS))} # seconds per boot, for all its clients
ROM=/usr/lib/ipxe/qemu/pxe-e1000.rom
NS=xpblab$$
NET=10.86.0
IQN=iqn.2026-01.org.xpboot.bench:lab

# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
bench_init lab labbench
bench_on_exit() { ip netns del "$NS" 2>/dev/null || true; }

[[ $CLIENTS =~ ^[0-9]+$ ]] && [ "$CLIENTS" -ge 1 ] && [ "$CLIENTS" -le 99 ] || die "CLIENTS=$CLIENTS: want 1 to 99"
need_root "network namespace, bridge, tap devices"
need_tools go ip qemu-system-x86_64 qemu-img qemu-io nasm sha256sum
[ -f "$ROM" ] || die "$ROM not found (Debian package ipxe-qemu)"

echo "# building xpboot and the lab base"
build_xpboot
BASE=$WORK/base.vmdk
(cd "$ROOT" && XPBOOT_LAB_DISK="$BASE" go test -count=1 -run '^TestLabDisk$' ./cmd/xpboot/ >/dev/null)
WANT=$(sed -n 's/^\(SUM=[0-9a-f]\{8\}\)$/\1/p' "$BASE.sum")
WLBA=$(sed -n 's/^WLBA=\([0-9]*\)$/\1/p' "$BASE.sum")
[ -n "$WANT" ] && [ -n "$WLBA" ] || die "TestLabDisk wrote no checksum: $(cat "$BASE.sum")"
BASE_SHA=$(sha256sum "$BASE" | cut -d' ' -f1)

ip netns add "$NS"
# Background processes are started with ip netns exec directly (it execs
# them), so that $! is the process itself: kill reaches it and
# /proc/$!/status is serve's own.
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
nsx ip link add br0 type bridge
nsx ip addr add "$NET.1/24" dev br0
nsx ip link set br0 up
for i in $(seq 0 $((CLIENTS - 1))); do
	nsx ip tuntap add "tap$i" mode tap
	nsx ip link set "tap$i" master br0
	nsx ip link set "tap$i" up
done
mkdir -p "$WORK/ipxe" # the ROM is iPXE already: nothing is chainloaded

kb() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null || true; }

# serve_start LABEL: a fresh serve (empty overlay and state directories);
# sets SPID.
serve_start() {
	local log=$WORK/serve-$1.log
	rm -rf "$WORK/ov-$1" "$WORK/state-$1"
	ip netns exec "$NS" "$XP" --log-level info serve --image "$BASE" --overlay-dir "$WORK/ov-$1" \
		--iqn "$IQN" --listen "$NET.1:3260" --dhcp full --interface br0 \
		--dhcp-range "$NET.100-$NET.199" --no-gateway --ipxe-dir "$WORK/ipxe" \
		--state-dir "$WORK/state-$1" >"$log" 2>&1 &
	SPID=$!
	track "$SPID"
	wait_log "$log" 'iSCSI target listening' || die "serve did not start: $(cat "$log")"
}

mac() { printf '52:54:00:86:%02x:%02x' "$1" "$(($2 + 1))"; } # mac KIND INDEX (KIND 0 lab, 1 solo)

# boot LABEL COUNT KIND: starts COUNT clients at once on tap0…, waits for
# every marker; sets T[i] (seconds), TOK[i], HWM and RSS (KiB). Returns 1
# when a client fails or the time runs out.
boot() {
	local label=$1 count=$2 kind=$3 i now start line f found left=$2 rss
	local -a qpid
	T=() TOK=() ST=() RSS=0
	for i in $(seq 0 $((count - 1))); do
		rm -f "$WORK/com-$label-$i.log"
		ST[i]=$EPOCHREALTIME
		ip netns exec "$NS" qemu-system-x86_64 -machine pc -accel "$ACCEL" -m "$MEM" -display none -no-reboot \
			-boot n -serial "file:$WORK/com-$label-$i.log" -monitor none -parallel none \
			-netdev "tap,id=n0,ifname=tap$i,script=no,downscript=no" \
			-device "e1000,netdev=n0,mac=$(mac "$kind" "$i"),romfile=$ROM" >"$WORK/qemu-$label-$i.log" 2>&1 &
		qpid[i]=$!
		track "${qpid[i]}"
	done
	start=${ST[0]}
	# One grep over every console per poll: the time a marker is seen is
	# taken right after it, so it is late by at most one poll (0.1 s and a
	# grep), never early.
	while [ "$left" -gt 0 ]; do
		sleep 0.1
		rss=$(kb "$SPID" VmRSS)
		[ -z "$rss" ] || [ "$rss" -le "$RSS" ] || RSS=$rss
		found=$(grep -aHoE 'SUM=[0-9a-f]{8} TOKEN=[0-9a-f]{8} OK|MISMATCH|INT13 ERROR' "$WORK/com-$label-"*.log 2>/dev/null) || true
		now=$EPOCHREALTIME
		while IFS= read -r line; do
			[ -n "$line" ] || continue
			f=${line%%:*}
			i=${f##*-}
			i=${i%.log}
			line=${line#*:}
			[ -z "${T[i]:-}" ] || continue
			case $line in
			MISMATCH | "INT13 ERROR")
				echo "lab: $label client $i ($(mac "$kind" "$i")): $line; COM1: $(tr -d '\r' <"$f")" >&2
				return 1
				;;
			esac
			T[i]=$(awk -v a="$now" -v b="${ST[i]}" 'BEGIN { printf "%.2f", a - b }')
			kill -9 "${qpid[i]}" 2>/dev/null || true # its CPU goes to the others
			wait "${qpid[i]}" 2>/dev/null || true
			if [ "${line%% *}" != "$WANT" ]; then
				echo "lab: $label client $i printed $line, want $WANT" >&2
				return 1
			fi
			line=${line#* TOKEN=}
			TOK[i]=${line%% *}
			left=$((left - 1))
		done <<<"$found"
		if awk -v a="$now" -v b="$start" -v t="$TIMEOUT" 'BEGIN { exit !(a - b > t) }'; then
			for i in $(seq 0 $((count - 1))); do
				[ -n "${T[i]:-}" ] || echo "lab: $label client $i ($(mac "$kind" "$i")): no marker within ${TIMEOUT}s; COM1: $(tr -d '\r' <"$WORK/com-$label-$i.log" 2>/dev/null | tail -c 200)" >&2
			done
			return 1
		fi
	done
	HWM=$(kb "$SPID" VmHWM)
	# serve's CPU time (user + system) over the whole boot, in seconds
	CPU=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$SPID/stat")
}

# phases LABEL COUNT KIND: from serve's log, when each client's lease was
# bound and when it logged in to the target, in seconds after its QEMU
# started: sets LEASE[i] and LOGIN[i] ("-" if the log has no such line).
phases() {
	local log=$WORK/serve-$1.log count=$2 kind=$3 i m t
	LEASE=() LOGIN=()
	for i in $(seq 0 $((count - 1))); do
		m=$(mac "$kind" "$i")
		t=$(grep -a "state=bound.*client=$m\|client=$m.*state=bound" "$log" | sed -n '1s/^time=\([^ ]*\) .*/\1/p') || true
		LEASE[i]=$(since "$t" "${ST[i]}")
		t=$(grep -a 'msg="iSCSI login"' "$log" | grep -a "client=$m" | sed -n '1s/^time=\([^ ]*\) .*/\1/p') || true
		LOGIN[i]=$(since "$t" "${ST[i]}")
	done
}
since() { # since RFC3339 EPOCH: seconds from EPOCH to the time, "-" if none
	[ -n "$1" ] || { echo -; return; }
	awk -v a="$(date -d "$1" +%s.%N)" -v b="$2" 'BEGIN { printf "%.2f", a - b }'
}

# check LABEL COUNT KIND: after serve stopped: the base is unchanged, the
# tokens differ, every overlay passes qemu-img check and holds its token.
# Sets OVKB[i] (KiB allocated).
check() {
	local label=$1 count=$2 kind=$3 i iqn ov got want
	local -A seen=()
	OVKB=()
	[ "$(sha256sum "$BASE" | cut -d' ' -f1)" = "$BASE_SHA" ] || { echo "lab: $label: the base changed" >&2; return 1; }
	for i in $(seq 0 $((count - 1))); do
		[ -z "${seen[${TOK[i]}]:-}" ] || { echo "lab: $label: clients ${seen[${TOK[i]}]} and $i printed the same token" >&2; return 1; }
		seen[${TOK[i]}]=$i
		iqn=iqn.2026-01.org.xpboot:client-$(mac "$kind" "$i" | tr : -)
		# serve.go overlayName: lower case, '_' for anything but [a-z0-9.-]
		ov=$WORK/ov-$label/$(printf '%s' "$iqn" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9.-]/_/g').vmdk
		qemu-img check -q -f vmdk "$ov" >"$WORK/check-$label-$i.log" 2>&1 ||
			{ echo "lab: $label: qemu-img check $ov: $(cat "$WORK/check-$label-$i.log")" >&2; return 1; }
		got=$(qemu-io -r -f vmdk -c "read -v $((WLBA * 512)) 512" "$ov" | awk '/^[0-9a-f]+:/ { for (i = 2; i <= 17; i++) printf "%s", $i }')
		want=$(printf '%s' "${TOK[i]}" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')
		want=$(printf "$want%.0s" $(seq 128))
		[ "$got" = "$want" ] || { echo "lab: $label: overlay $ov does not hold token ${TOK[i]} at LBA $WLBA" >&2; return 1; }
		OVKB[i]=$(du -k "$ov" | cut -f1)
	done
}

# run LABEL COUNT KIND: serve, boot, stop, check; prints the table of a lab boot.
run() {
	local label=$1 count=$2 kind=$3 i
	serve_start "$label"
	boot "$label" "$count" "$kind" || { echo "lab: serve log:" >&2; tail -n 40 "$WORK/serve-$label.log" >&2; return 1; }
	kill -TERM "$SPID"
	wait "$SPID" 2>/dev/null || true
	grep -q 'images flushed' "$WORK/serve-$label.log" || { echo "lab: $label: serve did not flush on SIGTERM" >&2; return 1; }
	check "$label" "$count" "$kind"
	phases "$label" "$count" "$kind"
	if [ "$kind" = 0 ]; then
		printf '  %-6s %-18s %7s %7s %8s %10s %12s\n' client mac lease login marker token "overlay KiB"
		for i in $(seq 0 $((count - 1))); do
			printf '  %-6s %-18s %7s %7s %8s %10s %12s\n' "$i" "$(mac "$kind" "$i")" "${LEASE[i]}" "${LOGIN[i]}" "${T[i]}" "${TOK[i]}" "${OVKB[i]}"
		done
		LABLEASE+=("${LEASE[@]}") LABLOGIN+=("${LOGIN[@]}")
	else
		SOLOLEASE+=("${LEASE[@]}") SOLOLOGIN+=("${LOGIN[@]}")
	fi
	printf '  %s: %d client(s), marker after %s s (slowest); serve peak RSS %d KiB (VmHWM), %d KiB sampled, CPU %s s; %d overlays checked, base unchanged\n' \
		"$label" "$count" "$(printf '%s\n' "${T[@]}" | sort -n | tail -1)" "$HWM" "$RSS" "$CPU" "$count"
}

echo "# $ROUNDS round(s): $CLIENTS clients at once and 1 client alone, alternating; QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}'), $(nproc) CPUs, accelerator $ACCEL, ${MEM} MiB per client; load average $(cut -d' ' -f1-3 /proc/loadavg)"
LAB=() SOLO=() LABRSS=() SOLORSS=() LABLEASE=() LABLOGIN=() SOLOLEASE=() SOLOLOGIN=()
for r in $(seq 1 "$ROUNDS"); do
	echo "round $r"
	for k in $( ((r % 2)) && echo "lab solo" || echo "solo lab"); do
		if [ "$k" = lab ]; then
			run "lab$r" "$CLIENTS" 0
			LAB+=("${T[@]}")
			LABRSS+=("$(awk -v k="$HWM" 'BEGIN { printf "%.1f", k / 1024 }')")
		else
			run "solo$r" 1 1
			SOLO+=("${T[0]}")
			SOLORSS+=("$(awk -v k="$HWM" 'BEGIN { printf "%.1f", k / 1024 }')")
		fi
	done
done

# pct P VALUES...: nearest-rank P-th percentile
pct() {
	local p=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v p="$p" '{ v[NR] = $1 } END { k = int((p * NR + 99) / 100); if (k < 1) k = 1; print v[k] }'
}
row() { # row NAME VALUES...: min p50 p90 p95 max of the numeric values
	local name=$1
	shift
	set -- $(printf '%s\n' "$@" | grep -E '^-?[0-9.]+$')
	[ $# -gt 0 ] || set -- -
	printf '%-30s %7s %7s %7s %7s %7s\n' "$name" "$(pct 0 "$@")" "$(pct 50 "$@")" "$(pct 90 "$@")" "$(pct 95 "$@")" "$(pct 100 "$@")"
}
echo
echo "seconds after each client's QEMU started: $CLIENTS clients at once ($ROUNDS boot(s), ${#LAB[@]} client boots) and 1 client alone ($ROUNDS boot(s)); lease and login from serve's log"
printf '%-30s %7s %7s %7s %7s %7s\n' "" min p50 p90 p95 max
row "$CLIENTS at once: lease" "${LABLEASE[@]}"
row "$CLIENTS at once: iSCSI login" "${LABLOGIN[@]}"
row "$CLIENTS at once: marker" "${LAB[@]}"
row "alone: lease" "${SOLOLEASE[@]}"
row "alone: iSCSI login" "${SOLOLOGIN[@]}"
row "alone: marker" "${SOLO[@]}"
echo "serve's peak resident set (VmHWM), MiB: $CLIENTS at once ${LABRSS[*]}; alone ${SOLORSS[*]}"

# Result lines for bench/all.sh (bench/README.md); informational, no goal.
bench_result lab-boot one-client s lower - "${LAB[*]}" "${SOLO[*]}"
bench_result lab-rss one-client MiB lower - "${LABRSS[*]}" "${SOLORSS[*]}"
