package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/krunbench/krunbench/initlib/defaultinit"
)

// libraryEnv is a library directory (as $XDG_DATA_HOME/krunbench) with a
// payload file in init/ and a root filesystem in rootfs/.
func libraryEnv(t *testing.T) (xdg, data string) {
	t.Helper()
	xdg = t.TempDir()
	data = filepath.Join(xdg, "krunbench")
	for _, d := range []string{"init", "rootfs/busy"} {
		if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(data, "init", "hello.sh"), []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return xdg, data
}

// TestPayloadNamesMeanTheSameEverywhere: a name library list shows (a
// file in $XDG_DATA_HOME/krunbench/init) and "default" resolve for run
// --init as they do in the library; library list --init default is the
// built-in, not a file called default.
func TestPayloadNamesMeanTheSameEverywhere(t *testing.T) {
	xdg, data := libraryEnv(t)
	t.Setenv("XDG_DATA_HOME", xdg)
	p, err := resolvePayload("hello.sh")
	if err != nil || !bytes.Equal(p.Bytes, []byte("#!/bin/sh\necho hello\n")) {
		t.Fatalf("run --init hello.sh: %q %v", p.Bytes, err)
	}
	p, err = resolvePayload("default")
	if err != nil || p.Name != defaultinit.Name {
		t.Fatalf("run --init default: %q %v", p.Name, err)
	}
	if _, err := resolvePayload(filepath.Join(data, "no-such")); err == nil {
		t.Fatal("a missing file resolved")
	}

	out := libraryList(t, xdg, "--init", "default")
	if !strings.Contains(out, "hello.sh") || !strings.Contains(out, defaultinit.Name) {
		t.Fatalf("library list lacks the payloads:\n%s", out)
	}
	if regexp.MustCompile(`(?m)^init\s+default\s`).MatchString(out) {
		t.Fatalf("library list took default for a file:\n%s", out)
	}
}

// TestLibraryListsEachOnceAndTheKernelRunUses: a root filesystem given
// with --rootfs that is also in the library is listed once; the kernel is
// the one doctor --print-kernel (make run's lookup) and run find.
func TestLibraryListsEachOnceAndTheKernelRunUses(t *testing.T) {
	xdg, data := libraryEnv(t)
	kernel := guestKernel(t)
	out := libraryList(t, xdg, "--rootfs", filepath.Join(data, "rootfs", "busy"), "--rootfs", filepath.Join(data, "rootfs", "busy")+"/")
	if n := strings.Count(out, "busy"); n != 1 {
		t.Fatalf("the root filesystem is listed %d times:\n%s", n, out)
	}
	if !strings.Contains(out, filepath.Base(kernel)) {
		t.Fatalf("library list lacks the kernel %s:\n%s", kernel, out)
	}
	cmd := exec.Command(krunbenchBin(t), "doctor", "--print-kernel")
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+xdg, "KRUNBENCH_KERNEL="+kernel)
	got, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(got)) != kernel {
		t.Fatalf("doctor --print-kernel: %q %v, want %s", got, err, kernel)
	}
}

func libraryList(t *testing.T, xdg string, args ...string) string {
	t.Helper()
	cmd := exec.Command(krunbenchBin(t), append([]string{"library", "list"}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+xdg, "KRUNBENCH_KERNEL="+guestKernel(t))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("library list: %v\n%s", err, out)
	}
	return string(out)
}
