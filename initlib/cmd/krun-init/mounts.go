package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/krunbench/krunbench/initlib/kruninit"
)

// mountSpec is one pseudo file system the init mounts.
type mountSpec struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

const pseudoFlags = unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_RELATIME

// pseudoMounts are libkrun's mounts, in order (each target's parent is
// mounted before it).
var pseudoMounts = []mountSpec{
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID | unix.MS_RELATIME, ""},
	{"proc", "/proc", "proc", pseudoFlags, ""},
	{"sysfs", "/sys", "sysfs", pseudoFlags, ""},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", pseudoFlags, ""},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_RELATIME, "gid=5,mode=0620,ptmxmode=0666"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_RELATIME, "mode=1777"},
}

// mountPseudo mounts the pseudo file systems and links /dev/fd. Failures
// are warnings: a workload may well run without cgroups or /dev/shm.
// EBUSY (already mounted) is not even a warning.
func mountPseudo() {
	for _, m := range pseudoMounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			warn("mkdir %s: %v", m.target, err)
			continue
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			warn("mount %s on %s: %v", m.fstype, m.target, err)
		}
		if m.target == "/dev" {
			if err := os.Chmod("/dev/kvm", 0o666); err != nil && !errors.Is(err, os.ErrNotExist) {
				warn("chmod /dev/kvm: %v", err)
			}
		}
	}
	if err := os.Symlink("/proc/self/fd", "/dev/fd"); err != nil && !errors.Is(err, os.ErrExist) {
		warn("symlink /dev/fd: %v", err)
	}
}

// openVirtiofsRoot returns a descriptor of "/" when it is the root
// virtio-fs, or -1: kept across a switch to a block-device root so the exit
// code still reaches the VMM.
func openVirtiofsRoot() int {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil || st.Type != kruninit.VirtiofsMagic {
		return -1
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// switchToBlockRoot mounts KRUN_BLOCK_ROOT_DEVICE on /newroot, moves it to
// / and chroots into it, then mounts the pseudo file systems again inside
// it. Without KRUN_BLOCK_ROOT_FSTYPE each block file system type the kernel
// knows is tried.
func switchToBlockRoot(device, fstype, options string) error {
	const newroot = "/newroot"
	if err := os.MkdirAll(newroot, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", newroot, err)
	}
	types := []string{fstype}
	if fstype == "" {
		b, err := os.ReadFile("/proc/filesystems")
		if err != nil {
			return fmt.Errorf("no KRUN_BLOCK_ROOT_FSTYPE and %w", err)
		}
		types = kruninit.BlockFSTypes(b)
	}
	var errs []string
	mounted := false
	for _, t := range types {
		err := unix.Mount(device, newroot, t, 0, options)
		if err == nil {
			mounted = true
			break
		}
		errs = append(errs, t+": "+err.Error())
	}
	if !mounted {
		return fmt.Errorf("mount %s on %s: %s", device, newroot, strings.Join(errs, "; "))
	}
	if err := unix.Chdir(newroot); err != nil {
		return fmt.Errorf("chdir %s: %w", newroot, err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move %s to /: %w", newroot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	mountPseudo()
	return nil
}

// bringUpLoopback sets IFF_UP on lo, best effort.
func bringUpLoopback() {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		warn("loopback: socket: %v", err)
		return
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		warn("loopback: SIOCGIFFLAGS: %v", err)
		return
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		warn("loopback: SIOCSIFFLAGS: %v", err)
	}
}
