#!/bin/sh
# conformance/guest.sh: runs inside the guest that conformance/run.sh boots
# (its root is krunbench's virtio-fs share; see run.sh). It runs every .t
# file listed in /pjd/list with busybox sh, CONFORMANCE_JOBS at a time, in
# /work (a directory of the virtio-fs root) and writes each file's TAP
# output to /out/DIR/NAME.t.tap for run.sh to count.
#
# The programs run from a tmpfs, not from virtio-fs: under QEMU TCG,
# programs executed from virtio-fs crash at random (issue 16: stale
# translated code for pages the backend wrote), which would show up as
# conformance failures that are not. So busybox, pjdfstest and the .t
# files are copied to /fast first and executed from there; only the
# files the tests create, and the TAP output, live on virtio-fs.
set -eu
if [ "${1:-}" != fast ]; then
	mount -t tmpfs -o mode=0755 tmpfs /fast
	cp /bin/busybox /fast/busybox
	cp -r /pjd /fast/pjd
	cp /guest.sh /fast/guest.sh
	exec /fast/busybox sh /fast/guest.sh fast
fi

mkdir /fast/bin
/fast/busybox --install -s /fast/bin
# The tests name their files with `openssl md5`; busybox has md5sum.
printf '#!/fast/bin/sh\n[ "$1" = md5 ] || exit 1\nmd5sum | cut -d" " -f1\n' >/fast/bin/openssl
chmod 0755 /fast/bin/openssl
export PATH=/fast/bin
cd /work
echo "conformance: $(wc -l </fast/pjd/list) test files, ${CONFORMANCE_JOBS:-2} at a time, in $(pwd) ($(df -PT . | tail -1 | awk '{print $2}'))"
xargs -P "${CONFORMANCE_JOBS:-2}" -I{} \
	timeout "${CONFORMANCE_FILE_TIMEOUT:-1200}" sh -c 'sh "/fast/pjd/tests/$1" >"/out/$1.tap" 2>&1' _ {} </fast/pjd/list || true
sync
echo "conformance: done"
