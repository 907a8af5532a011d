#!/usr/bin/env bash
# Populating an NTFS image: `xpboot image put` of 4,000 files of 1–12 KiB
# (deterministic content, long and 8.3 names) into one new directory of a
# 2 GiB NTFS image, against `cp -r` of the same tree into an ntfs-3g FUSE
# mount of a copy of the same volume (issue 11, item 9).
#
#   sudo bench/ntfs/put.sh                  # 5 interleaved runs each
#   RUNS=9 FILES=8000 sudo bench/ntfs/put.sh
#   XPBOOT=/path/to/xpboot KEEP=1 sudo bench/ntfs/put.sh
#
# The image is `xpboot image create --fs none --size 2G` (one partition at
# LBA 63, 255×63 geometry) with the partition formatted by
# `mkntfs -f -p 63 -H 255 -S 63`. Every run starts from a fresh sparse copy
# of it (not timed). Timed:
#   xpboot:  `xpboot image put TREE/I386 run.img:/`, which ends with
#            xpboot's own flush (fsync) of the image;
#   ntfs-3g: mount of the copied partition (a bare volume file, since
#            ntfs-3g cannot mount at an offset), `cp -r TREE/I386 MNT/`,
#            `sync`, unmount, and the wait until ntfs-3g has exited (it
#            writes the volume out after the unmount request).
# The two alternate run by run, so both see the same machine load. After
# each run (not timed) the copy is checked: 4,000 entries in /I386 and, for
# xpboot's first run, `ntfsfix -n` clean and an ntfs-3g read-only mount
# reading back every byte. Prints medians, min–max and the ratio
# xpboot/ntfs-3g (the goal: at most 0.5).
#
# Needs root (FUSE), go (unless XPBOOT is set), ntfs-3g, util-linux, bc.
set -euo pipefail

RUNS=${RUNS:-5}
FILES=${FILES:-4000}

# shellcheck source=../lib.sh
. "$(dirname "$0")/../lib.sh"
bench_init ntfs-put
need_root "ntfs-3g FUSE mounts"
need_tools mkntfs ntfs-3g ntfsfix fusermount bc sha256sum
[ -e /dev/fuse ] || die "/dev/fuse is missing (Debian package fuse3)"

MNT=$WORK/mnt
mkdir -p "$MNT"
NTFS3G_PID=
bench_on_exit() {
	if [ -n "$NTFS3G_PID" ]; then
		fusermount -u -z "$MNT" 2>/dev/null || true
		kill -9 "$NTFS3G_PID" 2>/dev/null || true
	fi
}

echo "# building xpboot, a ${FILES}-file tree and a 2 GiB NTFS image" >&2
build_xpboot

# The tree: sizes from 1 to 12 KiB, every other name 8.3, content from a
# seeded generator so that every run and both tools copy the same bytes.
mkdir -p "$WORK/tree/I386"
head -c $((FILES * 12288)) < <(openssl enc -aes-128-ctr -pass pass:xpboot -nosalt -pbkdf2 </dev/zero 2>/dev/null) >"$WORK/random"
for ((i = 0; i < FILES; i++)); do
	size=$((1024 + (i * 7919) % 11264))
	if ((i % 2)); then name="DRV$(printf %05d $i).SY_"; else name="setup component $(printf %05d $i).dl_"; fi
	dd if="$WORK/random" of="$WORK/tree/I386/$name" iflag=skip_bytes,count_bytes skip=$((i * 12288)) count=$size status=none
done
rm "$WORK/random"
(cd "$WORK/tree" && find I386 -type f -print0 | sort -z | xargs -0 sha256sum) >"$WORK/tree.sha256"

"$XP" --quiet image create --fs none --size 2G "$WORK/base.img" >/dev/null
OFFSET=$((63 * 512))
INFO=$("$XP" image info --json "$WORK/base.img")
# sed quits at the first match itself: `| head -1` could kill it with
# SIGPIPE, which pipefail turns into a failure.
SECTORS=$(sed -n '/"sectors": [0-9]/{s/.*"sectors": \([0-9]*\).*/\1/p;q}' <<<"$INFO")
[ -n "$SECTORS" ] || die "could not read the partition size from xpboot image info"
truncate -s $((SECTORS * 512)) "$WORK/base.ntfs"
mkntfs -F -f -q -s 512 -c 4096 -p 63 -H 255 -S 63 -L BENCH "$WORK/base.ntfs" >/dev/null 2>&1 ||
	die "mkntfs failed"
dd if="$WORK/base.ntfs" of="$WORK/base.img" bs=1M oflag=seek_bytes seek=$OFFSET conv=notrunc,sparse status=none
rm "$WORK/base.ntfs"
cat "$WORK/tree"/I386/* >/dev/null # page cache

now() { date +%s.%N; }

# extract IMG FILE: copy the NTFS partition of IMG into the bare file FILE.
extract() {
	dd if="$1" of="$2" bs=1M iflag=skip_bytes,count_bytes skip=$OFFSET count=$((SECTORS * 512)) conv=sparse status=none
}

# mount_ntfs3g VOL [OPTS]: ntfs-3g in the foreground of a background job,
# so that its exit (the volume closed) can be waited for.
mount_ntfs3g() {
	ntfs-3g -o "no_detach${2:+,$2}" "$1" "$MNT" >"$WORK/ntfs-3g.log" 2>&1 &
	NTFS3G_PID=$!
	local _
	for _ in $(seq 1 500); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$NTFS3G_PID" 2>/dev/null || break
		sleep 0.01
	done
	cat "$WORK/ntfs-3g.log" >&2
	die "ntfs-3g did not mount $1"
}
umount_ntfs3g() {
	fusermount -u "$MNT"
	wait "$NTFS3G_PID" || die "ntfs-3g exited with status $?: $(cat "$WORK/ntfs-3g.log")"
	NTFS3G_PID=
}

# verify VOL: the bare volume VOL holds the tree, byte for byte.
verify() {
	# Capture first: `ntfsfix -n | grep -q` under pipefail fails whenever
	# grep exits at its match before ntfsfix has written everything
	# (ntfsfix then dies of SIGPIPE).
	local out
	out=$(ntfsfix -n "$1" 2>&1) || die "ntfsfix -n $1 failed: $out"
	grep -q 'Processing of \$MFT and \$MFTMirr completed successfully' <<<"$out" ||
		die "ntfsfix -n does not find $1 clean: $out"
	mount_ntfs3g "$1" ro
	(cd "$MNT" && sha256sum --quiet -c "$WORK/tree.sha256") || { umount_ntfs3g; die "the bytes in $1 differ from the tree"; }
	umount_ntfs3g
}

# run_xpboot R and run_ntfs3g set T to the timed seconds. They run in the
# main shell (never inside $( )), so that the exit trap knows about a live
# ntfs-3g.
run_xpboot() {
	cp --sparse=always "$WORK/base.img" "$WORK/run.img"
	sync
	local t0 t1
	t0=$(now)
	"$XP" --quiet image put "$WORK/tree/I386" "$WORK/run.img:/" >/dev/null 2>"$WORK/xpboot.err" ||
		die "xpboot image put failed: $(cat "$WORK/xpboot.err")"
	t1=$(now)
	local n
	n=$("$XP" image ls "$WORK/run.img:/I386" | wc -l)
	[ "$n" -eq "$FILES" ] || die "xpboot: /I386 lists $n entries, want $FILES"
	if [ "$1" = 0 ]; then
		extract "$WORK/run.img" "$WORK/check.ntfs"
		verify "$WORK/check.ntfs"
		rm "$WORK/check.ntfs"
	fi
	T=$(echo "$t1 - $t0" | bc)
}

run_ntfs3g() {
	extract "$WORK/base.img" "$WORK/run.ntfs"
	sync
	local t0 t1
	t0=$(now)
	mount_ntfs3g "$WORK/run.ntfs"
	cp -r "$WORK/tree/I386" "$MNT/"
	sync
	umount_ntfs3g
	t1=$(now)
	mount_ntfs3g "$WORK/run.ntfs" ro
	local n
	n=$(find "$MNT/I386" -mindepth 1 | wc -l)
	umount_ntfs3g
	[ "$n" -eq "$FILES" ] || die "ntfs-3g: /I386 lists $n entries, want $FILES"
	rm "$WORK/run.ntfs"
	T=$(echo "$t1 - $t0" | bc)
}

xs=() ns=()
for ((r = 0; r < RUNS; r++)); do
	if ((r % 2)); then
		run_ntfs3g && ns+=("$T")
		run_xpboot "$r" && xs+=("$T")
	else
		run_xpboot "$r" && xs+=("$T")
		run_ntfs3g && ns+=("$T")
	fi
	printf '# run %d: xpboot %.3f s, ntfs-3g %.3f s\n' "$((r + 1))" "${xs[-1]}" "${ns[-1]}" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
minmax() { printf '%s\n' "$@" | sort -g | sed -n '1p;$p' | paste -sd' ' | awk '{printf "%.3f–%.3f", $1, $2}'; }
mx=$(median "${xs[@]}")
mn=$(median "${ns[@]}")
printf '# %s, %d CPUs, load %s, %s, %d runs each, interleaved\n' "$(date -u +%FT%TZ)" "$(nproc)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" "$(ntfs-3g --version 2>&1 | sed -n 1p)" "$RUNS"
printf 'files: %d (%d bytes) into a new directory of a 2 GiB NTFS image\n' "$FILES" "$(cat "$WORK"/tree/I386/* | wc -c)"
printf '%-44s median %7.3f s  (min–max %s s)\n' "xpboot image put I386 run.img:/" "$mx" "$(minmax "${xs[@]}")"
printf '%-44s median %7.3f s  (min–max %s s)\n' "ntfs-3g mount, cp -r, sync, unmount" "$mn" "$(minmax "${ns[@]}")"
printf 'ratio xpboot/ntfs-3g: %.3f (goal: at most 0.5)\n' "$(echo "$mx / $mn" | bc -l)"
bench_result ntfs-put ntfs-3g s lower 2 "${xs[*]}" "${ns[*]}"
