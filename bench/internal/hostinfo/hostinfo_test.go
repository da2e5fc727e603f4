package hostinfo

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestCommitOfThisTree: the tree these tests run in is a git checkout,
// so its commit is a short hash (dirty or not); a directory outside any
// git tree has none.
func TestCommitOfThisTree(t *testing.T) {
	if _, err := os.Stat("../../../.git"); err != nil {
		t.Skipf("SKIPPED: not a git checkout: %v", err)
	}
	if c := Commit("."); !regexp.MustCompile(`^[0-9a-f]{7,}(-dirty)?$`).MatchString(c) {
		t.Fatalf("Commit(.) = %q, want a short hash", c)
	}
	if c := Commit(t.TempDir()); c != "" {
		t.Fatalf("Commit(a temporary directory) = %q, want none", c)
	}
}

// TestKernelIsTheRunningOne: Kernel starts with the release the kernel
// reports in /proc.
func TestKernelIsTheRunningOne(t *testing.T) {
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Skipf("SKIPPED: no /proc: %v", err)
	}
	if k := Kernel(); !strings.HasPrefix(k, strings.TrimSpace(string(release))+" ") {
		t.Fatalf("Kernel() = %q, want it to start with %q", k, release)
	}
}

// TestFSTypeNamesTheMount: FSType of a directory on a tmpfs mount (as
// /proc/mounts lists it) is "tmpfs"; of a path that is not there, "".
func TestFSTypeNamesTheMount(t *testing.T) {
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Skipf("SKIPPED: no /proc: %v", err)
	}
	tmpfs := ""
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "tmpfs" {
			tmpfs = f[1]
			break
		}
	}
	if tmpfs == "" {
		t.Skip("SKIPPED: no tmpfs mounted")
	}
	if got := FSType(tmpfs); got != "tmpfs" {
		t.Errorf("FSType(%s) = %q, want tmpfs", tmpfs, got)
	}
	if got := FSType(t.TempDir() + "/missing"); got != "" {
		t.Errorf("FSType(a missing path) = %q, want none", got)
	}
}

// TestPick: f of every item, in order.
func TestPick(t *testing.T) {
	got := Pick([]string{"a", "bbb", "cc"}, func(s string) float64 { return float64(len(s)) })
	if len(got) != 3 || got[0] != 1 || got[1] != 3 || got[2] != 2 || Median(got) != 2 {
		t.Fatalf("Pick = %v", got)
	}
}
