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
IQN_TGT=iqn.2026-01.org.xpboot.conformance:tgt
IQN_XP=iqn.2026-01.org.xpboot.conformance:xp

# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
bench_init conformance
need_tools tgtd tgtadm iscsi-test-cu
xpboot_serve

truncate -s 100M "$WORK/tgt.img" "$WORK/xp.img"

tgt_start "$TGT_CTL" 127.0.0.1 "$TGT_PORT" "$WORK/tgt.img" "$IQN_TGT" "$WORK/tgtd.log"

# shellcheck disable=SC2086
$XPBOOT_SERVE --image "$WORK/xp.img" --iqn "$IQN_XP" --listen "127.0.0.1:$XP_PORT" $XPBOOT_FLAGS >"$WORK/xpboot.log" 2>&1 &
track "$!"
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
