package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/krunbench/krunbench/vmm/kernelconfig"
)

// TestBadRunInputFailsWithOneLine runs the CLI with broken inputs: each
// must end quickly with a non-zero exit and one line naming the problem.
func TestBadRunInputFailsWithOneLine(t *testing.T) {
	requireQEMU(t)
	kernel := guestKernel(t)
	dir := t.TempDir()
	root := busyboxRootfs(t)
	initFile := filepath.Join(dir, "init")
	notKernel := filepath.Join(dir, "notakernel")
	aFile := filepath.Join(dir, "file")
	for _, f := range []string{initFile, aFile} {
		if err := os.WriteFile(f, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	noVirtioFS := filepath.Join(dir, "kernel-without-virtiofs")
	if err := os.WriteFile(noVirtioFS, kernelWithConfig(t, "CONFIG_VIRTIO_MMIO=y\nCONFIG_VIRTIO_CONSOLE=y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	huge, empty := filepath.Join(dir, "huge"), filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(createFile(t, huge), 300<<20); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notKernel, bytes.Repeat([]byte("garbage!"), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	// The guest kernel's own configuration, built for fewer CPUs.
	kc, err := kernelconfig.Read(kernel)
	if err != nil {
		t.Fatal(err)
	}
	var fewCPUs strings.Builder
	for k, v := range kc {
		if k != "NR_CPUS" {
			fmt.Fprintf(&fewCPUs, "CONFIG_%s=%s\n", k, v)
		}
	}
	fewCPUs.WriteString("CONFIG_NR_CPUS=2\n")
	twoCPUKernel := filepath.Join(dir, "kernel-nr-cpus-2")
	if err := os.WriteFile(twoCPUKernel, kernelWithConfig(t, fewCPUs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	base := func(extra ...string) []string {
		return append([]string{"run", "--engine", "qemu", "--accel", "tcg", "--rootfs", root, "--init", initFile, "--kernel", kernel}, extra...)
	}
	cases := map[string]struct {
		args []string
		want string
	}{
		"missing rootfs":   {append(base(), "--rootfs", "/no/such/dir"), "root filesystem"},
		"rootfs is a file": {append(base(), "--rootfs", aFile), "not a directory"},
		"init none":        {append(base(), "--init", "none"), "init policy init.krun: no init payload: pass --init default"},
		"kernel policy":    {append(base(), "--init-policy", "kernel"), "init policy kernel"},
		"huge payload":     {append(base(), "--init", huge), "is 314572800 bytes, the limit is 268435456 bytes"},
		"empty payload":    {append(base(), "--init", empty), "--init: init payload is empty"},
		"missing init":     {append(base(), "--init", "/no/such/init"), "--init"},
		"missing kernel":   {append(base(), "--kernel", "/no/such/kernel"), "kernel"},
		"not a kernel":     {append(base(), "--kernel", notKernel), "qemu"},
		"no virtio-fs":     {append(base(), "--kernel", noVirtioFS), "lacks CONFIG_VIRTIO_FS"},
		"zero vcpus":       {append(base(), "--cpus", "0"), "vCPUs"},
		"300 vcpus":        {append(base(), "--cpus", "300"), "vCPUs"},
		"over NR_CPUS":     {append(base(), "--kernel", twoCPUKernel, "--cpus", "3"), "runs at most 2 (CONFIG_NR_CPUS)"},
		"serve empty init": {[]string{"serve", "--shared-dir", root, "--mount", dir, "--init", empty}, "empty"},
		"too little mem":   {append(base(), "--mem", "16"), "memory"},
		"bad engine":       {append(base(), "--engine", "warp"), "engine"},
		"env not K=V":      {append(base(), "--env", "NOPE"), "KEY=VALUE"},
	}
	if _, err := os.Stat("/dev/kvm"); err != nil { // only where there is none
		cases["accel kvm no kvm"] = struct {
			args []string
			want string
		}{append(base(), "--accel", "kvm"), "--accel kvm, but this machine offers no KVM"}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, krunbenchBin(t), c.args...)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("still running after 60s:\n%s", out)
			}
			requireOneErrorLine(t, out, err, c.want)
		})
	}
	waitNoQEMU(t, runMarker())
}

func createFile(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// kernelWithConfig makes an image that carries only an embedded kernel
// configuration (IKCONFIG), as a kernel built without some option would.
func kernelWithConfig(t *testing.T, config string) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(config))
	zw.Close()
	img := append(bytes.Repeat([]byte{0}, 8192), "IKCFG_ST"...)
	img = append(img, z.Bytes()...)
	return append(img, "IKCFG_ED"...)
}

// requireOneErrorLine fails the test unless a command that ran with out
// and err failed with one line "krunbench: ..." holding want, and no Go
// panic; it returns that line.
func requireOneErrorLine(t *testing.T, out []byte, err error, want string) string {
	t.Helper()
	if err == nil {
		t.Fatalf("exit 0, want an error:\n%s", out)
	}
	text := strings.TrimSpace(string(out))
	if strings.Count(text, "\n") != 0 || !strings.HasPrefix(text, "krunbench: ") || !strings.Contains(text, want) {
		t.Fatalf("want one line 'krunbench: ...%s...', got:\n%s", want, text)
	}
	if strings.Contains(text, "panic") || strings.Contains(text, "goroutine") {
		t.Fatalf("Go panic:\n%s", text)
	}
	return text
}
