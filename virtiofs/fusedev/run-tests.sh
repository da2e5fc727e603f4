#!/usr/bin/env bash
# Runs the /dev/fuse tests. They mount the server and use the mount from the
# same process, and now and then that process wedges on its own FUSE
# requests (a known, not yet understood bug: see the issue notes). Each
# attempt is bounded; a wedged attempt's connections are aborted through
# fusectl so the process can exit, its mounts are detached, and the tests
# run once more. The tests' assertions are unchanged: a failing test fails.
set -u
abort_wedged() {
	grep -q fusectl /proc/mounts || mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null
	grep ' fuse.krunbench ' /proc/self/mountinfo | grep krunbench-fusedev- | while read -r _ _ dev _ mnt _; do
		echo 1 > "/sys/fs/fuse/connections/${dev#*:}/abort" 2>/dev/null
		umount -l "$mnt" 2>/dev/null
	done
}
for attempt in 1 2; do
	timeout -k 10 300 go test -count=1 -timeout 280s ./virtiofs/fusedev/
	rc=$?
	[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && exit "$rc"
	echo "fusedev tests: attempt $attempt wedged after 300s; aborting its FUSE connections" >&2
	abort_wedged
	sleep 2
done
exit 1
