package session

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/krunbench/krunbench/initlib"
)

// busyboxLike is a root filesystem with /dev and /bin/sh but no python.
func busyboxLike(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"dev", "bin"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), initlib.ExitAtOnce.Bytes, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestPayloadRules: Validate applies initlib's payload rules before
// anything starts: empty is refused under every policy with the one
// sentinel; too large and unrunnable only where the payload is served;
// the contents check, against the root filesystem, can be skipped; errors
// name the API, never CLI flags.
func TestPayloadRules(t *testing.T) {
	arm := append([]byte(nil), initlib.ExitAtOnce.Bytes...)
	arm[18] = 183 // EM_AARCH64
	huge := make([]byte, initlib.MaxPayloadSize+1)
	copy(huge, initlib.ExitAtOnce.Bytes)
	kernelInit := initlib.InitSpec{Policy: initlib.KernelInit, KernelInitPath: "/sbin/init"}
	python := []byte("#!/usr/bin/python3\nprint('hi')\n")
	cases := map[string]struct {
		edit func(*Config)
		want error
		text string
	}{
		"empty":                  {func(c *Config) { c.Payload = &initlib.Payload{Bytes: []byte{}} }, initlib.ErrEmptyPayload, "session.Config.Payload: init payload is empty"},
		"empty, kernel init":     {func(c *Config) { c.Payload = &initlib.Payload{}; c.Init = kernelInit }, initlib.ErrEmptyPayload, "empty"},
		"none":                   {func(c *Config) { c.Payload = nil }, initlib.ErrPolicy, "set session.Config.Payload"},
		"none, kernel init":      {func(c *Config) { c.Payload = nil; c.Init = kernelInit }, nil, ""},
		"too large":              {func(c *Config) { c.Payload = &initlib.Payload{Bytes: huge} }, initlib.ErrHugePayload, "268435457 bytes, the limit is 268435456 bytes"},
		"too large, kernel init": {func(c *Config) { c.Payload = &initlib.Payload{Bytes: huge}; c.Init = kernelInit }, nil, ""},
		"arm64 ELF":              {func(c *Config) { c.Payload = &initlib.Payload{Name: "arm", Bytes: arm} }, initlib.ErrBadPayload, "AARCH64"},
		"python on busybox":      {func(c *Config) { c.Payload = &initlib.Payload{Name: "py", Bytes: python} }, initlib.ErrBadPayload, "/usr/bin/python3: missing"},
		"python, check skipped":  {func(c *Config) { c.Payload = &initlib.Payload{Bytes: python}; c.SkipPayloadCheck = true }, nil, ""},
		"4 KiB of zeros":         {func(c *Config) { c.Payload = &initlib.Payload{Bytes: make([]byte, 4096)} }, initlib.ErrBadPayload, "neither an ELF"},
		"shell script":           {func(c *Config) { c.Payload = &initlib.ShellTemplate }, nil, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t, fakeImage(t))
			cfg.RootFS, cfg.Engine = busyboxLike(t), EngineQEMU
			c.edit(&cfg)
			err := cfg.Validate()
			if c.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), "--") {
				t.Fatalf("Validate = %v, want one line wrapping %v containing %q, in the API's words", err, c.want, c.text)
			}
		})
	}
}

// TestQEMUStackServesThePayload: for the QEMU engine the session installs
// the payload in its overlay (the caller's bytes, not a copy) and asks the
// overlay for the policy; with no payload the policy check fails there
// too, even if Validate was skipped.
func TestQEMUStackServesThePayload(t *testing.T) {
	cfg := testConfig(t, fakeImage(t))
	cfg.Engine = EngineQEMU
	fs, err := startFS(&cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.close()
	if got := fs.overlay.Payload(); unsafe.SliceData(got) != unsafe.SliceData(cfg.Payload.Bytes) {
		t.Fatal("the overlay does not serve the caller's bytes")
	}
	cfg.Payload = nil
	if fs, err := startFS(&cfg, t.TempDir()); !errors.Is(err, initlib.ErrPolicy) {
		if err == nil {
			fs.close()
		}
		t.Fatalf("startFS without a payload: %v, want ErrPolicy", err)
	}
}
