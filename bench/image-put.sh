#!/usr/bin/env bash
# Populating a FAT32 image with an XP-sized I386 tree (4,000 small files in one
# directory): `xpboot image put` against mtools' `mcopy -s`, side by side on
# the same freshly created image. Best of $RUNS runs each; prints the ratio.
#
#   bash bench/image-put.sh            # from the repository root
#   RUNS=3 FILES=8000 bash bench/image-put.sh
set -euo pipefail
runs=${RUNS:-5}
files=${FILES:-4000}
command -v mcopy >/dev/null || { echo "needs mcopy (Debian package mtools)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -tags urfave_cli_no_docs -o "$work/xpboot" ./cmd/xpboot

# The tree: sizes from 1 to 12 KiB like compressed setup files, long and 8.3 names.
mkdir -p "$work/tree/I386"
head -c $((files * 12288)) /dev/urandom >"$work/random"
for ((i = 0; i < files; i++)); do
  size=$((1024 + (i * 7919) % 11264))
  if ((i % 2)); then name="DRV$(printf %05d $i).SY_"; else name="setup component $(printf %05d $i).dl_"; fi
  dd if="$work/random" of="$work/tree/I386/$name" iflag=skip_bytes,count_bytes skip=$((i * 12288)) count=$size status=none
done
"$work/xpboot" --quiet image create --size 2G "$work/base.img" >/dev/null
offset=$((63 * 512))

now() { date +%s.%N; }
best() { sort -g | head -1; }
export MTOOLS_SKIP_CHECK=1

run_xpboot() {
  cp --sparse=always "$work/base.img" "$work/run.img"
  local t0; t0=$(now)
  "$work/xpboot" --quiet image put "$work/tree/I386" "$work/run.img:/"
  echo "$(now) - $t0" | bc
}
run_mcopy() {
  cp --sparse=always "$work/base.img" "$work/run.img"
  local t0; t0=$(now)
  mcopy -s -Q -i "$work/run.img@@$offset" "$work/tree/I386" ::/
  echo "$(now) - $t0" | bc
}

# Alternating (xpboot first in even rounds, mcopy first in odd ones), so
# that both see the same machine load.
xs= ms=
for ((r = 0; r < runs; r++)); do
  if ((r % 2)); then m1=$(run_mcopy); x1=$(run_xpboot); else x1=$(run_xpboot); m1=$(run_mcopy); fi
  xs+=" $x1" ms+=" $m1"
done
x=$(printf '%s\n' $xs | best)
m=$(printf '%s\n' $ms | best)
printf 'files: %d, best of %d runs\n' "$files" "$runs"
printf 'xpboot image put: %.3f s\n' "$x"
printf 'mcopy -s:         %.3f s\n' "$m"
printf 'ratio mcopy/xpboot: %.2fx (above 1 means xpboot is faster)\n' "$(echo "$m / $x" | bc -l)"

# Result line for bench/all.sh (bench/README.md).
. "$(dirname "$0")/lib.sh"
bench_result fat32-put mcopy s lower 1 "$xs" "$ms"
