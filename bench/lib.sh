# Shared part of the iSCSI and serve benchmarks (bench/iscsi/*.sh,
# bench/serve/*.sh), sourced by each after `set -euo pipefail`:
#
#   . "$(dirname "$0")/../lib.sh"
#   bench_init conformance  # messages "conformance: …", WORK=/tmp/xpboot-conformance.XXXXXX
#
# It provides ROOT (the repository), WORK (a fresh directory, deleted at
# exit unless KEEP is set), PIDS (background processes killed at exit: add
# every one with `track $!`), and helpers: die, need_tools, need_root,
# build_xpboot, xpboot_serve, wait_port, wait_log, tgt_start, tgt_stop. A
# script with more to undo at exit defines bench_on_exit (it runs before
# WORK is removed). Processes that must be killed at exit are started by
# the main shell, never inside $( ): a subshell's $! is not the script's to
# kill.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PIDS=()
BENCH_NAME=bench

# bench_init NAME [DIR]: messages start with NAME; creates WORK,
# /tmp/xpboot-DIR.XXXXXX (DIR defaults to NAME), and the EXIT trap.
bench_init() {
	BENCH_NAME=$1
	WORK=$(mktemp -d "/tmp/xpboot-${2:-$1}.XXXXXX")
	trap bench_cleanup EXIT
}

# bench_cleanup kills what track recorded (SIGKILL: tgtd -f ignores
# SIGTERM), waits for it, runs bench_on_exit if the script has one, and
# removes WORK (kept with KEEP=1).
bench_cleanup() {
	local p
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
	done
	for p in "${PIDS[@]:-}"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null || true
	done
	if declare -F bench_on_exit >/dev/null; then
		bench_on_exit || true
	fi
	if [ -n "${KEEP:-}" ]; then
		echo "# logs kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}

track() { PIDS+=("$@"); } # track PID...: kill it at exit

die() { # die MESSAGE: print it as this benchmark's error and exit 2
	echo "$BENCH_NAME: $*" >&2
	exit 2
}

need_tools() { # need_tools PROGRAM...: exit 2 naming the first one missing
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool not found"
	done
}

need_root() { # need_root WHY
	[ "$(id -u)" = 0 ] || die "run as root ($1)"
}

# build_xpboot: builds ./cmd/xpboot into WORK, static as README builds it, and sets XP to it (XPBOOT, if
# set, names an existing binary instead).
build_xpboot() {
	if [ -n "${XPBOOT:-}" ]; then
		XP=$XPBOOT
		return
	fi
	(cd "$ROOT" && CGO_ENABLED=0 go build -tags urfave_cli_no_docs -o "$WORK/xpboot" ./cmd/xpboot)
	XP=$WORK/xpboot
}

# xpboot_serve: sets XPBOOT_SERVE, the serve command line, unless the
# caller set it (e.g. XPBOOT_SERVE="xpboot --log-level warn serve").
xpboot_serve() {
	if [ -z "${XPBOOT_SERVE:-}" ]; then
		build_xpboot
		XPBOOT_SERVE="$XP --log-level warn serve"
	fi
}

# IN_NS is the command prefix wait_port and tgt_* run their commands
# under: empty for this namespace, (ip netns exec NS) for another one.
IN_NS=()

wait_port() { # wait_port HOST PORT: until something accepts TCP there (10 s)
	local _
	for _ in $(seq 1 200); do
		"${IN_NS[@]}" bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "$BENCH_NAME: nothing listens on $1:$2" >&2
	return 1
}

# wait_log FILE PATTERN [SECONDS]: until FILE has a line matching PATTERN
# (grep), at most SECONDS (default 15); fails if it never does.
wait_log() {
	local _
	for _ in $(seq 1 $((${3:-15} * 20))); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# tgt_start CTL HOST PORT IMAGE IQN LOG: runs tgtd (Debian's tgt) with
# control port CTL on HOST:PORT, serving IMAGE as LUN 1 of target IQN to
# every initiator (tgt reserves LUN 0 for its controller device), logging
# to LOG. Sets TGT_PID (tracked).
tgt_start() {
	local ctl=$1 host=$2 port=$3 img=$4 iqn=$5 log=$6
	"${IN_NS[@]}" tgtd -f -C "$ctl" --iscsi "portal=$host:$port" >"$log" 2>&1 &
	TGT_PID=$!
	track "$TGT_PID"
	wait_port "$host" "$port"
	"${IN_NS[@]}" tgtadm -C "$ctl" --lld iscsi --op new --mode target --tid 1 -T "$iqn"
	"${IN_NS[@]}" tgtadm -C "$ctl" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$img"
	"${IN_NS[@]}" tgtadm -C "$ctl" --lld iscsi --op bind --mode target --tid 1 -I ALL
}

# tgt_stop [PID...]: stops tgtd (TGT_PID by default) and anything else
# given. tgtd -f ignores SIGTERM (and tgt 1.0.85 refuses "--op delete
# --mode system" while a target exists): SIGKILL.
tgt_stop() {
	local p
	[ $# -gt 0 ] || set -- "$TGT_PID"
	for p in "$@"; do
		kill -9 "$p" 2>/dev/null || true
	done
	for p in "$@"; do
		wait "$p" 2>/dev/null || true
	done
}

# Result lines (bench/README.md): every side-by-side benchmark prints one
# line per figure, which bench/all.sh collects into its table:
#
#   BENCH figure=hive-set peer=hivexsh unit=ms better=lower goal=2 runs=9 xpboot=3.1,2.9,… peer_values=23,22,… xpboot_median=… xpboot_min=… xpboot_max=… peer_median=… peer_min=… peer_max=… ratio=…
#
# bench_result FIGURE PEER UNIT lower|higher GOAL "XPBOOT VALUES" "PEER VALUES"
# prints it. VALUES are space-separated, one per run. ratio is the
# speed-up of xpboot over the peer from the medians (peer/xpboot for
# times, xpboot/peer for rates): above 1 means xpboot is better; GOAL is
# the ratio the project claims (1: at least as good as the peer).
bench_result() {
	local figure=$1 peer=$2 unit=$3 better=$4 goal=$5 xv=$6 pv=$7
	awk -v figure="$figure" -v peer="$peer" -v unit="$unit" -v better="$better" -v goal="$goal" \
		-v xv="$xv" -v pv="$pv" '
	function stats(s, out,   v, n, i, j, t) {
		n = split(s, v, " ")
		for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
		out["n"] = n; out["min"] = v[1]; out["max"] = v[n]
		out["med"] = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		out["list"] = v[1]; for (i = 2; i <= n; i++) out["list"] = out["list"] "," v[i]
	}
	BEGIN {
		stats(xv, x); stats(pv, p)
		if (x["n"] == 0 || p["n"] == 0) { print "bench_result: no values for " figure > "/dev/stderr"; exit 1 }
		if (better == "lower") r = x["med"] > 0 ? p["med"] / x["med"] : 0
		else r = p["med"] > 0 ? x["med"] / p["med"] : 0
		gsub(/ +/, ",", xv); gsub(/^,|,$/, "", xv); gsub(/ +/, ",", pv); gsub(/^,|,$/, "", pv)
		printf "BENCH figure=%s peer=%s unit=%s better=%s goal=%s runs=%d xpboot=%s peer_values=%s xpboot_median=%g xpboot_min=%g xpboot_max=%g peer_median=%g peer_min=%g peer_max=%g ratio=%.3f\n",
			figure, peer, unit, better, goal, (x["n"] < p["n"] ? x["n"] : p["n"]), xv, pv, x["med"], x["min"], x["max"], p["med"], p["min"], p["max"], r
	}'
}

# now_ms: wall clock in milliseconds with microseconds (for timing one command).
now_ms() { local t; t=$(date +%s%N); echo "${t:0:-6}.${t: -6}"; }
