package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/vmm/kvm"
	"github.com/krunbench/krunbench/vmm/kvm/kvmtest"
)

// requireHardwareKVM skips (or fails, under KRUNBENCH_REQUIRE_KVM) unless
// /dev/kvm runs an unmodified Linux guest: usable, and not PVM.
func requireHardwareKVM(t *testing.T) {
	t.Helper()
	kvmtest.Require(t)
	if b := kvm.HostBackend(); b == kvm.BackendPVM {
		kvmtest.Skip(t, "host /dev/kvm is %s, which cannot boot an unmodified Linux guest", b)
	}
}

// runKVM runs `krunbench run --engine kvm` on the vmlinux fixture and
// returns its combined output and exit code, bounded in time.
func runKVM(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runCLI(t, 90*time.Second, append([]string{"run", "--engine", "kvm", "--kernel", kvmtest.Vmlinux(t)}, args...)...)
}

// TestKVMRunDefaultInit boots the guest inside krunbench's own VMM from a
// busybox virtio-fs root with the built-in default init, with 1 and with
// 2 vCPUs: the workload's output reaches the console, its exit code is
// krunbench's, the init's milestones and the boot-time breakdown are
// printed, and the trace holds init.krun's LOOKUP, READs and EOF READ.
func TestKVMRunDefaultInit(t *testing.T) {
	requireHardwareKVM(t)
	root := busyboxRootfs(t)
	for _, cpus := range []int{1, 2} {
		t.Run(fmt.Sprintf("%dvcpu", cpus), func(t *testing.T) {
			traceFile := filepath.Join(t.TempDir(), "trace.jsonl")
			out, code := runKVM(t, "--cpus", fmt.Sprint(cpus), "--rootfs", root, "--trace", traceFile, "--boot-trace", "--timings",
				"--", "/bin/sh", "-c", "echo hi; exit 7")
			if code != 7 || !strings.Contains(strings.ReplaceAll(out, "\r\n", "\n"), "hi\n") {
				t.Fatalf("exit %d (want 7), output:\n%s", code, out)
			}
			for _, m := range []string{"milestone mounted", "milestone exec", " code=7", `{"vm_created_ms":`, `"engine":"kvm"`} {
				if !strings.Contains(out, m) {
					t.Errorf("output lacks %q:\n%s", m, out)
				}
			}
			// The kernel reads the ELF it executes only as far as its
			// segments go; the 0-byte READ at the end comes from the
			// default init hashing its own image (--boot-trace).
			assertInitKrunTrace(t, traceFile)
		})
	}
}

// TestKVMRunInAPipeline: run as a Unix tool on the in-process engine, the
// checks of TestRunInAPipeline (the workload's streams on ports of their
// own on the second virtio-console device, end of input as a PORT_OPEN 0).
func TestKVMRunInAPipeline(t *testing.T) {
	requireHardwareKVM(t)
	pipelineChecks(t, []string{"--engine", "kvm", "--rootfs", busyboxRootfs(t), "--kernel", kvmtest.Vmlinux(t)})
}

// TestKVMRunTestInit runs the test init (cmd/krunbench/testdata/testinit)
// as the payload: it writes a file into the shared directory, reads one,
// and reports 42 through the exit-code ioctl before rebooting.
func TestKVMRunTestInit(t *testing.T) {
	requireHardwareKVM(t)
	root := busyboxRootfs(t)
	initBin := filepath.Join(t.TempDir(), "testinit")
	if err := os.WriteFile(initBin, kvmtest.TestInit(t), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "to-guest.txt"), []byte("hello guest"), 0o644); err != nil {
		t.Fatal(err)
	}
	traceFile := filepath.Join(t.TempDir(), "trace.jsonl")
	out, code := runKVM(t, "--rootfs", root, "--init", initBin, "--trace", traceFile, "--", "anything")
	if code != 42 {
		t.Fatalf("exit %d (want 42):\n%s", code, out)
	}
	for _, want := range []string{"KRUNBENCH-E2E-MARKER pid 1", `read from host: "hello guest" <nil>`} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "from-guest.txt")); err != nil || string(b) != "written by the guest\n" {
		t.Errorf("host-side file: %q, %v", b, err)
	}
	assertInitKrunTrace(t, traceFile)
}
