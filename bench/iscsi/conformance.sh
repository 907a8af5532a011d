#!/usr/bin/env bash
# Run libiscsi's iscsi-test-cu SCSI and iSCSI families against Debian's tgt
# and xpboot's target in the same run, each on its own 100 MiB image
# (--dataloss: the tests write), and print passed/failed counts and the
# failed assertions (file and line of the libiscsi test).
#
#   bench/iscsi/conformance.sh
#   XPBOOT_FLAGS=--unsolicited-data bench/iscsi/conformance.sh
#
# Needs: go, tgt (tgtd, tgtadm), libiscsi-bin (iscsi-test-cu). Run as root
# (tgtd). Listens on 127.0.0.1 only.
set -euo pipefail

TGT_PORT=${TGT_PORT:-3281}
TGT_CTL=${TGT_CTL:-3282}
XP_PORT=${XP_PORT:-3283}
XPBOOT_FLAGS=${XPBOOT_FLAGS:-}
FAMILIES=${FAMILIES:-SCSI iSCSI}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/xpboot-conformance.XXXXXX)
IQN_TGT=iqn.2026-01.org.xpboot.conformance:tgt
IQN_XP=iqn.2026-01.org.xpboot.conformance:xp
PIDS=()

cleanup() {
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

for tool in tgtd tgtadm iscsi-test-cu; do
	command -v "$tool" >/dev/null || { echo "conformance: $tool not found" >&2; exit 2; }
done

if [ -z "${XPBOOT_SERVE:-}" ]; then
	(cd "$ROOT" && go build -o "$WORK/xpboot" ./cmd/xpboot)
	XPBOOT_SERVE="$WORK/xpboot --log-level warn serve"
fi

truncate -s 100M "$WORK/tgt.img" "$WORK/xp.img"

wait_port() { # host port
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "conformance: nothing listens on $1:$2" >&2
	return 1
}

tgtd -f -C "$TGT_CTL" --iscsi "portal=127.0.0.1:$TGT_PORT" >"$WORK/tgtd.log" 2>&1 &
PIDS+=("$!")
wait_port 127.0.0.1 "$TGT_PORT"
tgtadm -C "$TGT_CTL" --lld iscsi --op new --mode target --tid 1 -T "$IQN_TGT"
# tgt reserves LUN 0 for its controller device: the disk is LUN 1.
tgtadm -C "$TGT_CTL" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$WORK/tgt.img"
tgtadm -C "$TGT_CTL" --lld iscsi --op bind --mode target --tid 1 -I ALL

# shellcheck disable=SC2086
$XPBOOT_SERVE --image "$WORK/xp.img" --iqn "$IQN_XP" --listen "127.0.0.1:$XP_PORT" $XPBOOT_FLAGS >"$WORK/xpboot.log" 2>&1 &
PIDS+=("$!")
wait_port 127.0.0.1 "$XP_PORT"

echo "iscsi-test-cu $(dpkg-query -W -f '${Version}' libiscsi-bin 2>/dev/null || true), xpboot serve $XPBOOT_FLAGS"
printf '%-8s %-8s %6s %7s %7s\n' target family tests passed failed
for fam in $FAMILIES; do
	for who in tgt xpboot; do
		if [ "$who" = tgt ]; then
			url="iscsi://127.0.0.1:$TGT_PORT/$IQN_TGT/1"
		else
			url="iscsi://127.0.0.1:$XP_PORT/$IQN_XP/0"
		fi
		out=$WORK/$who-$fam.txt
		timeout 600 iscsi-test-cu --dataloss -t "$fam" "$url" >"$out" 2>&1 || true
		read -r total passed failed < <(awk '$1 == "tests" { print $2, $4, $5 }' "$out")
		printf '%-8s %-8s %6s %7s %7s\n' "$who" "$fam" "${total:-?}" "${passed:-?}" "${failed:-?}"
		# CUnit's list of failed assertions: "1. file.c:LINE - CU_ASSERT..."
		grep -E '^ +[0-9]+\. [a-z0-9_]+\.c:[0-9]+' "$out" | sed 's/^ */    /' || true
	done
done
