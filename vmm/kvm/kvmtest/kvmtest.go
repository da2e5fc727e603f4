// Package kvmtest is what tests that need a usable /dev/kvm share: the
// gate that skips them where KVM cannot run a guest (or fails them where
// KRUNBENCH_REQUIRE_KVM says KVM must run, as in the nested L1 harness),
// the guest kernel fixture, the test init program and a one-vCPU VM
// running a few bytes of real-mode code (RealModeVM).
package kvmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/krunbench/krunbench/vmm/kvm"
)

// RequireEnv, when set, turns every KVM skip into a failure: the L1
// harness (vmm/l1) sets it so a KVM test that did not run cannot pass.
const RequireEnv = "KRUNBENCH_REQUIRE_KVM"

// Required reports whether KVM tests must run here.
func Required() bool { return os.Getenv(RequireEnv) != "" }

// Skip skips the test, or fails it where KVM tests are required.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is set, so this KVM test must run, but: "+format, append([]any{RequireEnv}, args...)...)
	}
	t.Skipf("SKIPPED: "+format, args...)
}

// Require skips (or fails, see RequireEnv) unless this machine's KVM runs
// a test guest.
func Require(t testing.TB) {
	t.Helper()
	if err := kvm.KVMUsable(); err != nil {
		Skip(t, "KVM not usable on this machine: %v", err)
	}
}

// repoRoot is the repository's top directory, from this file's location.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Vmlinux finds the uncompressed guest kernel: $KRUNBENCH_GUEST_VMLINUX,
// else the prebuilt fixture beside the repository (../shared/guest).
func Vmlinux(t testing.TB) string {
	t.Helper()
	paths := []string{os.Getenv("KRUNBENCH_GUEST_VMLINUX"), filepath.Join(repoRoot(), "..", "shared", "guest", "vmlinux")}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Skip(t, "guest kernel fixture not found (set KRUNBENCH_GUEST_VMLINUX); tried %q", paths)
	return ""
}

// TestInit returns the static test init program
// (cmd/krunbench/testdata/testinit): $KRUNBENCH_TESTINIT where the harness
// built it beforehand (no Go toolchain in L1), else built here.
func TestInit(t testing.TB) []byte {
	t.Helper()
	path := os.Getenv("KRUNBENCH_TESTINIT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "testinit")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", path, "./cmd/krunbench/testdata/testinit")
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build testinit: %v\n%s", err, out)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
