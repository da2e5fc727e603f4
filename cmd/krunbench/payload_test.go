package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/initlib"
	"github.com/krunbench/krunbench/session"
	"github.com/krunbench/krunbench/tui"
	"github.com/krunbench/krunbench/virtiofs/fuse"
	"github.com/krunbench/krunbench/virtiofs/overlay"
	"github.com/krunbench/krunbench/virtiofs/passthrough"
	"github.com/krunbench/krunbench/vmm/builder"
)

// TestBadPayloadFailsBeforeAnyVM runs `krunbench run` with payloads that
// cannot be the guest's init, on both engines: each ends with one line
// naming the problem before any VM exists. The proof that nothing started:
// no QEMU on PATH and a kernel that is not one, so any later step would
// fail differently; and the empty TMPDIR, where a session makes its
// directory (virtio-fs socket) before it starts an engine.
func TestBadPayloadFailsBeforeAnyVM(t *testing.T) {
	dir := t.TempDir()
	root := busyboxRootfs(t)
	arm64 := append([]byte(nil), initlib.ExitAtOnce.Bytes...)
	arm64[18] = 183 // e_machine EM_AARCH64
	payloads := map[string]struct {
		bytes []byte
		want  string
	}{
		"arm64 ELF":           {arm64, "ELF for EM_AARCH64; the guest runs x86-64"},
		"python3 script":      {[]byte("#!/usr/bin/python3\nprint('hello')\n"), "script interpreter /usr/bin/python3: missing in the root filesystem"},
		"4 KiB of zeros":      {make([]byte, 4096), "neither an ELF executable nor a #! script"},
		"relative shebang":    {[]byte("#!python3\n"), "not an absolute path"},
		"empty file (rule 1)": {nil, "--init: init payload is empty"},
	}
	kernel := filepath.Join(dir, "not-a-kernel")
	if err := os.WriteFile(kernel, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	noQEMU := t.TempDir() // PATH without qemu-system-x86_64
	for name, p := range payloads {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(file, p.bytes, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, engine := range []string{"qemu", "kvm"} {
			t.Run(name+"/"+engine, func(t *testing.T) {
				text, ok := runBriefly(t, noQEMU, "run", "--engine", engine, "--rootfs", root, "--kernel", kernel, "--init", file, "--", "/bin/true")
				if ok {
					t.Fatalf("exit 0, want an error:\n%s", text)
				}
				if strings.Count(text, "\n") != 0 || !strings.HasPrefix(text, "krunbench: --init: ") || !strings.Contains(text, p.want) {
					t.Fatalf("want one line 'krunbench: --init: ...%s...', got:\n%s", p.want, text)
				}
				if p.bytes != nil && !strings.Contains(text, "--no-payload-check") {
					t.Fatalf("the line does not name the flag that skips the check: %s", text)
				}
			})
		}
	}
	t.Run("skipped with --no-payload-check", func(t *testing.T) {
		file := filepath.Join(dir, "4-KiB-of-zeros")
		text, ok := runBriefly(t, noQEMU, "run", "--engine", "qemu", "--accel", "tcg", "--rootfs", root, "--kernel", kernel, "--init", file, "--no-payload-check", "--", "/bin/true")
		if ok || strings.Contains(text, "--init") || !strings.Contains(text, "qemu") {
			t.Fatalf("with the check skipped the run must go on to start QEMU (absent here), got %q (exit 0: %v)", text, ok)
		}
	})
}

// runBriefly runs the CLI with path as PATH and a fresh TMPDIR, bounded;
// it returns the trimmed output and whether it exited 0, and fails if the
// run left anything in TMPDIR.
func runBriefly(t *testing.T, path string, args ...string) (string, bool) {
	t.Helper()
	tmp, err := os.MkdirTemp("", "t") // short: the session's socket path must fit sun_path
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, krunbenchBin(t), args...)
	cmd.Env = append(os.Environ(), "PATH="+path, "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("still running after 60s:\n%s", out)
	}
	text := strings.TrimSpace(string(out))
	if strings.Contains(text, "goroutine") {
		t.Fatalf("Go panic:\n%s", text)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 && !strings.Contains(strings.Join(args, " "), "--no-payload-check") {
		t.Fatalf("a session started (left in TMPDIR: %v):\n%s", left, text)
	}
	return text, err == nil
}

// TestEveryEntryPointRefusesAnEmptyPayload: the CLI's run and serve, the
// workbench's launcher, session, vmm/builder and overlay.SetPayload all
// refuse an empty payload with initlib.ErrEmptyPayload (the CLI prints
// its text), whatever the init policy.
func TestEveryEntryPointRefusesAnEmptyPayload(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	kernel := filepath.Join(dir, "kernel")
	if err := os.WriteFile(kernel, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	pt, err := passthrough.New(root, passthrough.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ov := overlay.New(pt)
	kernelInit := initlib.InitSpec{Policy: initlib.KernelInit, KernelInitPath: "/sbin/init"}
	entryPoints := map[string]func() error{
		"resolvePayload (--init FILE)": func() error { _, err := resolvePayload(empty); return err },
		"workbench launcher": func() error {
			w := newWorkbenchLibrary(&workbenchFlags{dir: dir})
			_, err := w.launcher(&workbenchFlags{cpus: 1, mem: 256}, &liveSessions{})(tui.LaunchRequest{
				RootFS: tui.Item{Name: "root", Path: root}, Init: tui.Item{Name: "empty", Path: empty}, Kernel: tui.Item{Path: kernel}})
			return err
		},
		"session.Config": func() error {
			cfg := session.Config{RootFS: root, Kernel: kernel, CPUs: 1, MemMiB: 256, Payload: &initlib.Payload{Bytes: []byte{}}}
			return cfg.Validate()
		},
		"session.Config, kernel policy": func() error {
			cfg := session.Config{RootFS: root, Kernel: kernel, CPUs: 1, MemMiB: 256, Init: kernelInit, Payload: &initlib.Payload{}}
			return cfg.Validate()
		},
		"Builder.SetPayload": func() error {
			return builder.New(builder.Config{Kernel: kernel, VCPUs: 1, MemMiB: 256}).
				AddFS(builder.FSDevice{Tag: initlib.RootTag, Server: fuse.NewServer(ov, fuse.Options{})}).
				SetPayload(initlib.Payload{}).Validate()
		},
		"Builder.SetPayload, kernel policy": func() error {
			return builder.New(builder.Config{Kernel: kernel, VCPUs: 1, MemMiB: 256, Init: kernelInit}).
				AddFS(builder.FSDevice{Tag: initlib.RootTag, Server: fuse.NewServer(ov, fuse.Options{})}).
				SetPayload(initlib.Payload{Bytes: []byte{}}).Validate()
		},
		"overlay.FS.SetPayload": func() error { return ov.SetPayload([]byte{}) },
	}
	for name, call := range entryPoints {
		if err := call(); !errors.Is(err, initlib.ErrEmptyPayload) {
			t.Errorf("%s: %v, want initlib.ErrEmptyPayload", name, err)
		}
	}
	want := "krunbench: --init: " + initlib.ErrEmptyPayload.Error() + ": " + empty
	for _, args := range [][]string{
		{"run", "--rootfs", root, "--kernel", kernel, "--init", empty, "--", "/bin/true"},
		{"serve", "--shared-dir", root, "--mount", filepath.Join(dir, "mnt"), "--init", empty},
	} {
		if text, ok := runBriefly(t, t.TempDir(), args...); ok || text != want {
			t.Errorf("krunbench %s: %q, want %q", args[0], text, want)
		}
	}
}
