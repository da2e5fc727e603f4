package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// policyProbe is what a root caller managed to do through a mount.
type policyProbe struct {
	owner, group uint32 // of a file it created
	setuid       bool   // chmod 4755 kept the bit
	device       error  // mknod of a character device
	capability   error  // setxattr security.capability
	trusted      error  // setxattr trusted.x
}

// probeAsRoot tries, as root through mnt, what issue 11 item 10 lists.
func probeAsRoot(t *testing.T, mnt string) policyProbe {
	t.Helper()
	var p policyProbe
	f := filepath.Join(mnt, "file")
	if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	p.owner, p.group = st.Uid, st.Gid
	if err := os.Chmod(f, 0o4755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(f, &st); err != nil {
		t.Fatal(err)
	}
	p.setuid = st.Mode&unix.S_ISUID != 0
	p.device = unix.Mknod(filepath.Join(mnt, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
	// A version 2 file capability granting nothing: valid, and harmless.
	capv2 := []byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	p.capability = unix.Setxattr(f, "security.capability", capv2, 0)
	p.trusted = unix.Setxattr(f, "trusted.x", []byte("v"), 0)
	return p
}

// TestGuestRootPolicy drives the guest-identity options of `serve` through
// a real /dev/fuse mount as root (issue 11, item 10). By default root is
// host root inside the share: its file is root's, it keeps a setuid bit,
// makes a device node and sets security.capability and trusted.* (the
// "before" of the attack). With --translate-uid/--translate-gid
// squash:0:65534:1 it works as nobody; with --no-devices, --no-setid and
// --no-privileged-xattrs the refusals hold for root itself.
func TestGuestRootPolicy(t *testing.T) {
	newShare := func() string {
		d := t.TempDir()
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
		return d
	}

	mnt, stop := serveMount(t, newShare())
	def := probeAsRoot(t, mnt)
	stop()
	if def.owner != 0 || !def.setuid || def.device != nil || def.capability != nil || def.trusted != nil {
		t.Fatalf("default policy: %+v; want root as host root (documented default)", def)
	}

	mnt, stop = serveMount(t, newShare(), "--translate-uid", "squash:0:65534:1", "--translate-gid", "squash:0:65534:1")
	sq := probeAsRoot(t, mnt)
	stop()
	if sq.owner != 65534 || sq.group != 65534 {
		t.Errorf("squashed root created a file owned by %d:%d, want 65534:65534", sq.owner, sq.group)
	}
	if !errors.Is(sq.device, unix.EPERM) || !errors.Is(sq.capability, unix.EPERM) || !errors.Is(sq.trusted, unix.EPERM) {
		t.Errorf("squashed root: mknod %v, security.capability %v, trusted.x %v; want EPERM for each", sq.device, sq.capability, sq.trusted)
	}

	mnt, stop = serveMount(t, newShare(), "--no-devices", "--no-setid", "--no-privileged-xattrs")
	ref := probeAsRoot(t, mnt)
	stop()
	if ref.owner != 0 || ref.setuid {
		t.Errorf("--no-setid: owner %d, setuid kept %v; want root's file without the bit", ref.owner, ref.setuid)
	}
	if !errors.Is(ref.device, unix.EPERM) || !errors.Is(ref.capability, unix.EPERM) || !errors.Is(ref.trusted, unix.EPERM) {
		t.Errorf("refusals for root: mknod %v, security.capability %v, trusted.x %v; want EPERM for each", ref.device, ref.capability, ref.trusted)
	}
}
