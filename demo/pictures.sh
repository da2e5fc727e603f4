#!/usr/bin/env bash
# make pictures: the README's pictures of the workbench, taken from a real
# session. Starts krunbench in a detached tmux of a fixed size on the demo
# busybox root (QEMU engine, TCG: the same on every machine), launches the
# default init, types a command into the guest, waits until its traffic
# shows, captures the screen with its colours; then filters the traffic
# down to /init.krun, waits for the read at its end (EOF, 0 bytes) and
# captures again. Each capture is rendered to SVG by charmbracelet/freeze
# (a pinned tool, run with go run; not a dependency of krunbench).
#
#   demo/pictures.sh [--check] [OUTDIR]
#
# OUTDIR defaults to docs/pictures. --check takes the captures into a
# temporary directory and renders nothing (no freeze, no network): the
# tmux half alone, which the tests run so that it keeps finding what it
# waits for. Environment: KRUNBENCH_BIN (default bin/krunbench),
# KRUNBENCH_KERNEL (default: the kernel `krunbench doctor` finds),
# FREEZE (default: $GO run github.com/charmbracelet/freeze@v0.2.2),
# FORMAT (svg, the default: text with its font embedded; or png).
# Every wait polls the screen (up to a generous deadline); on any exit,
# failure included, the workbench is quit (its guest stopped), the tmux
# server ended and the temporary directory removed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
check=false
if [ "${1:-}" = --check ]; then
	check=true
	shift
fi
out=${1:-$here/docs/pictures}
bin=${KRUNBENCH_BIN:-$here/bin/krunbench}
freeze=${FREEZE:-${GO:-go} run github.com/charmbracelet/freeze@v0.2.2}
format=${FORMAT:-svg}
cols=160 rows=45

die() {
	echo "pictures: $*" >&2
	exit 1
}
command -v tmux >/dev/null || die "tmux is not installed (apt-get install tmux)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
[ -x "$bin" ] || die "no $bin (make build)"
kernel=${KRUNBENCH_KERNEL:-$("$bin" doctor --print-kernel 2>/dev/null || true)}
[ -n "$kernel" ] || die "no guest kernel (set KRUNBENCH_KERNEL or make kernel)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kbpics.XXXXXX")
sock="krunbench-pictures-$$"
tmx() { tmux -L "$sock" -f /dev/null "$@"; }
pid=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		# Quit as a user would (asked first, since a guest runs), then
		# closing the terminal (SIGHUP), then SIGKILL.
		tmx send-keys -t pics C-] 2>/dev/null || true
		tmx send-keys -t pics q 2>/dev/null || true
		if seen 'A guest is running' 10; then
			tmx send-keys -t pics y 2>/dev/null || true
		fi
		waitgone 30 || { tmx kill-server 2>/dev/null || true; waitgone 30; } || kill -9 "$pid" 2>/dev/null || true
	fi
	tmx kill-server 2>/dev/null || true
	rm -rf "$tmp"
	[ "$rc" -eq 0 ] || echo "pictures: cleaned up after the failure (${SECONDS}s)" >&2
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# waitgone SECONDS: until the workbench process has exited.
waitgone() {
	local end=$((SECONDS + $1))
	while kill -0 "$pid" 2>/dev/null; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.2
	done
}

screen() { tmx capture-pane -p -t pics; }

# seen ERE SECONDS: whether the screen matches ERE within SECONDS.
seen() {
	local end=$((SECONDS + $2))
	until screen 2>/dev/null | grep -Eq -- "$1"; do
		[ "$SECONDS" -lt "$end" ] && kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.2
	done
}

# waitfor ERE SECONDS WHAT: polls the screen until it matches ERE.
waitfor() {
	local end=$((SECONDS + $2))
	until screen | grep -Eq -- "$1"; do
		if [ "$SECONDS" -ge "$end" ] || ! kill -0 "$pid" 2>/dev/null || screen | grep -q 'launch failed'; then
			echo "pictures: the screen never showed $3 (/$1/) within $2 s:" >&2
			screen >&2 || true
			exit 1
		fi
		sleep 0.2
	done
}

keys() { tmx send-keys -t pics "$@"; }

# A library with the demo root filesystem only, so the pictures do not
# depend on what the user's own library holds.
KRUNBENCH_DATA="$tmp/data/krunbench" "$here/demo/rootfs.sh" >/dev/null
mkdir -p "$tmp/r"

tmx new-session -d -s pics -x "$cols" -y "$rows" sh
pid=$(tmx display-message -p -t pics '#{pane_pid}')
# exec: the pane's process is the workbench itself (pid above).
keys "exec env TMPDIR=$tmp/r COLORTERM=truecolor TERM=tmux-256color KRUNBENCH_KERNEL=$kernel $bin --library $tmp/data/krunbench --engine qemu --accel tcg" Enter
waitfor 'krun-init \(default\)' 60 "the library"

# Pick the busybox root, keep the default init, launch: the console
# attaches to the guest.
keys Down
keys Space
keys Enter
waitfor 'E exec [0-9.]+s' 180 "the workload's start in the boot timeline"
# A fresh prompt: the kernel may still be printing after the first one.
keys Enter
waitfor '[┃│]/ # +[┃│]' 60 "the guest's shell prompt"
# A command with traffic of its own (a directory no one read yet). The
# kernel may print later (a clock source change, under TCG) and push the
# output off the console's screen: then the command is typed again.
for try in 1 2 3; do
	keys "ls /usr/sbin | head -4; echo typed-in-the-guest-$try" Enter
	waitfor "[┃│]typed-in-the-guest-$try +[┃│]" 60 "the command's output"
	waitfor '[A-Z]+ +/usr/sbin' 60 "the command's traffic"
	keys C-]
	waitfor 'enter: attach' 20 "the console detached"
	tmx capture-pane -e -p -t pics >"$tmp/workbench.ansi"
	if tmx capture-pane -p -t pics | grep -Eq "[┃│]typed-in-the-guest-$try +[┃│]"; then
		break
	fi
	[ "$try" -lt 3 ] || die "kernel messages kept pushing the command off the console"
	keys Enter
	waitfor '● attached' 20 "the console attached"
done

# The traffic pane, filtered to /init.krun: its reads, the last one the
# read at the end (0 bytes) after which the kernel runs the init.
keys 3
keys /
keys init.krun Enter
waitfor 'filter: path~init\.krun' 20 "the traffic filter"
# The newest reads are the loaded init's pages; the EOF read is older:
# from the oldest, a page at a time until it shows.
# pagedown: the next page, once the traffic rows on screen have changed.
rows_shown() { screen | grep -E '/init\.krun off=' || true; }
pagedown() {
	local before end=$((SECONDS + 10))
	before=$(rows_shown)
	keys f
	while [ "$(rows_shown)" = "$before" ] && [ "$SECONDS" -lt "$end" ]; do
		sleep 0.1
	done
}
keys g
waitfor '↑ scrolled' 20 "the traffic scrolled to its oldest"
for _ in $(seq 60); do
	screen | grep -Eq 'READ +/init\.krun .*EOF ⏎ 0 bytes' && break
	pagedown
done
waitfor 'READ +/init\.krun .*EOF ⏎ 0 bytes' 20 "the EOF read of /init.krun"
tmx capture-pane -e -p -t pics >"$tmp/eof-read.ansi"

# Quit: asked first, since the guest runs; nothing may be left behind.
keys q
waitfor 'A guest is running' 20 "the quit question"
keys y
waitgone 60 || die "the workbench did not exit within 60 s"
left=$(find "$tmp/r" -mindepth 1 -maxdepth 1 -name 'krunbench-run-*' | head -1)
[ -z "$left" ] || die "the workbench left $left behind"

if $check; then
	echo "pictures: check passed (captures: workbench, eof-read)"
	exit 0
fi
mkdir -p "$out"
for name in workbench eof-read; do
	# shellcheck disable=SC2086 # FREEZE is a command line
	$freeze --language ansi --window --padding 20 --margin 0 --font.size 14 \
		--output "$out/$name.$format" "$tmp/$name.ansi" >/dev/null
	echo "pictures: $out/$name.$format"
done
