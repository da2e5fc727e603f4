package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
)

// runDefault runs `krunbench run` with the built-in default init on a
// busybox root under QEMU (TCG) and returns the output and exit code.
func runDefault(t *testing.T, root string, args ...string) (string, int) {
	t.Helper()
	requireQEMU(t)
	full := append([]string{"run", "--engine", "qemu", "--accel", "tcg", "--rootfs", root, "--kernel", guestKernel(t)}, args...)
	return runCLI(t, 120*time.Second, full...)
}

// runCLI runs krunbench with args, bounded in time, and returns its
// combined output and exit code; a run that does not end fails the test.
func runCLI(t *testing.T, limit time.Duration, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, krunbenchBin(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("krunbench %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("krunbench %v: %v\n%s", args, err, out.String())
	return "", 0
}

func TestDefaultInitRunsWorkloadAndReportsItsExitCode(t *testing.T) {
	root := busyboxRootfs(t)
	traceFile := filepath.Join(t.TempDir(), "trace.jsonl")
	out, code := runDefault(t, root, "--trace", traceFile, "--boot-trace", "--", "/bin/sh", "-c", "echo hi; exit 3")
	if code != 3 || !strings.Contains(out, "hi") {
		t.Fatalf("exit %d (want 3), output:\n%s", code, out)
	}
	for _, m := range []string{"milestone mounted", "krun-init: image ", "milestone exec", "milestone exit t=", " code=3"} {
		if !strings.Contains(out, m) {
			t.Errorf("boot trace lacks %q:\n%s", m, out)
		}
	}
	assertInitKrunTrace(t, traceFile)
}

// assertInitKrunTrace checks a run's trace file: one LOOKUP of init.krun
// in the root answered with the synthetic inode, its READs, and at least
// one READ at the end that returned 0 bytes.
func assertInitKrunTrace(t *testing.T, traceFile string) {
	t.Helper()
	evs := readTrace(t, traceFile)
	var lookup, reads, eof int
	for _, ev := range evs {
		switch {
		case ev.Op == fuse.OpLookup && ev.Name == "init.krun" && ev.NewNodeid == overlay.InitNodeid:
			lookup++
		case ev.Op == fuse.OpRead && ev.Nodeid == overlay.InitNodeid:
			reads++
			if ev.EOF {
				eof++
			}
		}
	}
	if lookup != 1 || reads == 0 || eof == 0 {
		t.Fatalf("trace: %d init.krun lookups, %d reads, %d EOF reads", lookup, reads, eof)
	}
	t.Logf("trace: %d events; init.krun: 1 lookup, %d reads, %d EOF reads", len(evs), reads, eof)
}

func TestDefaultInitFailureCodes(t *testing.T) {
	root := busyboxRootfs(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing workload", []string{"--", "/no/such/program"}, 127, "no such file"},
		{"bad workdir", []string{"--workdir", "/no/such/dir", "--", "/bin/true"}, 125, "/no/such/dir"},
		{"env reaches workload", []string{"--env", "KRUNBENCH_GREETING=hello-env", "--", "/bin/sh", "-c", "echo $KRUNBENCH_GREETING"}, 0, "hello-env"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, code := runDefault(t, root, c.args...)
			if code != c.code || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s", code, c.code, c.want, out)
			}
		})
	}
}

func TestUserPayloadReplacesDefaultInit(t *testing.T) {
	root := busyboxRootfs(t)
	initBin := buildStatic(t, "./testdata/testinit", filepath.Join(t.TempDir(), "testinit"))
	out, code := runDefault(t, root, "--init", initBin, "--", "anything")
	if code != 42 || !strings.Contains(out, "KRUNBENCH-E2E-MARKER") || strings.Contains(out, "krun-init") {
		t.Fatalf("user payload: exit %d (want 42):\n%s", code, out)
	}
}

func TestInitNoneFailsBeforeBoot(t *testing.T) {
	root := busyboxRootfs(t)
	start := time.Now()
	out, code := runDefault(t, root, "--init", "none", "--", "/bin/true")
	if code == 0 || !strings.Contains(out, "init policy init.krun") || time.Since(start) > 10*time.Second {
		t.Fatalf("--init none: exit %d after %s:\n%s", code, time.Since(start), out)
	}
	if len(qemuProcesses(runMarker())) != 0 || strings.Contains(out, "Linux version") {
		t.Fatal("a guest was started for a config that fails the init policy")
	}
}

// TestShellTemplatePayload boots the built-in shell-script init: its
// interpreter re-opens /init.krun by name, which works because script
// payloads are served with a lasting entry. Commands are typed once the
// guest shell prompts (input sent earlier is flushed when it starts).
func TestShellTemplatePayload(t *testing.T) {
	requireQEMU(t)
	root := busyboxRootfs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, krunbenchBin(t), "run", "--engine", "qemu", "--accel", "tcg",
		"--rootfs", root, "--kernel", guestKernel(t), "--init", "shell-template")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := newSyncBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(out.String(), "/ # ") && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	io.WriteString(in, "echo from-the-template-shell; exit 4\n")
	cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("still running after 120s:\n%s", out.String())
	}
	for _, want := range []string{"krunbench: shell-script init", "\nfrom-the-template-shell", "shell exited with 4"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, out.String())
		}
	}
}
