#!/bin/sh
# /init of the L1 Linux that vmm/l1/run.sh boots under QEMU TCG with nested
# SVM: it loads KVM, then runs /l1/plan.sh (written by run.sh), whose
# "L1-RESULT name rc=N" lines the host side checks, and powers off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o size=1536m tmp /tmp
mkdir -p /dev/pts
mount -t devpts -o ptmxmode=0666 devpts /dev/pts
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
for m in irqbypass kvm kvm-amd; do
	insmod /l1/modules/$m.ko || echo "L1: insmod $m failed"
done
if [ -c /dev/kvm ]; then
	# One VM held open for the whole run, so KVM enables virtualisation on
	# the L1 CPUs once instead of around every test's VM (see kvmhold).
	/l1/kvmhold &
	sleep 1
	echo "L1: /dev/kvm ready ($(grep -c ^processor /proc/cpuinfo) CPUs, uptime $(cut -d' ' -f1 /proc/uptime)s)"
else
	echo "L1: /dev/kvm missing"
	dmesg | grep -i -E 'kvm|svm' | tail -5
fi
export TMPDIR=/tmp HOME=/tmp
. /l1/plan.sh
echo "L1-DONE uptime $(cut -d' ' -f1 /proc/uptime)s"
poweroff -f
