package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestTimingsIsOneBareJSONLine: `run --timings` with the default init on
// QEMU (no --boot-trace) prints, as the last line of stderr, one bare JSON
// object with every moment the README names, each seen and in causal
// order; the init's milestone lines, used for the timing, stay off stdout.
func TestTimingsIsOneBareJSONLine(t *testing.T) {
	requireQEMU(t)
	kernel := guestKernel(t)
	root := busyboxRootfs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, krunbenchBin(t), "run", "--engine", "qemu", "--accel", "tcg",
		"--rootfs", root, "--kernel", kernel, "--timings", "--", "/bin/sh", "-c", "echo workload-out")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "workload-out") || strings.Contains(stdout.String(), "milestone") {
		t.Fatalf("stdout should have the workload's output and no milestones:\n%s", stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	last := lines[len(lines)-1]
	var got map[string]any
	if !strings.HasPrefix(last, "{") || json.Unmarshal([]byte(last), &got) != nil {
		t.Fatalf("last stderr line is not a bare JSON object: %q", last)
	}
	order := []string{"kernel_entry_ms", "first_fuse_ms", "init_eof_ms", "exec_ms", "exit_ms"}
	prev := 0.0
	for _, k := range append([]string{"vm_created_ms"}, order...) {
		v, ok := got[k].(float64)
		if !ok || v <= 0 {
			t.Fatalf("%s missing or not seen in %s", k, last)
		}
		if k != "vm_created_ms" && v < prev {
			t.Fatalf("%s (%v ms) before the moment ahead of it (%v ms): %s", k, v, prev, last)
		}
		if k != "vm_created_ms" {
			prev = v
		}
	}
	if got["engine"] != "qemu" || got["accel"] != "tcg" {
		t.Fatalf("engine/accel: %s", last)
	}
}
