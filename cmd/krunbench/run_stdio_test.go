package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runPiped runs `krunbench run` with engine's flags (the engine, the
// kernel, the root) and stdin, stdout and stderr as pipes, as in a shell
// pipeline.
func runPiped(t *testing.T, engine []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	argv := append(append([]string{"run"}, engine...), args...)
	cmd := exec.CommandContext(ctx, krunbenchBin(t), argv...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("krunbench run %q: %v\nstderr:\n%s", args, err, errOut.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("krunbench run %q did not end within the limit (end of input lost?)\nstdout:\n%s\nstderr:\n%s", args, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), code
}

// TestRunInAPipeline: with stdin, stdout and stderr not terminals, run is
// a Unix tool: the workload's streams are ports of their own, so the end
// of input reaches it, its stdout and stderr stay apart, and the kernel's
// and the init's messages never reach stdout.
func TestRunInAPipeline(t *testing.T) {
	requireQEMU(t)
	// TCG: the same on every machine.
	pipelineChecks(t, []string{"--engine", "qemu", "--accel", "tcg", "--rootfs", busyboxRootfs(t), "--kernel", guestKernel(t)})
}

// pipelineChecks are TestRunInAPipeline's checks on the engine that
// engine's flags select (TestKVMRunInAPipeline runs them in-process).
func pipelineChecks(t *testing.T, engine []string) {

	t.Run("end of input reaches cat", func(t *testing.T) {
		stdout, stderr, code := runPiped(t, engine, "a\nb\n", "--", "cat")
		if stdout != "a\nb\n" || code != 0 {
			t.Fatalf("printf 'a\\nb\\n' | krunbench run -- cat: stdout %q, exit %d (want \"a\\nb\\n\", 0)\nstderr:\n%s", stdout, code, stderr)
		}
	})

	t.Run("stdout and stderr apart", func(t *testing.T) {
		stdout, stderr, code := runPiped(t, engine, "", "--boot-trace", "--", "sh", "-c", "echo out; echo err >&2")
		if stdout != "out\n" || code != 0 {
			t.Fatalf("stdout %q, exit %d (want \"out\\n\", 0)\nstderr:\n%s", stdout, code, stderr)
		}
		if !strings.Contains(stderr, "err\n") || strings.Contains(stderr, "out\n") {
			t.Fatalf("stderr should hold err and not out:\n%s", stderr)
		}
		// The init's milestones (asked for by --boot-trace) are
		// diagnostics: on stderr, never on stdout.
		if !strings.Contains(stderr, "krun-init: milestone exec") {
			t.Fatalf("the init's milestones are missing from stderr:\n%s", stderr)
		}
	})

	t.Run("shell reads a script from stdin", func(t *testing.T) {
		stdout, stderr, code := runPiped(t, engine, "echo hi; exit 3\n")
		if stdout != "hi\n" || code != 3 {
			t.Fatalf("stdout %q, exit %d (want \"hi\\n\", 3)\nstderr:\n%s", stdout, code, stderr)
		}
		// A shell whose input is not a terminal asks the terminal
		// nothing: no ESC[6n (cursor position query) anywhere.
		if strings.Contains(stdout+stderr, "\x1b[") {
			t.Fatalf("escape sequences in the output: stdout %q stderr %q", stdout, stderr)
		}
	})
}

// TestRunConsoleIsATerminalInTmux: run in a tmux pane (a real terminal).
// The workload's console is its controlling terminal with a name, and
// its size is the pane's, before and after resizes (200x50 -> 40x10 ->
// 200x50).
func TestRunConsoleIsATerminalInTmux(t *testing.T) {
	requireQEMU(t)
	kernel := guestKernel(t)
	root := busyboxRootfs(t)
	tm := newTmux(t, 200, 50)
	tm.send(fmt.Sprintf("TMPDIR=%s %s run --engine qemu --accel tcg --rootfs %s --kernel %s; echo KB-EXIT=$?",
		tmpRoot, krunbenchBin(t), root, kernel), "Enter")
	tm.waitFor(`(?m)^/ #`, 120*time.Second)

	tm.send("echo TTY=$(tty)", "Enter")
	tm.waitFor(`TTY=/dev/hvc0\s`, 30*time.Second)
	for i, size := range [][2]int{{200, 50}, {40, 10}, {200, 50}} {
		tm.resize(size[0], size[1])
		want := tm.paneSize()
		tm.send("clear", "Enter")
		tm.send(fmt.Sprintf("echo SZ%d=$(stty size)", i), "Enter")
		tm.waitFor(fmt.Sprintf(`SZ%d=%d %d\s`, i, want[1], want[0]), 30*time.Second)
	}
	tm.send("exit", "Enter")
	tm.waitFor(`KB-EXIT=0`, 60*time.Second)
}
