package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestPicturesScriptCaptures runs the tmux half of make pictures
// (demo/pictures.sh --check): a real workbench in tmux on the demo
// busybox root, a command typed into the guest, its traffic, the EOF
// read of /init.krun found through the traffic filter, quit. It keeps
// the script finding what it waits for as the TUI changes; rendering
// (freeze, fetched by go run) is left to make pictures. Nothing may be
// left in the script's temporary directory.
func TestPicturesScriptCaptures(t *testing.T) {
	requireQEMU(t)
	for _, tool := range []string{"tmux", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED: %s not installed", tool)
		}
	}
	kernel := guestKernel(t)
	bin := krunbenchBin(t)
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "demo", "pictures.sh")
	// A short TMPDIR: the guest's vhost-user socket path must fit a
	// sockaddr_un (108 bytes), and t.TempDir's names are long.
	tmp, err := os.MkdirTemp("/tmp", "kbpic")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "--check")
	cmd.Env = append(os.Environ(), "KRUNBENCH_BIN="+bin, "KRUNBENCH_KERNEL="+kernel, "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo/pictures.sh --check: %v\n%s", err, out)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Fatalf("the script left %v in its TMPDIR", left)
	}
}
