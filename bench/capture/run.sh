#!/usr/bin/env bash
# Capturing a used disk: `xpboot image capture --to vmdk` (reads only the
# clusters NTFS's $Bitmap marks in use) against `qemu-img convert -O vmdk`
# (reads every byte) of the same raw image, side by side (issue 16 item 2).
#
#   bench/capture/run.sh                    # 5 interleaved runs each
#   RUNS=9 SIZE_GIB=8 bench/capture/run.sh
#   XPBOOT=/path/to/xpboot KEEP=1 bench/capture/run.sh
#
# The source is a raw disk of SIZE_GIB GiB (default 4) made by
# `xpboot image create --fs none` (one partition at LBA 63), whose
# partition is first filled with random bytes (old data, as on a used
# disk) and then formatted by `mkntfs -f` (quick: the old data stays in
# the free clusters); FILL_PCT percent of it (default 25) is then taken by
# files copied in with ntfscp. Not timed. Timed, alternately, each writing
# a new output file (removed after the run):
#   xpboot:   xpboot image capture --to vmdk SRC OUT
#   qemu-img: qemu-img convert -f raw -O vmdk SRC OUT
# The page cache is warmed with the whole source first, so both read it
# from memory. After xpboot's first run (not timed) its output is checked:
# `qemu-img check` clean, and `qemu-img compare` equal to the source with
# its free clusters zeroed by `ntfswipe --unused` (a copy of the
# partition). Prints the medians and the ratio; the goal is xpboot at most
# 0.4 times qemu-img's time (ratio >= 2.5).
#
# Needs go (unless XPBOOT is set), qemu-img, ntfs-3g (mkntfs, ntfscp,
# ntfswipe), openssl, about 3 x SIZE_GIB GiB free under /tmp.
set -euo pipefail

RUNS=${RUNS:-5}
SIZE_GIB=${SIZE_GIB:-4}
FILL_PCT=${FILL_PCT:-25}

# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
bench_init capture
need_tools qemu-img mkntfs ntfscp ntfswipe openssl dd bc od

echo "# building xpboot and a ${SIZE_GIB} GiB NTFS disk, ${FILL_PCT}% used, old data in its free clusters" >&2
build_xpboot
SRC=$WORK/src.raw
"$XP" --quiet image create --fs none --size "${SIZE_GIB}G" "$SRC" >/dev/null
# Partition start and length in sectors, from the MBR's first entry.
read -r START SECTORS < <(od -An -tu4 -j454 -N8 "$SRC")
[ "$START" = 63 ] || die "unexpected partition start $START"
random() { # random BYTES SEED: deterministic pseudo-random bytes on stdout
	head -c "$1" < <(openssl enc -aes-128-ctr -pass "pass:$2" -nosalt -pbkdf2 </dev/zero 2>/dev/null)
}
PART=$WORK/part.ntfs
random $((SECTORS * 512)) old >"$PART"
mkntfs -F -f -q -p 63 -H 255 -S 63 "$PART" >/dev/null 2>&1 || die "mkntfs failed"
# Fill: files of 256 MiB (the last one smaller) until FILL_PCT percent.
left=$((SECTORS * 512 * FILL_PCT / 100))
i=0
while [ "$left" -gt 0 ]; do
	n=$((left < 268435456 ? left : 268435456))
	random "$n" "file$i" >"$WORK/file"
	ntfscp -q "$PART" "$WORK/file" "/file$i.bin" || die "ntfscp failed"
	left=$((left - n))
	i=$((i + 1))
done
rm -f "$WORK/file"
dd if="$PART" of="$SRC" bs=4M seek=$((63 * 512)) oflag=seek_bytes conv=notrunc status=none

OUT=$WORK/out.vmdk
# The check: a reference with the free clusters zeroed by the peer.
"$XP" --quiet image capture --to vmdk "$SRC" "$OUT" >/dev/null
qemu-img check -q -f vmdk "$OUT" || die "qemu-img check of xpboot's capture failed"
ntfswipe --unused --force --quiet "$PART" >/dev/null || die "ntfswipe failed"
REF=$WORK/ref.raw
cp --sparse=always "$SRC" "$REF"
dd if="$PART" of="$REF" bs=4M seek=$((63 * 512)) oflag=seek_bytes conv=notrunc status=none
rm -f "$PART"
qemu-img compare -q -f raw -F vmdk "$REF" "$OUT" || die "xpboot's capture differs from the source with its free clusters zeroed"
rm -f "$REF" "$OUT"
echo "# checked: qemu-img check clean, qemu-img compare equal to the zero-filled source" >&2

cat "$SRC" >/dev/null # warm the page cache for both tools
XV=() QV=()
for run in $(seq 1 "$RUNS"); do
	t0=$(now_ms)
	"$XP" --quiet image capture --to vmdk "$SRC" "$OUT" >/dev/null || die "xpboot capture failed"
	t1=$(now_ms)
	XV+=("$(echo "($t1 - $t0) / 1000" | bc -l)")
	xbytes=$(du -B1 "$OUT" | cut -f1)
	rm -f "$OUT"
	t0=$(now_ms)
	qemu-img convert -f raw -O vmdk "$SRC" "$OUT" || die "qemu-img convert failed"
	t1=$(now_ms)
	QV+=("$(echo "($t1 - $t0) / 1000" | bc -l)")
	qbytes=$(du -B1 "$OUT" | cut -f1)
	rm -f "$OUT"
	printf '# run %d: xpboot %.2f s (%s bytes), qemu-img %.2f s (%s bytes), load %s\n' "$run" "${XV[-1]}" "$xbytes" "${QV[-1]}" "$qbytes" "$(cut -d' ' -f1 /proc/loadavg)" >&2
done
bench_result capture-ntfs-vmdk qemu-img s lower 2.5 "$(printf '%.3f ' "${XV[@]}")" "$(printf '%.3f ' "${QV[@]}")"
