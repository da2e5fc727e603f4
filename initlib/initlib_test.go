package initlib

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// served is the smallest InitServer: a filesystem serving these bytes as
// /init.krun (virtiofs/overlay imports this package, so its tests check
// the real overlay against Check).
type served []byte

func (s served) Payload() []byte { return s }

func TestPolicyIsCheckedInOnePlace(t *testing.T) {
	root := []FSDevice{{Tag: RootTag, FS: served("#!/bin/sh\n")}}
	cases := []struct {
		spec    InitSpec
		devices []FSDevice
		missing string
	}{
		{InitSpec{Policy: InitKrun}, root, ""},
		{InitSpec{Policy: InitKrun}, []FSDevice{{Tag: RootTag}}, "cannot serve /init.krun"},
		{InitSpec{Policy: InitKrun}, []FSDevice{{Tag: RootTag, FS: "not a filesystem"}}, "cannot serve /init.krun"},
		{InitSpec{Policy: InitKrun}, []FSDevice{{Tag: RootTag, FS: served(nil)}}, "serves no init payload"},
		{InitSpec{Policy: InitKrun}, []FSDevice{{Tag: "data", FS: served("x")}}, "no root virtio-fs device"},
		{InitSpec{Policy: InitKrun}, nil, "no root virtio-fs device"},
		{InitSpec{Policy: KernelInit}, nil, "absolute init path"},
		{InitSpec{Policy: KernelInit, KernelInitPath: "sbin/init"}, nil, "absolute init path"},
		{InitSpec{Policy: KernelInit, KernelInitPath: "/sbin/init"}, nil, ""},
		{InitSpec{Policy: NoInit}, nil, ""},
	}
	for _, c := range cases {
		err := c.spec.Check(c.devices)
		if c.missing == "" {
			if err != nil {
				t.Errorf("%v %v: %v", c.spec, c.devices, err)
			}
			continue
		}
		var pe *PolicyError
		if !errors.Is(err, ErrPolicy) || !errors.As(err, &pe) || !strings.Contains(pe.Missing, c.missing) {
			t.Errorf("%v %v: %v, want a PolicyError about %q", c.spec, c.devices, err, c.missing)
		}
		if strings.Contains(err.Error(), "--") {
			t.Errorf("%v: library error %q speaks CLI flags", c.spec, err)
		}
	}
	for _, s := range []string{"init.krun", "kernel", "none"} {
		if p, err := ParsePolicy(s); err != nil || p.String() != s {
			t.Errorf("ParsePolicy(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParsePolicy("systemd"); err == nil {
		t.Error("unknown policy accepted")
	}
	if (InitSpec{Policy: NoInit}).KernelParam() != "" || (InitSpec{Policy: InitKrun}).KernelParam() != "/init.krun" {
		t.Error("KernelParam")
	}
}

// TestPayloadRules: empty is ErrEmptyPayload wherever a payload is given;
// too large is ErrHugePayload where it is served, saying both sizes; only
// scripts are lasting; CheckContents turns a bad verdict into one line.
func TestPayloadRules(t *testing.T) {
	for _, b := range [][]byte{nil, {}} {
		if err := CheckServable(b); !errors.Is(err, ErrEmptyPayload) {
			t.Errorf("CheckServable(%#v) = %v, want ErrEmptyPayload", b, err)
		}
		if err := (Payload{Name: "x", Bytes: b}).CheckNotEmpty(); !errors.Is(err, ErrEmptyPayload) {
			t.Errorf("CheckNotEmpty(%#v) = %v", b, err)
		}
		if err := (Payload{Bytes: b}).CheckContents(""); !errors.Is(err, ErrEmptyPayload) {
			t.Errorf("CheckContents(%#v) = %v", b, err)
		}
	}
	huge := make([]byte, MaxPayloadSize+1)
	err := CheckServable(huge)
	if !errors.Is(err, ErrHugePayload) || !strings.Contains(err.Error(), "268435457 bytes") || !strings.Contains(err.Error(), "268435456 bytes") {
		t.Errorf("CheckServable(huge) = %v, want ErrHugePayload with both sizes", err)
	}
	if err := CheckServable(huge[:MaxPayloadSize]); err != nil {
		t.Errorf("CheckServable(exactly the limit) = %v", err)
	}
	if !Lasting(ShellTemplate.Bytes) || Lasting(ExitAtOnce.Bytes) {
		t.Error("Lasting: scripts, and only scripts")
	}
	err = (Payload{Name: "zeros", Bytes: make([]byte, 4096)}).CheckContents(t.TempDir())
	if !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), "zeros") || strings.Contains(err.Error(), "\n") {
		t.Errorf("CheckContents(zeros) = %v, want one line wrapping ErrBadPayload", err)
	}
	if err := ExitAtOnce.CheckContents(""); err != nil {
		t.Errorf("CheckContents(exit-at-once) = %v", err)
	}
}

func TestFromFileRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	huge := filepath.Join(dir, "huge")
	f, _ := os.Create(huge)
	f.Truncate(MaxPayloadSize + 1)
	f.Close()
	for path, want := range map[string]error{empty: ErrEmptyPayload, huge: ErrHugePayload} {
		if _, err := FromFile(path); !errors.Is(err, want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v, want %v naming the file", path, err, want)
		}
	}
	for _, path := range []string{dir, filepath.Join(dir, "missing")} {
		if _, err := FromFile(path); err == nil {
			t.Errorf("%s accepted", path)
		}
	}
	ok := filepath.Join(dir, "init")
	os.WriteFile(ok, ExitAtOnce.Bytes, 0o755)
	p, err := FromFile(ok)
	if err != nil || p.Name != "init" || p.Origin != ok || p.Size() != len(ExitAtOnce.Bytes) {
		t.Fatalf("FromFile: %+v %v", p, err)
	}
}

// rootfs builds a root with /bin/sh -> /bin/busybox (absolute, as many
// images have) and /dev.
func rootfs(t *testing.T) string {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	os.WriteFile(filepath.Join(root, "bin", "busybox"), []byte("#!fake"), 0o755)
	os.Symlink("/bin/busybox", filepath.Join(root, "bin", "sh"))
	os.Symlink("../../../../etc/passwd", filepath.Join(root, "bin", "escape"))
	return root
}

func TestCheckPayload(t *testing.T) {
	root := rootfs(t)
	hostLS, err := exec.LookPath("ls")
	if err != nil {
		t.Fatal(err)
	}
	dynamic, _ := os.ReadFile(hostLS)
	elf32 := append([]byte(nil), ExitAtOnce.Bytes...)
	elf32[4] = 1
	arm := append([]byte(nil), ExitAtOnce.Bytes...)
	arm[18] = 183 // EM_AARCH64
	cases := []struct {
		name    string
		b       []byte
		rootfs  string
		verdict Verdict
		detail  string
	}{
		{"tiny static ELF", ExitAtOnce.Bytes, root, OK, "static x86-64"},
		{"shell template", ShellTemplate.Bytes, root, OK, "script for /bin/sh"},
		{"script, missing interpreter", []byte("#!/usr/bin/python3\n"), root, Bad, "missing"},
		{"script, relative interpreter", []byte("#!sh\n"), root, Bad, "not an absolute path"},
		{"dynamic ELF, loader missing", dynamic, root, Bad, "loader"},
		{"dynamic ELF, loader present", dynamic, "/", OK, "loader"},
		{"dynamic ELF, no rootfs", dynamic, "", Warn, "needs"},
		{"32-bit ELF", elf32, root, Bad, "ELFCLASS32"},
		{"arm64 ELF", arm, root, Bad, "AARCH64"},
		{"garbage", []byte("hello"), root, Bad, "ENOEXEC"},
		{"empty", nil, root, Bad, "empty"},
		{"truncated ELF", ExitAtOnce.Bytes[:40], root, Bad, "corrupt"},
	}
	for _, c := range cases {
		f := CheckPayload(c.b, c.rootfs)
		if f.Verdict != c.verdict || !strings.Contains(f.Detail, c.detail) {
			t.Errorf("%s: %s %q, want %s containing %q", c.name, f.Verdict, f.Detail, c.verdict, c.detail)
		}
	}
}

func TestResolveStaysInsideRoot(t *testing.T) {
	root := rootfs(t)
	got, err := resolveIn(root, "/bin/sh")
	if err != nil || got != filepath.Join(root, "bin", "busybox") {
		t.Fatalf("resolve /bin/sh: %q %v", got, err)
	}
	if _, err := resolveIn(root, "/bin/escape"); err == nil {
		t.Fatal("a symlink climbing above the root reached the host's /etc/passwd")
	}
	os.Symlink("loop", filepath.Join(root, "loop"))
	if _, err := resolveIn(root, "/loop"); err == nil {
		t.Fatal("symlink loop resolved")
	}
}

func TestCheckRootFSAndKernel(t *testing.T) {
	root := rootfs(t)
	if f := CheckRootFS(root); f.Verdict != OK {
		t.Errorf("good rootfs: %v", f)
	}
	noDev := t.TempDir()
	if f := CheckRootFS(noDev); f.Verdict != Bad || !strings.Contains(f.Detail, "/dev") {
		t.Errorf("rootfs without /dev: %v", f)
	}
	file := filepath.Join(noDev, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if f := CheckRootFS(file); f.Verdict != Bad {
		t.Errorf("rootfs that is a file: %v", f)
	}
	if f := CheckKernel(file); f.Verdict != Bad {
		t.Errorf("kernel that is not one: %v", f)
	}
	if k := "../../shared/guest/bzImage"; fileExists(k) {
		if f := CheckKernel(k); f.Verdict != OK || f.Detail != "bzImage" {
			t.Errorf("fixture bzImage: %v", f)
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestLibraryListsBuiltinsAndFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "init"), 0o755)
	os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755)
	os.WriteFile(filepath.Join(dir, "init", "mine"), ExitAtOnce.Bytes, 0o755)
	os.Symlink(rootfs(t), filepath.Join(dir, "rootfs", "busy"))
	lib := NewLibrary(dir)
	lib.AddBuiltin(Payload{Name: "first", Origin: "builtin", Bytes: ExitAtOnce.Bytes})
	items := lib.Items(filepath.Join(dir, "rootfs", "busy"))
	var names []string
	for _, it := range items {
		names = append(names, string(it.Kind)+":"+it.Name+":"+it.Verdict.String())
	}
	want := "rootfs:busy:ok init:first:ok init:shell-template:ok init:exit-at-once:ok init:mine:ok"
	if strings.Join(names, " ") != want {
		t.Fatalf("items:\n%s\nwant:\n%s", strings.Join(names, " "), want)
	}
	p, err := items[1].Payload()
	if err != nil || &p.Bytes[0] != &ExitAtOnce.Bytes[0] {
		t.Fatal("a built-in payload's bytes were copied")
	}
}
