#!/usr/bin/env bash
# conformance/run.sh: pjdfstest (the POSIX filesystem test suite, in
# ../shared/conformance/pjdfstest) against krunbench's virtio-fs server, in
# two places, and a table of the results per test directory. It fails unless
# every subtest passed and every test file ran to the end of its plan.
#
#   serve: through `krunbench serve --mount` (the host kernel's FUSE client
#          over /dev/fuse), the .t files run by the host's sh.
#   guest: inside a real guest booted by `krunbench run --engine qemu` from
#          a busybox root served by krunbench over virtio-fs; the .t files
#          run under busybox sh in the guest, on a directory of that root.
#
#   native: the same on the host's own filesystem (under /tmp), for
#          reference; not part of "all".
#
# Usage: conformance/run.sh [serve|guest|all|native] [TESTDIR...]
#   TESTDIR: directories under pjdfstest's tests/ (chmod, open, ...);
#   default all of them.
# Environment: KRUNBENCH_BIN (default bin/krunbench), KRUNBENCH_KERNEL
# (default: the one `make kernel` installs, then ../shared/guest/bzImage),
# PJDFSTEST_SRC (default ../shared/conformance/pjdfstest), KRUNBENCH_CACHE
# (default ~/.cache/krunbench: pjdfstest is built there once, static),
# CONFORMANCE_JOBS (test files run at once; default 2, also the guest's
# vCPUs), CONFORMANCE_OUT (keep the TAP output there; default a temp dir,
# removed), CONFORMANCE_FILE_TIMEOUT (seconds one .t file may take;
# default 600 on the host, 1200 in the guest), CONFORMANCE_GUEST_TIMEOUT
# (seconds the whole guest run may take; default 3600).
#
# Needs root (mounts, chown to other users), gcc/autoconf/automake/make
# and a static libc (libc6-dev) to build pjdfstest, qemu-system-x86_64 and
# busybox (static) for the guest. perl's prove is not used: both places run
# each .t with sh and this script counts the TAP lines itself, so the two
# tables are made the same way.
#
# Where a prerequisite outside this repository is missing (root, the
# pjdfstest source, QEMU, busybox, a guest kernel), that part is skipped with a
# SKIPPED line, as the Go tests skip; a failure to build or run fails.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${KRUNBENCH_BIN:-$here/bin/krunbench}
src=${PJDFSTEST_SRC:-$here/../shared/conformance/pjdfstest}
cache=${KRUNBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/krunbench}
jobs=${CONFORMANCE_JOBS:-2}
serve_pid=""
work=""

die() {
	echo "conformance: $*" >&2
	exit 1
}

cleanup() {
	[ -n "$work" ] || return 0
	if [ -n "$serve_pid" ]; then
		kill -TERM "$serve_pid" 2>/dev/null || true
		wait "$serve_pid" 2>/dev/null || true
	fi
	if grep -q " $work/mnt " /proc/mounts 2>/dev/null; then
		umount -l "$work/mnt" || true
	fi
	rm -rf "$work"
}

# build_suite builds pjdfstest statically (the same binary serves the host
# and the busybox guest) into $suite, once per source version; a lock
# keeps two runs from building into the same place at once.
build_suite() {
	local key
	key=$(cat "$src/pjdfstest.c" "$src/configure.ac" | sha256sum | cut -c1-12)
	suite=$cache/pjdfstest-$key
	mkdir -p "$cache"
	exec 9>"$cache/pjdfstest.lock"
	flock 9
	if [ -x "$suite/pjdfstest" ] && [ -d "$suite/tests" ]; then
		exec 9>&-
		return
	fi
	echo "conformance: building pjdfstest (static) into $suite"
	local b=$cache/pjdfstest-$key.build
	rm -rf "$b" "$suite"
	cp -r "$src" "$b"
	(cd "$b" && autoreconf -ifs && ./configure && make pjdfstest LDFLAGS=-static) >"$b.log" 2>&1 ||
		die "building pjdfstest failed; see $b.log"
	rm -rf "$suite.tmp"
	mkdir -p "$suite.tmp"
	cp "$b/pjdfstest" "$suite.tmp/"
	cp -r "$b/tests" "$suite.tmp/"
	mv "$suite.tmp" "$suite"
	rm -rf "$b" "$b.log"
	exec 9>&-
}

# test_files lists the .t files to run, relative to tests/.
test_files() {
	(cd "$suite/tests" && if [ ${#dirs[@]} -eq 0 ]; then
		find . -name '*.t'
	else
		for d in "${dirs[@]}"; do
			[ -d "$d" ] || die "no test directory $d in pjdfstest"
			find "$d" -name '*.t'
		done
	fi) | sed 's|^\./||' | sort
}

# tally reads the TAP files under $1 and prints a table: per directory the
# test files, the subtests run, the failed ones (TODO lines do not count,
# as in prove) and the files that ended early (fewer results than their
# 1..N plan). It returns non-zero unless both are 0 everywhere.
tally() {
	local dir=$1 label=$2
	(cd "$dir" && find . -name '*.t.tap' | sed 's|^\./||' | sort | while read -r f; do
		awk -v f="$f" '
			/^1\.\.[0-9]+/ { plan = substr($1, 4) + 0 }
			/^ok [0-9]+/ { n++ }
			/^not ok [0-9]+/ { n++; if ($0 !~ /# TODO/) { bad++; print "FAIL " f ": " $0 > "/dev/stderr" } }
			END { split(f, p, "/"); printf "%s %d %d %d\n", p[1], n, bad + 0, (plan == 0 || n != plan) }
		' "$f"
	done) | awk -v label="$label" -v want="$expected" '
		{ files[$1]++; subs[$1] += $2; bad[$1] += $3; short[$1] += $4
		  F++; S += $2; B += $3; X += $4 }
		END {
			printf "\n%s\n%-18s %6s %9s %7s %10s\n", label, "directory", "tests", "subtests", "failed", "cut short"
			for (d in files) printf "%-18s %6d %9d %7d %10d\n", d, files[d], subs[d], bad[d], short[d] | "sort"
			close("sort")
			printf "%-18s %6d %9d %7d %10d\n", "total", F, S, B, X
			if (F != want) { printf "%d of %d test files left no output\n", want - F, want; exit 1 }
			exit (B > 0 || X > 0)
		}'
}

# run_files runs the selected .t files in directory $1 with the host's sh,
# $jobs at a time, each bounded, writing TAP files under $2.
run_files() {
	local dir=$1 o=$2
	test_files | while read -r f; do mkdir -p "$o/$(dirname "$f")"; done
	(cd "$dir" && test_files | xargs -P "$jobs" -I{} \
		timeout "${CONFORMANCE_FILE_TIMEOUT:-600}" sh -c 'sh "$1/tests/$2" >"$3/$2.tap" 2>&1' _ "$suite" {} "$o" || true)
}

# run_native runs the suite on the host's own filesystem under /tmp: the
# reference the other two are compared with (not part of "all").
run_native() {
	local dir=$work/native start=$SECONDS
	mkdir -p "$dir"
	run_files "$dir" "$out/native"
	tally "$out/native" "pjdfstest natively on $(df -PT "$dir" | awk 'END { print $2 }') ($((SECONDS - start)) s)"
}

# run_serve mounts a fresh directory with `krunbench serve --mount` and runs
# the .t files in it.
run_serve() {
	local mnt=$work/mnt shared=$work/shared i start
	mkdir -p "$mnt" "$shared"
	chmod 0755 "$shared"
	"$bin" serve --shared-dir "$shared" --mount "$mnt" 2>"$work/serve.log" &
	serve_pid=$!
	for i in $(seq 300); do
		grep -q " $mnt fuse.krunbench " /proc/mounts && break
		kill -0 "$serve_pid" 2>/dev/null || die "krunbench serve exited: $(cat "$work/serve.log")"
		sleep 0.1
	done
	grep -q " $mnt fuse.krunbench " /proc/mounts || die "krunbench serve did not mount $mnt within 30 s"
	start=$SECONDS
	run_files "$mnt" "$out/serve"
	kill -TERM "$serve_pid"
	wait "$serve_pid" || true
	serve_pid=""
	tally "$out/serve" "pjdfstest through krunbench serve --mount ($((SECONDS - start)) s)"
}

# run_guest builds a busybox root with the suite in it and runs the .t
# files inside a QEMU guest whose root is that directory over virtio-fs.
run_guest() {
	local bb kernel=${KRUNBENCH_KERNEL:-} k
	if ! command -v qemu-system-x86_64 >/dev/null; then
		echo "conformance: SKIPPED guest: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
		return 0
	fi
	if ! bb=$(command -v busybox) || ldd "$bb" >/dev/null 2>&1; then
		echo "conformance: SKIPPED guest: no static busybox (apt-get install busybox-static)"
		return 0
	fi
	for k in "${XDG_DATA_HOME:-$HOME/.local/share}/krunbench/kernel/bzImage" "$here/../shared/guest/bzImage"; do
		[ -n "$kernel" ] || [ ! -f "$k" ] || kernel=$k
	done
	if [ -z "$kernel" ]; then
		echo "conformance: SKIPPED guest: no guest kernel (set KRUNBENCH_KERNEL or run make kernel)"
		return 0
	fi

	local root=$work/root o=$out/guest
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,etc,root,fast,work,out} "$o"
	chmod 1777 "$root/tmp"
	cp "$bb" "$root/bin/busybox"
	ln -s busybox "$root/bin/sh"
	# utimensat/06 and 07 look up the user nobody (id -u nobody).
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	cp -r "$suite" "$root/pjd"
	test_files >"$root/pjd/list"
	test_files | while read -r f; do mkdir -p "$root/out/$(dirname "$f")"; done
	cp "$here/conformance/guest.sh" "$root/guest.sh"
	local start=$SECONDS boot rc
	# A boot that dies before the tests start (issue 16 can crash the
	# init or the first busybox, which still run from virtio-fs) gets
	# one more try; a run that started counts as it ends.
	for boot in 1 2; do
		rc=0
		timeout "${CONFORMANCE_GUEST_TIMEOUT:-3600}" "$bin" run --engine qemu --rootfs "$root" --kernel "$kernel" \
			--cpus "$jobs" --mem 1024 --env CONFORMANCE_JOBS="$jobs" \
			--env CONFORMANCE_FILE_TIMEOUT="${CONFORMANCE_FILE_TIMEOUT:-1200}" \
			-- /bin/sh /guest.sh >"$work/guest.log" 2>&1 || rc=$?
		grep -q '^conformance: .* test files' "$work/guest.log" && break
		echo "conformance: guest boot $boot ended before the tests started (exit $rc):" >&2
		tail -n 20 "$work/guest.log" >&2
	done
	grep '^conformance:' "$work/guest.log" || true
	if [ "$rc" -ne 0 ]; then
		tail -n 30 "$work/guest.log" >&2
		die "the guest run failed (exit $rc; 124: over CONFORMANCE_GUEST_TIMEOUT)"
	fi
	cp -r "$root/out/." "$o/"
	cp "$work/guest.log" "$o/console.log"
	tally "$o" "pjdfstest inside a QEMU guest over virtio-fs ($((SECONDS - start)) s)"
}

main() {
	mode=${1:-all}
	[ $# -eq 0 ] || shift
	case $mode in
	serve | guest | all | native) ;;
	*)
		echo "usage: conformance/run.sh [serve|guest|all|native] [TESTDIR...]" >&2
		exit 2
		;;
	esac
	dirs=("$@")
	if [ "$(id -u)" -ne 0 ]; then
		echo "conformance: SKIPPED: needs root (FUSE mounts, files of other users)"
		return 0
	fi
	[ -x "$bin" ] || die "no $bin (make build)"
	if [ ! -f "$src/pjdfstest.c" ]; then
		echo "conformance: SKIPPED: no pjdfstest source in $src (set PJDFSTEST_SRC)"
		return 0
	fi
	work=$(mktemp -d /tmp/krunbench-conformance.XXXXXX)
	chmod 0755 "$work"
	out=${CONFORMANCE_OUT:-$work/out}
	trap cleanup EXIT
	trap 'exit 130' INT TERM

	build_suite
	expected=$(test_files | wc -l)
	[ "$expected" -gt 0 ] || die "no test files selected"
	local status=0
	if [ "$mode" = native ]; then
		run_native || status=1
	fi
	if [ "$mode" = serve ] || [ "$mode" = all ]; then
		run_serve || status=1
	fi
	if [ "$mode" = guest ] || [ "$mode" = all ]; then
		run_guest || status=1
	fi
	[ -z "${CONFORMANCE_OUT:-}" ] || echo "conformance: TAP output in $out"
	return $status
}

# One line, read whole before it runs: editing this file during a run
# cannot change what the running shell reads next.
main "$@"; exit $?
