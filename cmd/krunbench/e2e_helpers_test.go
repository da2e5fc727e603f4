package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/krunbench/krunbench/virtiofs/trace"
)

// guestKernel finds the guest kernel for end-to-end tests:
// $KRUNBENCH_KERNEL, else the prebuilt fixture beside the repository.
func guestKernel(t *testing.T) string {
	t.Helper()
	if k := os.Getenv("KRUNBENCH_KERNEL"); k != "" {
		return k
	}
	_, file, _, _ := runtime.Caller(0)
	k := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "guest", "bzImage")
	if _, err := os.Stat(k); err != nil {
		t.Skip("SKIPPED: no guest kernel (set KRUNBENCH_KERNEL or run make kernel)")
	}
	return k
}

func requireQEMU(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("SKIPPED: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
	}
}

// buildStatic builds a Go package into dir as a static binary.
func buildStatic(t *testing.T, pkg, out string, flags ...string) string {
	t.Helper()
	cmd := exec.Command("go", append(append([]string{"build", "-trimpath", "-ldflags=-s -w"}, flags...), "-o", out, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// krunbenchBin builds the CLI once per test binary as `make build` does
// (the default init is embedded from initlib/defaultinit's committed
// image); $KRUNBENCH_BIN names a prebuilt one instead (the L1 harness has
// no Go).
func krunbenchBin(t *testing.T) string {
	t.Helper()
	if binPath == "" {
		binPath = os.Getenv("KRUNBENCH_BIN")
	}
	if binPath == "" {
		binPath = buildStatic(t, ".", filepath.Join(binDir, "krunbench"))
	}
	return binPath
}

var binPath, binDir, tmpRoot string

// runMarker is in the command line of every QEMU this test binary's
// krunbench runs start (their sockets live under its own TMPDIR), so
// checks for stray QEMUs never see other processes' guests.
func runMarker() string { return filepath.Join(tmpRoot, "krunbench-run-") }

func TestMain(m *testing.M) {
	root, err := os.MkdirTemp("", "krunbench-cmdtest-")
	if err != nil {
		panic(err)
	}
	tmpRoot = root
	os.Setenv("TMPDIR", root)
	binDir = filepath.Join(root, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(root)
	os.Exit(code)
}

// busyboxRootfs makes a minimal root filesystem: static busybox and the
// directories the kernel and an init expect.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("SKIPPED: busybox not installed (apt-get install busybox-static)")
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "etc", "root"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "echo", "cat", "ls", "mount", "find", "stat", "true", "false", "sleep", "reboot", "poweroff", "sync", "stty", "tty"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// readTrace reads a run's trace file (--trace) as `trace show` does.
func readTrace(t *testing.T, path string) []trace.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	evs, err := trace.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}
