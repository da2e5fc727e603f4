#!/usr/bin/env bash
# Checks run.sh's handling of an L1 that dies under the tests: a QEMU
# stand-in first on PATH plays an L1 that comes up and then resets (exit 0,
# no L1-DONE, a kernel panic line), later boots are the real QEMU running
# vmm/kvm's suite. Passes when run.sh booted L1 again, the suite passed in
# the second boot and the lost boot was reported with its console tail.
# About a minute plus the static builds; needs what run.sh needs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fake=$(mktemp -d)
trap 'rm -rf "$fake"' EXIT
real=$(command -v qemu-system-x86_64) || { echo "selftest: qemu-system-x86_64 not found" >&2; exit 1; }
cat >"$fake/qemu-system-x86_64" <<FAKE
#!/bin/sh
if [ ! -e "$fake/died" ] || [ -e "$fake/always" ]; then
	touch "$fake/died"
	echo "L1: /dev/kvm ready (2 CPUs, uptime 3.0s)"
	echo "Kernel panic - not syncing: selftest stand-in"
	exit 0
fi
exec "$real" "\$@"
FAKE
chmod +x "$fake/qemu-system-x86_64"
out=$fake/out.log
PATH="$fake:$PATH" KRUNBENCH_L1=always KRUNBENCH_L1_ONLY='vmm/kvm .' "$here/run.sh" test 2>&1 | tee "$out"
grep -q '^l1: L1 boot 1 died under the tests' "$out"
grep -q '^l1:   | Kernel panic - not syncing: selftest stand-in' "$out"
grep -q '^L1-RESULT vmm/kvm rc=0' "$out"
grep -q '1 hung, frozen or dead L1 boot(s)' "$out"
echo "selftest: a dead L1 was booted again and its suite passed"
touch "$fake/always"
if PATH="$fake:$PATH" KRUNBENCH_L1=always KRUNBENCH_L1_BUDGET=1 KRUNBENCH_L1_ONLY='vmm/kvm .' "$here/run.sh" test >"$out" 2>&1; then
	cat "$out"; echo "selftest: run.sh passed with every L1 dead" >&2; exit 1
fi
grep -q '^l1: L1 boot 1 died under the tests' "$out"
grep -q '^l1: no further boot: .* the budget is 1s' "$out"
! grep -q '^l1: L1 boot 2 ' "$out"
echo "selftest: past its budget run.sh booted no dead L1 again and failed"
