#!/usr/bin/env bash
# make run: from a fresh clone to a booted guest in the workbench. Finds or
# builds what a first run needs (QEMU, the demo busybox root filesystem, a
# guest kernel), then opens the TUI with them in the library.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/bin/krunbench"
data=${KRUNBENCH_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/krunbench}
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "run: installing qemu-system-x86 (apt-get)"
	# A fresh Debian image has no package lists: install alone finds nothing.
	$sudo_cmd apt-get update -qq
	$sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86
fi
"$here/demo/rootfs.sh"

# The kernel lookup of krunbench itself ($KRUNBENCH_KERNEL, the one make
# kernel installs, ../shared/guest beside this checkout), so that make
# run, run, doctor and library list agree.
[ "$(basename "$data")" != krunbench ] || export XDG_DATA_HOME="$(dirname "$data")"
kernel=$("$bin" doctor --print-kernel 2>/dev/null) || kernel=""
if [ -z "$kernel" ]; then
	echo "run: no guest kernel yet; building one (about 13 minutes on 2 cores)"
	"$here/kernel/build.sh"
	kernel="$data/kernel/bzImage"
fi
echo "run: kernel $kernel"
export KRUNBENCH_KERNEL=$kernel
exec "$bin" --library "$data" "$@"
