package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKernelFoundWithoutEnvironment: with no --kernel and no
// $KRUNBENCH_KERNEL, doctor --print-kernel (make run's lookup) and doctor
// find the kernel `make kernel` installs in $XDG_DATA_HOME/krunbench/kernel
// (issue 12 item 9: make run found a kernel that doctor did not). library
// list shows that directory as part of the library in any case; run uses
// the same session.FindKernel.
func TestKernelFoundWithoutEnvironment(t *testing.T) {
	xdg, data := libraryEnv(t)
	installed := filepath.Join(data, "kernel", "bzImage")
	if err := os.MkdirAll(filepath.Dir(installed), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(guestKernel(t), installed); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KRUNBENCH_KERNEL=") && !strings.HasPrefix(kv, "XDG_DATA_HOME=") {
			env = append(env, kv)
		}
	}
	env = append(env, "XDG_DATA_HOME="+xdg)
	krunbench := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(krunbenchBin(t), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil && args[0] != "doctor" { // doctor fails on other checks (no KVM here)
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if got := strings.TrimSpace(krunbench("doctor", "--print-kernel")); got != installed {
		t.Errorf("doctor --print-kernel: %q, want %s", got, installed)
	}
	if out := krunbench("doctor"); !strings.Contains(out, "kernel         "+installed) {
		t.Errorf("doctor does not name %s:\n%s", installed, out)
	}
}
