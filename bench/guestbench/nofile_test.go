package main

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestVirtiofsdNofile: whether virtiofsd can keep a descriptor per inode
// under the limits this process runs under: a tree just under the hard
// limit can (with --rlimit-nofile at the hard limit unless
// CAP_SYS_RESOURCE lets virtiofsd raise it itself), one past it only with
// CAP_SYS_RESOURCE; without it virtiofsd still runs, at the hard limit,
// and the reason says why its lookups will fail.
func TestVirtiofsdNofile(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < 4*nofileMargin || lim.Max > 1<<30 {
		t.Skipf("hard RLIMIT_NOFILE %d", lim.Max)
	}
	capable := hasCapSysResource()
	args, desc, ok := virtiofsdNofile(int(lim.Max) - 2*nofileMargin)
	if !ok {
		t.Fatalf("a tree under the hard limit %d: refused (%s)", lim.Max, desc)
	}
	if want := !capable; want != (len(args) == 1 && strings.HasPrefix(args[0], "--rlimit-nofile=")) {
		t.Fatalf("CAP_SYS_RESOURCE %v: args %q", capable, args)
	}
	args, desc, ok = virtiofsdNofile(int(lim.Max))
	if ok != capable || (len(args) == 0) != capable {
		t.Fatalf("a tree past the hard limit %d, CAP_SYS_RESOURCE %v: ok %v, args %q (%s)", lim.Max, capable, ok, args, desc)
	}
	if !capable && !strings.Contains(desc, "EMFILE") {
		t.Fatalf("reason %q does not say why", desc)
	}
	t.Logf("hard limit %d, CAP_SYS_RESOURCE %v: %s", lim.Max, capable, desc)
}
