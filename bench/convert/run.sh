#!/usr/bin/env bash
# Benchmark `xpboot image convert` against `qemu-img convert` on the same
# input: an 8 GiB sparse raw image holding 1 GiB of random data and 1 GiB of
# explicitly written zeros (the rest is a hole). For every output format it
# takes the best of RUNS runs of each tool, alternating (exit status checked), the
# allocated size of each output, and prints the ratios. Both sides are
# timed until their output is on disk (xpboot --sync; qemu-img, then
# `sync` of what it wrote): without that, the figures measure the page
# cache's writeback throttling more than either tool.
#
# Usage: bench/convert/run.sh [WORKDIR]   (default: a directory under /tmp;
# needs about 4 GiB free). Environment: RUNS (default 5), SIZE_GIB (8),
# FORMATS (default: all six), XPBOOT (an xpboot binary; default: build
# ./cmd/xpboot).
set -euo pipefail

RUNS=${RUNS:-5}
SIZE_GIB=${SIZE_GIB:-8}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$(mktemp -d /tmp/xpboot-bench.XXXXXX)}
mkdir -p "$WORK"
command -v qemu-img >/dev/null || { echo "qemu-img not found (Debian package qemu-utils)" >&2; exit 2; }
# The input's written zeros start at 4 GiB.
((SIZE_GIB >= 5)) || { echo "SIZE_GIB=$SIZE_GIB: the input needs at least 5 GiB" >&2; exit 2; }

if [[ -z "${XPBOOT:-}" ]]; then
	(cd "$ROOT" && CGO_ENABLED=0 go build -tags urfave_cli_no_docs -o "$WORK/xpboot" ./cmd/xpboot)
	XPBOOT=$WORK/xpboot
fi
XP=("$XPBOOT" --quiet image convert --force --sync --to)
. "$ROOT/bench/lib.sh" # bench_result
RESULTS=

IN=$WORK/input.raw
if [[ ! -f $IN || $(stat -c %s "$IN") != $((SIZE_GIB << 30)) ]]; then
	rm -f "$IN"
	truncate -s "${SIZE_GIB}G" "$IN"
	# 1 GiB random data at 1 GiB, 1 GiB of written zeros at 4 GiB
	# (SIZE_GIB must be at least 5).
	head -c 1G /dev/urandom | dd of="$IN" bs=4M seek=256 conv=notrunc iflag=fullblock status=none
	dd if=/dev/zero of="$IN" bs=4M seek=1024 count=256 conv=notrunc status=none
fi
cat "$IN" >/dev/null # warm the page cache

# once TOOL FORMAT OUT: one timed run; prints "WALL CPU" in seconds
# (CPU = user + system). The exit status is checked.
once() {
	local tool=$1 fmt=$2 out=$3 wall u s
	rm -f "$out" "${out%.*}"-flat.* "$WORK"/.*xpboot-tmp* 2>/dev/null || true
	sync
	if [[ $tool == qemu ]]; then
		# Neither tool syncs by default, and then the time depends on how
		# much of the output the kernel's writeback throttling makes the
		# writer wait for. Both are timed until the output is on disk:
		# qemu-img followed by `sync` of the files it wrote, xpboot with
		# --sync (fsync before the rename).
		/usr/bin/time -o "$WORK/time" -f "%e %U %S" sh -c 'qemu-img convert -f raw -O $1 "$2" "$3" && sync "$3" $(ls "${3%.*}"-flat.* 2>/dev/null)' \
			sh "${QFMT[$fmt]}" "$IN" "$out" ||
			{ echo "qemu-img failed ($fmt)" >&2; exit 1; }
	else
		/usr/bin/time -o "$WORK/time" -f "%e %U %S" "${XP[@]}" "$fmt" "$IN" "$out" >/dev/null ||
			{ echo "xpboot failed ($fmt)" >&2; exit 1; }
	fi
	read -r wall u s <"$WORK/time"
	echo "$wall $(echo "$u + $s" | bc)"
}

# lt A B: A < B for decimals
lt() { (($(echo "$1 < $2" | bc))); }

# alloc OUT: allocated bytes of an output (plus its flat data file)
alloc() {
	du -B1 -c "$1" $(ls "${1%.*}"-flat.* 2>/dev/null) | tail -1 | cut -f1
}

declare -A QFMT=(
	[raw]="raw"
	[vhd]="vpc -o subformat=dynamic"
	[vhd-fixed]="vpc -o subformat=fixed"
	[vmdk]="vmdk -o subformat=monolithicSparse"
	[vmdk-flat]="vmdk -o subformat=monolithicFlat"
	[vmdk-stream]="vmdk -o subformat=streamOptimized"
)

printf '# %s, %d CPUs, qemu-img %s, best of %d runs, input %d GiB (1 GiB random, 1 GiB zeros)\n' \
	"$(date -u +%FT%TZ)" "$(nproc)" "$(qemu-img --version | head -1 | awk '{print $3}')" "$RUNS" "$SIZE_GIB"
printf '| %-11s | %7s | %7s | %8s | %8s | %8s | %13s | %13s | %10s |\n' format "qemu s" "xp s" speed-up "qemu cpu" "xp cpu" "qemu bytes" "xpboot bytes" "size ratio"
printf '|%s|\n' "-------------|---------|---------|----------|----------|----------|---------------|---------------|------------"
# The tools alternate run by run so that both see the same machine load;
# each keeps its best wall time (and that run's CPU time).
for fmt in ${FORMATS:-vhd vhd-fixed vmdk vmdk-flat vmdk-stream raw}; do
	OQ=$WORK/out-qemu.$fmt OX=$WORK/out-xp.$fmt
	tq= tx= QV= XV=
	for ((i = 0; i < RUNS; i++)); do
		read -r w c < <(once qemu "$fmt" "$OQ")
		if [[ -z $tq ]] || lt "$w" "$tq"; then tq=$w cq=$c; fi
		QV+=" $w"
		read -r w c < <(once xp "$fmt" "$OX")
		if [[ -z $tx ]] || lt "$w" "$tx"; then tx=$w cx=$c; fi
		XV+=" $w"
	done
	sq=$(alloc "$OQ") sx=$(alloc "$OX")
	# Both outputs must hold the input's disk.
	qf=$(echo ${QFMT[$fmt]} | cut -d' ' -f1)
	qemu-img compare -q -f raw -F "$qf" "$IN" "$OX" || { echo "compare failed ($fmt, xpboot)" >&2; exit 1; }
	qemu-img compare -q -f raw -F "$qf" "$IN" "$OQ" || { echo "compare failed ($fmt, qemu)" >&2; exit 1; }
	rm -f "$OQ" "${OQ%.*}"-flat.* "$OX" "${OX%.*}"-flat.*
	printf '| %-11s | %7.2f | %7.2f | %7.2fx | %8.2f | %8.2f | %13d | %13d | %10.3f |\n' "$fmt" "$tq" "$tx" "$(echo "$tq / $tx" | bc -l)" "$cq" "$cx" "$sq" "$sx" "$(echo "$sx / $sq" | bc -l)"
	RESULTS+=$(bench_result "convert-$fmt" qemu-img s lower 1 "$XV" "$QV")$'\n'
done

# Result lines for bench/all.sh (bench/README.md), after the table.
printf '%s' "$RESULTS"
