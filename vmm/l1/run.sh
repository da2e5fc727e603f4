#!/usr/bin/env bash
# Runs krunbench's KVM tests where this machine has no usable hardware KVM:
# inside an "L1" Linux under QEMU's software emulation (TCG) with nested
# SVM, as ../shared/reference/nested-kvm/README.md measured. The L1
# initramfs carries busybox, Debian's cloud kernel modules for KVM, the
# static krunbench, static test binaries of every package with KVM tests,
# the test init, and the guest kernel. KRUNBENCH_REQUIRE_KVM is set in L1,
# so a KVM test that cannot run fails instead of skipping. With
# KRUNBENCH_L1_FLOOD=1 (make flood) it also runs the console flood test,
# printing $KRUNBENCH_FLOOD_MIB MiB (make flood: 200; 4 by default here),
# its time bound counting $KRUNBENCH_FLOOD_KIBPS KiB/s (4 here: the kvm
# flood in L1 moves about 10 KB/s). The flood test alone:
#   KRUNBENCH_L1_ONLY='cmd/krunbench ^$' KRUNBENCH_L1_FLOOD=1 KRUNBENCH_FLOOD_MIB=1 vmm/l1/run.sh test
#
#   vmm/l1/run.sh test     the KVM test suites (make e2e-kvm)
#   vmm/l1/run.sh bench    the boot-time benchmark (make bench)
#   vmm/l1/run.sh loop     boot `krunbench run --engine kvm`
#                          $KRUNBENCH_L1_LOOP times (40), printing each
#                          failing boot's console, the L1 symbol of each
#                          reported RIP and L1's dmesg, stopping after
#                          $KRUNBENCH_L1_LOOP_MAXFAIL failures (10), then
#                          a summary (for chasing intermittent boot stalls;
#                          KRUNBENCH_L1_LOOP_CPUS fixes the vCPUs, else 1
#                          and 2 alternate; KRUNBENCH_L1_LOOP_MEM, MiB, 512)
#
# KRUNBENCH_L1_ONLY="PKG PATTERN" runs only that package's tests matching
# the -test.run PATTERN (while iterating on some tests), for example
#   KRUNBENCH_L1_ONLY='cmd/krunbench ^TestKVMRunTestInit$' vmm/l1/run.sh test
#
# Where /dev/kvm is hardware KVM (kvm_amd, kvm_intel) the same tests ran
# directly in `make unit`, and `test` says so and stops; KRUNBENCH_L1=always
# runs L1 anyway. Needs qemu-system-x86, busybox-static, cpio and apt-get
# access for the L1 kernel (cached in $KRUNBENCH_L1_CACHE).
set -euo pipefail
mode=${1:-test}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${KRUNBENCH_L1_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/krunbench/l1}
kernel=${KRUNBENCH_GUEST_VMLINUX:-$repo/../shared/guest/vmlinux}
timeout_s=${KRUNBENCH_L1_TIMEOUT:-900}
# budget_s bounds all boots together, lost ones and the rerun included:
# CI has 90 minutes for make test, whose other suites take about 15, and
# one L1 of the five suites about 8 to 10; no boot starts that could not
# finish inside the budget (KRUNBENCH_L1_BUDGET, seconds).
budget_s=${KRUNBENCH_L1_BUDGET:-4200}
test_timeout_s=${KRUNBENCH_L1_TEST_TIMEOUT:-600} # per test package
export CGO_ENABLED=0

if [ "$mode" = test ] && [ "${KRUNBENCH_L1:-auto}" != always ] &&
	{ [ -d /sys/module/kvm_amd ] || [ -d /sys/module/kvm_intel ]; } && [ -w /dev/kvm ]; then
	echo "l1: /dev/kvm is hardware KVM here: the KVM tests ran directly in make unit (KRUNBENCH_L1=always runs them in L1 too)"
	exit 0
fi
for tool in qemu-system-x86_64 busybox cpio apt-get dpkg; do
	command -v "$tool" >/dev/null || { echo "l1: $tool not found (see .ci/run for the packages)" >&2; exit 1; }
done
[ -f "$kernel" ] || { echo "l1: guest kernel $kernel not found (set KRUNBENCH_GUEST_VMLINUX)" >&2; exit 1; }

# The L1 kernel: Debian's cloud kernel, whose KVM is modular.
mkdir -p "$cache"
if ! ls "$cache"/unpacked/boot/vmlinuz-* >/dev/null 2>&1; then
	echo "l1: fetching Debian's cloud kernel into $cache"
	pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
	[ -n "$pkg" ] || { echo "l1: apt-cache knows no linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
	(cd "$cache" && rm -f ./*.deb && { apt-get download "$pkg" >/dev/null 2>&1 ||
		{ apt-get update -qq && apt-get download "$pkg" >/dev/null 2>&1; }; }) ||
		{ echo "l1: apt-get download $pkg failed" >&2; exit 1; }
	rm -rf "$cache/unpacked" && dpkg -x "$cache"/"$pkg"_*.deb "$cache/unpacked"
fi
l1kernel=$(ls "$cache"/unpacked/boot/vmlinuz-* | head -1)
moddir=$(ls -d "$cache"/unpacked/lib/modules/*/kernel | head -1)

work=$(mktemp -d "${TMPDIR:-/tmp}/krunbench-l1-XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,l1/modules,l1/tests}
cp "$(command -v busybox)" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
for m in virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
	f=$moddir/$m
	if [ -f "$f" ]; then cp "$f" "$root/l1/modules/"; else xz -dc "$f.xz" >"$root/l1/modules/$(basename "$m")"; fi
done
cp "$here/init.sh" "$root/init"
cp "$kernel" "$root/l1/vmlinux"

echo "l1: building static binaries"
(cd "$repo" && make -s build >/dev/null)
cp "$repo/bin/krunbench" "$root/bin/krunbench"
(cd "$repo" && go build -trimpath -ldflags='-s -w' -o "$root/l1/testinit" ./cmd/krunbench/testdata/testinit)
(cd "$repo" && go build -trimpath -ldflags='-s -w' -o "$root/l1/kvmhold" ./vmm/l1/kvmhold)
(cd "$repo" && go build -trimpath -ldflags='-s -w' -o "$root/l1/tcgprobe" ./cmd/krunbench/testdata/tcgprobe)
(cd "$repo" && go build -trimpath -ldflags='-s -w' -o "$root/l1/floodlines" ./cmd/krunbench/testdata/floodlines)

plan=$root/l1/plan.sh
cat >"$plan" <<PLAN
export KRUNBENCH_BIN=/bin/krunbench KRUNBENCH_GUEST_VMLINUX=/l1/vmlinux KRUNBENCH_TESTINIT=/l1/testinit KRUNBENCH_TCGPROBE=/l1/tcgprobe KRUNBENCH_FLOODLINES=/l1/floodlines
export KRUNBENCH_FLOOD_MIB=${KRUNBENCH_FLOOD_MIB:-4}
export KRUNBENCH_FLOOD_KIBPS=${KRUNBENCH_FLOOD_KIBPS:-4}
PLAN
case $mode in
test)
	echo "export KRUNBENCH_REQUIRE_KVM=1" >>"$plan"
	# package, -test.run pattern: every test that needs KVM, and in
	# vmm/kvm and vmm/vcpu every test; in cmd/krunbench also the kvm
	# case of the tests that run one body per engine (guestEngines).
	suites='vmm/kvm .
vmm/vcpu .
vmm/builder .
session KVM|Engine
cmd/krunbench ^TestKVM(Run|BadRun)|^Test(FaultOpenPasswdInGuest|FaultOnInitReadFailsBootClearly|BreakStepsGuestOneRequestAtATime|InterruptWhileHeldStopsTheGuest)$/^kvm$'
	suites=${KRUNBENCH_L1_ONLY:-$suites}
	expected=$(echo "$suites" | wc -l)
	while read -r pkg pattern; do
		name=$(echo "$pkg" | tr / _)
		(cd "$repo" && go test -c -o "$root/l1/tests/$name.test" "./$pkg")
		cat >>"$plan" <<PLAN
mkdir -p /tmp/work/$pkg && cd /tmp/work/$pkg
echo "L1-RUN $pkg"
/l1/tests/$name.test -test.v -test.count=1 -test.timeout=${test_timeout_s}s -test.run '$pattern'
echo "L1-RESULT $pkg rc=\$?"
cd /
PLAN
	done <<<"$suites"
	# make flood: the console flood test, not part of make e2e-kvm (see
	# TestKVMConsoleFloodLosesNothing).
	if [ -n "${KRUNBENCH_L1_FLOOD:-}" ]; then
		expected=$((expected + 1))
		cat >>"$plan" <<PLAN
mkdir -p /tmp/work/flood && cd /tmp/work/flood
PLAN
		# KRUNBENCH_L1_TRACE="kvm/kvm_exit kvm/kvm_inj_virq ...": L1's
		# KVM tracepoints during the flood, the last 120 lines printed
		# after it (a debugging aid: what L1's KVM did just before a
		# guest fault; kvm_exit shows the guest's RIP at each exit,
		# before kvm-amd wipes it on a shutdown intercept).
		if [ -n "${KRUNBENCH_L1_TRACE:-}" ]; then
			cat >>"$plan" <<PLAN
t=/sys/kernel/tracing; mkdir -p \$t; mount -t tracefs nodev \$t 2>/dev/null
echo 8192 >\$t/buffer_size_kb
for e in $KRUNBENCH_L1_TRACE; do echo 1 >\$t/events/\$e/enable || echo "L1-TRACE cannot enable \$e"; done
PLAN
		fi
		# KRUNBENCH_L1_FLOOD_ENV="K=V ...": extra environment for the
		# flood test and the krunbench it runs (debugging, e.g. GOGC=off).
		cat >>"$plan" <<PLAN
echo "L1-RUN cmd/krunbench flood"
${KRUNBENCH_L1_FLOOD_ENV:+export $KRUNBENCH_L1_FLOOD_ENV}
/l1/tests/cmd_krunbench.test -test.v -test.count=1 -test.timeout=${test_timeout_s}s -test.run '^TestKVMConsoleFloodLosesNothing\$'
echo "L1-RESULT cmd/krunbench-flood rc=\$?"
PLAN
		if [ -n "${KRUNBENCH_L1_TRACE:-}" ]; then
			echo "echo 0 >/sys/kernel/tracing/tracing_on; tail -n 120 /sys/kernel/tracing/trace | sed 's/^/L1-TRACE /'" >>"$plan"
		fi
		cat >>"$plan" <<PLAN
cd /
PLAN
	fi
	;;
bench)
	# bench/bootbench's L1 side, QEMU with its libraries and firmware
	# (for the QEMU microvm -accel kvm side), the bzImage both boot.
	bb=${KRUNBENCH_L1_BOOTBENCH:?set KRUNBENCH_L1_BOOTBENCH (bench/bootbench runs this)}
	cp "$bb" "$root/l1/bootbench"
	cp "${KRUNBENCH_KERNEL:?set KRUNBENCH_KERNEL to a bzImage}" "$root/l1/bzImage"
	# QEMU finds its firmware relative to its own path (bindir/../share/qemu),
	# so it keeps its host path.
	qemu=$(command -v qemu-system-x86_64)
	mkdir -p "$root$(dirname "$qemu")"
	cp "$qemu" "$root$qemu"
	ldd "$qemu" | grep -o '/[^ ]*' | sort -u | while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
	mkdir -p "$root/usr/share"
	cp -rL /usr/share/qemu "$root/usr/share/qemu"
	cat >>"$plan" <<PLAN
export PATH=/bin:$(dirname "$qemu")
/l1/bootbench l1 -kernel /l1/bzImage ${KRUNBENCH_L1_BOOTBENCH_ARGS:-}
echo "L1-RESULT bootbench rc=\$?"
PLAN
	;;
loop)
	echo "loops=${KRUNBENCH_L1_LOOP:-40} fixed_cpus=${KRUNBENCH_L1_LOOP_CPUS:-} mem=${KRUNBENCH_L1_LOOP_MEM:-512}" >>"$plan"
	echo "export KRUNBENCH_L1_LOOP_MAXFAIL=${KRUNBENCH_L1_LOOP_MAXFAIL:-10}" >>"$plan"
	cat >>"$plan" <<'PLAN'
groot=/tmp/groot
mkdir -p $groot/bin $groot/dev $groot/proc $groot/sys $groot/tmp $groot/etc $groot/root
cp /bin/busybox $groot/bin/busybox
for a in sh echo cat true; do ln -s busybox $groot/bin/$a; done
# Modules and KVM's code symbols first: a frozen L1 prints nothing more,
# and the host side maps the RIPs QEMU's monitor gives against them (the
# SYM- prefix keeps them off the live filter, which shows L1- lines).
sed 's/^/L1-LOG module /' /proc/modules
grep -E '\[(kvm|kvm_amd)\]' /proc/kallsyms | awk '$2 ~ /^[tT]$/ { print "SYM-L1 " $0 }'
i=0 ok=0 stalls=0 other=0
while [ $i -lt $loops ]; do
	i=$((i + 1))
	cpus=${fixed_cpus:-$((1 + i % 2))}
	t0=$(cut -d' ' -f1 /proc/uptime)
	/bin/krunbench run --engine kvm --kernel /l1/vmlinux --rootfs $groot --cpus $cpus --mem $mem --verbose-boot --timings \
		-- /bin/sh -c 'echo hi; exit 7' >/tmp/run.log 2>&1
	rc=$?
	echo "L1-LOOP $i cpus=$cpus rc=$rc start=${t0}s $(grep -o '"exit_ms":[0-9.]*' /tmp/run.log)"
	if [ $rc -eq 7 ]; then
		ok=$((ok + 1))
		continue
	fi
	if grep -q 'never reached its virtio-fs root' /tmp/run.log; then
		stalls=$((stalls + 1))
	else
		other=$((other + 1))
	fi
	echo "L1-LOOP-FAIL run $i:"
	sed 's/^/L1-LOG /' /tmp/run.log
	# Whose code is a reported RIP in? The guest kernel has no
	# modules; the L1 kernel's KVM is modular.
	for rip in $(grep -o 'rip 0x[0-9a-f]*' /tmp/run.log | cut -c7-); do
		r=$(printf '%016s' "$rip" | tr ' ' 0)
		echo "L1-LOG rip $rip in L1: $(awk -v r="$r" '$1 <= r && $1 > b { b = $1; s = $0 } END { print s }' /proc/kallsyms)"
	done
	dmesg | tail -n 20 | sed 's/^/L1-LOG dmesg /'
	[ $((stalls + other)) -ge ${KRUNBENCH_L1_LOOP_MAXFAIL:-10} ] && break
done
echo "L1-LOOP-SUMMARY boots=$i ok=$ok stalls=$stalls other=$other"
failed=0
[ $ok -eq $i ] || failed=1
echo "L1-RESULT loop rc=$failed"
PLAN
	;;
*)
	echo "usage: $0 test|bench|loop" >&2
	exit 2
	;;
esac

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"
echo "l1: initramfs $(du -h "$work/initrd.gz" | cut -f1); booting $(basename "$l1kernel") under QEMU TCG (bound ${timeout_s}s)"
log=${KRUNBENCH_L1_LOG:-$work/console.log}
monitor=$work/monitor
ready_s=${KRUNBENCH_L1_READY_TIMEOUT:-150}
silence_s=${KRUNBENCH_L1_SILENCE_TIMEOUT:-150}
# TCG's TSC ticks at the host's rate; telling the L1 kernel so spares it
# the TSC calibration that hangs about half the microvm boots under TCG
# (the same hint session/qemu gives its guests).
tsc_khz=$(awk -F: '/^cpu MHz/ {printf "%d", $2 * 1000; exit}' /proc/cpuinfo)
tsc_khz=${tsc_khz:-2000000}

# boot_l1 runs QEMU in the background and follows its console. Now and
# then QEMU TCG hangs while booting the L1 kernel itself, printing nothing
# (seen here in up to half the boots before the TSC hint; a good boot
# reaches "/dev/kvm ready" in under 10 s of L1 time), and rarely the whole
# L1 freezes later (seen in the boot benchmark, after QEMU runs inside L1).
# That is the emulator, not a test: such a boot is killed and L1 booted
# again, up to 5 boots, and every test runs again from the start; so is
# an L1 that dies under the tests (l1_died). A test
# that fails or hangs inside a live L1 is never retried.
# give_up kills a hung L1 boot and says why.
give_up() {
	echo "l1: $1; killing it"
	l1_registers
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
}

# l1_registers prints where each CPU of L1 is, read through QEMU's
# monitor (the whole dump is kept), with the KVM symbol of a RIP in
# module space (the loop prints kvm's and kvm-amd's symbols first): whose
# code a frozen L1 is running.
l1_registers() {
	local regs=$work/registers.txt rip
	[ -p "$monitor.in" ] || return 0
	# Both FIFO opens block without QEMU at the other end: bounded.
	timeout 10 cat "$monitor.out" >"$regs" &
	timeout 5 sh -c 'echo "info registers -a" >"$1"' sh "$monitor.in" || true
	wait $! 2>/dev/null || true
	cp "$regs" "${TMPDIR:-/tmp}/krunbench-l1-registers.txt"
	echo "l1: L1's CPUs (registers in ${TMPDIR:-/tmp}/krunbench-l1-registers.txt):"
	for rip in $(grep -o -E '(RIP|EIP)=[0-9a-f]*' "$regs" | cut -c5-); do
		echo "l1:   rip $rip $(grep -a '^SYM-L1 ' "$log" | awk -v r="$rip" '$2 <= r && $2 > b { b = $2; s = $4 " at " $2 } END { print s }')"
	done
}

boot_l1() {
	: >"$log"
	rm -f "$monitor.in" "$monitor.out"
	mkfifo "$monitor.in" "$monitor.out"
	timeout -k 10 "$timeout_s" qemu-system-x86_64 -M microvm -accel tcg -cpu max -smp 2 -m 4096 \
		-nographic -no-reboot -kernel "$l1kernel" -initrd "$work/initrd.gz" -monitor "pipe:$monitor" \
		-append "console=ttyS0 panic=-1 loglevel=4 tsc_early_khz=$tsc_khz" </dev/null >"$log" 2>&1 &
	qpid=$!
	tail -n +1 -f --pid="$qpid" "$log" | grep --line-buffered -E '^(L1|---|ok|FAIL|PASS|panic:|BOOTBENCH|    ---|    [a-z_]+_test.go)' &
	local waited=0
	until grep -q '^L1: /dev/kvm' "$log"; do
		if ! kill -0 "$qpid" 2>/dev/null; then
			break
		fi
		if [ "$waited" -ge "$ready_s" ]; then
			give_up "L1 printed no '/dev/kvm' line within ${ready_s}s (QEMU TCG boot hang)"
			return 2
		fi
		sleep 2
		waited=$((waited + 2))
	done
	# After that, a frozen L1 shows as silence: every test prints at
	# least every 90 s (their own bounds), so a console that has not grown
	# for silence_s while QEMU runs is the emulator, and L1 is booted again
	# (within the same 5 boots); the tests then run again from scratch.
	local size=-1 quiet=0 now
	while kill -0 "$qpid" 2>/dev/null; do
		now=$(stat -c %s "$log")
		if [ "$now" -ne "$size" ]; then
			size=$now quiet=0
		elif [ "$quiet" -ge "$silence_s" ]; then
			give_up "L1 printed nothing for ${silence_s}s (frozen emulator)"
			return 2
		fi
		sleep 2
		quiet=$((quiet + 2))
	done
	wait "$qpid"
}
# l1_died says whether L1's kernel went away under the tests: QEMU
# exited by itself with status 0 (with -no-reboot that is L1 resetting:
# a kernel panic, which panic=-1 turns into a reboot, or a triple fault
# of L1 itself) after L1 was up and before init's L1-DONE. Its init never
# ends any other way (a test that fails or hangs still lets the plan go
# on to L1-DONE), and nothing a test does from user space may take L1's
# kernel down, so this is the emulated nested SVM below it, as a frozen
# L1 is: seen once in session 11's clean-clone CI (QEMU exit 0 after
# 209 s, during TestKVMRunExecLoop, in the L1 booted again after a guest
# triple fault), and in session 6's loops (L1 crashing right after VMRUN).
l1_died() {
	[ "$1" -eq 0 ] && grep -q '^L1: /dev/kvm' "$log" && ! grep -q '^L1-DONE' "$log"
}

# run_l1 boots L1 until one boot is neither frozen nor dead (up to 5
# boots); the console of each lost boot is kept and its tail printed.
run_l1() {
	set +e
	for attempt in 1 2 3 4 5; do
		if [ "$boots" -gt 0 ] && [ $(($(date +%s) - start + timeout_s)) -gt "$budget_s" ]; then
			echo "l1: no further boot: $(($(date +%s) - start))s spent, a boot may take ${timeout_s}s, the budget is ${budget_s}s (KRUNBENCH_L1_BUDGET)"
			break
		fi
		boots=$((boots + 1))
		boot_l1
		rc=$?
		if [ "$rc" -ne 2 ] && ! l1_died "$rc"; then
			break
		fi
		hung_boots=$((hung_boots + 1))
		kept=${TMPDIR:-/tmp}/krunbench-l1-hung-boot-$boots.log
		cp "$log" "$kept"
		why=hung
		[ "$rc" -eq 2 ] || why="died under the tests: QEMU exited 0 after $(($(date +%s) - start))s without L1-DONE"
		echo "l1: L1 boot $boots $why (console kept in $kept); its last lines:"
		grep -a -v '^SYM-L1 ' "$log" | tail -n 25 | sed 's/^/l1:   | /'
	done
	set -e
	sleep 1
	echo "l1: QEMU exited $rc after $(($(date +%s) - start))s"
	grep -q '^L1-DONE' "$log" || { echo "l1: L1 did not finish (QEMU rc $rc); console in $log" >&2; cp "$log" "${TMPDIR:-/tmp}/krunbench-l1-console.log"; exit 1; }
}

# failures prints the suites that did not pass, or that did not report.
failures() {
	local results
	results=$(grep -c '^L1-RESULT ' "$log" || true)
	grep '^L1-RESULT ' "$log" | grep -v ' rc=0' || true
	[ "$results" -eq "$expected" ] || echo "only $results of $expected suites reported"
}

start=$(date +%s)
hung_boots=0 stall_retries=0 boots=0 rc=0
run_l1
if [ "$mode" = test ]; then
	failed=$(failures)
	# Two known intermittent failures under nested emulation are tolerated
	# once, visibly: a guest that never sends its first FUSE request (a
	# boot stall, reported with each vCPU's RIP; about one run in six: the
	# RIP L1's KVM holds for the guest is in L1's own KVM modules, so the
	# nested SVM state was corrupted below us), and a guest that
	# triple-faults (about 1 in 55 plain boots in session 6's loops; L1's
	# own kernel was seen crashing right after VMRUN in the same runs, a
	# fault of L0's emulated SVM; not proven to be the triple fault's
	# cause, see DEVELOPERS.md). Only when every failing test failed one
	# of these ways does L1 run the suites once more, and the last line
	# counts it; anything else, or a second one, fails.
	stalls=$(grep -c 'never reached its virtio-fs root' "$log" || true)
	faults=$(grep -c 'guest shut down (triple fault)' "$log" || true)
	fails=$(grep -c -E '^\s*--- FAIL: Test[A-Za-z]+ ' "$log" || true)
	if [ -n "$failed" ] && [ $((stalls + faults)) -gt 0 ] && [ $((stalls + faults)) -ge "$fails" ]; then
		cp "$log" "${TMPDIR:-/tmp}/krunbench-l1-stall.log"
		echo "l1: boot stall or triple fault in L1 (console kept in ${TMPDIR:-/tmp}/krunbench-l1-stall.log):"
		grep -E 'never reached its virtio-fs root|guest shut down \(triple fault\)' "$log" | sed 's/^/l1:   /'
		echo "l1: running the suites once more in a fresh L1"
		stall_retries=$((stall_retries + 1))
		run_l1
		failed=$(failures)
	fi
	if [ -n "$failed" ]; then
		echo "l1: KVM tests failed:" >&2
		echo "$failed" >&2
		cp "$log" "${TMPDIR:-/tmp}/krunbench-l1-console.log"
		echo "l1: full console in ${TMPDIR:-/tmp}/krunbench-l1-console.log" >&2
		exit 1
	fi
	if [ $((hung_boots + stall_retries)) -eq 0 ]; then
		echo "l1: all $expected KVM suites passed inside L1, first time"
	else
		echo "l1: all $expected KVM suites passed inside L1 after retries: $hung_boots hung, frozen or dead L1 boot(s), $stall_retries rerun(s) for a guest boot stall or triple fault (logs above)"
	fi
fi
if [ "$mode" = loop ]; then
	grep -E '^L1-(LOOP|LOG)' "$log" | tail -400
	grep -q '^L1-RESULT loop rc=0' "$log"
fi
