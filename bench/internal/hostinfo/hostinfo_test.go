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
