#!/bin/sh
# Speed of xpboot's hive editor against hivex (hivexsh -w) on a 10 MB hive:
# 1,000 key creations and 10,000 value sets, then save. Needs libhivex-bin
# and libwin-hivex-perl. Prints both times and the ratio.
set -eu
cd "$(dirname "$0")/../.."
XPBOOT_BENCH=1 go test -count=1 -run '^TestSpeedVsHivex$' -v ./hive/ | grep -E 'bench_test|FAIL|ok'
go test -run '^$' -bench '^BenchmarkEdits$' -benchtime 3x -benchmem ./hive/ | grep -E 'Benchmark|ok'
