#!/usr/bin/env bash
# Builds the demo root filesystem: Debian's static busybox with all its
# applets, in $KRUNBENCH_DATA/rootfs/busybox (default
# ~/.local/share/krunbench/rootfs/busybox), where the library finds it.
set -euo pipefail
data=${KRUNBENCH_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/krunbench}
dest="$data/rootfs/busybox"
if [ -x "$dest/bin/busybox" ]; then
	echo "rootfs: $dest is ready"
	exit 0
fi
bb=/bin/busybox
# ldd fails on a static binary: a dynamic (or missing) busybox gets replaced.
if [ ! -x "$bb" ] || ldd "$bb" >/dev/null 2>&1; then
	echo "rootfs: installing busybox-static (apt-get)"
	sudo_cmd=""
	[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
	# A fresh Debian image has no package lists: install alone finds nothing.
	$sudo_cmd apt-get update -qq
	$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static
fi
echo "rootfs: building $dest"
mkdir -p "$dest"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run,var/tmp}
chmod 1777 "$dest/tmp" "$dest/var/tmp"
cp "$bb" "$dest/bin/busybox"
for applet in $("$dest/bin/busybox" --list-full); do
	[ -e "$dest/$applet" ] || ln -s /bin/busybox "$dest/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' > "$dest/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' > "$dest/etc/group"
echo krunbench > "$dest/etc/hostname"
echo "rootfs: ready ($("$dest/bin/busybox" --list | wc -l) applets)"
