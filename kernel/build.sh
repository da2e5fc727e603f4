#!/usr/bin/env bash
# Builds the guest kernel krunbench boots (Linux 6.1 from Debian's
# linux-source-6.1): tinyconfig plus kernel/microvm.fragment. Installs
# bzImage and vmlinux into $KRUNBENCH_DATA/kernel (default
# ~/.local/share/krunbench/kernel). About 13 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
data=${KRUNBENCH_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/krunbench}
dest="$data/kernel"
work=${KERNEL_BUILD_DIR:-$here/../build/kernel}

if [ -f "$dest/bzImage" ] && [ -f "$dest/vmlinux" ]; then
	echo "kernel: already built in $dest"
	exit 0
fi
if ! ls /usr/src/linux-source-6.1.tar.* >/dev/null 2>&1; then
	echo "kernel: installing linux-source-6.1 and build tools (apt-get)"
	sudo_cmd=""
	[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		linux-source-6.1 build-essential bc bison flex libelf-dev libssl-dev xz-utils cpio
fi
mkdir -p "$work"
if [ ! -d "$work/linux" ]; then
	echo "kernel: unpacking the source"
	tar -C "$work" -xf /usr/src/linux-source-6.1.tar.*
	mv "$work"/linux-source-6.1 "$work/linux"
fi
cd "$work/linux"
make -s tinyconfig
scripts/kconfig/merge_config.sh -m .config "$here/microvm.fragment" >/dev/null
make -s olddefconfig
echo "kernel: building (this takes a while)"
make -s -j"$(nproc)" bzImage vmlinux
mkdir -p "$dest"
cp arch/x86/boot/bzImage vmlinux .config "$dest/"
echo "kernel: installed in $dest"
